// The admin port: test controls that the real proxy does not have. It is a separate listener
// so that "down" can close the main port while tests keep talking to the emulator.
// Every call needs the master key (Authorization: Bearer <key> or x-litellm-api-key).

import { jsonResponse } from "./errors.ts";
import { FAULT_MODES, type FaultMode } from "./faults.ts";
import type { MainListener } from "./server.ts";
import {
  CONFIG_LIMITS,
  type EmulatorState,
  type RuntimeConfig,
} from "./state.ts";
import { hashToken, keyName, type KeyRow } from "./store.ts";

type AdminHandler = (
  body: Record<string, unknown>,
  url: URL,
) => Response | Promise<Response>;

class BadRequest extends Error {}

const IMPORT_MAX = 200_000;

/** One entry of POST /admin/import, validated into a full row (as /key/generate would store it). */
function importRow(e: unknown, i: number, now: number): KeyRow {
  if (e === null || typeof e !== "object" || Array.isArray(e)) {
    throw new BadRequest(`keys[${i}] must be an object`);
  }
  const o = e as Record<string, unknown>;
  const at = (name: string) => `keys[${i}].${name}`;
  const raw = o.key;
  if (typeof raw !== "string" || !raw.startsWith("sk-") || raw.length < 4) {
    throw new BadRequest(`${at("key")} must be a raw key starting with "sk-"`);
  }
  const optStr = (name: string) => {
    const v = o[name];
    if (v === undefined || v === null) return null;
    if (typeof v !== "string" || v === "") {
      throw new BadRequest(`${at(name)} must be a non-empty string or null`);
    }
    return v;
  };
  const optNum = (name: string, int = false) => {
    const v = o[name];
    if (v === undefined || v === null) return null;
    if (
      typeof v !== "number" || !Number.isFinite(v) || v < 0 ||
      (int && !Number.isInteger(v))
    ) {
      throw new BadRequest(
        `${at(name)} must be a non-negative ${
          int ? "integer" : "number"
        } or null`,
      );
    }
    return v;
  };
  const metadata = o.metadata ?? {};
  if (
    metadata === null || typeof metadata !== "object" || Array.isArray(metadata)
  ) {
    throw new BadRequest(`${at("metadata")} must be an object`);
  }
  if (
    o.blocked !== undefined && o.blocked !== null &&
    typeof o.blocked !== "boolean"
  ) {
    throw new BadRequest(`${at("blocked")} must be a boolean or null`);
  }
  const spend = optNum("spend") ?? 0;
  return {
    token: hashToken(raw),
    raw,
    key_name: keyName(raw),
    key_alias: optStr("key_alias"),
    max_budget: optNum("max_budget"),
    spend,
    db_spend: spend,
    budget_duration: null,
    budget_reset_at: null,
    soft_budget: null,
    budget_id: null,
    rpm_limit: optNum("rpm_limit", true),
    tpm_limit: optNum("tpm_limit", true),
    max_parallel_requests: null,
    models: [],
    metadata: metadata as Record<string, unknown>,
    user_id: optStr("user_id"),
    blocked: (o.blocked as boolean | null | undefined) ?? null,
    expires: null,
    created_at: now,
    updated_at: now,
    created_by: null,
    updated_by: null,
  };
}

function num(
  body: Record<string, unknown>,
  name: string,
  opts: { min?: number; max?: number; int?: boolean } = {},
) {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new BadRequest(`${name} must be a number`);
  }
  if (opts.int && !Number.isInteger(v)) {
    throw new BadRequest(`${name} must be an integer`);
  }
  if (opts.min !== undefined && v < opts.min) {
    throw new BadRequest(`${name} must be >= ${opts.min}`);
  }
  if (opts.max !== undefined && v > opts.max) {
    throw new BadRequest(`${name} must be <= ${opts.max}`);
  }
  return v;
}

function str(body: Record<string, unknown>, name: string): string | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string" || v === "") {
    throw new BadRequest(`${name} must be a non-empty string`);
  }
  return v;
}

export function adminHandler(state: EmulatorState, main: MainListener) {
  const routes: Record<string, AdminHandler> = {
    "GET /admin/config": () => jsonResponse(200, state.config),
    "POST /admin/config": (b) => {
      const patch: Partial<RuntimeConfig> = {};
      for (
        const [k, [min, max]] of Object.entries(CONFIG_LIMITS) as [
          keyof RuntimeConfig,
          [number, number],
        ][]
      ) {
        const v = num(b, k, { min, max, int: true });
        if (v !== undefined) patch[k] = v;
      }
      return jsonResponse(200, state.applyConfig(patch));
    },

    // The generic API logging callback: {endpoint: url | null, headers?: {...}, flush_ms?: n}.
    "GET /admin/callback": () => jsonResponse(200, { ...state.callback.config, sent: state.callback.sent, failed: state.callback.failed }),
    "POST /admin/callback": (b) => {
      const patch: Record<string, unknown> = {};
      if ("endpoint" in b) {
        if (b.endpoint !== null && (typeof b.endpoint !== "string" || !/^https?:\/\//.test(b.endpoint))) {
          throw new BadRequest("endpoint must be an http(s) URL or null");
        }
        patch.endpoint = b.endpoint;
      }
      if ("headers" in b) {
        if (typeof b.headers !== "object" || b.headers === null || Array.isArray(b.headers)) throw new BadRequest("headers must be an object");
        patch.headers = b.headers;
      }
      const flush = num(b, "flush_ms", { min: 10, max: 600_000, int: true });
      if (flush !== undefined) patch.flush_ms = flush;
      return jsonResponse(200, state.callback.configure(patch));
    },
    "POST /admin/callback/flush": async () => {
      await state.callback.flush();
      return jsonResponse(200, { sent: state.callback.sent, failed: state.callback.failed });
    },

    "GET /admin/faults": () =>
      jsonResponse(200, { faults: state.faults.list() }),
    "POST /admin/faults": (b) => {
      const route = str(b, "route");
      if (!route) {
        throw new BadRequest('route is required (e.g. "/key/generate" or "*")');
      }
      const count = num(b, "count", { min: 1, int: true }) ?? 1;
      const mode = String(b.mode ?? "500") as FaultMode;
      if (!FAULT_MODES.includes(mode)) {
        throw new BadRequest(`mode must be one of ${FAULT_MODES.join(", ")}`);
      }
      const delay = num(b, "delay_ms", { min: 0, int: true });
      const fault = state.faults.add(route, count, mode, delay);
      return jsonResponse(200, { fault, faults: state.faults.list() });
    },
    "DELETE /admin/faults": () => {
      state.faults.clear();
      return jsonResponse(200, { faults: [] });
    },

    "GET /admin/down": () =>
      jsonResponse(200, { down: main.isDown, port: main.port }),
    "POST /admin/down": (b) => {
      if (typeof b.down !== "boolean") {
        throw new BadRequest("down must be true or false");
      }
      if (b.down) main.close();
      else main.open();
      return jsonResponse(200, { down: main.isDown, port: main.port });
    },

    "POST /admin/reset": () => {
      state.reset();
      if (main.isDown) main.open();
      return jsonResponse(200, { reset: true, config: state.config });
    },

    "POST /admin/spend": (b) => {
      const key = str(b, "key");
      if (!key) throw new BadRequest("key is required (raw key or token hash)");
      const row = state.store.get(key);
      if (!row) return jsonResponse(404, { error: "key not found" });
      const abs = num(b, "spend", { min: 0 });
      const add = num(b, "add");
      if (abs === undefined && add === undefined) {
        throw new BadRequest("give spend (absolute) or add (increment)");
      }
      if (abs !== undefined) {
        state.store.setSpend(row, abs, state.immediateWrites);
      }
      if (add !== undefined) {
        state.store.addSpend(row, add, state.immediateWrites);
      }
      return jsonResponse(200, {
        token: row.token,
        spend: row.spend,
        db_spend: row.db_spend,
      });
    },
    // Spend as a restored LiteLLM database has it: one key (key) or every key, to an absolute spend or to a
    // fraction of what it has now; never higher than now (a backup is older).
    "POST /admin/restore-spend": (b) => {
      const key = str(b, "key");
      const abs = num(b, "spend", { min: 0 });
      const fraction = num(b, "fraction", { min: 0, max: 1 });
      if ((abs === undefined) === (fraction === undefined)) throw new BadRequest("give spend (absolute) or fraction (0..1)");
      const rows = key ? [state.store.get(key)] : state.store.all();
      if (rows.some((r) => !r)) return jsonResponse(404, { error: "key not found" });
      for (const row of rows as NonNullable<(typeof rows)[number]>[]) {
        state.store.restoreSpend(row, Math.min(row.spend, abs ?? row.spend * fraction!));
      }
      return jsonResponse(200, { restored: rows.length });
    },
    "POST /admin/flush": () =>
      jsonResponse(200, { flushed: state.store.flush() }),
    "POST /admin/budget-reset": () =>
      jsonResponse(200, { reset: state.runBudgetReset() }),

    "POST /admin/seed": (b) => {
      const count = num(b, "count", { min: 0, max: 2_000_000, int: true });
      if (count === undefined) throw new BadRequest("count is required");
      const t0 = performance.now();
      const { created, skipped } = state.store.seed({
        count,
        max_budget: b.max_budget === null
          ? null
          : num(b, "max_budget", { min: 0 }),
        spend_max: num(b, "spend_max", { min: 0 }),
        prefix: str(b, "prefix"),
        rng_seed: num(b, "rng_seed", { int: true }) ?? null,
      });
      return jsonResponse(200, {
        keys_created: created.length,
        skipped_duplicates: skipped,
        total_keys: state.store.size,
        ms: Math.round(performance.now() - t0),
      });
    },
    // Keys with values chosen by the caller (e.g. a benchmark mirroring its own database), in bulk.
    // All entries are validated first: one bad entry rejects the whole request (400, nothing added).
    "POST /admin/import": (b) => {
      const keys = b.keys;
      if (
        !Array.isArray(keys) || keys.length === 0 || keys.length > IMPORT_MAX
      ) {
        throw new BadRequest(
          `keys must be a non-empty array of at most ${IMPORT_MAX} entries`,
        );
      }
      const t0 = performance.now();
      const now = state.store.nextCreatedAt();
      const rows = keys.map((e, i) => importRow(e, i, now));
      const { created, skipped } = state.store.bulkInsert(rows);
      return jsonResponse(200, {
        keys_created: created,
        skipped_duplicates: skipped,
        total_keys: state.store.size,
        ms: Math.round(performance.now() - t0),
      });
    },
    "GET /admin/keys": (_b, url) => {
      const offset = Math.max(
        0,
        Number(url.searchParams.get("offset") ?? 0) | 0,
      );
      const limit = Math.min(
        100_000,
        Math.max(1, Number(url.searchParams.get("limit") ?? 1000) | 0),
      );
      const rows = state.store.slice(offset, limit);
      return jsonResponse(200, {
        keys: rows.map((r) => ({
          key: r.raw,
          token: r.token,
          key_alias: r.key_alias,
          max_budget: r.max_budget,
          spend: r.spend,
          db_spend: r.db_spend,
        })),
        offset,
        limit,
        total: state.store.size,
      });
    },

    "GET /admin/stats": () => jsonResponse(200, state.stats()),
    "POST /admin/stats/reset": () => {
      state.resetStats();
      return jsonResponse(200, state.stats());
    },
  };

  return async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    const auth = req.headers.get("x-litellm-api-key") ??
      req.headers.get("authorization")?.replace(/^Bearer\s+/i, "");
    if (auth?.trim() !== state.masterKey) {
      return jsonResponse(401, {
        error:
          "admin API needs the master key (Authorization: Bearer <LITELLM_MASTER_KEY>)",
      });
    }
    const handler = routes[`${req.method} ${url.pathname.replace(/\/+$/, "")}`];
    if (!handler) {
      return jsonResponse(404, {
        error: `no admin route ${req.method} ${url.pathname}`,
      });
    }
    let body: Record<string, unknown> = {};
    const text = await req.text();
    if (text.trim() !== "") {
      try {
        const parsed = JSON.parse(text);
        if (
          parsed === null || typeof parsed !== "object" || Array.isArray(parsed)
        ) throw new Error();
        body = parsed;
      } catch {
        return jsonResponse(400, { error: "body must be a JSON object" });
      }
    }
    try {
      return await handler(body, url);
    } catch (e) {
      if (e instanceof BadRequest) {
        return jsonResponse(400, { error: e.message });
      }
      console.error("[litellm-emulator] admin error:", e);
      return jsonResponse(500, { error: String(e) });
    }
  };
}
