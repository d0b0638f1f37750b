// An in-memory PostgreSQL 17 (PGlite, WASM) set up the way hosted Supabase sets up a project's database:
// supabase_admin is the bootstrap superuser, postgres a non-superuser that owns the database, and the
// platform stand-ins of stack/ are installed. See docs/architecture.md, "PostgreSQL 15 and 17".
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { PGlite, protocol } from "@electric-sql/pglite";
import { pgcrypto } from "@electric-sql/pglite/contrib/pgcrypto";
import { pgtap } from "@electric-sql/pglite/pgtap";

const HERE = new URL(".", import.meta.url).pathname;
const ROOT = join(HERE, "..", "..");
const STACK_EXTENSIONS = join(ROOT, "stack/platform/extensions");
const STACK_SQL = join(ROOT, "stack/platform/sql");
const OWN_EXTENSIONS = join(HERE, "extensions");
// PGlite signs in any session named "postgres" as the bootstrap superuser (its postinit.c), so the
// bootstrap user is renamed and sessions sign in as supabase_admin, then SET SESSION AUTHORIZATION postgres.
const SETUP_ROLE = "pglite_setup";

const sqlFiles = (dir) => readdirSync(dir).filter((f) => f.endsWith(".sql")).sort().map((f) => join(dir, f));
const quoteIdent = (name) => `"${name.replaceAll('"', '""')}"`;

/**
 * Runs a script with the simple query protocol (statements in order, stopping at the first error, as
 * psql -v ON_ERROR_STOP=1 does). Returns every result row (columns joined by "|", as psql -At prints
 * them), the notices and the error, if any.
 */
export async function runSql(pg, sql) {
  const { messages } = await pg.execProtocol(protocol.serialize.query(sql), { throwOnError: false });
  const rows = [];
  const notices = [];
  let error = null;
  for (const m of messages) {
    if (m.name === "dataRow") rows.push(m.fields.map((f) => f ?? "").join("|"));
    else if (m.name === "notice") notices.push(m.message);
    else if (m.name === "error" && !error) error = describeError(m, sql);
  }
  return { rows, notices, error };
}

function describeError(m, sql) {
  const line = m.position ? sql.slice(0, Number(m.position) - 1).split("\n").length : null;
  const parts = [`${m.severity} ${m.code}: ${m.message}`];
  if (line) parts.push(`at line ${line}`);
  if (m.detail) parts.push(`detail: ${m.detail}`);
  if (m.where) parts.push(`where: ${m.where}`);
  return { code: m.code, message: m.message, line, text: parts.join("; ") };
}

/** Runs a script and throws on its first error, naming `label`. */
export async function runOrThrow(pg, sql, label) {
  const result = await runSql(pg, sql);
  if (result.error) throw new Error(`${label}: ${result.error.text}`);
  return result;
}

/**
 * Puts the (only) connection in the state of a fresh session of `role`: no transaction, session state
 * discarded, signed in as `role`, and the role's and database's settings applied (PGlite starts every
 * session with `-c search_path=pg_catalog` and then `SET search_path TO public`, so nothing of
 * ALTER DATABASE / ALTER ROLE ... SET would show otherwise).
 */
export async function freshSession(pg, role) {
  if (pg.isInTransaction()) await runOrThrow(pg, "rollback", "fresh session");
  await runOrThrow(pg, "discard all", "fresh session"); // alone: it cannot run in a multi-statement query
  await runOrThrow(pg, `set session authorization ${quoteIdent(role)}`, "fresh session");
  // PostgreSQL's default, then the settings in process_settings' order (later ones win).
  await runOrThrow(
    pg,
    `
    select set_config('search_path', '"$user", public', false);
    select set_config(split_part(cfg, '=', 1), substr(cfg, strpos(cfg, '=') + 1), false)
      from pg_db_role_setting s
      cross join lateral unnest(s.setconfig) with ordinality as c(cfg, n)
     where s.setdatabase in (0, (select oid from pg_database where datname = current_database()))
       and s.setrole in (0, (select oid from pg_roles where rolname = session_user))
     order by (s.setdatabase <> 0 and s.setrole <> 0), s.setrole <> 0, s.setdatabase <> 0, n`,
    "fresh session",
  );
}

/** Copies the stand-in extensions (control + SQL) into PGlite's extension directory. */
async function installStandInExtensions(pg) {
  const { rows: [shareDir] } = await runOrThrow(
    pg,
    `select setting from pg_config where name = 'SHAREDIR'`,
    "SHAREDIR",
  );
  const target = join(shareDir, "extension");
  for (const dir of [STACK_EXTENSIONS, OWN_EXTENSIONS]) {
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".control") || f.endsWith(".sql"))) {
      pg.Module.FS.writeFile(join(target, file), readFileSync(join(dir, file), "utf8"));
    }
  }
}

/**
 * Boots the cluster: a fresh PGlite whose bootstrap superuser becomes supabase_admin, restarted from that
 * data directory signed in as supabase_admin on database postgres, which then runs the platform stand-ins
 * (stack/platform/sql: hosted's roles, with postgres a non-superuser, and the extensions).
 */
export async function bootCluster() {
  const first = await PGlite.create();
  await runOrThrow(
    first,
    `
    create role ${SETUP_ROLE} superuser;
    set session authorization ${SETUP_ROLE};
    alter role postgres rename to supabase_admin;`,
    "rename the bootstrap superuser",
  );
  const dataDir = await first.dumpDataDir("none");
  await first.close();

  const pg = await PGlite.create({
    loadDataDir: dataDir,
    username: "supabase_admin",
    database: "postgres",
    extensions: { pgcrypto, pgtap },
  });
  await runOrThrow(pg, `drop role ${SETUP_ROLE}`, "drop the setup role");
  await installStandInExtensions(pg);
  // The platform stand-ins run as supabase_admin, as on the Debian stack: they create postgres as a
  // non-superuser with hosted's attributes and the extensions with hosted's grants.
  await freshSession(pg, "supabase_admin");
  for (const file of sqlFiles(STACK_SQL)) await runOrThrow(pg, readFileSync(file, "utf8"), file.slice(ROOT.length + 1));
  return pg;
}

export { ROOT, sqlFiles };
