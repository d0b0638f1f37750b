// reconcile-spend: pulls spend from LiteLLM in chunks of 1000 keys (one batch key-info request and one SQL
// call per chunk), writes snapshots only where something changed, and repairs keys whose LiteLLM
// max_budget differs from the ledger target. Recorded spend never goes down: a key whose LiteLLM spend
// dropped (a restored or reset LiteLLM database) keeps the difference as an offset (20261202000500).
// Retired keys are read too until their spend has settled:
// spend that landed after a rotation (requests in flight) is charged, the user's live key gets the lower
// target, and a settled retired key is deleted on LiteLLM.
//
// Bounded work: each invocation claims at most `reconcile_chunks_per_invocation` chunks (leases in
// public.reconcile_chunks, FOR UPDATE SKIP LOCKED), so it stays far inside the 2 s CPU / 256 MB limits of
// hosted Edge Functions. pg_cron fans out as many invocations per minute as there are chunk groups
// (private.kick_reconcile), and overlapping runs never take the same chunk.
import { z } from "zod";
import { deliverAlerts, notifyOperator } from "../_shared/alerts.ts";
import { db } from "../_shared/db.ts";
import { handler, json, parseBody, requireCronOrService } from "../_shared/http.ts";
import { auditChunks } from "../_shared/audit.ts";
import { pushBlock, pushBudget } from "../_shared/budget.ts";
import { type CallStats, litellm } from "../_shared/litellm.ts";
import { log } from "../_shared/log.ts";

const body = z.object({
  max_chunks: z.number().int().min(1).max(100).optional(),
  force: z.boolean().optional(), // an operator's "reconcile now", even if chunks are not due
  source: z.string().optional(),
  slot: z.number().optional(),
  // when the cron kick ran (private.kick_reconcile): chunks finished since then are not read twice in a cycle
  cycle_started_at: z.iso.datetime({ offset: true }).optional(),
  user_id: z.string().uuid().optional(),
  audit: z.boolean().optional(), // compare only (npm run admin -- audit): chunks from from_chunk, nothing changed
  from_chunk: z.number().int().min(0).optional(),
}).passthrough();

interface Drift {
  key_id: string;
  token: string;
  target: string;
  version: string;
  observed: string | null;
}

interface BatchResult {
  keys: number;
  snapshots: number;
  missing: number;
  resets: number; // keys whose LiteLLM spend went down (restored/reset database): their offset grew
  drift: Drift[];
  block: { key_id: string; token: string; blocked: boolean }[];
  // settling retired keys: live keys whose target dropped, and keys ready to delete
  retired: { late_spend: number; late: { key_id: string }[]; settle: { key_id: string; key: string }[] };
}

const WALL_BUDGET_MS = 40_000;

Deno.serve(handler("reconcile-spend", async (req) => {
  requireCronOrService(req);
  const opts = await parseBody(req, body);
  const sql = db();
  const client = litellm();
  const started = performance.now();
  const stats: CallStats = { attempts: 0, requests: 0 };
  let sqlCalls = 0;
  const totals = {
    chunks: 0,
    keys: 0,
    snapshots: 0,
    repairs: 0,
    repair_failures: 0,
    blocks: 0,
    missing: 0,
    resets: 0,
    recreated: 0,
    late_spend: 0,
    settled: 0,
  };

  if (opts.audit) {
    const [{ per }] = await sql<
      { per: number }[]
    >`select private.setting_numeric('reconcile_chunks_per_invocation')::int as per`;
    return json({
      ...(await auditChunks(opts.from_chunk ?? 0, opts.max_chunks ?? per, stats)),
      litellm_requests: stats.requests ?? 0,
    });
  }
  if (client.circuitOpen) {
    // LiteLLM failed recently: do not claim anything, just say so quickly.
    const [{ id }] = await sql<{ id: string }[]>`select private.start_reconcile_run() as id`;
    await sql`select private.finish_reconcile_run(${id}, 'failed', 0, 0, 0, 0, 0, 'LiteLLM circuit open')`;
    return json({ outcome: "failed", error: "LiteLLM unavailable (circuit open)", ...totals }, 503);
  }

  const [{ id: runId }] = await sql<{ id: string }[]>`select private.start_reconcile_run() as id`;
  const [{ per }] = await sql<
    { per: number }[]
  >`select private.setting_numeric('reconcile_chunks_per_invocation')::int as per`;
  // user_id: an operator's "reconcile this user now" (`npm run admin -- reconcile <user>`): the chunks
  // holding that user's keys, due or not.
  const chunks = await sql<{ chunk: number; keys: { id: string; token: string }[] }[]>`
    select * from private.claim_reconcile_chunks(${opts.max_chunks ?? per}, 120, ${opts.force ?? false}, ${
    opts.user_id ?? null
  }, ${opts.cycle_started_at ?? null})`;
  sqlCalls += 3;

  let failure: string | null = null;
  let i = 0;
  for (; i < chunks.length; i++) {
    const c = chunks[i];
    if (performance.now() - started > WALL_BUDGET_MS) break;
    try {
      const seen = await client.keysInfo(c.keys.map((k) => k.token), stats);
      const rows = [...seen.values()].map((r) => ({
        token: r.token,
        spend: r.spend,
        max_budget: r.max_budget ?? null,
        blocked: r.blocked,
      }));
      const [{ result }] = await sql<{ result: BatchResult }[]>`
        select private.record_spend_batch(${c.chunk}, ${sql.json(rows as never)}) as result`;
      sqlCalls++;
      totals.chunks++;
      totals.keys += result.keys;
      totals.snapshots += result.snapshots;
      totals.missing += result.missing;
      totals.resets += result.resets;
      if (result.resets > 0) {
        log.warn("LiteLLM reported less spend than recorded; kept as an offset", {
          chunk: c.chunk,
          keys: result.resets,
        });
      }
      for (const d of result.drift) {
        // The ledger's absolute target: repeating or reordering this push can never over-credit.
        const r = await pushBudget(d.key_id, stats);
        await sql`select private.record_budget_repair(${d.key_id}, ${d.observed}, ${r.target ?? d.target},
          ${r.outcome === "synced" ? "pushed" : "failed"}, ${r.error ?? null})`;
        sqlCalls += 3;
        if (r.outcome === "synced") totals.repairs++;
        else totals.repair_failures++;
        if (client.circuitOpen) throw new Error(`LiteLLM unavailable during repairs: ${r.error}`);
      }
      for (const b of result.block) {
        // LiteLLM has the opposite of what the ledger wants (e.g. unblocked by hand during a dispute).
        const outcome = await pushBlock(b.key_id, b.blocked, stats);
        if (outcome === "synced") totals.blocks++;
        if (outcome !== "skipped") {
          await sql`select private.record_block_repair(${b.key_id}, ${!b.blocked}, ${b.blocked}, ${
            outcome === "synced" ? "pushed" : "failed"
          })`;
          sqlCalls++;
        }
        sqlCalls += 2;
      }
      totals.late_spend += result.retired.late_spend;
      for (const l of result.retired.late) {
        // Late spend of a retired key lowered this live key's target (unless pushed above as drift).
        if (result.drift.some((d) => d.key_id === l.key_id)) continue;
        await pushBudget(l.key_id, stats);
        sqlCalls += 2;
      }
      for (const r of result.retired.settle) {
        // Its spend has not moved for retired_key_settle_seconds: final. Deleted (a 404 means already gone).
        try {
          await client.deleteKeys([r.key], stats);
          await sql`select private.retired_key_settled(${r.key_id})`;
          sqlCalls++;
          totals.settled++;
        } catch (e) {
          log.warn("deleting a settled retired key failed; the next run retries", {
            key_id: r.key_id,
            error: (e as Error).message,
          });
        }
      }
    } catch (e) {
      failure = e instanceof Error ? e.message : String(e);
      break;
    }
  }
  // Chunks not done (failure or time budget) go back to the pool with the reason.
  for (const c of chunks.slice(i)) {
    await sql`select private.fail_reconcile_chunk(${c.chunk}, ${failure ?? "time budget reached"})`;
    sqlCalls++;
  }
  // Keys LiteLLM no longer has: re-created now if the operator opted in (else they stay flagged for
  // `npm run admin -- recreate`).
  if (totals.missing > 0) {
    const [{ n }] = await sql<{ n: number }[]>`select private.auto_recreate_missing_keys() as n`;
    sqlCalls++;
    totals.recreated = n;
  }
  if (totals.resets > 0) {
    await notifyOperator(
      `LiteLLM reported less spend than recorded for ${totals.resets} key(s) (a restored or reset ` +
        `LiteLLM database?). No credit was given back; see \`npm run admin -- resets\`.`,
    );
  }
  const outcome = failure ? (totals.chunks > 0 ? "partial" : "failed") : "ok";
  await sql`select private.finish_reconcile_run(${runId}, ${outcome}, ${totals.chunks}, ${totals.keys}, ${totals.snapshots},
    ${totals.repairs}, ${stats.requests ?? 0}, ${failure})`;
  sqlCalls++;
  if (failure) {
    log.warn("reconcile failed", { error: failure, chunks_done: totals.chunks, chunks_released: chunks.length - i });
  }
  // Low-balance alerts: the spend written above fired them (SQL triggers); send them now. Whatever is not
  // delivered stays pending for the next run (and ops-sweep).
  const alerts = await deliverAlerts({ budgetMs: 10_000 }).catch((e) => {
    log.warn("alert delivery failed", { error: (e as Error).message });
    return null;
  });
  sqlCalls += alerts?.sql_round_trips ?? 0;
  return json({
    outcome,
    alerts,
    error: failure,
    claimed: chunks.length,
    ...totals,
    litellm_requests: stats.requests ?? 0,
    sql_round_trips: sqlCalls,
    wall_ms: Math.round(performance.now() - started),
  }, failure && totals.chunks === 0 ? 503 : 200);
}));
