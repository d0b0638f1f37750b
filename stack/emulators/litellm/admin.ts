// The admin port: test controls the real proxy does not have. A separate listener, so that "down" can
// close the main port while tests keep talking to the emulator. Every call needs the master key.
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { ApiError, json, parse, readJson, render } from "./http.ts";
import type { MainListener } from "./server.ts";
import { type EmulatorState, FAULT_MODES } from "./state.ts";
import { newRow } from "./store.ts";

const amount = z.number().nonnegative();
const schemas = {
  config: z.object({
    batch_write_ms: z.number().int().min(0).optional(),
    stream_chunk_delay_ms: z.number().int().min(0).optional(),
  }),
  callback: z.object({ endpoint: z.url().nullable(), headers: z.record(z.string(), z.string()).default({}) }),
  fault: z.object({
    route: z.string().startsWith("/"),
    count: z.number().int().min(1).default(1),
    mode: z.enum(FAULT_MODES).default("500"),
    delay_ms: z.number().int().min(0).default(30_000),
  }),
  down: z.object({ down: z.boolean() }),
  spend: z.object({ key: z.string(), spend: amount.optional(), add: z.number().optional() }),
  restore: z.object({ key: z.string().optional(), spend: amount.optional(), fraction: amount.max(1).optional() })
    .refine((b) => (b.spend === undefined) !== (b.fraction === undefined), "give spend (absolute) or fraction (0..1)"),
  // Keys with values the caller chose (a benchmark mirroring its own database); existing tokens or aliases
  // are skipped; one invalid entry rejects the whole request.
  import: z.object({
    keys: z.array(z.object({
      key: z.string().startsWith("sk-"),
      key_alias: z.string().optional(),
      max_budget: amount.optional(),
      spend: amount.optional(),
      user_id: z.string().optional(),
      metadata: z.record(z.string(), z.unknown()).optional(),
      rpm_limit: z.number().int().optional(),
      tpm_limit: z.number().int().optional(),
      blocked: z.boolean().optional(),
    })).min(1).max(200_000),
  }),
  // Only for bench:reconcile at 1,000,000 keys: keys `${prefix}${i}` (i zero-padded to 9 digits) for i in
  // [from, from + count), spend a fixed function of i (bulkSpend), so the benchmark's SQL can make the same keys.
  bulkSeed: z.object({
    prefix: z.string().regex(/^sk-[A-Za-z0-9_-]{8,40}$/),
    from: z.number().int().min(0),
    count: z.number().int().min(1).max(2_000_000),
    max_budget: amount.optional(),
  }),
  // Only for bench.ts: random keys with random database spend.
  seed: z.object({
    count: z.number().int().min(0).max(2_000_000),
    max_budget: amount.optional(),
    spend_max: amount.optional(),
  }),
};

/** The spend of bulk-seeded key i: 0.01 to 1.99 USD in whole micro-USD, spread by a multiplicative hash. */
export const bulkSpend = (i: number) => (10_000 + ((i * 2654435761) % 1_980_000)) / 1e6;

export function adminHandler(state: EmulatorState, main: MainListener) {
  const { store } = state;
  const known = (key: string) =>
    store.get(key) ?? (() => {
      throw new ApiError(404, { error: "key not found" });
    })();
  const insertAll = (keys: z.infer<typeof schemas.import>["keys"]) => {
    const created = keys.filter((k) => store.insert(newRow(k))).length;
    return { keys_created: created, skipped_duplicates: keys.length - created, total_keys: store.size };
  };
  const stats = () => {
    const requests = Object.fromEntries(state.requests);
    return { requests, total: Object.values(requests).reduce((a, b) => a + b, 0), keys: store.size };
  };

  const routes: Record<string, (body: unknown, url: URL) => unknown> = {
    "POST /admin/config": (b) => state.setConfig(parse(schemas.config, b)),
    // The generic API logging callback: where costed requests are POSTed (null: off).
    "GET /admin/callback": () => state.callback.target,
    "POST /admin/callback": (b) => (state.callback.target = parse(schemas.callback, b)),
    "POST /admin/faults": (b) => {
      const { count, ...f } = parse(schemas.fault, b);
      state.faults.push({ ...f, remaining: count });
      return state.faults;
    },
    "DELETE /admin/faults": () => (state.faults = []),
    "POST /admin/down": (b) => {
      if (parse(schemas.down, b).down) main.close();
      else main.open();
      return { down: main.isDown, port: main.port };
    },
    "POST /admin/reset": () => (state.reset(), main.open(), { reset: true }),
    // The enforcement spend, absolute and/or added; the database view follows per the batch rule.
    "POST /admin/spend": (b) => {
      const d = parse(schemas.spend, b);
      const row = known(d.key);
      store.setSpend(row, (d.spend ?? row.spend) + (d.add ?? 0), state.immediateWrites);
      return { token: row.token, spend: row.spend, db_spend: row.db_spend };
    },
    // A LiteLLM database restored from a backup: spend lower than now (never higher), nothing queued.
    "POST /admin/restore-spend": (b) => {
      const d = parse(schemas.restore, b);
      const rows = d.key ? [known(d.key)] : store.all();
      rows.forEach((r) => store.restoreSpend(r, Math.min(r.spend, d.spend ?? r.spend * d.fraction!)));
      return { restored: rows.length };
    },
    "POST /admin/flush": () => ({ flushed: state.flush() }),
    "POST /admin/import": (b) => insertAll(parse(schemas.import, b).keys),
    "POST /admin/bulk-seed": (b) => {
      const d = parse(schemas.bulkSeed, b);
      let created = 0;
      for (let i = d.from; i < d.from + d.count; i++) {
        const key = `${d.prefix}${String(i).padStart(9, "0")}`;
        if (store.insert(newRow({ key, max_budget: d.max_budget, spend: bulkSpend(i) }))) created++;
      }
      return { keys_created: created, total_keys: store.size };
    },
    "POST /admin/seed": (b) => {
      const d = parse(schemas.seed, b);
      const spendMax = d.spend_max ?? d.max_budget ?? 1;
      return insertAll(Array.from({ length: d.count }, () => ({
        key: `sk-${randomBytes(16).toString("base64url")}`,
        max_budget: d.max_budget,
        spend: Math.round(Math.random() * spendMax * 1e6) / 1e6,
      })));
    },
    "GET /admin/keys": (_b, url) => {
      const offset = Number(url.searchParams.get("offset") ?? 0);
      const limit = Number(url.searchParams.get("limit") ?? 1000);
      const rows = store.all().slice(offset, offset + limit);
      return { keys: rows.map((r) => ({ key: r.raw, token: r.token, spend: r.spend })), total: store.size };
    },
    "GET /admin/stats": stats,
    "POST /admin/stats/reset": () => (state.requests.clear(), stats()),
  };

  return async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    if (req.headers.get("authorization")?.replace(/^Bearer\s+/i, "") !== state.masterKey) {
      return json(401, { error: "the admin API needs the master key (Authorization: Bearer <LITELLM_MASTER_KEY>)" });
    }
    const route = routes[`${req.method} ${url.pathname.replace(/\/+$/, "")}`];
    if (!route) return json(404, { error: `no admin route ${req.method} ${url.pathname}` });
    try {
      return json(200, route((await readJson(req)) ?? {}, url));
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      if (e.status !== 422) return render(e);
      return json(400, { error: JSON.stringify((e.body as { detail: unknown }).detail) });
    }
  };
}
