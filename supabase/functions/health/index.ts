// health: is everything this backend depends on reachable? For uptime monitors; verify_jwt off, no
// secrets in the answer (errors are reduced to "unreachable", "timeout", "http <status>").
//   database    a round trip to Postgres (and the facts below)
//   litellm     LiteLLM's liveness route, through _shared/litellm.ts (plus whether our circuit breaker is open)
//   paystack    the cheapest authenticated Paystack read (a verify of a reference that cannot exist: "not
//               found" proves the secret key is accepted; Paystack has no ping route)
//   reconcile   the age of the last successful reconcile-spend run: stale after reconcile_stale_seconds
//               ("idle" when there is no active key to reconcile yet)
//   attention   what needs an operator although everything is reachable: spend resets not acknowledged
//               (LiteLLM reported less spend than recorded, 20261202000500) and active keys flagged by
//               reconcile (deleted or blocked on LiteLLM behind our back), by flag
//   last_audit  when `npm run admin -- audit` last ran and how many mismatches it found (not part of the status)
// 200 when all are ok ("degraded", still 200, when only `attention` has something), else 503. LiteLLM and Paystack answers are cached for 10 s for anonymous callers
// (a public URL must not become a way to hammer Paystack); a secret API key (or the legacy service role
// key) gets fresh checks.
import { ConfigError } from "../_shared/config.ts";
import { db } from "../_shared/db.ts";
import { handler, HttpError, isServiceCaller, json } from "../_shared/http.ts";
import { litellm } from "../_shared/litellm.ts";
import { log } from "../_shared/log.ts";
import { pingPaystack } from "../_shared/paystack.ts";

type Probe = { ok: boolean; status: number | null; latency_ms: number; error?: string };
const CACHE_MS = 10_000;
let cached: { at: number; litellm: Probe & { circuit_open: boolean }; paystack: Probe } | undefined;

interface DbFacts {
  last_successful_reconcile_at: Date | null;
  last_successful_reconcile_age_seconds: string | null;
  reconcile_stale_seconds: string;
  active_keys: boolean;
  pending_alerts: number;
  unfinished_rotations: number;
  spend_resets: number;
  flagged_keys: Record<string, number>;
  last_audit?: { finished_at: string; mismatches: number } | null; // npm run admin -- audit
}

async function database() {
  const started = performance.now();
  try {
    const [f] = await db()<DbFacts[]>`select h.*, private.last_audit() as last_audit from private.health_status() h`;
    return { ok: true as const, latency_ms: Math.round(performance.now() - started), facts: f };
  } catch (e) {
    const code = (e as { code?: string }).code;
    return {
      ok: false as const,
      latency_ms: Math.round(performance.now() - started),
      error: code ? `error ${code}` : "unreachable",
    };
  }
}

async function externals(fresh: boolean) {
  if (!fresh && cached && Date.now() - cached.at < CACHE_MS) return cached;
  const client = litellm();
  const [l, p] = await Promise.all([client.liveliness(), pingPaystack()]);
  cached = { at: Date.now(), litellm: { ...l, circuit_open: client.circuitOpen }, paystack: p };
  return cached;
}

const view = (p: Probe) => ({
  status: p.ok ? "ok" : "error",
  latency_ms: p.latency_ms,
  ...(p.error ? { error: p.error } : {}),
});

Deno.serve(handler("health", async (req) => {
  if (req.method !== "GET" && req.method !== "POST") throw new HttpError(405, "method_not_allowed", "use GET");
  await req.body?.cancel();
  let serviceRole = false;
  try {
    serviceRole = isServiceCaller(req);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    // Which variable is wrong goes to the log only: this answer is public.
    log.error("configuration error", { function: "health", error: e.message });
    return json({ status: "error", configuration: { status: "error" } }, 503, { "Cache-Control": "no-store" });
  }
  const [d, x] = await Promise.all([database(), externals(serviceRole)]);
  const facts = d.ok ? d.facts : null;
  const age = facts?.last_successful_reconcile_age_seconds == null
    ? null
    : Number(facts.last_successful_reconcile_age_seconds);
  const reconcile = !facts
    ? "unknown"
    : age === null
    ? (facts.active_keys ? "never" : "idle")
    : age <= Number(facts.reconcile_stale_seconds)
    ? "ok"
    : "stale";
  const allOk = d.ok && x.litellm.ok && x.paystack.ok && (reconcile === "ok" || reconcile === "idle");
  const flagged = facts?.flagged_keys ?? {};
  const needsPerson = (facts?.spend_resets ?? 0) > 0 || Object.values(flagged).some((n) => n > 0);
  return json(
    {
      status: !allOk ? "error" : needsPerson ? "degraded" : "ok",
      database: { status: d.ok ? "ok" : "error", latency_ms: d.latency_ms, ...(d.ok ? {} : { error: d.error }) },
      litellm: { ...view(x.litellm), circuit_open: x.litellm.circuit_open },
      paystack: { ...view(x.paystack), check: "authenticated verify of an unknown reference" },
      reconcile: {
        status: reconcile,
        last_success_at: facts?.last_successful_reconcile_at ?? null,
        stale_after_seconds: facts ? Number(facts.reconcile_stale_seconds) : null,
      },
      last_successful_reconcile_age_seconds: age,
      pending_alerts: facts?.pending_alerts ?? null,
      unfinished_rotations: facts?.unfinished_rotations ?? null,
      attention: facts ? { spend_resets: facts.spend_resets, flagged_keys: flagged } : null,
      last_audit: facts?.last_audit ?? null,
      checked_at: new Date().toISOString(),
    },
    allOk ? 200 : 503,
    { "Cache-Control": "no-store" },
  );
}));
