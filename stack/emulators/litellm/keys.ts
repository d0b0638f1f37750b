// Key management routes, as far as the product and its tests use them: /key/generate, /key/update,
// /key/info, /v2/key/info, /key/list, /key/delete, /key/block, /key/unblock (README.md lists who relies
// on what). Like the proxy, a malformed body is a 422 before the key is even checked.
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { type Handler, json, parse, proxyError, readJson } from "./http.ts";
import type { EmulatorState } from "./state.ts";
import { type KeyRow, newRow, rowJson, toToken } from "./store.ts";

const optional = <T extends z.ZodType>(t: T) => t.nullish().transform((v) => v ?? undefined);
const budget = optional(z.number());
const generateBody = z.object({
  key: optional(z.string()),
  key_alias: optional(z.string()),
  max_budget: budget,
  rpm_limit: optional(z.number().int()),
  tpm_limit: optional(z.number().int()),
  metadata: optional(z.record(z.string(), z.unknown())),
  user_id: optional(z.string()),
  blocked: optional(z.boolean()),
});
const updateBody = z.object({
  key: z.string(),
  max_budget: z.number().nullish(),
  metadata: z.record(z.string(), z.unknown()).nullish(),
});
const keysBody = z.object({ keys: z.array(z.string()).min(1) });
const keyBody = z.object({ key: z.string() });
const listQuery = z.object({
  page: z.coerce.number().int().min(1).default(1),
  size: z.coerce.number().int().min(1).max(100).default(10),
  key_alias: z.string().optional(),
  user_id: z.string().optional(),
  return_full_object: z.string().optional(),
});
const query = (url: URL) => Object.fromEntries(url.searchParams);

/** HTTPException(detail={"error": msg}) as the proxy renders it: the Python repr of that dict. */
const detailError = (status: number, msg: string) => proxyError(status, `{'error': '${msg}'}`, "internal_server_error");

function checkBudget(value: number | null | undefined): void {
  if (value != null && value < 0) throw detailError(400, `max_budget cannot be negative. Received: ${value}`);
}

export function keyRoutes(state: EmulatorState): Record<string, Handler> {
  const { store } = state;
  /** A management call: body first (422 before 401, like FastAPI), then the master key. */
  const masterBody = async <T extends z.ZodType>(req: Request, schema: T) => {
    const body = await readJson(req);
    state.requireMaster(req);
    return parse(schema, body);
  };
  const known = (key: string): KeyRow => {
    const row = store.get(key);
    if (!row) throw proxyError(404, "Key not found in database", "not_found_error", "key");
    return row;
  };

  return {
    "POST /key/generate": async (req) => {
      const d = await masterBody(req, generateBody);
      checkBudget(d.max_budget);
      // The alias check comes first, so repeating a key with its alias is a 400, not a silent 200.
      if (d.key_alias !== undefined && store.aliasTaken(d.key_alias)) {
        const msg = `Key with alias '${d.key_alias}' already exists. Unique key aliases across all keys are required.`;
        throw proxyError(400, msg, "bad_request_error", "key_alias");
      }
      const key = d.key ?? `sk-${randomBytes(16).toString("base64url")}`;
      if (!key.startsWith("sk-")) throw detailError(400, "Invalid key format. A Virtual Key must start with 'sk-'.");
      // A caller-chosen key that exists: the proxy upserts with an empty update, so the stored row stays
      // as it was while the answer echoes this request (LiteLLM issue #20494).
      const row = newRow({ ...d, key });
      store.insert(row);
      return json(200, { ...rowJson(row), key });
    },

    "POST /key/update": async (req) => {
      const d = await masterBody(req, updateBody);
      checkBudget(d.max_budget);
      const row = store.get(d.key);
      if (!row) {
        const msg = `Authentication Error: invalid user key - user key does not exist in db. User Key=${d.key}`;
        throw proxyError(401, msg, "auth_error");
      }
      // Only the fields sent are applied; max_budget is absolute and metadata is replaced whole.
      if ("max_budget" in d) row.max_budget = d.max_budget ?? null;
      if ("metadata" in d) row.metadata = d.metadata ?? {};
      return json(200, { key: d.key, ...rowJson(row) });
    },

    "GET /key/info": (req, url) => {
      const caller = state.authenticate(req);
      const asked = url.searchParams.get("key");
      if (!caller.master && asked && toToken(asked) !== caller.row.token) {
        throw proxyError(403, "user not allowed to access this key's info", "auth_error");
      }
      const key = asked || (caller.master ? "" : caller.key); // a virtual key may omit ?key to mean itself
      return Promise.resolve(json(200, { key, info: rowJson(known(key), false) })); // the proxy drops the hash
    },

    "POST /v2/key/info": async (req) => {
      const { keys } = await masterBody(req, keysBody);
      const rows = [...new Set(keys.map(toToken))].map((t) => store.get(t)).filter((r) => r !== undefined);
      rows.sort((a, b) => b.db_spend - a.db_spend); // ORDER BY spend DESC, not request order
      return json(200, { key: keys, info: rows.map((r) => rowJson(r)) });
    },

    "GET /key/list": (req, url) => {
      state.requireMaster(req);
      const { page, size, key_alias, user_id, return_full_object } = parse(listQuery, query(url), "query");
      const rows = store.all().reverse() // newest first
        .filter((r) => (!key_alias || r.key_alias === key_alias) && (!user_id || r.user_id === user_id));
      const full = return_full_object === "true";
      return Promise.resolve(json(200, {
        keys: rows.slice((page - 1) * size, page * size).map((r) => full ? rowJson(r) : r.token),
        total_count: rows.length,
        current_page: page,
        total_pages: Math.ceil(rows.length / size),
      }));
    },

    "POST /key/delete": async (req) => {
      const { keys } = await masterBody(req, keysBody);
      const rows = keys.map((k) => store.get(k)).filter((r) => r !== undefined);
      if (rows.length === 0) throw detailError(404, "No keys found");
      rows.forEach((r) => store.remove(r));
      return json(200, { deleted_keys: keys }); // echoes what was asked, even when only some existed
    },

    "POST /key/block": (req) => setBlocked(req, true),
    "POST /key/unblock": (req) => setBlocked(req, false),
  };

  async function setBlocked(req: Request, blocked: boolean): Promise<Response> {
    const { key } = await masterBody(req, keyBody);
    const row = store.get(key);
    if (!row) throw proxyError(404, `Key ${key} not found`, "bad_request_error", "key");
    row.blocked = blocked;
    return json(200, rowJson(row));
  }
}
