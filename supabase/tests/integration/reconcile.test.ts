// Issue 6: reconcile-spend against the LiteLLM emulator: spend pulled into snapshots and the account
// view, drift repaired from the ledger, and LiteLLM outages handled (fast failure, stale flag, recovery).
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  activeUser,
  breakerClosed,
  closeSql,
  invoke,
  keyOnLiteLLM,
  litellmAdmin,
  litellmApi,
  reconcileNow,
  sql,
  type TestUser,
  waitFor,
} from "./helpers.ts";

/** Credits a starter pack through the same SQL the webhook uses (the webhook itself is tested elsewhere). */
async function buyStarter(userId: string) {
  const [c] = await sql()`select * from private.create_checkout(${userId}, 'starter')`;
  const [r] =
    await sql()`select * from private.apply_payment(${c.reference}, 'success', 500, 500, 'USD', 'test', 'test', 1, now())`;
  expect(r.outcome).toBe("credited");
  return c.reference as string;
}

async function account(u: TestUser) {
  const { data, error } = await u.client.from("my_account").select("*").single();
  if (error) throw new Error(error.message);
  return data;
}

/** Each test's own user: active, with a starter pack bought (12.00 in the ledger, 2.00 on LiteLLM until a push). */
async function userWithStarter(tag: string) {
  const u = await activeUser(tag);
  await buyStarter(u.id);
  return u;
}

/** The number of spend snapshots of a key. */
async function snapshots(keyId: string) {
  const [{ n }] = await sql()`select count(*)::int as n from public.spend_snapshots where key_id = ${keyId}`;
  return n as number;
}

beforeAll(async () => {
  await litellmAdmin("/admin/down", { down: false });
});
afterEach(async () => {
  await litellmAdmin("/admin/faults", undefined, "DELETE");
  await litellmAdmin("/admin/down", { down: false });
  await breakerClosed(); // a test that made LiteLLM fail leaves the next one a working client
});
afterAll(closeSql);

describe("budget pushes", () => {
  it("a budget counts as confirmed only when LiteLLM says it has the value sent", async () => {
    const u = await activeUser("confirm");
    await buyStarter(u.id); // 12.00 in the ledger, 2 on LiteLLM
    const push = () => invoke("push-budget", { user_id: u.id }, process.env.SUPABASE_SERVICE_ROLE_KEY);
    const key = async () =>
      (await sql()`select sync_status, litellm_max_budget::text as confirmed from public.api_keys where id = ${u.keyId}`)[
        0
      ];
    // LiteLLM applies the update but its answer says nothing, and the read that would confirm it fails
    // (for every caller meanwhile, pg_cron's reconcile included).
    await litellmAdmin("/admin/faults", { route: "/key/update", count: 100, mode: "bare" });
    await litellmAdmin("/admin/faults", { route: "/key/info", count: 100, mode: "500" });
    const r = await push();
    expect(r.body.budget_push).toBe("failed");
    expect(await key()).toEqual({ sync_status: "failed", confirmed: "2" }); // not recorded as 12
    await litellmAdmin("/admin/faults", undefined, "DELETE");
    // An answer without max_budget is checked with a read: confirmed once LiteLLM shows 12.
    await litellmAdmin("/admin/faults", { route: "/key/update", count: 100, mode: "bare" });
    expect((await push()).body.budget_push).toBe("synced");
    await litellmAdmin("/admin/faults", undefined, "DELETE");
    expect(await key()).toEqual({ sync_status: "synced", confirmed: "12" });
    expect((await keyOnLiteLLM(u.key)).max_budget).toBe(12);
  });
});

describe("reconcile-spend", () => {
  it("needs the cron secret or the service key", async () => {
    expect((await invoke("reconcile-spend", {}, "nope")).status).toBe(401);
  });

  it("3.50 spent on a 12.00 key: remaining 8.50 and savings per the product rules; an idle run writes nothing", async () => {
    const user = await userWithStarter("recon-spend");
    await reconcileNow(); // also pushes the 12.00 target (the SQL-only purchase above did not)
    expect((await keyOnLiteLLM(user.key)).max_budget).toBe(12);
    await litellmAdmin("/admin/spend", { key: user.key, spend: 3.5 });
    await reconcileNow();
    const a = await account(user);
    expect(Number(a.granted)).toBe(12);
    expect(Number(a.spent)).toBe(3.5);
    expect(Number(a.remaining)).toBe(8.5);
    // 2.00 free sign-up credit + 1.50 from the pack at 0.50 per credit dollar: paid 0.75, saved 2.75.
    expect(Number(a.cost_of_spend)).toBe(0.75);
    expect(Number(a.savings)).toBe(2.75);
    expect(a.stale).toBe(false);
    const lots = (await user.client.from("my_lots").select("*").order("created_at")).data!;
    expect(lots.map((l) => [l.kind, Number(l.credit), Number(l.used), Number(l.remaining)])).toEqual([
      ["signup_grant", 2, 2, 0],
      ["purchase", 10, 1.5, 8.5],
    ]);

    const before = await snapshots(user.keyId);
    const idle = await reconcileNow();
    expect(await snapshots(user.keyId)).toBe(before);
    expect(idle.snapshots).toBe(0);
  });

  it("a max_budget changed behind our back goes back to the ledger target in one run, and the fix is recorded", async () => {
    const user = await userWithStarter("recon-drift");
    await reconcileNow(); // pushes the 12.00 target (the SQL-only purchase did not)
    expect((await keyOnLiteLLM(user.key)).max_budget).toBe(12);
    const changed = await litellmApi("/key/update", { key: user.key, max_budget: 5 });
    expect(changed.status).toBe(200);
    expect((await keyOnLiteLLM(user.key)).max_budget).toBe(5);
    const run = await reconcileNow();
    expect(run.repairs).toBeGreaterThanOrEqual(1);
    expect((await keyOnLiteLLM(user.key)).max_budget).toBe(12);
    const fixes =
      await sql()`select * from private.budget_repairs where key_id = ${user.keyId} order by id desc limit 1`;
    expect(Number(fixes[0].observed_max_budget)).toBe(5);
    expect(Number(fixes[0].target_max_budget)).toBe(12);
    expect(fixes[0].outcome).toBe("pushed");
    expect(await sql()`select * from public.admin_drift where key_id = ${user.keyId}`).toHaveLength(0);
  });

  it("two runs at the same time never process the same chunk", async () => {
    const user = await userWithStarter("recon-overlap");
    await reconcileNow();
    await waitFor(
      async () => {
        const [{ n }] = await sql()`select count(*)::int as n from public.reconcile_chunks where lease_until > now()`;
        return n === 0;
      },
      "no chunk leased by a cron-started run",
      15_000,
      200,
    );
    await litellmAdmin("/admin/spend", { key: user.key, spend: 3.75 });
    const before = await snapshots(user.keyId);
    // LiteLLM answers the batch read slowly, so the two runs really overlap while holding their chunks: the
    // second starts once the first holds a lease.
    await litellmAdmin("/admin/faults", { route: "/v2/key/info", count: 50, mode: "timeout", delay_ms: 700 });
    const first = invoke("reconcile-spend", { force: true, max_chunks: 100 });
    await waitFor(
      async () => {
        const [{ n }] = await sql()`select count(*)::int as n from public.reconcile_chunks where lease_until > now()`;
        return n > 0;
      },
      "the first run to hold a chunk",
      15_000,
      20,
    );
    const [a, b] = await Promise.all([first, invoke("reconcile-spend", { force: true, max_chunks: 100 })]);
    await litellmAdmin("/admin/faults", undefined, "DELETE");
    const [{ chunks }] = await sql()`select count(*)::int as chunks from public.reconcile_chunks`;
    // Between them every chunk was taken exactly once (SKIP LOCKED + lease), whoever got it.
    expect(a.body.outcome).toBe("ok");
    expect(b.body.outcome).toBe("ok");
    expect(a.body.claimed + b.body.claimed).toBe(chunks);
    expect(a.body.chunks + b.body.chunks).toBe(chunks);
    expect(await snapshots(user.keyId) - before).toBe(1);
  });

  it("LiteLLM down: runs fail fast, the account turns stale after 3 missed cycles, and recovers", async () => {
    const user = await userWithStarter("recon-down");
    await reconcileNow();
    await litellmAdmin("/admin/down", { down: true });
    const [{ now: downSince }] = await sql()`select now()`;
    // Three missed one-minute cycles, compressed: time moves 4 minutes back for this key's sync marks.
    await sql()`update public.reconcile_chunks set last_finished_at = now() - interval '4 minutes'`;
    await sql()`update public.api_keys set spend_observed_at = now() - interval '4 minutes' where id = ${user.keyId}`;
    for (let i = 0; i < 3; i++) {
      const r = await invoke("reconcile-spend", { force: true, max_chunks: 100 });
      expect(r.body.outcome).toBe("failed");
      expect(r.status).toBe(503);
    }
    const stale = await account(user);
    expect(stale.stale).toBe(true);
    // Every run since LiteLLM went down (ours, and any the cron started meanwhile) failed and said why.
    const runs = await sql()`select outcome, error from private.reconcile_runs where started_at >= ${downSince}`;
    expect(runs.length).toBeGreaterThanOrEqual(3);
    expect(runs.every((r) => r.outcome === "failed" && r.error)).toBe(true);
    // The rest of the product keeps working while LiteLLM is down: the ledger still takes payments.
    await buyStarter(user.id);

    await litellmAdmin("/admin/down", { down: false });
    const [{ now: upAgain }] = await sql()`select now()`;
    await breakerClosed();
    await reconcileNow();
    const fresh = await account(user);
    expect(fresh.stale).toBe(false);
    expect(new Date(fresh.last_synced_at).getTime()).toBeGreaterThanOrEqual(new Date(upAgain).getTime());
    // ...and the budget caught up with the payment made during the outage.
    expect((await keyOnLiteLLM(user.key)).max_budget).toBe(22);
  });
});
