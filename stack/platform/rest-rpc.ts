// POST|GET /rest/v1/rpc/<fn>: PostgREST's function calls. The overload is chosen by argument names
// (like PostgREST), arguments are bound as parameters cast to the declared types, and the result is
// shaped by the catalog: set-returning -> array, composite -> object, scalar -> JSON value, void -> 204.
import * as restQuery from "./rest-query.ts";

interface Fn {
  retset: boolean;
  typtype: string; // b base, c composite, d domain, e enum, p pseudo (void, record), r range
  typname: string;
  ndefaults: number;
  names: string[];
  modes: string[]; // empty = all IN
  types: string[];
}

async function overloads(ctx: restQuery.Ctx, name: string): Promise<Fn[]> {
  return await ctx.tx.unsafe(
    `select p.proretset as retset, t.typtype::text as typtype, t.typname::text as typname, p.pronargdefaults::int as ndefaults,
            coalesce(p.proargnames, '{}'::text[]) as names, coalesce(p.proargmodes::text[], '{}'::text[]) as modes,
            array(select format_type(x, null) from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality u(x, i) order by i) as types
       from pg_proc p join pg_namespace n on n.oid = p.pronamespace join pg_type t on t.oid = p.prorettype
      where n.nspname = 'public' and p.proname = $1 and p.prokind = 'f'`,
    [name],
  ) as unknown as Fn[];
}

const inputs = (f: Fn) =>
  f.types.map((type, i) => ({ type, name: f.names[i] ?? "", mode: f.modes[i] ?? "i" })).filter((a) =>
    ["i", "b", "v"].includes(a.mode)
  );
const hasOutColumns = (f: Fn) => f.modes.some((m) => m === "o" || m === "b" || m === "t");

/** JSON argument -> the text Postgres parses for the declared type. */
function argText(value: unknown, type: string): string | null {
  if (value === null || value === undefined) return null;
  if (Array.isArray(value) && type.endsWith("[]")) {
    const el = (x: unknown) =>
      x === null
        ? "NULL"
        : `"${(typeof x === "string" ? x : JSON.stringify(x)).replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
    return `{${value.map(el).join(",")}}`;
  }
  return typeof value === "string" ? value : JSON.stringify(value);
}

function notFound(name: string, keys: string[]): restQuery.RestError {
  const sig = keys.slice().sort().join(", ");
  return new restQuery.RestError(404, {
    code: "PGRST202",
    message: `Could not find the function public.${name}(${sig}) in the schema cache`,
    details: `Searched for the function public.${name} with parameters ${
      sig || "(none)"
    } or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache.`,
    hint: null,
  });
}

export async function callRpc(ctx: restQuery.Ctx, name: string): Promise<restQuery.Result> {
  let args: Record<string, unknown> = {};
  if (ctx.req.method === "POST") {
    const text = await ctx.req.text();
    const invalidJson = () =>
      new restQuery.RestError(400, { code: "PGRST102", message: "Empty or invalid json", details: null, hint: null });
    try {
      args = text.trim() ? JSON.parse(text) : {};
    } catch {
      throw invalidJson();
    }
    if (typeof args !== "object" || args === null || Array.isArray(args)) throw invalidJson();
  } else {
    // GET: every non-reserved query parameter is an argument (filters on results need POST here).
    for (const [k, v] of ctx.url.searchParams) {
      if (!["select", "order", "limit", "offset", "apikey"].includes(k)) args[k] = v;
    }
  }
  const keys = Object.keys(args);
  const fns = await overloads(ctx, name);
  const fits = (f: Fn) => {
    const ins = inputs(f);
    const required = ins.slice(0, ins.length - f.ndefaults);
    return keys.every((k) => ins.some((a) => a.name === k)) && required.every((a) => keys.includes(a.name));
  };
  const q = new restQuery.Params();
  let call: string;
  let fn = fns.find(fits);
  if (fn) {
    const ins = inputs(fn);
    call = `public.${restQuery.ident(name)}(${
      keys.map((k) =>
        `${restQuery.ident(k)} => ${q.p(argText(args[k], ins.find((a) => a.name === k)!.type))}::${
          ins.find((a) => a.name === k)!.type
        }`
      ).join(", ")
    })`;
  } else {
    // PostgREST also passes the whole body to a function with one unnamed json/jsonb parameter.
    fn = fns.find((f) =>
      inputs(f).length === 1 && inputs(f)[0].name === "" && ["json", "jsonb"].includes(inputs(f)[0].type)
    );
    if (!fn) throw notFound(name, keys);
    call = `public.${restQuery.ident(name)}(${q.p(JSON.stringify(args))}::${inputs(fn)[0].type})`;
  }

  if (fn.typname === "void" && !fn.retset) {
    await ctx.tx.unsafe(`select ${call}`, q.values);
    return { status: 204, body: null };
  }
  const composite = fn.typtype === "c" || (fn.typname === "record" && hasOutColumns(fn));
  if (fn.typname === "record" && !hasOutColumns(fn)) {
    throw new restQuery.RestError(400, {
      code: "PGRST100",
      message: `public.${name} returns an untyped record, which the local REST stand-in cannot shape`,
      details: null,
      hint: null,
    });
  }
  if (fn.retset) {
    const sp = ctx.url.searchParams;
    const limit = restQuery.nonNegativeInt("limit", sp.get("limit"));
    const offset = restQuery.nonNegativeInt("offset", sp.get("offset")) ?? 0;
    const page = `${limit !== undefined ? `limit ${limit}` : ""} ${offset ? `offset ${offset}` : ""}`;
    // Rows of a set-returning function can be filtered/ordered like a table (POST: the query string is not arguments).
    const inner = composite
      ? `select ${restQuery.selectList(sp.get("select"), restQuery.patternColumns)} from ${call} _r ` +
        (ctx.req.method === "POST" ? restQuery.whereClause(sp, restQuery.patternColumns, q, "_r") : "") +
        ` ${restQuery.orderClause(sp.get("order"), restQuery.patternColumns, "_r")} ${page}`
      : `select _r from ${call} _r ${page}`;
    const [{ n, body }] = await ctx.tx.unsafe(restQuery.aggregate(ctx, inner, composite ? "_s" : "_s._r"), q.values);
    restQuery.singleCheck(ctx, n);
    return { status: 200, body, headers: { "content-range": n > 0 ? `${offset}-${offset + n - 1}/*` : "*/*" } };
  }
  const [{ body }] = composite
    ? await ctx.tx.unsafe(`select row_to_json(_r)::text as body from ${call} _r`, q.values)
    : await ctx.tx.unsafe(`select to_json(${call})::text as body`, q.values);
  return { status: 200, body };
}
