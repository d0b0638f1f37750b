// A small stand-in for FastAPI + pydantic v2 (lax mode) request validation.
//
// Why not zod: the point is to reproduce FastAPI's 422 {"detail": [...]} items exactly
// (type, loc, msg, input, ctx), including pydantic's lax coercions ("5" is a valid float,
// 5.0 a valid int, "yes" a valid bool) so the emulator accepts what LiteLLM accepts.

import { ApiError, type Json, validationError } from "./errors.ts";

export type FieldType =
  | "str"
  | "float"
  | "int"
  | "bool"
  | "list_str"
  | "dict"
  | "any";
export type Loc = (string | number)[];
type Issue = { [k: string]: Json };

const TRUE = new Set(["1", "on", "t", "true", "y", "yes"]);
const FALSE = new Set(["0", "off", "f", "false", "n", "no"]);

/** Coerce one value (never null here) or return the pydantic error item. */
function coerce(
  type: FieldType,
  v: unknown,
  loc: Loc,
): { ok: true; value: unknown } | { ok: false; issues: Issue[] } {
  const fail = (
    t: string,
    msg: string,
    ctx?: Json,
  ): { ok: false; issues: Issue[] } => ({
    ok: false,
    issues: [{
      type: t,
      loc,
      msg,
      input: v as Json,
      ...(ctx === undefined ? {} : { ctx }),
    }],
  });
  switch (type) {
    case "any":
      return { ok: true, value: v };
    case "str":
      return typeof v === "string"
        ? { ok: true, value: v }
        : fail("string_type", "Input should be a valid string");
    case "float": {
      if (typeof v === "number") return { ok: true, value: v };
      if (typeof v === "boolean") return { ok: true, value: v ? 1 : 0 };
      if (typeof v === "string") {
        const t = v.trim();
        const n = t === "" ? NaN : Number(t);
        return Number.isFinite(n) ? { ok: true, value: n } : fail(
          "float_parsing",
          "Input should be a valid number, unable to parse string as a number",
        );
      }
      return fail("float_type", "Input should be a valid number");
    }
    case "int": {
      if (typeof v === "number") {
        return Number.isInteger(v) ? { ok: true, value: v } : fail(
          "int_from_float",
          "Input should be a valid integer, got a number with a fractional part",
        );
      }
      if (typeof v === "boolean") return { ok: true, value: v ? 1 : 0 };
      if (typeof v === "string") {
        const t = v.trim();
        return /^[+-]?\d+$/.test(t) ? { ok: true, value: Number(t) } : fail(
          "int_parsing",
          "Input should be a valid integer, unable to parse string as an integer",
        );
      }
      return fail("int_type", "Input should be a valid integer");
    }
    case "bool": {
      if (typeof v === "boolean") return { ok: true, value: v };
      if (typeof v === "number" && (v === 0 || v === 1)) {
        return { ok: true, value: v === 1 };
      }
      if (typeof v === "string") {
        const t = v.trim().toLowerCase();
        if (TRUE.has(t)) return { ok: true, value: true };
        if (FALSE.has(t)) return { ok: true, value: false };
        return fail(
          "bool_parsing",
          "Input should be a valid boolean, unable to interpret input",
        );
      }
      return fail("bool_type", "Input should be a valid boolean");
    }
    case "list_str": {
      if (!Array.isArray(v)) {
        return fail("list_type", "Input should be a valid list");
      }
      const issues: Issue[] = [];
      v.forEach((x, i) => {
        if (typeof x !== "string") {
          issues.push({
            type: "string_type",
            loc: [...loc, i],
            msg: "Input should be a valid string",
            input: x as Json,
          });
        }
      });
      return issues.length ? { ok: false, issues } : { ok: true, value: v };
    }
    case "dict":
      return v !== null && typeof v === "object" && !Array.isArray(v)
        ? { ok: true, value: v }
        : fail("dict_type", "Input should be a valid dictionary");
  }
}

export interface FieldSpec {
  type: FieldType;
  required?: boolean; // required fields may still be null only if nullable
  nullable?: boolean; // Optional[...] in the pydantic model (default true)
}

/**
 * Validate a JSON body against a flat model. Returns only the fields that were present
 * (pydantic's exclude_unset), coerced. Unknown fields are ignored like LiteLLM's models.
 */
export function validateBody(
  body: unknown,
  spec: Record<string, FieldSpec>,
): Record<string, unknown> {
  if (body === undefined) {
    throw validationError([{
      type: "missing",
      loc: ["body"],
      msg: "Field required",
      input: null,
    }]);
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw validationError([{
      type: "model_attributes_type",
      loc: ["body"],
      msg:
        "Input should be a valid dictionary or object to extract fields from",
      input: body as Json,
    }]);
  }
  const src = body as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  const issues: Issue[] = [];
  for (const [name, f] of Object.entries(spec)) {
    if (!(name in src)) {
      if (f.required) {
        issues.push({
          type: "missing",
          loc: ["body", name],
          msg: "Field required",
          input: src as Json,
        });
      }
      continue;
    }
    const v = src[name];
    if (v === null) {
      const r = f.nullable === false ? coerce(f.type, v, ["body", name]) : null;
      if (r && !r.ok) issues.push(...r.issues);
      else out[name] = null;
      continue;
    }
    const r = coerce(f.type, v, ["body", name]);
    if (r.ok) out[name] = r.value;
    else issues.push(...r.issues);
  }
  if (issues.length) throw validationError(issues);
  return out;
}

/** FastAPI Query(int, ge, le) validation. Returns the default when absent. */
export function queryInt(
  params: URLSearchParams,
  name: string,
  dflt: number,
  bounds: { ge?: number; le?: number } = {},
): number {
  const raw = params.get(name);
  if (raw === null) return dflt;
  const loc = ["query", name];
  const r = coerce("int", raw, loc);
  if (!r.ok) throw validationError(r.issues);
  const n = r.value as number;
  if (bounds.ge !== undefined && n < bounds.ge) {
    throw validationError([{
      type: "greater_than_equal",
      loc,
      msg: `Input should be greater than or equal to ${bounds.ge}`,
      input: raw,
      ctx: { ge: bounds.ge },
    }]);
  }
  if (bounds.le !== undefined && n > bounds.le) {
    throw validationError([{
      type: "less_than_equal",
      loc,
      msg: `Input should be less than or equal to ${bounds.le}`,
      input: raw,
      ctx: { le: bounds.le },
    }]);
  }
  return n;
}

export function queryBool(
  params: URLSearchParams,
  name: string,
  dflt: boolean,
): boolean {
  const raw = params.get(name);
  if (raw === null) return dflt;
  const r = coerce("bool", raw, ["query", name]);
  if (!r.ok) throw validationError(r.issues);
  return r.value as boolean;
}

/**
 * Parse a request body as JSON the way FastAPI does: an empty body means "no body"
 * (undefined); malformed JSON is a 422 json_invalid before any dependency (auth) runs.
 */
export async function readJsonBody(req: Request): Promise<unknown> {
  const text = await req.text();
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    const m = /position (\d+)/.exec(String((e as Error).message));
    throw validationError([{
      type: "json_invalid",
      loc: ["body", m ? Number(m[1]) : 0],
      msg: "JSON decode error",
      input: {},
      ctx: { error: "Expecting value" },
    }]);
  }
}

export function isApiError(e: unknown): e is ApiError {
  return e instanceof ApiError;
}
