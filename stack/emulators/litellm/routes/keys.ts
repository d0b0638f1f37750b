// Key management routes: /key/generate, /key/update, /key/info, /v2/key/info, /key/list,
// /key/delete, /key/block, /key/unblock, /key/regenerate.
//
// Each handler follows the proxy's order of events, because callers can observe it:
// malformed JSON (422) -> auth (401) -> admin-only route check (401) -> field validation (422)
// -> the endpoint's own checks. Messages and error types are LiteLLM's (see errors.ts).

import { authenticate, type Caller, requireAdmin } from "../auth.ts";
import { durationMs } from "../duration.ts";
import {
  detailError,
  jsonResponse,
  maskKey,
  proxyError,
  pyFloat,
  pyRepr,
  validationError,
} from "../errors.ts";
import type { EmulatorState } from "../state.ts";
import {
  generateRawKey,
  hashToken,
  keyName,
  type KeyRow,
  rowJson,
  toToken,
} from "../store.ts";
import {
  type FieldSpec,
  queryBool,
  queryInt,
  readJsonBody,
  validateBody,
} from "../validate.ts";

type Handler = (
  req: Request,
  url: URL,
  state: EmulatorState,
) => Promise<Response>;

/** Fields of GenerateKeyRequest / UpdateKeyRequest that the emulator models. */
const KEY_FIELDS: Record<string, FieldSpec> = {
  key_alias: { type: "str" },
  max_budget: { type: "float" },
  spend: { type: "float" },
  budget_duration: { type: "str" },
  soft_budget: { type: "float" },
  rpm_limit: { type: "int" },
  tpm_limit: { type: "int" },
  max_parallel_requests: { type: "int" },
  models: { type: "list_str" },
  metadata: { type: "dict" },
  user_id: { type: "str" },
  duration: { type: "str" },
  blocked: { type: "bool" },
};

const GENERATE_SPEC: Record<string, FieldSpec> = {
  key: { type: "str" },
  ...KEY_FIELDS,
};
const UPDATE_SPEC: Record<string, FieldSpec> = {
  key: { type: "str", required: true, nullable: false },
  ...KEY_FIELDS,
};
const KEY_REQUEST_SPEC: Record<string, FieldSpec> = {
  keys: { type: "list_str" },
  key_aliases: { type: "list_str" },
};
const BLOCK_SPEC: Record<string, FieldSpec> = {
  key: { type: "str", required: true, nullable: false },
};

const iso = (
  ms: number | null,
) => (ms === null ? null : new Date(ms).toISOString());

function aliasTakenError(alias: string) {
  return proxyError(
    400,
    `Key with alias '${alias}' already exists. Unique key aliases across all keys are required.`,
    "bad_request_error",
    "key_alias",
  );
}

/** KeyRequest's model validator: exactly one of keys / key_aliases, non-empty. */
function keyRequest(
  body: unknown,
): { keys?: string[]; key_aliases?: string[] } {
  const d = validateBody(body, KEY_REQUEST_SPEC) as {
    keys?: string[] | null;
    key_aliases?: string[] | null;
  };
  const hasKeys = Array.isArray(d.keys) && d.keys.length > 0;
  const hasAliases = Array.isArray(d.key_aliases) && d.key_aliases.length > 0;
  const fail = (msg: string) =>
    validationError([{
      type: "value_error",
      loc: ["body"],
      msg: `Value error, ${msg}`,
      input: body as never,
      ctx: { error: {} },
    }]);
  if (!hasKeys && !hasAliases) {
    throw fail("At least one of 'keys' or 'key_aliases' must be provided.");
  }
  if (hasKeys && hasAliases) {
    throw fail("Only one of 'keys' or 'key_aliases' can be provided.");
  }
  return hasKeys ? { keys: d.keys! } : { key_aliases: d.key_aliases! };
}

// ---- POST /key/generate ---------------------------------------------------------------------

const generate: Handler = async (req, _url, state) => {
  const body = await readJsonBody(req);
  const caller = authenticate(req, state);
  requireAdmin(caller, "/key/generate");
  const d = validateBody(body, GENERATE_SPEC);

  if (typeof d.max_budget === "number" && d.max_budget < 0) {
    throw detailError(
      400,
      `max_budget cannot be negative. Received: ${pyFloat(d.max_budget)}`,
    );
  }
  if (typeof d.soft_budget === "number" && d.soft_budget < 0) {
    throw detailError(
      400,
      `soft_budget cannot be negative. Received: ${pyFloat(d.soft_budget)}`,
    );
  }
  const alias = (d.key_alias as string | null | undefined) ?? null;
  // The alias check runs before anything about a custom key, so repeating key+alias is a 400.
  if (alias !== null && state.store.aliasTaken(alias)) {
    throw aliasTakenError(alias);
  }
  const custom = (d.key as string | null | undefined) ?? null;
  if (custom !== null && !custom.startsWith("sk-")) {
    throw detailError(
      400,
      `Invalid key format. LiteLLM Virtual Key must start with 'sk-'. Received: ${
        maskKey(custom)
      }`,
    );
  }

  const now = Date.now();
  const duration = (d.duration as string | null | undefined) ?? null;
  const budgetDuration = (d.budget_duration as string | null | undefined) ??
    null;
  const expires = duration === null ? null : now + durationMs(duration, now);
  const resetAt = budgetDuration === null
    ? null
    : now + durationMs(budgetDuration, now);
  const raw = custom ?? generateRawKey();
  const token = hashToken(raw);
  const softBudget = (d.soft_budget as number | null | undefined) ?? null;
  const spend = (d.spend as number | null | undefined) ?? 0;

  const row: KeyRow = {
    token,
    raw,
    key_name: keyName(raw),
    key_alias: alias,
    max_budget: (d.max_budget as number | null | undefined) ?? null,
    spend,
    db_spend: spend,
    budget_duration: budgetDuration,
    budget_reset_at: resetAt,
    soft_budget: softBudget,
    budget_id: softBudget === null ? null : crypto.randomUUID(),
    rpm_limit: (d.rpm_limit as number | null | undefined) ?? null,
    tpm_limit: (d.tpm_limit as number | null | undefined) ?? null,
    max_parallel_requests:
      (d.max_parallel_requests as number | null | undefined) ?? null,
    models: (d.models as string[] | null | undefined) ?? [],
    metadata: (d.metadata as Record<string, unknown> | null | undefined) ?? {},
    user_id: (d.user_id as string | null | undefined) ?? null,
    blocked: (d.blocked as boolean | null | undefined) ?? null,
    expires,
    created_at: now,
    updated_at: now,
    created_by: null,
    updated_by: null,
  };

  // A custom key that already exists: the proxy upserts with an empty update, so the
  // stored key is untouched while the response echoes this request (LiteLLM issue #20494).
  if (!state.store.get(token)) {
    row.created_at = row.updated_at = state.store.nextCreatedAt();
    state.store.insert(row);
  }

  return jsonResponse(200, {
    key_alias: row.key_alias,
    duration,
    models: row.models,
    spend: row.spend,
    max_budget: row.max_budget,
    user_id: row.user_id,
    team_id: null,
    max_parallel_requests: row.max_parallel_requests,
    metadata: row.metadata,
    tpm_limit: row.tpm_limit,
    rpm_limit: row.rpm_limit,
    budget_duration: row.budget_duration,
    allowed_cache_controls: [],
    soft_budget: row.soft_budget,
    config: {},
    permissions: {},
    model_max_budget: {},
    model_rpm_limit: null,
    model_tpm_limit: null,
    guardrails: null,
    blocked: row.blocked,
    aliases: {},
    key: raw,
    budget_id: row.budget_id,
    tags: null,
    enforced_params: null,
    allowed_routes: [],
    key_name: row.key_name,
    expires: iso(row.expires),
    token_id: token,
    litellm_budget_table: null,
    token,
    created_by: row.created_by,
    updated_by: row.updated_by,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  });
};

// ---- POST /key/update -----------------------------------------------------------------------

const update: Handler = async (req, _url, state) => {
  const body = await readJsonBody(req);
  const caller = authenticate(req, state);
  requireAdmin(caller, "/key/update");
  const d = validateBody(body, UPDATE_SPEC);
  const key = d.key as string;

  // update_key_fn re-wraps every HTTPException as an auth_error with the same status.
  if (typeof d.max_budget === "number" && d.max_budget < 0) {
    throw proxyError(
      400,
      pyRepr({
        error: `max_budget cannot be negative. Received: ${
          pyFloat(d.max_budget)
        }`,
      }),
      "auth_error",
    );
  }
  const row = state.store.get(key);
  if (!row) {
    throw proxyError(
      401,
      `Authentication Error: invalid user key - user key does not exist in db. User Key=${key}`,
      "auth_error",
    );
  }
  if (
    "key_alias" in d && d.key_alias !== null &&
    state.store.aliasTaken(d.key_alias as string, row.token)
  ) {
    throw aliasTakenError(d.key_alias as string);
  }
  const now = Date.now();
  // Validate durations before changing anything, so a bad one leaves the row untouched.
  const newExpires = typeof d.duration === "string"
    ? d.duration === "-1" ? null : now + durationMs(d.duration, now)
    : undefined;
  const newResetAt =
    typeof d.budget_duration === "string" && d.budget_duration.length > 0
      ? now + durationMs(d.budget_duration, now)
      : undefined;

  // Only fields present in the request are applied (model_dump(exclude_unset=True)).
  if ("key_alias" in d) {
    state.store.setAlias(row, (d.key_alias as string | null) ?? null);
  }
  if ("max_budget" in d) row.max_budget = d.max_budget as number | null; // absolute; null clears
  if ("spend" in d && d.spend !== null) {
    state.store.overwriteDbSpend(row, d.spend as number);
  }
  if ("metadata" in d) {
    row.metadata = (d.metadata as Record<string, unknown> | null) ?? {}; // replaced whole
  }
  if ("models" in d) row.models = (d.models as string[] | null) ?? [];
  if ("user_id" in d) {
    state.store.setUser(row, (d.user_id as string | null) ?? null);
  }
  if ("blocked" in d) row.blocked = d.blocked as boolean | null;
  if ("rpm_limit" in d) row.rpm_limit = d.rpm_limit as number | null;
  if ("tpm_limit" in d) row.tpm_limit = d.tpm_limit as number | null;
  if ("max_parallel_requests" in d) {
    row.max_parallel_requests = d.max_parallel_requests as number | null;
  }
  if ("soft_budget" in d) row.soft_budget = d.soft_budget as number | null;
  // duration / budget_duration: a null or empty value is dropped, not applied (proxy quirk).
  if (newExpires !== undefined) row.expires = newExpires;
  if (newResetAt !== undefined) {
    state.store.setBudgetDuration(row, d.budget_duration as string, newResetAt);
  }
  row.updated_at = now;

  return jsonResponse(200, { key, ...rowJson(row, true) });
};

// ---- GET /key/info --------------------------------------------------------------------------

const info: Handler = (req, url, state) => {
  const caller = authenticate(req, state);
  const asked = url.searchParams.get("key");
  if (
    caller.kind === "virtual" && asked !== null &&
    hashToken(asked) !== caller.row.token
  ) {
    // RouteChecks compares hash_token(key) with the caller's own hash (so even the caller's
    // own hash is refused: a virtual key must pass itself raw or omit ?key).
    throw proxyError(
      403,
      "user not allowed to access this key's info",
      "auth_error",
    );
  }
  const key = asked || caller.key; // Python: `key or api_key` (an empty ?key= means "me")
  const row = state.store.get(key);
  if (!row) {
    throw proxyError(
      404,
      "Key not found in database",
      "not_found_error",
      "key",
    );
  }
  // The proxy pops the hashed token before returning the row.
  return Promise.resolve(jsonResponse(200, { key, info: rowJson(row, false) }));
};

// ---- POST /v2/key/info ----------------------------------------------------------------------

const infoV2: Handler = async (req, _url, state) => {
  const body = await readJsonBody(req);
  const caller = authenticate(req, state);
  requireAdmin(caller, "/v2/key/info");
  if (body === undefined) {
    throw proxyError(
      422,
      "{'message': 'Malformed request. No keys passed in.'}",
      "internal_server_error",
    );
  }
  const d = keyRequest(body);
  let rows: KeyRow[];
  if (d.keys) {
    const seen = new Set<string>();
    rows = [];
    for (const k of d.keys) {
      const token = toToken(k);
      if (seen.has(token)) continue;
      seen.add(token);
      const row = state.store.get(token);
      if (row) rows.push(row);
    }
  } else {
    // get_data(token=None, find_all) has no filter: the proxy returns EVERY key. Kept as is
    // so callers learn not to rely on key_aliases here.
    rows = state.store.all();
  }
  // ORDER BY spend DESC (the database column), not request order.
  rows.sort((a, b) => b.db_spend - a.db_spend);
  return jsonResponse(200, {
    key: d.keys ?? null,
    info: rows.map((r) => rowJson(r, true)),
  });
};

// ---- GET /key/list --------------------------------------------------------------------------

const SORT_COLUMNS = [
  "spend",
  "max_budget",
  "created_at",
  "updated_at",
  "token",
  "key_alias",
] as const;
type SortColumn = typeof SORT_COLUMNS[number];

function sortValue(row: KeyRow, col: SortColumn): number | string | null {
  return col === "spend" ? row.db_spend : row[col];
}

const list: Handler = (req, url, state) => {
  const caller = authenticate(req, state);
  const q = url.searchParams;
  const page = queryInt(q, "page", 1, { ge: 1 });
  const size = queryInt(q, "size", 10, { ge: 1, le: 100 });
  const full = queryBool(q, "return_full_object", false);
  queryBool(q, "include_team_keys", false);
  if (caller.kind === "virtual") {
    // validate_key_list_check: a virtual key has no user row here, so it is always refused.
    throw proxyError(
      403,
      "You are not authorized to access this endpoint. No 'user_id' is associated with your API key.",
      "bad_request_error",
      "user_id",
    );
  }
  const sortBy = q.get("sort_by");
  const sortOrder = (q.get("sort_order") ?? "desc").toLowerCase();
  if (sortBy !== null && !SORT_COLUMNS.includes(sortBy as SortColumn)) {
    throw detailError(
      400,
      `Invalid sort column. Must be one of: ${SORT_COLUMNS.join(", ")}`,
    );
  }
  if (sortBy !== null && sortOrder !== "asc" && sortOrder !== "desc") {
    throw detailError(400, "Invalid sort order. Must be 'asc' or 'desc'");
  }

  const filter: { key_alias?: string; user_id?: string; token?: string } = {};
  for (
    const [param, field] of [
      ["key_alias", "key_alias"],
      ["user_id", "user_id"],
      ["key_hash", "token"],
    ] as const
  ) {
    const v = q.get(param);
    if (v) filter[field] = v;
  }
  // The emulator has no teams or organisations: filtering on them matches nothing.
  const impossible = Boolean(q.get("team_id") || q.get("organization_id"));
  const filtered = impossible || Object.keys(filter).length > 0;

  let total: number;
  let rows: KeyRow[];
  if (!filtered && sortBy === null) {
    // Hot path: straight out of the ordered array, newest first.
    total = state.store.size;
    rows = state.store.pageNewestFirst(page, size);
  } else {
    let all = impossible
      ? []
      : filtered
      ? state.store.filtered(filter)
      : state.store.all();
    if (sortBy !== null) {
      const col = sortBy as SortColumn;
      const dir = sortOrder === "asc" ? 1 : -1;
      // Postgres puts NULLs last ascending and first descending (they sort as largest).
      all = all.slice().sort((a, b) => {
        const x = sortValue(a, col);
        const y = sortValue(b, col);
        if (x === y) return 0;
        if (x === null) return dir;
        if (y === null) return -dir;
        return (x < y ? -1 : 1) * dir;
      });
    }
    total = all.length;
    rows = all.slice((page - 1) * size, page * size);
  }
  return Promise.resolve(jsonResponse(200, {
    keys: rows.map((r) => (full ? rowJson(r, true) : r.token)),
    total_count: total,
    current_page: page,
    total_pages: Math.ceil(total / size),
  }));
};

// ---- POST /key/delete -----------------------------------------------------------------------

const remove: Handler = async (req, _url, state) => {
  const body = await readJsonBody(req);
  const caller = authenticate(req, state);
  requireAdmin(caller, "/key/delete");
  const d = keyRequest(body);
  const rows: KeyRow[] = [];
  if (d.keys) {
    for (const k of d.keys) {
      const row = state.store.get(k);
      if (row && !rows.includes(row)) rows.push(row);
    }
  } else {
    for (const a of d.key_aliases!) {
      const row = state.store.getByAlias(a);
      if (row && !rows.includes(row)) rows.push(row);
    }
  }
  if (rows.length === 0) throw detailError(404, "No keys found");
  for (const row of rows) {
    state.store.remove(row);
    state.limits.forget(row.token);
  }
  // The proxy echoes what was asked, even when only some of it existed.
  return jsonResponse(200, { deleted_keys: d.keys ?? d.key_aliases });
};

// ---- POST /key/block, /key/unblock ----------------------------------------------------------

function blockHandler(route: string, blocked: boolean): Handler {
  return async (req, _url, state) => {
    const body = await readJsonBody(req);
    const caller = authenticate(req, state);
    requireAdmin(caller, route);
    const d = validateBody(body, BLOCK_SPEC);
    const key = d.key as string;
    if (!key.startsWith("sk-") && !/^[0-9a-f]{64}$/.test(key)) {
      throw proxyError(400, "Invalid key format.", "bad_request_error", "key");
    }
    const row = state.store.get(key);
    if (!row) {
      throw proxyError(404, `Key ${key} not found`, "bad_request_error", "key");
    }
    row.blocked = blocked;
    row.updated_at = Date.now();
    return jsonResponse(200, rowJson(row, true));
  };
}

// ---- POST /key/regenerate, /key/{key}/regenerate --------------------------------------------

const regenerate: Handler = async (req, _url, state) => {
  await readJsonBody(req);
  const caller: Caller = authenticate(req, state);
  requireAdmin(caller, "/key/regenerate");
  // Open-source LiteLLM: rotation = generate a new key + delete the old one.
  throw proxyError(
    500,
    "Regenerating Virtual Keys is an Enterprise feature, You must be a LiteLLM Enterprise user to use this feature. " +
      "If you have a license please set `LITELLM_LICENSE` in your env. Get a 7 day trial key here: " +
      "https://www.litellm.ai/enterprise#trial. \nPricing: https://www.litellm.ai/#pricing",
    "internal_server_error",
  );
};

export const keyRoutes: Record<string, Record<string, Handler>> = {
  "/key/generate": { POST: generate },
  "/key/update": { POST: update },
  "/key/info": { GET: info },
  "/v2/key/info": { POST: infoV2 },
  "/key/list": { GET: list },
  "/key/delete": { POST: remove },
  "/key/block": { POST: blockHandler("/key/block", true) },
  "/key/unblock": { POST: blockHandler("/key/unblock", false) },
  "/key/regenerate": { POST: regenerate },
};

/** /key/{key}/regenerate has the key in the path. */
export function matchKeyPattern(
  path: string,
): Record<string, Handler> | undefined {
  return /^\/key\/.+\/regenerate$/.test(path)
    ? { POST: regenerate }
    : undefined;
}
