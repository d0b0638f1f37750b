// PostgREST stand-in at /rest/v1: the caller's JWT (or API key, jwt.ts) picks the role, and each request runs in its own
// transaction as `authenticator` after PostgREST's `set local role` + request.jwt.claims, so grants and
// RLS decide everything, exactly as on hosted Supabase. Only schema public. Response bodies are built
// as JSON by Postgres itself (json_agg), so numbers and timestamps look like PostgREST's.
import { authenticatorSql, type Tx } from "./db.ts";
import { log, rawJson } from "./http.ts";
import { authenticate as callerOf, checkApiKey, type Claims } from "./jwt.ts";
import {
  aggregate,
  catalogColumns,
  type ColumnCheck,
  type Ctx,
  ident,
  nonNegativeInt,
  orderClause,
  Params,
  parseError,
  preferences,
  RestError,
  type Result,
  selectList,
  singleCheck,
  whereClause,
} from "./rest-query.ts";
import { callRpc } from "./rest-rpc.ts";

const sql = authenticatorSql(10);

const ROLES = new Set(["anon", "authenticated", "service_role"]);

/** Thrown to end the transaction with a rollback but still answer (Prefer: tx=rollback). */
class Rollback extends Error {
  constructor(readonly result: Result) {
    super("rollback");
  }
}

function error(
  status: number,
  code: string,
  message: string,
  details: string | null = null,
  hint: string | null = null,
  headers: Record<string, string> = {},
) {
  return rawJson(JSON.stringify({ code, details, hint, message }), status, headers);
}

/** PostgREST's status for a Postgres SQLSTATE (PostgREST's Error.hs). */
function pgStatus(code: string, anon: boolean): number {
  const exact: Record<string, number> = {
    "23503": 409,
    "23505": 409,
    "25006": 405,
    "42883": 404,
    "42P01": 404,
    "42P17": 500,
    "53400": 500,
    "57P01": 503,
    P0001: 400,
  };
  if (code === "42501") return anon ? 401 : 403;
  if (code in exact) return exact[code];
  if (code.startsWith("PT") && /^PT\d{3}$/.test(code)) return Number(code.slice(2));
  const byClass: Record<string, number> = {
    "08": 503,
    "09": 500,
    "0L": 403,
    "0P": 403,
    "25": 500,
    "28": 403,
    "2D": 500,
    "38": 500,
    "39": 500,
    "3B": 500,
    "40": 500,
    "53": 503,
    "54": 500,
    "55": 500,
    "57": 500,
    "58": 500,
    F0: 500,
    HV: 500,
    P0: 500,
    XX: 500,
  };
  return byClass[code.slice(0, 2)] ?? 400;
}

/** The relation's columns and primary key, or PostgREST's 404 when public has no such table/view. */
async function relation(tx: Tx, name: string) {
  const [rel] = await tx.unsafe(
    `select array(select a.attname::text from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped order by a.attnum) as cols,
            array(select a.attname::text from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
                   where i.indrelid = c.oid and i.indisprimary) as pk
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relname = $1 and c.relkind in ('r', 'v', 'm', 'f', 'p')`,
    [name],
  );
  if (!rel) {
    throw new RestError(404, {
      code: "PGRST205",
      message: `Could not find the table 'public.${name}' in the schema cache`,
      details: null,
      hint: null,
    });
  }
  return { name: `public.${ident(name)}`, check: catalogColumns(name, rel.cols as string[]), pk: rel.pk as string[] };
}

async function read(ctx: Ctx, table: string): Promise<Result> {
  const rel = await relation(ctx.tx, table);
  const q = new Params();
  const where = whereClause(ctx.url.searchParams, rel.check, q, rel.name);
  const limit = nonNegativeInt("limit", ctx.url.searchParams.get("limit"));
  const offset = nonNegativeInt("offset", ctx.url.searchParams.get("offset")) ?? 0;
  const inner = [
    `select ${selectList(ctx.url.searchParams.get("select"), rel.check)} from ${rel.name}`,
    where,
    orderClause(ctx.url.searchParams.get("order"), rel.check, rel.name),
    limit !== undefined ? `limit ${limit}` : "",
    offset ? `offset ${offset}` : "",
  ].join(" ");
  const [{ n, body }] = await ctx.tx.unsafe(aggregate(ctx, inner), q.values);
  singleCheck(ctx, n);
  let total: number | undefined;
  if (/^(exact|planned|estimated)$/.test(ctx.prefer.get("count") ?? "")) {
    [{ total }] = await ctx.tx.unsafe(`select count(*)::int as total from ${rel.name} ${where}`, q.values);
  }
  const range = n > 0 ? `${offset}-${offset + n - 1}` : "*";
  const partial = total !== undefined && n < total;
  return { status: partial ? 206 : 200, body, headers: { "content-range": `${range}/${total ?? "*"}` } };
}

async function jsonBody(req: Request): Promise<unknown> {
  const text = await req.text();
  try {
    return text.trim() === "" ? undefined : JSON.parse(text);
  } catch {
    throw new RestError(400, { code: "PGRST102", message: "Empty or invalid json", details: null, hint: null });
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Runs a write; with return=representation its RETURNING rows come back as JSON, else only the count. */
async function write(
  ctx: Ctx,
  rel: { check: ColumnCheck },
  stmt: string,
  q: Params,
  okStatus: number,
): Promise<Result> {
  const representation = ctx.prefer.get("return") === "representation";
  let n: number, body: string | null = null;
  if (representation) {
    const select = selectList(ctx.url.searchParams.get("select"), rel.check);
    [{ n, body }] = await ctx.tx.unsafe(
      `with _w as (${stmt} returning *) ${aggregate(ctx, `select ${select} from _w`)}`,
      q.values,
    );
  } else {
    n = (await ctx.tx.unsafe(stmt, q.values)).count;
  }
  if (representation) singleCheck(ctx, n); // PostgREST rolls a write back when .single() sees != 1 row
  const counted = /^(exact|planned|estimated)$/.test(ctx.prefer.get("count") ?? "");
  const headers = { "content-range": `*/${counted ? n : "*"}` };
  if (representation) return { status: okStatus === 204 ? 200 : okStatus, body, headers };
  return { status: okStatus, body: null, headers };
}

async function insert(ctx: Ctx, table: string): Promise<Result> {
  const rel = await relation(ctx.tx, table);
  const payload = await jsonBody(ctx.req);
  const rows = Array.isArray(payload) ? payload : [payload];
  if (!rows.every(isObject)) {
    throw new RestError(400, { code: "PGRST102", message: "Empty or invalid json", details: null, hint: null });
  }
  if (rows.length === 0) return { status: 201, body: ctx.prefer.get("return") === "representation" ? "[]" : null };
  const listed = ctx.url.searchParams.get("columns");
  const cols = listed
    ? listed.split(",").map((c) => c.trim().replace(/^"(.*)"$/, "$1"))
    : [...new Set(rows.flatMap((r) => Object.keys(r)))];
  cols.forEach(rel.check);
  const q = new Params();
  // Each cell is read from its row's JSON with the table's own row type (json_populate_record does the
  // JSON -> column type conversion PostgREST does); a key the row lacks is NULL, or DEFAULT with missing=default.
  const missingDefault = ctx.prefer.get("missing") === "default";
  const values = rows.map((r) => {
    const p = q.p(JSON.stringify(r));
    return "(" + cols.map((c) => (c in r || !missingDefault
      ? `(json_populate_record(null::${rel.name}, ${p}::json)).${ident(c)}`
      : "default")
    ).join(", ") + ")";
  });
  let conflict = "";
  const resolution = ctx.prefer.get("resolution");
  if (resolution === "merge-duplicates" || resolution === "ignore-duplicates") {
    const onConflict = ctx.url.searchParams.get("on_conflict");
    const target = onConflict ? onConflict.split(",").map((c) => rel.check(c.trim())) : rel.pk;
    if (target.length === 0) throw parseError("on_conflict is required: the relation has no primary key");
    const update = cols.filter((c) => !target.includes(c)).map((c) => `${ident(c)} = excluded.${ident(c)}`);
    conflict = `on conflict (${target.map(ident).join(", ")}) ` +
      (resolution === "ignore-duplicates" || update.length === 0 ? "do nothing" : `do update set ${update.join(", ")}`);
  }
  const stmt = `insert into ${rel.name} (${cols.map(ident).join(", ")}) values ${values.join(", ")} ${conflict}`;
  return await write(ctx, rel, stmt, q, 201);
}

async function update(ctx: Ctx, table: string): Promise<Result> {
  const rel = await relation(ctx.tx, table);
  const patch = await jsonBody(ctx.req);
  if (!isObject(patch)) {
    throw new RestError(400, { code: "PGRST102", message: "Empty or invalid json", details: null, hint: null });
  }
  rejectLimit(ctx);
  const cols = Object.keys(patch).map(rel.check);
  if (cols.length === 0) {
    return {
      status: ctx.prefer.get("return") === "representation" ? 200 : 204,
      body: ctx.prefer.get("return") === "representation" ? "[]" : null,
    };
  }
  const q = new Params();
  const p = q.p(JSON.stringify(patch));
  const set = cols.map((c) => `${ident(c)} = (json_populate_record(null::${rel.name}, ${p}::json)).${ident(c)}`).join(
    ", ",
  );
  const where = whereClause(ctx.url.searchParams, rel.check, q, rel.name);
  return await write(ctx, rel, `update ${rel.name} set ${set} ${where}`, q, 204);
}

async function remove(ctx: Ctx, table: string): Promise<Result> {
  const rel = await relation(ctx.tx, table);
  rejectLimit(ctx);
  const q = new Params();
  const where = whereClause(ctx.url.searchParams, rel.check, q, rel.name);
  return await write(ctx, rel, `delete from ${rel.name} ${where}`, q, 204);
}

function rejectLimit(ctx: Ctx) {
  // PostgREST only honours limit on PATCH/DELETE with an order on a unique key; silently ignoring it
  // here would change every row, so refuse instead.
  if (ctx.url.searchParams.has("limit") || ctx.url.searchParams.has("offset")) {
    throw parseError("limit/offset on PATCH and DELETE are not supported by the local REST stand-in");
  }
}

/** The role and claims PostgREST sees after hosted's gateway (jwt.ts), or PostgREST's 401. */
async function authenticate(req: Request): Promise<{ role: string; claims: Claims } | Response> {
  const v = await callerOf(req);
  if (!v.ok) {
    const code = v.expired ? "PGRST303" : "PGRST301";
    const message = v.expired ? "JWT expired" : `JWSError: ${v.message}`;
    return error(401, code, message, null, null, {
      "www-authenticate": `Bearer error="invalid_token", error_description="${message.replaceAll('"', "'")}"`,
    });
  }
  if (!ROLES.has(v.role)) return error(401, "PGRST301", `role "${v.role}" is not allowed by the local REST stand-in`);
  return { role: v.role, claims: v.claims };
}

function mediaType(req: Request): { single: boolean; stripNulls: boolean } | undefined {
  const accept = (req.headers.get("accept") ?? "*/*").toLowerCase();
  const stripNulls = accept.includes("nulls=stripped");
  if (accept.includes("application/vnd.pgrst.object+json")) return { single: true, stripNulls };
  if (/(^|,)\s*(\*\/\*|application\/json|application\/\*|application\/vnd\.pgrst\.array\+json)/.test(accept)) {
    return { single: false, stripNulls };
  }
  return undefined;
}

export async function handleRest(req: Request, path: string): Promise<Response> {
  const keyError = checkApiKey(req);
  if (keyError) return keyError;
  const auth = await authenticate(req);
  if (auth instanceof Response) return auth;
  const profile = req.headers.get("accept-profile") ?? req.headers.get("content-profile");
  if (profile && profile !== "public") {
    return error(406, "PGRST106", "The schema must be one of the following: public", null, null);
  }
  const media = mediaType(req);
  if (!media) return error(406, "PGRST107", `None of these media types are available: ${req.headers.get("accept")}`);

  const url = new URL(req.url);
  let target: string;
  try {
    target = decodeURIComponent(path.replace(/^\/+/, ""));
  } catch {
    // A bad percent-escape (%zz, a cut multi-byte sequence) is the client's mistake: 400, not 500.
    return error(
      400,
      "PGRST100",
      "Invalid percent-encoding in the request path",
      `"${path}" is not valid percent-encoded UTF-8`,
      null,
    );
  }
  const method = req.method === "HEAD" ? "GET" : req.method;
  const readOnly = method === "GET";
  const prefer = preferences(req);
  try {
    const result = await sql.begin(readOnly ? "read only" : "read write", async (tx) => {
      const headers: Record<string, string> = {};
      req.headers.forEach((v, k) => (headers[k] = v));
      await tx.unsafe(
        `select set_config('role', $1, true), set_config('request.jwt.claims', $2, true),
                set_config('request.method', $3, true), set_config('request.path', $4, true),
                set_config('request.headers', $5, true), set_config('search_path', '"public", "extensions"', true)`,
        [auth.role, JSON.stringify(auth.claims), req.method, `/${target}`, JSON.stringify(headers)],
      );
      const ctx: Ctx = { tx, req, url, prefer, ...media };
      let r: Result;
      if (target.startsWith("rpc/") && (method === "POST" || method === "GET")) r = await callRpc(ctx, target.slice(4));
      else if (!target || target.includes("/")) {
        throw new RestError(404, {
          code: "PGRST125",
          message: `Invalid path specified in request URL`,
          details: null,
          hint: null,
        });
      } else if (method === "GET") r = await read(ctx, target);
      else if (method === "POST") r = await insert(ctx, target);
      else if (method === "PATCH") r = await update(ctx, target);
      else if (method === "DELETE") r = await remove(ctx, target);
      else {throw new RestError(405, {
          code: "PGRST117",
          message: `Unsupported HTTP method: ${req.method}`,
          details: null,
          hint: null,
        });}
      if (prefer.get("tx") === "rollback") throw new Rollback(r);
      return r;
    }).catch((e) => {
      if (e instanceof Rollback) return e.result;
      throw e;
    });
    const headers = { ...result.headers };
    if (media.single && result.body !== null) {
      headers["content-type"] = "application/vnd.pgrst.object+json; charset=utf-8";
    }
    return rawJson(req.method === "HEAD" ? null : result.body, result.status, headers);
  } catch (e) {
    if (e instanceof RestError) return rawJson(JSON.stringify(e.body), e.status);
    const pg = e as { code?: string; message?: string; detail?: string; hint?: string };
    if (typeof pg.code === "string" && /^[0-9A-Z]{5}$/.test(pg.code)) {
      return error(
        pgStatus(pg.code, auth.role === "anon"),
        pg.code,
        pg.message ?? "",
        pg.detail ?? null,
        pg.hint ?? null,
      );
    }
    log(`rest: ${req.method} ${path} failed: ${(e as Error).stack ?? e}`);
    return error(500, "PGRST000", (e as Error).message);
  }
}

export async function closeRest() {
  await sql.end({ timeout: 2 });
}
