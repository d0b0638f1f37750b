// usage-pull: usage by model from LiteLLM's daily activity (LiteLLMClient.dailyActivity), for when the spend callback is off
// (with the callback on, litellm-spend-callback records each request and this only marks the days as
// skipped, unless an operator forces a pull). Called every minute by pg_cron while a day is due
// (private.usage_pull_due) with the cron secret, or by an operator with a secret key ({"force": true}).
//
// Bounded work: each invocation claims at most `max_pulls` UTC days (leases in private.usage_pulls) and reads
// at most `usage_pull_pages_per_invocation` pages of 1000 LiteLLM rows in all, so it stays inside hosted Edge
// Functions' 2 s CPU limit; a day with more pages is continued by the next invocation, page by page, and
// its rows are replaced only when its last page is in (docs/architecture.md, "Usage by model"). It never
// reads keys one by one: reconcile's one batch key read per 1000 keys is untouched.
import { z } from "zod";
import { config } from "../_shared/config.ts";
import { db } from "../_shared/db.ts";
import { handler, json, parseBody, requireCronOrService } from "../_shared/http.ts";
import { type CallStats, litellm } from "../_shared/litellm.ts";
import { mask } from "../_shared/log.ts";

const body = z.object({
  source: z.string().optional(),
  force: z.boolean().optional(), // pull now, due or not, even with the callback on
  max_pulls: z.number().int().min(1).max(10).optional(),
}).passthrough();

const PAGE_SIZE = 1000; // LiteLLM's largest page_size (le=1000)

interface Claimed {
  pull_id: string;
  day: string;
  next_page: number;
  pages_per_invocation: number;
}

Deno.serve(handler("usage-pull", async (req) => {
  requireCronOrService(req);
  const b = await parseBody(req, body);
  const sql = db();
  if (config().LITELLM_CALLBACK_SECRET && !b.force) {
    await sql`select * from private.claim_usage_pulls(p_skip => true)`;
    return json({ source: "callback", pulls: [] });
  }
  const claimed = await sql<Claimed[]>`
    select pull_id::text, day::text, next_page, pages_per_invocation
      from private.claim_usage_pulls(${b.max_pulls ?? 2}, ${b.force ?? false})`;
  const stats: CallStats = { attempts: 0 };
  let budget = claimed[0]?.pages_per_invocation ?? 0;
  const pulls: {
    day: string;
    pages: number;
    finished: boolean;
    rows: number;
    error?: string;
  }[] = [];
  for (const p of claimed) {
    const done = { day: p.day, pages: 0, finished: false, rows: 0 };
    try {
      for (let page = p.next_page; !done.finished && budget > 0; page++) {
        const { rows, totalPages } = await litellm().dailyActivity(
          p.day,
          page,
          PAGE_SIZE,
          stats,
        );
        budget--;
        const [{ r }] = await sql<
          { r: { applied: boolean; finished: boolean; rows: number } }[]
        >`
          select private.record_usage_pull_page(${p.pull_id}, ${page}, ${totalPages}, ${sql.json(rows as never)}) as r`;
        if (!r.applied) break; // another run took this pull over
        done.pages++;
        done.finished = r.finished;
        done.rows = r.rows;
      }
      if (!done.finished) {
        await sql`select private.release_usage_pull(${p.pull_id})`;
      }
      pulls.push(done);
    } catch (e) {
      const error = mask((e as Error).message);
      await sql`select private.release_usage_pull(${p.pull_id}, ${error})`;
      pulls.push({ ...done, error });
    }
  }
  const failed = pulls.some((p) => p.error);
  return json(
    { source: "pull", pulls, litellm_requests: stats.requests ?? 0 },
    failed ? 502 : 200,
  );
}));
