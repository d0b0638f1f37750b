// Connection pools of the gateway. Auth and the pg_net worker act as the platform (postgres, like GoTrue's
// supabase_auth_admin and pg_net's background worker); REST logs in as `authenticator` exactly like
// PostgREST, so every request can only become anon/authenticated/service_role and RLS applies.
import postgres from "postgres";

const DB_URL = Deno.env.get("SUPABASE_DB_URL");
if (!DB_URL) throw new Error("gateway: SUPABASE_DB_URL is not set (start it through stack/main.ts)");

const quiet = { onnotice: () => {} };

export function adminSql(max: number, name: string) {
  return postgres(DB_URL!, { max, ...quiet, connection: { application_name: name } });
}

// REST binds every value as the text PostgREST would hand to Postgres. postgres.js would otherwise
// re-serialize by the described parameter type (JSON.stringify for json, 't'/'f' for boolean, Date for
// timestamps), which turns a filter value like `true` or a JSON body into something else.
// (Only serializers are replaced: `from` is empty, so result parsing stays as it is.)
const TEXT_PARAMS = Object.fromEntries(
  [114, 3802, 16, 1082, 1114, 1184, 17].map((
    oid,
  ) => [`text_param_${oid}`, { to: oid, from: [], serialize: (x: unknown) => x, parse: (x: string) => x }]),
);

export function authenticatorSql(max: number) {
  const url = new URL(DB_URL!);
  url.username = "authenticator";
  url.password = "authenticator"; // set by stack/platform/sql/00_roles.sql
  // prepare: false, because every REST request builds new SQL text (an unbounded statement cache otherwise).
  return postgres(url.toString(), {
    max,
    prepare: false,
    types: TEXT_PARAMS,
    ...quiet,
    connection: { application_name: "stack-gateway-rest" },
  });
}

export type Sql = ReturnType<typeof adminSql>;
export type Tx = postgres.TransactionSql;
