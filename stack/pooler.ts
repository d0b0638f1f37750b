// PgBouncer in transaction mode in front of the local Postgres: the local stand-in for hosted Supabase's
// transaction pooler (Supavisor, port 6543), which Edge Functions use through DB_POOLER_URL. Only the
// functions connect through it; the Auth/REST stand-ins, the pg_net worker (it LISTENs) and migrations keep
// the direct connection, as on hosted. Its files (config, password file, log) live next to the cluster it
// fronts, in a folder the postgres user owns; it runs as that user, in the foreground, stopped by the stack.
import { PORTS } from "./local-env.ts";
import { fail, say } from "./log.ts";
import { type Cluster, run } from "./pg.ts";

// Debian's pgbouncer package (STACK_PGBOUNCER: another binary, or a missing one to try the preflight).
export const PGBOUNCER = Deno.env.get("STACK_PGBOUNCER") ?? "/usr/sbin/pgbouncer";

/** STACK_SERVICES picks what starts, as for the other services (main.ts); without "pooler", functions connect directly. */
export function poolerWanted(): boolean {
  const only = Deno.env.get("STACK_SERVICES");
  return only === undefined || only.split(",").includes("pooler");
}

/** The URL the functions get: the direct URL's user, password and database, on the pooler's port. */
export function poolerUrl(directUrl: string): string {
  const u = new URL(directUrl);
  u.port = String(PORTS.pooler);
  return u.toString();
}

export interface Pooler {
  pid: number;
  logFile: string;
  stop(): Promise<void>;
}

/** One auth_file line; a double quote inside a field is written twice (PgBouncer's format). */
const authLine = (user: string, password: string) =>
  `"${user.replaceAll('"', '""')}" "${password.replaceAll('"', '""')}"\n`;

function config(dir: string, db: URL): string {
  return [
    "[databases]",
    // Every database name a client asks for goes to the same name on the local cluster.
    `* = host=${db.hostname} port=${db.port || 5432}`,
    "[pgbouncer]",
    `listen_addr = 127.0.0.1`,
    `listen_port = ${PORTS.pooler}`,
    "unix_socket_dir =",
    // Password auth as on hosted (SCRAM; the file holds the plain password, so PgBouncer can also log in
    // to the server with it whatever the server's own auth method is).
    "auth_type = scram-sha-256",
    `auth_file = ${dir}/userlist.txt`,
    `admin_users = ${decodeURIComponent(db.username)}`,
    "pool_mode = transaction",
    // Server connections per user and database (PgBouncer's default); the cluster allows 300.
    "default_pool_size = 20",
    // Client connections, as many as the pooler of hosted Supabase's Micro compute accepts.
    "max_client_conn = 200",
    // A client waiting this long for a server connection gets an error (08P01) instead of hanging.
    "query_wait_timeout = 30",
    `logfile = ${dir}/pgbouncer.log`,
    "",
  ].join("\n");
}

async function postgresIds(): Promise<{ uid: number; gid: number } | undefined> {
  if (Deno.uid() !== 0) return undefined; // not root: run as ourselves, like the cluster
  const [u, g] = await Promise.all([run("id", ["-u", "postgres"]), run("id", ["-g", "postgres"])]);
  if (u.code !== 0 || g.code !== 0) {
    fail("the postgres user is missing: run `npm run setup` (apt-get install postgresql)");
  }
  return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/** Starts PgBouncer for the cluster and waits until a query through it succeeds. */
export async function startPooler(cluster: Cluster, directUrl: string): Promise<Pooler> {
  const db = new URL(directUrl);
  const dir = `${cluster.dir}/pooler`;
  const logFile = `${dir}/pgbouncer.log`;
  Deno.mkdirSync(dir, { recursive: true });
  Deno.writeTextFileSync(
    `${dir}/userlist.txt`,
    authLine(decodeURIComponent(db.username), decodeURIComponent(db.password)),
    { mode: 0o600 },
  );
  Deno.writeTextFileSync(`${dir}/pgbouncer.ini`, config(dir, db));
  try {
    Deno.removeSync(logFile);
  } catch { /* first start */ }
  const ids = await postgresIds();
  if (ids) await run("chown", ["-R", `${ids.uid}:${ids.gid}`, dir]);

  // -q: the log file has everything; stderr only carries what happens before it is opened.
  const child = new Deno.Command(PGBOUNCER, {
    args: ["-q", `${dir}/pgbouncer.ini`],
    ...ids,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let early = "";
  (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) early = (early + chunk).slice(-2000);
  })();
  let exited = false;
  child.status.then(() => (exited = true));
  const tail = () => {
    try {
      return Deno.readTextFileSync(logFile).trim().split("\n").slice(-3).join(" | ");
    } catch {
      return early.trim().split("\n").slice(-3).join(" | ");
    }
  };

  const url = poolerUrl(directUrl);
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited) fail(`PgBouncer exited during start-up (${tail()}); see ${logFile}`);
    const probe = await run("psql", ["-X", "-q", "-t", "-c", "select 1", url]);
    if (probe.code === 0) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      fail(
        `PgBouncer did not answer on 127.0.0.1:${PORTS.pooler} within 15 s (${
          probe.stderr.trim() || tail()
        }); see ${logFile}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  say(`pgbouncer up on 127.0.0.1:${PORTS.pooler} (transaction mode, in front of :${db.port}; log ${logFile})`);

  return {
    pid: child.pid,
    logFile,
    async stop() {
      if (exited) return;
      child.kill("SIGTERM"); // immediate shutdown: the stack is stopping, clients are gone
      const done = await Promise.race([
        child.status.then(() => true),
        new Promise<false>((r) => setTimeout(() => r(false), 5000)),
      ]);
      if (!done) child.kill("SIGKILL");
    },
  };
}
