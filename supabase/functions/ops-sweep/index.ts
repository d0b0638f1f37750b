// ops-sweep: background operations, called every minute by pg_cron (only when there is work, see
// private.ops_work_due) with the cron secret:
//   - finishes key rotations whose run died or had to wait for the old key's spend to settle;
//   - retries low-balance alerts that were not delivered yet.
import { deliverAlerts } from "../_shared/alerts.ts";
import { db } from "../_shared/db.ts";
import { handler, json, requireCronOrService } from "../_shared/http.ts";
import { mask } from "../_shared/log.ts";
import { runRotation } from "../_shared/rotation.ts";

Deno.serve(handler("ops-sweep", async (req) => {
  requireCronOrService(req);
  await req.body?.cancel();
  const sql = db();
  const stalled = await sql<
    { rotation_id: string; user_id: string; state: string }[]
  >`select * from private.claim_stalled_rotations(5)`;
  const rotations: { rotation_id: string; from: string; state: string; error?: string }[] = [];
  for (const r of stalled) {
    try {
      const res = await runRotation(r.rotation_id);
      rotations.push({ rotation_id: r.rotation_id, from: r.state, state: res.state });
    } catch (e) {
      rotations.push({
        rotation_id: r.rotation_id,
        from: r.state,
        state: "retrying",
        error: mask((e as Error).message),
      });
    }
  }
  const alerts = await deliverAlerts({ budgetMs: 15_000 });
  return json({ rotations, alerts });
}));
