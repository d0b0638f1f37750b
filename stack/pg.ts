// An ephemeral Debian PostgreSQL cluster for the local stack: created fresh on every start (so a crash
// leaves nothing to clean), pg_cron preloaded, run as the postgres OS user when we are root. As on hosted
// Supabase, the bootstrap superuser is `supabase_admin`; the `postgres` role (stack/platform/sql) is not
// a superuser.
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LOCAL_DIR, PORTS } from "./local-env.ts";
import { fail, say } from "./log.ts";

const isRoot = Deno.uid() === 0;
/** initdb's superuser, as on hosted Supabase: only the platform (stack/platform/sql) connects as it. */
export const BOOTSTRAP_ROLE = "supabase_admin";

export function pgMajor(): string {
  const dirs = [...Deno.readDirSync("/usr/lib/postgresql")].filter((d) => d.isDirectory).map((d) => d.name);
  if (dirs.length === 0) fail("PostgreSQL is not installed: run `npm run setup` (apt-get install postgresql)");
  return dirs.sort((a, b) => Number(b) - Number(a))[0];
}

export function pgBin(name: string): string {
  return `/usr/lib/postgresql/${pgMajor()}/bin/${name}`;
}

export async function run(
  cmd: string,
  args: string[],
  opts: { asPostgres?: boolean; env?: Record<string, string>; stdin?: string } = {},
) {
  let [c, a] = [cmd, args];
  if (opts.asPostgres && isRoot) [c, a] = ["runuser", ["-u", "postgres", "--", cmd, ...args]];
  const child = new Deno.Command(c, {
    args: a,
    env: opts.env,
    stdin: opts.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Where the cluster lives: .local/pg, unless the postgres user cannot reach it (e.g. a checkout in root's home directory). */
async function fallbackDir(): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(LOCAL_DIR));
  const hash = Array.from(new Uint8Array(digest)).slice(0, 6).map((b) => b.toString(16).padStart(2, "0")).join("");
  return join(tmpdir(), `litellm-credits-pg-${hash}`);
}

async function clusterDir(): Promise<string> {
  const preferred = `${LOCAL_DIR}/pg`;
  Deno.mkdirSync(preferred, { recursive: true });
  if (!isRoot) return preferred;
  await run("chown", ["postgres:postgres", preferred]);
  const probe = await run("test", ["-w", preferred], { asPostgres: true });
  if (probe.code === 0) return preferred;
  const fallback = await fallbackDir();
  Deno.mkdirSync(fallback, { recursive: true });
  await run("chown", ["postgres:postgres", fallback]);
  return fallback;
}

export interface Cluster {
  dir: string;
  data: string;
  socketDir: string;
  logFile: string;
}

export async function stopStaleCluster(): Promise<void> {
  // A previous run that crashed may have left a postmaster running on our data dir.
  for (const dir of [`${LOCAL_DIR}/pg`, await fallbackDir()]) {
    const data = `${dir}/data`;
    try {
      Deno.statSync(`${data}/postmaster.pid`);
    } catch {
      continue;
    }
    await run(pgBin("pg_ctl"), ["-D", data, "stop", "-m", "immediate", "-w"], { asPostgres: true });
  }
}

export async function startCluster(): Promise<Cluster> {
  await stopStaleCluster();
  const dir = await clusterDir();
  const data = `${dir}/data`;
  const socketDir = `${dir}/run`;
  const logFile = `${dir}/postgres.log`;
  await run("rm", ["-rf", data, socketDir]);
  Deno.mkdirSync(socketDir, { recursive: true });
  if (isRoot) await run("chown", ["-R", "postgres:postgres", dir]);

  const init = await run(pgBin("initdb"), [
    "-D",
    data,
    "-U",
    BOOTSTRAP_ROLE,
    "--auth=trust",
    "-E",
    "UTF8",
    "--locale=C.UTF-8",
    "--no-sync",
  ], { asPostgres: true });
  if (init.code !== 0) fail(`initdb failed: ${init.stderr.trim().split("\n").pop()}`);

  const conf = [
    `port = ${PORTS.db}`,
    `listen_addresses = '127.0.0.1'`,
    `unix_socket_directories = '${socketDir}'`,
    `shared_preload_libraries = 'pg_cron'`,
    `cron.database_name = 'postgres'`,
    `cron.timezone = 'UTC'`,
    `max_connections = 300`,
    // PostgreSQL's 128 MB default unless set: the bench profile sizes it as a hosted instance of this machine's
    // class would be (scripts/with-stack.sh, docs/benchmarks.md "Postgres memory").
    `shared_buffers = '${Deno.env.get("STACK_PG_SHARED_BUFFERS") || "128MB"}'`,
    // Ephemeral cluster: durability is not needed, speed is.
    `fsync = off`,
    `synchronous_commit = off`,
    `full_page_writes = off`,
    `log_min_messages = warning`,
    `log_min_error_statement = panic`,
  ].join("\n");
  await Deno.writeTextFile(`${data}/postgresql.auto.conf`, conf + "\n", { append: true });

  const start = await run(pgBin("pg_ctl"), ["-D", data, "-l", logFile, "-w", "-t", "60", "start"], {
    asPostgres: true,
  });
  if (start.code !== 0) {
    let tail = "";
    try {
      tail = Deno.readTextFileSync(logFile).trim().split("\n").slice(-3).join(" | ");
    } catch { /* no log yet */ }
    fail(`PostgreSQL did not start (${tail || start.stderr.trim()}); see ${logFile}`);
  }
  say(`postgres ${pgMajor()} up on 127.0.0.1:${PORTS.db} (data ${data})`);
  return { dir, data, socketDir, logFile };
}

export async function stopCluster(c: Cluster): Promise<void> {
  await run(pgBin("pg_ctl"), ["-D", c.data, "stop", "-m", "fast", "-w"], { asPostgres: true });
}

/** Run a SQL file (or text) with psql as `role` (the project's postgres unless the platform's superuser); stops at the first error. */
export async function psql(
  sqlOrFile: { file?: string; sql?: string },
  role: "postgres" | typeof BOOTSTRAP_ROLE = "postgres",
): Promise<string> {
  const args = [
    "-X",
    "-q",
    "-v",
    "ON_ERROR_STOP=1",
    "-h",
    "127.0.0.1",
    "-p",
    String(PORTS.db),
    "-U",
    role,
    "-d",
    "postgres",
  ];
  if (sqlOrFile.file) args.push("-f", sqlOrFile.file);
  const r = await run("psql", args, { stdin: sqlOrFile.sql });
  if (r.code !== 0) fail(`SQL failed${sqlOrFile.file ? ` in ${sqlOrFile.file}` : ""}: ${r.stderr.trim()}`);
  return r.stdout;
}
