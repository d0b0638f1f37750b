// PostgREST's URL grammar, the subset supabase-js emits for plain tables, views and set-returning RPCs:
// select=a,alias:b,c::text | *; <col>=[not.]op.value; order=col.asc|desc[.nullsfirst|.nullslast],...;
// limit; offset. Identifiers are checked (against the catalog for relations, a strict pattern for RPC
// results) and always quoted; values are always bind parameters.

import type { Tx } from "./db.ts";

export class RestError extends Error {
  constructor(
    readonly status: number,
    readonly body: { code: string; message: string; details: string | null; hint: string | null },
  ) {
    super(body.message);
  }
}

export const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

export function parseError(message: string, details: string | null = null): RestError {
  return new RestError(400, { code: "PGRST100", message, details, hint: null });
}

/** Collects bind parameters: p(value) returns its placeholder. */
export class Params {
  readonly values: (string | null)[] = [];
  p(v: string | null): string {
    this.values.push(v);
    return `$${this.values.length}`;
  }
}

/** Checks a column name; throws PostgREST's 42703 answer for an unknown one. */
export type ColumnCheck = (name: string) => string;

export function catalogColumns(relation: string, columns: string[]): ColumnCheck {
  const known = new Set(columns);
  return (name) => {
    if (!known.has(name)) {
      throw new RestError(400, {
        code: "42703",
        message: `column ${relation}.${name} does not exist`,
        details: null,
        hint: null,
      });
    }
    return name;
  };
}

export const patternColumns: ColumnCheck = (name) => {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw parseError(`"failed to parse column name (${name})"`);
  return name;
};

/** Splits on commas outside parentheses and double quotes. */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0, quoted = false, cur = "";
  for (const ch of s) {
    if (ch === '"') quoted = !quoted;
    if (!quoted && ch === "(") depth++;
    if (!quoted && ch === ")") depth--;
    if (ch === "," && depth === 0 && !quoted) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out.map((x) => x.trim()).filter((x) => x !== "");
}

const unquote = (s: string) => (s.length > 1 && s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s);
// One type name; the multi-word ones are spelled out so a cast can never smuggle in other SQL words.
const CAST =
  /^(?:[A-Za-z_][A-Za-z0-9_]*|double precision|character varying|time(?:stamp)? with(?:out)? time zone)(?:\[\])?$/i;

/** select= -> a SQL select list (unqualified: it reads from a subquery or a RETURNING set). */
export function selectList(select: string | null, check: ColumnCheck): string {
  if (!select || select.trim() === "*") return "*";
  return splitTop(select).map((item) => {
    if (item === "*") return "*";
    if (item.includes("(")) {
      throw parseError(
        `"failed to parse select parameter (${select})"`,
        "Embedded resources and aggregates are not supported by the local REST stand-in",
      );
    }
    let cast: string | undefined;
    const c = item.indexOf("::");
    if (c >= 0) [item, cast] = [item.slice(0, c), item.slice(c + 2)];
    if (cast !== undefined && !CAST.test(cast)) throw parseError(`"failed to parse select parameter (${select})"`);
    const a = item.indexOf(":");
    const [alias, col] = a >= 0 ? [unquote(item.slice(0, a)), unquote(item.slice(a + 1))] : [undefined, unquote(item)];
    const expr = ident(check(col)) + (cast ? `::${cast}` : "");
    return alias || cast ? `${expr} as ${ident(alias ?? col)}` : expr;
  }).join(", ");
}

/** in.(a,"b,c",d) -> ["a", "b,c", "d"] */
function inList(v: string): string[] {
  if (!v.startsWith("(") || !v.endsWith(")")) throw parseError(`"failed to parse filter (in.${v})"`);
  return splitTop(v.slice(1, -1)).map((x) => unquote(x).replaceAll('\\"', '"'));
}

const COMPARE: Record<string, string> = {
  eq: "=",
  neq: "<>",
  gt: ">",
  gte: ">=",
  lt: "<",
  lte: "<=",
  like: "like",
  ilike: "ilike",
  cs: "@>",
  cd: "<@",
  ov: "&&",
  isdistinct: "is distinct from",
};
const IS: Record<string, string> = {
  null: "null",
  not_null: "not null",
  true: "true",
  false: "false",
  unknown: "unknown",
};

/** One `col=op.value` filter as a SQL condition on `qualifier.col`. */
function filter(col: string, raw: string, q: Params, qualifier: string): string {
  let v = raw, negate = false;
  if (v.startsWith("not.")) [negate, v] = [true, v.slice(4)];
  const dot = v.indexOf(".");
  if (dot < 0) throw parseError(`"failed to parse filter (${raw})"`);
  const [op, value] = [v.slice(0, dot), v.slice(dot + 1)];
  const c = `${qualifier}.${ident(col)}`;
  let cond: string;
  if (op in COMPARE) {
    const val = op === "like" || op === "ilike" ? value.replaceAll("*", "%") : value;
    cond = `${c} ${COMPARE[op]} ${q.p(val)}`;
  } else if (op === "is") {
    if (!(value.toLowerCase() in IS)) throw parseError(`"failed to parse filter (${raw})"`);
    cond = `${c} is ${IS[value.toLowerCase()]}`;
  } else if (op === "in") {
    const items = inList(value);
    cond = items.length ? `${c} in (${items.map((x) => q.p(x)).join(", ")})` : "false";
  } else {
    throw parseError(`"failed to parse filter (${raw})"`, `operator ${op} is not supported by the local REST stand-in`);
  }
  return negate ? `not (${cond})` : cond;
}

const RESERVED = new Set(["select", "order", "limit", "offset", "columns", "on_conflict", "apikey"]);

/** All column filters of the query string, AND-ed. */
export function whereClause(params: URLSearchParams, check: ColumnCheck, q: Params, qualifier: string): string {
  const conds: string[] = [];
  for (const [key, value] of params) {
    if (RESERVED.has(key)) continue;
    if (key === "or" || key === "and" || key.startsWith("not.")) {
      throw parseError(
        `"failed to parse logic tree (${value})"`,
        "or/and filters are not supported by the local REST stand-in",
      );
    }
    conds.push(filter(check(key), value, q, qualifier));
  }
  return conds.length ? `where ${conds.join(" and ")}` : "";
}

export function orderClause(order: string | null, check: ColumnCheck, qualifier: string): string {
  if (!order) return "";
  return "order by " + splitTop(order).map((term) => {
    const parts = term.split(".");
    const col = check(unquote(parts[0]));
    let dir = "asc", nulls = "";
    for (const p of parts.slice(1)) {
      if (p === "asc" || p === "desc") dir = p;
      else if (p === "nullsfirst") nulls = " nulls first";
      else if (p === "nullslast") nulls = " nulls last";
      else throw parseError(`"failed to parse order (${order})"`);
    }
    return `${qualifier}.${ident(col)} ${dir}${nulls}`;
  }).join(", ");
}

export function nonNegativeInt(name: string, v: string | null): number | undefined {
  if (v === null || v === "") return undefined;
  if (!/^\d+$/.test(v)) throw parseError(`"failed to parse ${name} (${v})"`);
  return Number(v);
}

/** Prefer: a=b, c=d (several headers arrive joined with ", "). */
export function preferences(req: Request): Map<string, string> {
  const m = new Map<string, string>();
  for (const part of (req.headers.get("prefer") ?? "").split(",")) {
    const [k, v = ""] = part.split("=");
    if (k.trim()) m.set(k.trim(), v.trim());
  }
  return m;
}

/** What a REST handler produces inside its transaction. */
export interface Result {
  status: number;
  body: string | null;
  headers?: Record<string, string>;
}
export interface Ctx {
  tx: Tx;
  req: Request;
  url: URL;
  prefer: Map<string, string>;
  single: boolean;
  stripNulls: boolean;
}

/** `select count, json` over a row source: one row, or a 406 when the client asked for a single object. */
export function aggregate(ctx: Ctx, inner: string, value = "_s"): string {
  const agg = ctx.single ? `(json_agg(${value}) -> 0)` : `coalesce(json_agg(${value}), '[]')`;
  return `select count(*)::int as n, ${
    ctx.stripNulls ? `json_strip_nulls(${agg})` : agg
  }::text as body from (${inner}) _s`;
}

export function singleCheck(ctx: Ctx, n: number) {
  if (ctx.single && n !== 1) {
    throw new RestError(406, {
      code: "PGRST116",
      message: "Cannot coerce the result to a single JSON object",
      details: `The result contains ${n} rows`,
      hint: null,
    });
  }
}
