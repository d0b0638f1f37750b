// Direct Postgres for functions (SUPABASE_DB_URL is injected on hosted Supabase). Functions only call
// SQL functions in the private schema; the money logic stays in SQL.
import postgres from "postgres";
import { config } from "./config.ts";

let client: postgres.Sql | undefined;

export function db(): postgres.Sql {
  if (!client) {
    const c = config();
    client = postgres(c.SUPABASE_DB_URL, {
      max: c.DB_POOL_MAX,
      // Hosted Supabase's pooler runs in transaction mode: no prepared statements.
      prepare: false,
      idle_timeout: 20,
      connect_timeout: 5,
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
  return ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "CONNECT_TIMEOUT", "CONNECTION_CLOSED", "CONNECTION_ENDED",
    "CONNECTION_DESTROYED", "57P01", "57P02", "57P03", "53300", "08000", "08001", "08003", "08006", "40001", "40P01"]
    .includes(code);
}
