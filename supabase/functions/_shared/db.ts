// Postgres for functions. Hosted Edge Functions run as many short-lived isolates, each holding its own
// pool, so they connect through the transaction pooler (DB_POOLER_URL: Supavisor on port 6543) and fall
// back to SUPABASE_DB_URL, the platform's direct connection, when that is not set. Functions only call SQL
// functions in the private schema, one statement per transaction, and keep no session state, so
// transaction pooling is safe for them (docs/architecture.md, "Database connections"). The money logic
// stays in SQL.
import postgres from "postgres";
import { config } from "./config.ts";

let client: postgres.Sql | undefined;

export function db(): postgres.Sql {
  if (!client) {
    const c = config();
    client = postgres(c.DB_POOLER_URL ?? c.SUPABASE_DB_URL, {
      // DB_POOL_MAX (default 3) is per isolate. Each connection is a client of the pooler, whose client
      // limit is per compute size (Micro: 200), and every live isolate has its own pool: at 3, about 60
      // isolates fit at once. 3 covers what one isolate does at once: a request runs its SQL one statement
      // at a time, an isolate may serve a few requests together, provision-key works up to 4 jobs whose
      // time is mostly LiteLLM calls. Connections open only when needed and close after idle_timeout.
      max: c.DB_POOL_MAX,
      // A transaction pooler gives each transaction whichever server connection is free, so a named
      // prepared statement made on one would be missing on the next: unnamed statements only.
      prepare: false,
      // No pipelining: postgres.js would send the next query before the previous one's ReadyForQuery, the
      // pooler hands the server connection back at that ReadyForQuery, and the next query's replies are
      // lost: the query hangs (PgBouncer and Supavisor alike). One query at a time per connection.
      // (postgres.js reads max_pipeline at run time, src/index.js, but its type definitions omit it.)
      ...({ max_pipeline: 0 } as unknown as Record<string, never>),
      idle_timeout: 20,
      connect_timeout: 5,
      // Names the functions' connections in pg_stat_activity (and in the pooler's SHOW CLIENTS).
      connection: { application_name: "litellm-credits-functions" },
      onnotice: () => {},
      types: { numeric: { to: 1700, from: [1700], serialize: (v: unknown) => String(v), parse: (v: string) => v } },
    });
  }
  return client;
}

/** Errors that mean "the database is unreachable or overloaded, try again later" (answer 5xx). */
export function isTransientDbError(e: unknown): boolean {
  const err = e as { code?: string; errno?: string };
  const code = err?.code ?? "";
  // 08P01: how PgBouncer reports its own failures (no server reachable, query_wait_timeout, max_client_conn).
  return [
    "ECONNREFUSED",
    "ECONNRESET",
    "ETIMEDOUT",
    "CONNECT_TIMEOUT",
    "CONNECTION_CLOSED",
    "CONNECTION_ENDED",
    "CONNECTION_DESTROYED",
    "57P01",
    "57P02",
    "57P03",
    "53300",
    "08000",
    "08001",
    "08003",
    "08006",
    "08P01",
    "40001",
    "40P01",
  ]
    .includes(code);
}
