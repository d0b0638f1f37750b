// Functions reach Postgres through the transaction pooler (PgBouncer locally, Supavisor on hosted), and
// still work without one. Proof from both ends: PgBouncer's admin console (SHOW STATS / POOLS / SERVERS /
// CLIENTS) and pg_stat_activity (which backend ran the function's SQL, and who opened it).
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import postgres from "postgres";
import { afterAll, describe, expect, it } from "vitest";
import { env, serveAlone, sql, waitFor } from "./helpers.ts";

const APP = "litellm-credits-functions"; // the functions' application_name (_shared/db.ts)

// The admin console speaks only the simple query protocol and has no pg_type to read.
const consoleUrl = () => Object.assign(new URL(env("DB_POOLER_URL")), { pathname: "/pgbouncer" }).toString();
const admin = postgres(consoleUrl(), { max: 1, fetch_types: false, onnotice: () => {} });
const show = (what: "STATS" | "POOLS" | "SERVERS" | "CLIENTS") =>
  admin.unsafe(`SHOW ${what}`) as Promise<Record<string, string | number | null>[]>;
afterAll(() => admin.end({ timeout: 5 }));

/** Backends whose last query matches, with who connected them. */
async function backendsThatRan(fragment: string) {
  return await sql()<{ pid: number; client_port: number; application_name: string }[]>`
    select pid, client_port, application_name from pg_stat_activity
     where backend_type = 'client backend' and application_name = ${APP} and query like ${"%" + fragment + "%"}`;
}

async function health(url = `${env("SUPABASE_URL")}/functions/v1/health`) {
  const r = await fetch(url);
  return { status: r.status, body: await r.json() as { database: { status: string } } };
}

describe("functions through the transaction pooler", () => {
  it("a function's SQL runs on a server connection PgBouncer opened, and PgBouncer's counters move", async () => {
    const pools = await show("POOLS");
    expect(pools.find((p) => p.database === "postgres")?.pool_mode).toBe("transaction");
    const xacts = async () =>
      Number((await show("STATS")).find((s) => s.database === "postgres")?.total_xact_count ?? 0);
    const before = await xacts();

    // Other traffic (pg_cron's reconcile) may reuse that server connection in between: invoke until the
    // function's own query is the one pg_stat_activity shows.
    const ran = await waitFor(
      async () => {
        expect((await health()).body.database.status).toBe("ok");
        const rows = await backendsThatRan("private.health_status()");
        return rows.length ? rows : null;
      },
      "health's query to show in pg_stat_activity",
      15_000,
    );

    const servers = await show("SERVERS");
    const byPid = new Map(servers.map((s) => [Number(s.remote_pid), s]));
    for (const b of ran) {
      const s = byPid.get(b.pid);
      expect(s, `backend ${b.pid} is not one of PgBouncer's server connections`).toBeDefined();
      expect(Number(s!.local_port)).toBe(b.client_port); // the backend's peer is PgBouncer's socket
      expect(Number(s!.port)).toBe(Number(new URL(env("SUPABASE_DB_URL")).port));
    }
    // No connection of the functions goes around the pooler: every backend named after them is PgBouncer's.
    const all = await sql()<{ pid: number }[]>`select pid from pg_stat_activity where application_name = ${APP}`;
    expect(all.length).toBeGreaterThan(0);
    for (const b of all) expect(byPid.has(b.pid), `backend ${b.pid} of the functions bypasses PgBouncer`).toBe(true);
    // The gateway (the functions' host) is PgBouncer's client, and PgBouncer counted the transactions.
    expect((await show("CLIENTS")).some((c) => c.database === "postgres" && c.application_name === APP)).toBe(true);
    expect(await xacts()).toBeGreaterThan(before);
  });

  it("the functions' client answers a burst of queries through the pooler, with and without parameters", () => {
    // postgres.js would pipeline queued queries onto busy connections. A query with parameters sent behind
    // one without is answered after the pooler has given that server connection back at the first one's
    // ReadyForQuery: its replies are lost and it hangs (hence max_pipeline: 0 in _shared/db.ts).
    const r = spawnSync(`${process.cwd()}/node_modules/.bin/deno`, [
      "run",
      "-A",
      "supabase/tests/integration/fixtures/db-burst.ts",
      "200",
    ], {
      env: { ...process.env, DB_POOL_MAX: "3", NO_COLOR: "1" }, // one hosted isolate's pool
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(JSON.parse(r.stdout.trim().split("\n").pop() || "null"), r.stderr).toEqual({ sent: 200, answered: 200 });
  }, 60_000);

  it("PgBouncer asks for the password (SCRAM), it does not trust", async () => {
    const wrong = new URL(env("DB_POOLER_URL"));
    wrong.password = "not-the-password";
    const bad = postgres(wrong.toString(), { max: 1, onnotice: () => {} });
    try {
      await expect(bad`select 1`).rejects.toMatchObject({ code: "08P01" }); // PgBouncer: password authentication failed
    } finally {
      await bad.end({ timeout: 1 });
    }
  });

  it("without DB_POOLER_URL a function connects directly with SUPABASE_DB_URL and still works", async () => {
    const { DB_POOLER_URL: _unset, ...withoutPooler } = process.env;
    const fn = await serveAlone("health", withoutPooler);
    try {
      const r = await health(fn.url);
      expect(r.body.database.status, fn.output()).toBe("ok");
      // Its connection is still open (idle_timeout 20 s): a backend of the functions that PgBouncer did not open.
      const pooled = new Set((await show("SERVERS")).map((s) => Number(s.remote_pid)));
      const direct = (await backendsThatRan("private.health_status()")).filter((b) => !pooled.has(b.pid));
      expect(direct.length, "no direct backend ran health's query").toBeGreaterThan(0);
    } finally {
      fn.stop();
    }
  });
});

describe("the functions' SQL keeps no session state (transaction pooling hands each transaction any server connection)", () => {
  it("no SQL function of ours takes a session advisory lock, sets a setting for the session, LISTENs, or makes temp tables, prepared statements or held cursors", async () => {
    const found = await sql()<{ fn: string; what: string }[]>`
      select p.oid::regprocedure::text as fn, m.what
        from pg_proc p
        join pg_namespace n on n.oid = p.pronamespace
        cross join lateral (values
          ('session advisory lock', 'pg_(try_)?advisory_(un)?lock(_shared)?\\s*\\('),
          ('session setting (set_config without is_local)', 'set_config\\s*\\([^;]*,\\s*false\\s*\\)'),
          -- SET LOCAL, SET TRANSACTION and SET CONSTRAINTS end with the transaction; an UPDATE's SET follows a table name.
          ('SET without LOCAL', '(^|;|\\mbegin|\\mthen|\\melse|\\mloop)\\s*set\\s+(?!(local|transaction|constraints)\\M)\\w'),
          ('LISTEN', '(^|;|\\mbegin|\\mthen|\\melse|\\mloop)\\s*listen\\M'),
          ('temporary table', 'create\\s+(temp|temporary)\\s+table'),
          ('PREPARE', '(^|;|\\mbegin|\\mthen|\\melse|\\mloop)\\s*prepare\\s+\\w+'),
          ('cursor WITH HOLD', 'with\\s+hold')
        ) as m(what, pattern)
       where n.nspname in ('public', 'private') and p.prosrc ~* m.pattern
       order by 1, 2`;
    expect(found).toEqual([]);
    // The scan is real: it sees the SQL functions the functions call.
    const [{ n }] = await sql()<{ n: number }[]>`
      select count(*)::int as n from pg_proc p join pg_namespace ns on ns.oid = p.pronamespace where ns.nspname = 'private'`;
    expect(n).toBeGreaterThan(20);
  });

  it("the functions' code opens no session-bound postgres.js feature (reserved connection, LISTEN, cursor, prepared statements)", () => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) walk(`${dir}/${e.name}`);
        else if (e.name.endsWith(".ts")) files.push(`${dir}/${e.name}`);
      }
    };
    walk("supabase/functions");
    expect(files.length).toBeGreaterThan(10);
    const banned = [
      /\.(reserve|listen|subscribe|cursor)\s*\(/,
      /prepare:\s*true/,
      /pg_(try_)?advisory_(un)?lock/i,
      /set_config\s*\(/i,
      /create\s+(temp|temporary)\s+table/i,
    ];
    const hits = files.flatMap((f) => {
      const text = readFileSync(f, "utf8");
      return banned.filter((re) => re.test(text)).map((re) => `${f}: ${re}`);
    });
    expect(hits).toEqual([]);
    expect(readFileSync("supabase/functions/_shared/db.ts", "utf8")).toMatch(/prepare:\s*false/);
  });
});
