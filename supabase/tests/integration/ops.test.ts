// Operations: key rotation (end to end, and killed between its steps with LiteLLM faults from the
// emulator), low-balance alerts (once per crossing, delivered with retries to a local webhook), the admin
// command line (run as a subprocess: each command changes only what it says; credit changes are ledger
// rows with a reason), the health endpoint and its log line, deploy:check (passes on this stack, reports
// a broken variant) and the log scanner that test.sh runs at the end.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  activeUser,
  adminCli as admin,
  alertSink,
  breakerClosed,
  closeSql,
  env,
  invoke,
  keyOnLiteLLM,
  keysMode,
  litellmAdmin,
  litellmApi,
  liveKey,
  publishableKey,
  reconcileNow,
  secretKey,
  signUp,
  sql,
  type TestUser,
  uniqueEmail,
  usable,
  waitFor,
} from "./helpers.ts";

type User = TestUser & { key: string; keyId: string };
const SERVICE = () => secretKey();

async function setting(key: string, value: string) {
  await sql()`update private.settings set value = ${value}::jsonb where key = ${key}`;
}

/** Credits a starter pack (10.00) through the webhook's SQL (the webhook is tested elsewhere). */
async function buyStarter(userId: string) {
  const [c] = await sql()`select * from private.create_checkout(${userId}, 'starter')`;
  const [r] =
    await sql()`select * from private.apply_payment(${c.reference}, 'success', 500, 500, 'USD', 'test', 'test', 1, now())`;
  expect(r.outcome).toBe("credited");
}

async function account(userId: string) {
  const [a] =
    await sql()`select granted::text, spent::text, remaining::text, low_balance_level from public.my_account where user_id = ${userId}`;
  return a as { granted: string; spent: string; remaining: string; low_balance_level: number | null };
}

async function litellmKeysOf(userId: string) {
  const r = await litellmApi(`/key/list?user_id=${encodeURIComponent(userId)}&return_full_object=true&size=100`);
  expect(r.status).toBe(200);
  return r.body.keys as { key_alias: string; max_budget: number; spend: number; blocked: boolean | null }[];
}

async function keysOf(userId: string) {
  return await sql()`select id, key_value, status, retired_spend::text, litellm_max_budget::text, sync_status from public.api_keys
                      where user_id = ${userId} order by seq`;
}

async function rotation(userId: string) {
  const [r] =
    await sql()`select id, state, attempts, last_error, new_key_value, new_key_alias from private.key_rotations
                           where user_id = ${userId} order by id desc limit 1`;
  return r;
}

/** A streamed chat (test-expensive, so it costs something): admitted = the first chunk arrived; done = the whole text. */
function streamChat(key: string) {
  let admit!: () => void;
  const admitted = new Promise<void>((r) => (admit = r));
  const done = (async () => {
    const r = await fetch(`${env("LITELLM_PUBLIC_URL")}/chat/completions`, {
      method: "POST",
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
      body: JSON.stringify({
        model: "test-expensive",
        stream: true,
        messages: [{ role: "user", content: "x".repeat(400) }],
      }),
    });
    expect(r.status).toBe(200);
    const reader = r.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      admit();
    }
    return text;
  })();
  return { admitted, done };
}

async function reconcileUser(userId: string) {
  return await waitFor(
    async () => {
      const r = await invoke("reconcile-spend", { user_id: userId });
      return r.status === 200 && r.body.claimed > 0 && r.body.outcome === "ok" ? r.body : null;
    },
    "a reconcile run of the user's chunk",
    15_000,
    300,
  );
}

/**
 * After a rotation finished: the remaining credit is on the new key to the cent, one live key here, the
 * new key works and the old one is refused; once the old key's spend has settled (retired_key_settle_seconds,
 * 0 in this file) a reconcile run deletes it, and the user has exactly one key on LiteLLM.
 */
async function expectRotated(u: User, remainingBefore: number) {
  const keys = await keysOf(u.id);
  const live = keys.filter((k) => k.status !== "retired");
  expect(live).toHaveLength(1);
  expect(live[0].status).toBe("active");
  expect(live[0].sync_status).toBe("synced");
  expect(live[0].key_value).not.toBe(u.key);
  expect(await usable(u.key)).toBe(false);
  await reconcileUser(u.id);
  expect(await litellmKeysOf(u.id)).toHaveLength(1);
  expect(await keyOnLiteLLM(u.key)).toBeNull();
  const [old] = await sql()`select settled_at from public.api_keys where key_value = ${u.key}`;
  expect(old.settled_at).not.toBeNull();
  const info = await keyOnLiteLLM(live[0].key_value);
  expect(info.spend).toBe(0);
  // The remaining credit, to the cent (and here exactly): max_budget of the new key = what was left.
  expect(Math.round(info.max_budget * 100)).toBe(Math.round(remainingBefore * 100));
  expect(info.max_budget).toBeCloseTo(remainingBefore, 8);
  expect(Number((await account(u.id)).remaining)).toBeCloseTo(remainingBefore, 8);
  expect(await usable(live[0].key_value)).toBe(true);
  expect(await usable(u.key)).toBe(false);
  expect((await rotation(u.id)).state).toBe("done");
  return live[0].key_value as string;
}

beforeAll(async () => {
  await litellmAdmin("/admin/faults", undefined, "DELETE");
  await litellmAdmin("/admin/down", { down: false });
  await litellmAdmin("/admin/config", { batch_write_ms: 0 });
  await setting("rotation_settle_seconds", "0"); // the test stack writes spend at once (LITELLM_BATCH_WRITE_MS=0)
  await setting("retired_key_settle_seconds", "0"); // no request is left in flight unless a test holds one open
});
afterEach(async () => {
  await litellmAdmin("/admin/faults", undefined, "DELETE");
  await litellmAdmin("/admin/down", { down: false });
  await litellmAdmin("/admin/config", { batch_write_ms: 0, stream_chunk_delay_ms: 0 });
  await setting("rotation_settle_seconds", "0");
  await setting("retired_key_settle_seconds", "0");
});
afterAll(async () => {
  await setting("rotation_settle_seconds", "20");
  await setting("retired_key_settle_seconds", "900");
  await closeSql();
});

// ====================================================================================== rotation
describe("key rotation", () => {
  it("a user rotates their key: the remaining credit moves to the cent, one usable key is left, nothing granted twice", async () => {
    const u = await activeUser("rot");
    await buyStarter(u.id); // 12.00 granted
    await litellmAdmin("/admin/spend", { key: u.key, spend: 3.4567 });
    const remaining = 12 - 3.4567;
    const r = await invoke("rotate-key", {}, u.token);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.state).toBe("done");
    expect(JSON.stringify(r.body)).not.toMatch(/sk-[A-Za-z0-9_-]{20,}/); // never the full key in the answer
    const newKey = await expectRotated(u, remaining);
    expect(r.body.key_masked).toBe(`sk-...${newKey.slice(-4)}`);
    // The dashboard reads the new key (RLS: the owner only).
    const { data } = await u.client.from("my_key").select("key_value, status").single();
    expect(data).toEqual({ key_value: newKey, status: "active" });
    // The old key's spend is frozen on the retired row; the account view adds both keys.
    const keys = await keysOf(u.id);
    expect(keys[0].status).toBe("retired");
    expect(Number(keys[0].retired_spend)).toBe(3.4567);
    const a = await account(u.id);
    expect(a.granted).toBe("12.00");
    expect(Number(a.spent)).toBe(3.4567);
    // Reconcile agrees: no drift on the new key (its budget is the exact ledger target).
    const run = await reconcileUser(u.id);
    expect(run.repairs).toBe(0);
    expect(await sql()`select * from public.admin_drift where user_id = ${u.id}`).toHaveLength(0);
  });

  it("users: only their own key, and not again within a minute; anonymous callers are refused", async () => {
    const u = await activeUser("rot-limits");
    const other = await activeUser("rot-other");
    expect((await invoke("rotate-key", { user_id: other.id }, u.token)).status).toBe(403);
    expect((await invoke("rotate-key", {}, publishableKey())).status).toBe(401);
    expect((await invoke("rotate-key", {}, "not-a-jwt")).status).toBe(401);
    expect((await invoke("rotate-key", { user_id: other.id }, env("CRON_SECRET"))).status).toBe(401); // operators need a secret key
    const first = await invoke("rotate-key", {}, u.token);
    expect(first.status).toBe(200);
    const again = await invoke("rotate-key", {}, u.token);
    expect(again.status).toBe(429);
    expect(again.body.error).toBe("too_soon");
    expect(await liveKey(other.id)).toMatchObject({ key_value: other.key, status: "active" }); // untouched
  });

  it("a key that is not active yet cannot be rotated (409), an unknown user is 404", async () => {
    const id = crypto.randomUUID();
    await sql().begin(async (tx) => {
      await tx`insert into auth.users (id, email, aud, role, created_at) values (${id}, ${
        uniqueEmail("norot")
      }, 'authenticated', 'authenticated', now())`;
      await tx`delete from net.http_request_queue where url like '%/functions/v1/provision-key'`;
    });
    const r = await invoke("rotate-key", { user_id: id }, SERVICE());
    expect(r.status).toBe(409);
    expect(r.body.error).toBe("no_active_key");
    expect((await invoke("rotate-key", { user_id: crypto.randomUUID() }, SERVICE())).status).toBe(404);
  });

  // Killed between its steps: LiteLLM fails (3 tries each) at one step, the run stops there; the rerun
  // finishes. At no point are two keys usable; at the end exactly one is, with the credit to the cent.
  const kills: {
    step: string;
    fault: Record<string, unknown>;
    state: string;
    oldUsable: boolean | null;
    newOnLiteLLM: boolean;
    finishBy: "rerun" | "sweep";
  }[] = [
    {
      step: "blocking the old key",
      fault: { route: "/key/block", count: 3, mode: "500" },
      state: "opened",
      oldUsable: null,
      newOnLiteLLM: false,
      finishBy: "rerun",
    },
    {
      step: "reading the old key's final spend",
      fault: { route: "/key/info", count: 3, mode: "500" },
      state: "blocked",
      oldUsable: false,
      newOnLiteLLM: false,
      finishBy: "sweep",
    },
    // The hard case: LiteLLM creates the new key but every answer is lost (client timeout): the rerun must
    // find it (alias exists) instead of creating another.
    {
      step: "creating the new key (answers lost)",
      fault: { route: "/key/generate", count: 3, mode: "timeout", delay_ms: 2500 },
      state: "retired",
      oldUsable: false,
      newOnLiteLLM: true,
      finishBy: "rerun",
    },
  ];
  for (const k of kills) {
    it(`killed while ${k.step}: stops in state ${k.state}, then the ${k.finishBy} finishes it exactly`, async () => {
      const u = await activeUser("rot-kill");
      await buyStarter(u.id);
      await litellmAdmin("/admin/spend", { key: u.key, spend: 1.2345 });
      const remaining = 12 - 1.2345;
      await litellmAdmin("/admin/faults", k.fault);
      const r = await invoke("rotate-key", { user_id: u.id }, SERVICE());
      expect(r.status, JSON.stringify(r.body)).toBe(503);
      await litellmAdmin("/admin/faults", undefined, "DELETE");
      const stopped = await rotation(u.id);
      expect(stopped.state).toBe(k.state);
      expect(stopped.attempts).toBe(1);
      expect(stopped.last_error).toMatch(/LiteLLM/);
      expect(stopped.last_error).not.toMatch(/sk-[A-Za-z0-9_-]{20,}/);
      // Where the kill left the user: never two usable keys.
      const newUsable = await usable(stopped.new_key_value);
      const oldUsable = await usable(u.key);
      expect(Number(newUsable) + Number(oldUsable)).toBeLessThanOrEqual(1);
      if (k.oldUsable !== null) expect(oldUsable).toBe(k.oldUsable);
      expect((await litellmKeysOf(u.id)).some((x) => x.key_alias === stopped.new_key_alias)).toBe(k.newOnLiteLLM);
      await breakerClosed();
      if (k.finishBy === "rerun") {
        const again = await invoke("rotate-key", { user_id: u.id }, SERVICE());
        expect(again.status, JSON.stringify(again.body)).toBe(200);
      } else {
        // Nobody reruns it: ops-sweep (pg_cron, every minute) picks it up once its retry time has come.
        await sql()`update private.key_rotations set next_attempt_at = now() where id = ${stopped.id}`;
        const sweep = await invoke("ops-sweep", {});
        expect(sweep.status).toBe(200);
        expect(sweep.body.rotations).toContainEqual(
          expect.objectContaining({ rotation_id: String(stopped.id), state: "done" }),
        );
      }
      await expectRotated(u, remaining);
      expect((await litellmKeysOf(u.id)).filter((x) => x.key_alias === stopped.new_key_alias)).toHaveLength(1);
    }, 60_000);
  }

  it(
    "deleting the settled old key fails: it stays blocked and under reconciliation, and a later run deletes it",
    async () => {
      const u = await activeUser("rot-del");
      expect((await invoke("rotate-key", { user_id: u.id }, SERVICE())).status).toBe(200);
      // Every delete fails, whichever run (this one, or pg_cron's) tries it.
      await litellmAdmin("/admin/faults", { route: "/key/delete", count: 1000, mode: "500" });
      await reconcileUser(u.id);
      const [old] = await sql()`select status, settled_at from public.api_keys where key_value = ${u.key}`;
      expect(old).toEqual({ status: "retired", settled_at: null });
      expect((await keyOnLiteLLM(u.key)).blocked).toBe(true);
      expect(await usable(u.key)).toBe(false);
      await litellmAdmin("/admin/faults", undefined, "DELETE");
      await breakerClosed();
      const run = await reconcileUser(u.id);
      expect(run.outcome).toBe("ok");
      expect(await keyOnLiteLLM(u.key)).toBeNull();
      const [settled] = await sql()`select settled_at from public.api_keys where key_value = ${u.key}`;
      expect(settled.settled_at).not.toBeNull();
    },
    60_000,
  );

  it(
    "requests that start before the swap and end after it are all charged (long streamed chats held open)",
    async () => {
      await setting("retired_key_settle_seconds", "600"); // as in production, the old key is read until its spend settles
      await litellmAdmin("/admin/config", { stream_chunk_delay_ms: 400 }); // each chat streams for several seconds
      const u = await activeUser("rot-flight");
      await buyStarter(u.id); // 12.00 granted
      const chats = Array.from({ length: 4 }, () => streamChat(u.key));
      await Promise.all(chats.map((c) => c.admitted)); // all four admitted on the old key, now streaming
      const r = await invoke("rotate-key", { user_id: u.id }, SERVICE());
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      const [{ old_final_spend: atSwap }] =
        await sql()`select old_final_spend::text from private.key_rotations where user_id = ${u.id}`;
      const texts = await Promise.all(chats.map((c) => c.done));
      expect(texts.every((t) => t.endsWith("data: [DONE]\n\n"))).toBe(true); // the block did not cut them off
      const final = (await keyOnLiteLLM(u.key)).spend as number;
      expect(final).toBeGreaterThan(Number(atSwap)); // their cost landed on the old key after the swap
      // LiteLLM's logging callback reports it for the retired key within seconds (hints for it are accepted)...
      await waitFor(
        async () => {
          const [k] = await sql()`select hinted_spend::float8 as h from public.api_keys where key_value = ${u.key}`;
          return k.h !== null && k.h >= final - 1e-9;
        },
        "a callback hint for the retired key",
        10_000,
        200,
      );
      // ...and reconcile charges it: the retired key's spend and the new key's budget move by exactly that.
      await reconcileUser(u.id);
      const [old] = await sql()`select retired_spend::text, settled_at from public.api_keys where key_value = ${u.key}`;
      expect(Number(old.retired_spend)).toBeGreaterThanOrEqual(final);
      expect(Number(old.retired_spend) - final).toBeLessThan(1e-8); // rounded up to 1e-8 USD
      expect(old.settled_at).toBeNull(); // it is still read for late spend
      const live = await liveKey(u.id);
      const [{ target }] = await sql()`select private.key_target_budget(${live.id})::text as target`;
      const [{ expected }] = await sql()`select (12.00 - ${old.retired_spend}::numeric)::text as expected`;
      expect(target).toBe(expected);
      await waitFor(
        async () => (await keyOnLiteLLM(live.key_value)).max_budget === Number(target),
        "the lower budget on LiteLLM",
        10_000,
        200,
      );
      // (the account may show the callback's hint, LiteLLM's own float sum, for its 10 minutes: a hair apart)
      expect(Number((await account(u.id)).remaining)).toBeCloseTo(Number(expected), 9);
      // Time passes with no more spend: the old key settles and is deleted; its spend stays charged.
      await setting("retired_key_settle_seconds", "0");
      await reconcileUser(u.id);
      expect(await keyOnLiteLLM(u.key)).toBeNull();
      const [settled] =
        await sql()`select retired_spend::text, settled_at from public.api_keys where key_value = ${u.key}`;
      expect(settled.retired_spend).toBe(old.retired_spend);
      expect(settled.settled_at).not.toBeNull();
      const [{ after }] = await sql()`select private.key_target_budget(${live.id})::text as after`;
      expect(after).toBe(expected);
    },
    90_000,
  );

  it("waits for LiteLLM's batched spend writes before reading the final spend (settle time)", async () => {
    await litellmAdmin("/admin/config", { batch_write_ms: 1000 });
    await setting("rotation_settle_seconds", "2");
    const u = await activeUser("rot-settle");
    await litellmAdmin("/admin/spend", { key: u.key, spend: 0.8 }); // enforcement sees it now, /key/info within 1 s
    const before = await keyOnLiteLLM(u.key);
    const r = await invoke("rotate-key", { user_id: u.id }, SERVICE());
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(before.spend).toBeLessThan(0.8); // what an immediate read would have frozen (the credit given twice)
    await expectRotated(u, 2 - 0.8);
  });

  it("a settle time longer than the function may wait: answers 202, ops-sweep finishes after it", async () => {
    await setting("rotation_settle_seconds", "45");
    const u = await activeUser("rot-wait");
    const r = await invoke("rotate-key", { user_id: u.id }, SERVICE());
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ state: "waiting" });
    expect(r.body.resume_in_seconds).toBeGreaterThan(40);
    expect((await rotation(u.id)).state).toBe("blocked");
    const early = await invoke("ops-sweep", {});
    expect(early.body.rotations.map((x: { rotation_id: string }) => x.rotation_id)).not.toContain(
      String((await rotation(u.id)).id),
    );
    // (time passes)
    await setting("rotation_settle_seconds", "0");
    await sql()`update private.key_rotations set next_attempt_at = now() where user_id = ${u.id}`;
    const sweep = await invoke("ops-sweep", {});
    expect(sweep.status).toBe(200);
    await expectRotated(u, 2);
  });
});

// ====================================================================================== alerts
describe("low-balance alerts", () => {
  let sink: Awaited<ReturnType<typeof alertSink>>;
  const textsFor = (userId: string) => sink.received.filter((m) => m.text.includes(userId)).map((m) => m.text);

  beforeAll(async () => {
    sink = await alertSink();
  });
  afterAll(async () => {
    await sink.close();
  });

  it("fires once per crossing of 20 % and 5 %, not once per run; re-armed by a purchase; shown as a banner", async () => {
    const u = await activeUser("alert");
    await buyStarter(u.id); // 12.00
    const banner = async () =>
      (await u.client.from("my_account").select("low_balance_level").single()).data?.low_balance_level;
    expect(await banner()).toBeNull();

    await litellmAdmin("/admin/spend", { key: u.key, spend: 9.7 }); // 2.30 left = 19.2 %
    await reconcileUser(u.id);
    await waitFor(async () => textsFor(u.id).length === 1, "the 20 % alert");
    const [text] = textsFor(u.id);
    expect(text).toContain("2.30 of 12.00 USD");
    expect(text).toContain("20 %");
    expect(text).not.toContain(u.email); // masked
    expect(text).toContain(`${u.email[0]}***@example.com`);
    expect(sink.received.find((m) => m.text === text)?.keys).toEqual(["text"]); // Slack-compatible
    expect(await banner()).toBe(20);

    // The next runs see the same low balance, and a bit lower: nothing new.
    await reconcileUser(u.id);
    await litellmAdmin("/admin/spend", { key: u.key, spend: 9.9 });
    await reconcileUser(u.id);
    await invoke("ops-sweep", {});
    // A message is only ever sent for an alert event, by the run that claims it and before that run answers:
    // the user's only event is the one delivered above, so nothing else is on its way.
    const sofar = await sql()`select level, delivery_status from private.alert_events where user_id = ${u.id}`;
    expect(sofar.map((e) => ({ ...e }))).toEqual([{ level: 20, delivery_status: "delivered" }]);
    expect(textsFor(u.id)).toHaveLength(1);

    await litellmAdmin("/admin/spend", { key: u.key, spend: 11.5 }); // 0.50 left = 4.2 %
    await reconcileUser(u.id);
    await waitFor(async () => textsFor(u.id).length === 2, "the 5 % alert");
    expect(textsFor(u.id)[1]).toContain("5 %");
    expect(await banner()).toBe(5);

    await buyStarter(u.id); // 22.00 granted, 10.50 left: re-armed
    expect(await banner()).toBeNull();
    await litellmAdmin("/admin/spend", { key: u.key, spend: 18.5 }); // 3.50 left = 15.9 %: a new crossing of 20 %
    await reconcileUser(u.id);
    await waitFor(async () => textsFor(u.id).length === 3, "the second 20 % alert");
    expect(textsFor(u.id)[2]).toContain("3.50 of 22.00 USD");
    const events =
      await sql()`select level, delivery_status, rearmed_at is null as open from private.alert_events where user_id = ${u.id} order by id`;
    expect(events.map((e) => [e.level, e.delivery_status, e.open])).toEqual([[20, "delivered", false], [
      5,
      "delivered",
      false,
    ], [20, "delivered", true]]);
  });

  it("retries a webhook that fails, and leaves what is still undelivered for the next run", async () => {
    const u = await activeUser("alert-retry");
    sink.fail(3); // one run's three tries
    await litellmAdmin("/admin/spend", { key: u.key, spend: 1.7 }); // 0.30 of 2.00 = 15 %
    await reconcileUser(u.id);
    const pending = await waitFor(async () => {
      const [e] = await sql()`select * from private.alert_events where user_id = ${u.id}`;
      return e && e.attempts >= 3 ? e : null;
    }, "three failed tries");
    expect(pending.delivery_status).toBe("pending");
    expect(pending.last_error).toBe("http 500");
    expect(textsFor(u.id)).toHaveLength(0);
    expect(new Date(pending.next_attempt_at).getTime()).toBeGreaterThan(Date.now());
    // A later run, once the retry is due (ops-sweep every minute; reconcile-spend does the same).
    await sql()`update private.alert_events set next_attempt_at = now() where id = ${pending.id}`;
    const sweep = await invoke("ops-sweep", {});
    expect(sweep.status).toBe(200);
    expect(textsFor(u.id)).toHaveLength(1);
    const [done] = await sql()`select * from private.alert_events where id = ${pending.id}`;
    expect(done.delivery_status).toBe("delivered");
    expect(done.attempts).toBe(4);
    await invoke("ops-sweep", {});
    expect(textsFor(u.id)).toHaveLength(1);
  });
});

// ====================================================================================== admin CLI

async function ledgerCount() {
  const [{ n }] = await sql()`select count(*)::int as n from public.credit_ledger`;
  return n as number;
}
async function stateOf(userId: string) {
  const rows =
    await sql()`select kind, amount::text, reason, created_by from public.credit_ledger where user_id = ${userId} order by id`;
  const keys =
    await sql()`select id, status, budget_version from public.api_keys where user_id = ${userId} order by seq`;
  return { ledger: rows.map((r) => ({ ...r })), keys: keys.map((k) => ({ ...k })) };
}

describe("admin command line", () => {
  it("help, and one clear line for bad input (nothing written)", async () => {
    const a = await signUp("admin-help");
    const help = admin("help");
    expect(help.code).toBe(0);
    for (
      const c of [
        "failures",
        "drift",
        "dead-jobs",
        "rejected",
        "requeue",
        "push-budget",
        "reconcile",
        "grant",
        "deduct",
        "rotate",
      ]
    ) expect(help.stdout).toContain(c);
    const before = await ledgerCount();
    const cases: [string[], number, RegExp][] = [
      [["frobnicate"], 2, /unknown command "frobnicate"/],
      [["grant", a.email, "5"], 2, /needs --reason/],
      [["grant", a.email, "5", "--reason", "ok"], 2, /at least 3 characters/],
      [["grant", a.email, "1.234", "--reason", "sub-cent"], 2, /not an amount/],
      [["grant", a.email, "-5", "--reason", "negative"], 2, /not an amount/],
      [["grant", a.email, "abc", "--reason", "letters"], 2, /not an amount/],
      [["deduct", a.email, "--reason", "no amount"], 2, /give an amount/],
      [["grant", "nobody-here@example.com", "5", "--reason", "unknown user"], 1, /no user nobody-here@example\.com/],
      [["grant", a.email, "5000", "--reason", "too much"], 1, /admin_adjust_max_usd/],
      [["push-budget"], 2, /one user/],
      [["failures", "--bogus"], 2, /unknown option --bogus/],
      [
        ["drift", "--db-url", "postgresql://postgres:postgres@127.0.0.1:1/postgres"],
        1,
        /cannot connect to the database/,
      ],
    ];
    for (const [args, code, message] of cases) {
      const r = admin(...args);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(code);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(/^admin: /);
      expect(r.stderr).toMatch(message);
    }
    expect(await ledgerCount()).toBe(before);
  }, 120_000);

  it(
    "grant and deduct: one ledger row each with the reason and who, the budget pushed, nothing else changed",
    async () => {
      const a = await activeUser("admin-grant");
      const b = await activeUser("admin-other");
      const othersBefore = await stateOf(b.id);
      const bOnLiteLLM = (await keyOnLiteLLM(b.key)).max_budget;
      const before = await ledgerCount();

      const g = admin("grant", a.email.toUpperCase(), "5", "--reason", "outage credit, ticket 42", "--json");
      expect(g.code, g.stderr).toBe(0);
      expect(g.json).toMatchObject({ is_new: true, granted: "7.00", budget_push: { outcome: "synced" } });
      expect(await ledgerCount()).toBe(before + 1);
      const [row] =
        await sql()`select kind, amount::text, reason, created_by from public.credit_ledger where id = ${g.json.ledger_id}`;
      expect(row).toEqual({
        kind: "adjustment",
        amount: "5.00",
        reason: "outage credit, ticket 42",
        created_by: "admin-cli:vitest",
      });
      expect((await keyOnLiteLLM(a.key)).max_budget).toBe(7);

      const d = admin("deduct", a.id, "2.50", "--reason", "duplicate grant reversed", "--json");
      expect(d.code, d.stderr).toBe(0);
      expect(await ledgerCount()).toBe(before + 2);
      const [row2] =
        await sql()`select kind, amount::text, reason from public.credit_ledger where id = ${d.json.ledger_id}`;
      expect(row2).toEqual({ kind: "adjustment", amount: "-2.50", reason: "duplicate grant reversed" });
      expect((await keyOnLiteLLM(a.key)).max_budget).toBe(4.5);

      // Repeating a command with its idempotency key adds nothing.
      const k1 = admin(
        "grant",
        a.id,
        "1",
        "--reason",
        "retried command",
        "--idempotency-key",
        `vitest-${a.id}`,
        "--json",
      );
      const k2 = admin(
        "grant",
        a.id,
        "1",
        "--reason",
        "retried command",
        "--idempotency-key",
        `vitest-${a.id}`,
        "--json",
      );
      expect([k1.code, k2.code]).toEqual([0, 0]);
      expect([k1.json.is_new, k2.json.is_new]).toEqual([true, false]);
      expect(await ledgerCount()).toBe(before + 3);

      // Every credit change of user A is a ledger row with a reason; user B is untouched.
      const mine =
        await sql()`select kind, reason from public.credit_ledger where user_id = ${a.id} and kind = 'adjustment'`;
      expect(mine).toHaveLength(3);
      expect(mine.every((r) => r.reason && r.reason.length >= 3)).toBe(true);
      expect(await stateOf(b.id)).toEqual(othersBefore);
      expect((await keyOnLiteLLM(b.key)).max_budget).toBe(bOnLiteLLM);
    },
    120_000,
  );

  it(
    "push-budget repairs a budget changed behind our back; reconcile <user> pulls spend; neither touches the ledger",
    async () => {
      const a = await activeUser("admin-push");
      const before = await ledgerCount();
      const target = Number((await liveKey(a.id)).litellm_max_budget);
      expect((await litellmApi("/key/update", { key: a.key, max_budget: 99 })).status).toBe(200);
      const p = admin("push-budget", a.email, "--json");
      expect(p.code, p.stderr).toBe(0);
      expect(p.json).toMatchObject({ budget_push: "synced" });
      expect((await keyOnLiteLLM(a.key)).max_budget).toBe(target);

      await litellmAdmin("/admin/spend", { key: a.key, spend: 0.42 });
      const r = admin("reconcile", a.id, "--json");
      expect(r.code, r.stderr).toBe(0);
      expect(r.json.keys).toBeGreaterThanOrEqual(1);
      expect((await liveKey(a.id) as any).spend).toBe("0.42");
      expect(admin("reconcile", "all", "--json").code).toBe(0);
      expect(await ledgerCount()).toBe(before);
    },
    120_000,
  );

  it("the reading commands list and change nothing", async () => {
    const a = await activeUser("admin-read-a");
    const b = await activeUser("admin-read-b");
    const before = await ledgerCount();
    const [{ keys: keysBefore }] =
      await sql()`select string_agg(id || status || budget_version, ',' order by id) as keys from public.api_keys where user_id in (${a.id}, ${b.id})`;
    for (const c of ["failures", "drift", "dead-jobs", "rejected", "rotations", "alerts"]) {
      const r = admin(c, "--json");
      expect(r.code, `${c}: ${r.stderr}`).toBe(0);
      expect(Array.isArray(r.json)).toBe(true);
      const human = admin(c);
      expect(human.code).toBe(0);
      expect(human.stdout.length).toBeGreaterThan(0);
    }
    const u = admin("user", b.email, "--json");
    expect(u.code).toBe(0);
    expect(u.json.keys[0].key).toBe(`sk-...${b.key.slice(-4)}`);
    expect(u.stdout).not.toContain(b.key);
    expect(await ledgerCount()).toBe(before);
    const [{ keys: keysAfter }] =
      await sql()`select string_agg(id || status || budget_version, ',' order by id) as keys from public.api_keys where user_id in (${a.id}, ${b.id})`;
    expect(keysAfter).toBe(keysBefore);
  }, 120_000);

  it(
    "requeue <user> re-queues only that user's dead job and provisions it; rotate <user> rotates the key",
    async () => {
      const b = await activeUser("admin-rotate");
      // A dead job: provisioning gave up on this user's key.
      const id = crypto.randomUUID();
      const email = uniqueEmail("dead");
      await sql().begin(async (tx) => {
        await tx`insert into auth.users (id, email, aud, role, created_at) values (${id}, ${email}, 'authenticated', 'authenticated', now())`;
        await tx`delete from net.http_request_queue where url like '%/functions/v1/provision-key'`;
      });
      await sql()`update private.provisioning_jobs set status = 'dead', attempts = 8, finished_at = now() where user_id = ${id}`;
      await sql()`update public.api_keys set status = 'failed' where user_id = ${id}`;
      const dead = admin("dead-jobs", "--json");
      expect(dead.json.some((j: { user_id: string }) => j.user_id === id)).toBe(true);
      const [{ others }] =
        await sql()`select count(*)::int as others from private.provisioning_jobs where status = 'dead' and user_id <> ${id}`;
      const r = admin("requeue", email, "--json");
      expect(r.code, r.stderr).toBe(0);
      expect(r.json.requeued).toBe(1);
      expect((await liveKey(id)).status).toBe("active");
      const [{ after }] =
        await sql()`select count(*)::int as after from private.provisioning_jobs where status = 'dead' and user_id <> ${id}`;
      expect(after).toBe(others);

      const before = Number((await account(b.id)).remaining);
      const rot = admin("rotate", b.email, "--json");
      expect(rot.code, rot.stderr).toBe(0);
      expect(rot.json.state).toBe("done");
      expect(rot.stdout).not.toMatch(/sk-[A-Za-z0-9_-]{20,}/);
      await expectRotated(b, before);
      const [{ requested_by }] = await sql()`select requested_by from private.key_rotations where user_id = ${b.id}`;
      expect(requested_by).toBe("admin:admin-cli:vitest");
    },
    120_000,
  );
});

// ====================================================================================== health, logs
describe("health and logs", () => {
  it("reports database, LiteLLM, Paystack and the last reconcile; 503 when LiteLLM is down; no secrets", async () => {
    const [{ now: beforeRun }] = await sql()`select now()`;
    await reconcileNow();
    const requestId = `ops-health-${crypto.randomUUID()}`;
    const r = await fetch(`${env("SUPABASE_URL")}/functions/v1/health`, { headers: { "x-request-id": requestId } });
    const body = await r.json();
    expect(r.status, JSON.stringify(body)).toBe(200);
    // Everything reachable: "ok", or "degraded" while something needs a person (keys other tests deleted or
    // blocked on LiteLLM, spend resets not acknowledged).
    const needsPerson = body.attention.spend_resets > 0 ||
      Object.values(body.attention.flagged_keys).some((n) => Number(n) > 0);
    expect(body).toMatchObject({
      status: needsPerson ? "degraded" : "ok",
      database: { status: "ok" },
      litellm: { status: "ok" },
      paystack: { status: "ok" },
      reconcile: { status: "ok" },
    });
    expect(typeof body.database.latency_ms).toBe("number");
    // The last success is our run or a later one.
    expect(new Date(body.reconcile.last_success_at).getTime()).toBeGreaterThanOrEqual(new Date(beforeRun).getTime());
    expect(typeof body.last_successful_reconcile_age_seconds).toBe("number");
    const text = JSON.stringify(body);
    for (const secret of [env("LITELLM_MASTER_KEY"), env("PAYSTACK_SECRET_KEY"), env("CRON_SECRET"), secretKey()]) {
      expect(text).not.toContain(secret);
    }
    expect(r.headers.get("x-request-id")).toBe(requestId);

    // One JSON log line for the invocation: function, duration, outcome, request id.
    const line = await waitFor(async () => {
      const log = readFileSync(join(env("STACK_LOCAL_DIR"), "logs", "gateway.log"), "utf8");
      return log.split("\n").find((l) => l.includes(requestId));
    }, "the invocation log line");
    const entry = JSON.parse(line);
    expect(entry).toMatchObject({
      msg: "invocation",
      function: "health",
      request_id: requestId,
      status: 200,
      outcome: "ok",
    });
    expect(typeof entry.duration_ms).toBe("number");

    await litellmAdmin("/admin/down", { down: true });
    const down = await invoke("health", {}, SERVICE()); // the service role gets fresh checks (no 10 s cache)
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({
      status: "error",
      litellm: { status: "error", error: "unreachable" },
      database: { status: "ok" },
    });
    await litellmAdmin("/admin/down", { down: false });
    expect((await invoke("health", {}, SERVICE())).status).toBe(200);
  });

  it("function log lines mask keys and emails", async () => {
    const u = await activeUser("logs");
    const requestId = `ops-rotate-${crypto.randomUUID()}`;
    const r = await invoke("rotate-key", {}, u.token, { "x-request-id": requestId });
    expect(r.status).toBe(200);
    const newKey = (await liveKey(u.id)).key_value;
    // The gateway writes its log line after the response: wait until it is there.
    const readLog = () => readFileSync(join(env("STACK_LOCAL_DIR"), "logs", "gateway.log"), "utf8");
    const line = await waitFor(async () => readLog().split("\n").find((l) => l.includes(requestId)), "the log line");
    const log = readLog();
    expect(JSON.parse(line)).toMatchObject({ function: "rotate-key", outcome: "ok", status: 200 });
    expect(log).toContain(`sk-...${u.key.slice(-4)}`); // the rotation logged its keys, masked
    for (const secret of [u.key, newKey, u.email, env("LITELLM_MASTER_KEY")]) expect(log).not.toContain(secret);
  });

  it("the log scanner test.sh runs finds a full key or the master key, and accepts masked ones", () => {
    const dir = mkdtempSync(join(tmpdir(), "logscan-"));
    writeFileSync(join(dir, "clean.log"), `{"msg":"key provisioned","key":"sk-...abcd"}\n{"msg":"ok"}\n`);
    const run = () => spawnSync("node", ["scripts/check-logs.mjs", dir], { encoding: "utf8", env: process.env });
    expect(run().status).toBe(0);
    const full = `sk-${"A".repeat(22)}`;
    writeFileSync(join(dir, "leak.log"), `line one\n{"error":"Key ${full} not found"}\n`);
    const leaked = run();
    expect(leaked.status).toBe(1);
    expect(leaked.stdout).toContain("leak.log:2");
    expect(leaked.stdout).not.toContain(full);
    writeFileSync(join(dir, "leak.log"), `Authorization: Bearer ${env("LITELLM_MASTER_KEY")}\n`);
    expect(run().stdout).toContain("the LiteLLM master key");
    writeFileSync(join(dir, "leak.log"), `secret=${env("PAYSTACK_SECRET_KEY")}\n`);
    expect(run().stdout).toContain("the Paystack secret key");
    writeFileSync(join(dir, "leak.log"), `apikey: ${secretKey()}\n`);
    expect(run().stdout).toContain("the Supabase secret key");
  });
});

// ====================================================================================== deploy:check
describe("deploy:check", () => {
  const dir = mkdtempSync(join(tmpdir(), "deploycheck-"));
  const envFile = join(dir, ".env");
  const names = [
    "CRON_SECRET",
    "LITELLM_BASE_URL",
    "LITELLM_MASTER_KEY",
    "PAYSTACK_BASE_URL",
    "PAYSTACK_SECRET_KEY",
    "PAYSTACK_CALLBACK_URL",
  ];
  const check = (...args: string[]) => {
    const r = spawnSync("node_modules/.bin/deno", [
      "run",
      "-A",
      "scripts/deploy-check.ts",
      "--db-url",
      env("SUPABASE_DB_URL"),
      "--json",
      ...args,
    ], {
      encoding: "utf8",
      timeout: 120_000,
    });
    return { code: r.status, json: JSON.parse(r.stdout || "null"), stderr: r.stderr };
  };
  beforeAll(async () => {
    writeFileSync(envFile, names.map((n) => `${n}=${env(n)}`).join("\n") + "\n");
    await invoke("reconcile-spend", { force: true, max_chunks: 100 }); // so health's reconcile check is fresh
  });

  it("passes against this stack, and prints no secret", () => {
    const r = check("--env-file", envFile);
    expect(r.code, JSON.stringify(r.json?.missing ?? r.stderr)).toBe(0);
    expect(r.json.ok).toBe(true);
    const groups = new Set(r.json.checks.map((c: { group: string }) => c.group));
    for (
      const g of [
        "database",
        "extensions",
        "vault",
        "cron",
        "migrations",
        "verify_jwt",
        "env file",
        "keys",
        "functions",
      ]
    ) expect(groups).toContain(g);
    // It reads which key mode the project's Auth signs in from the discovery endpoint.
    const tokens = r.json.checks.find((c: { name: string }) => c.name === "user tokens");
    expect(tokens.detail).toMatch(keysMode() === "new" ? /^asymmetric signing keys \(ES256\)/ : /^legacy JWT secret/);
    const text = JSON.stringify(r.json);
    for (const n of ["CRON_SECRET", "LITELLM_MASTER_KEY", "PAYSTACK_SECRET_KEY"]) expect(text).not.toContain(env(n));
  }, 120_000);

  it(
    "says where the functions will connect: DB_POOLER_URL unset means direct, a port other than 6543 is pointed out",
    () => {
      const detail = (r: ReturnType<typeof check>, name: string) =>
        r.json.checks.find((c: { name: string }) => c.name === name)?.detail;
      const unset = check("--env-file", envFile, "--no-probe");
      expect(detail(unset, "DB_POOLER_URL (optional)")).toContain("connect directly (SUPABASE_DB_URL)");
      writeFileSync(
        join(dir, "session.env"),
        `${
          readFileSync(envFile, "utf8")
        }DB_POOLER_URL=postgresql://postgres.ref:pw@aws-0-eu-west-1.pooler.supabase.com:5432/postgres\n`,
      );
      const session = check("--env-file", join(dir, "session.env"), "--no-probe");
      expect(session.code, JSON.stringify(session.json?.missing)).toBe(0); // advice, not a failure
      expect(detail(session, "DB_POOLER_URL (optional)")).toBeUndefined();
      expect(detail(session, "DB_POOLER_URL port")).toContain("transaction pooler listens on 6543");
    },
    120_000,
  );

  it("reports what is missing: a vault secret, a cron job, an env variable, a verify_jwt flag", async () => {
    const [saved] = await sql()`select decrypted_secret from vault.decrypted_secrets where name = 'cron_secret'`;
    await sql()`delete from vault.secrets where name = 'cron_secret'`;
    // As on hosted, postgres may read cron.job but changes a job only through pg_cron's functions.
    await sql()`select cron.alter_job(jobid, active := false) from cron.job where jobname = 'cleanup'`;
    try {
      writeFileSync(
        join(dir, "partial.env"),
        names.filter((n) => n !== "PAYSTACK_SECRET_KEY").map((n) => `${n}=${env(n)}`).join("\n") +
          "\nLITELLM_BASE_URL=not a url\n",
      );
      const toml = readFileSync("supabase/config.toml", "utf8").replace(
        /(\[functions\.checkout\]\s*\nverify_jwt = )false/,
        "$1true",
      );
      writeFileSync(join(dir, "config.toml"), toml);
      const r = check("--env-file", join(dir, "partial.env"), "--config", join(dir, "config.toml"), "--no-probe");
      expect(r.code).toBe(1);
      expect(r.json.ok).toBe(false);
      const missing = r.json.missing.join("\n");
      expect(missing).toContain("vault: secret cron_secret");
      expect(missing).toContain("cron: job cleanup (scheduled but inactive");
      expect(missing).toContain("env file: PAYSTACK_SECRET_KEY (missing)");
      expect(missing).toContain("env file: LITELLM_BASE_URL (malformed");
      expect(missing).toContain("verify_jwt: checkout = false (config.toml says true)");
      expect(r.json.missing).toHaveLength(5);
    } finally {
      await sql()`select vault.create_secret(${saved.decrypted_secret}, 'cron_secret')`;
      await sql()`select cron.alter_job(jobid, active := true) from cron.job where jobname = 'cleanup'`;
    }
    const env2 = names.map((n) => `${n}=${n === "CRON_SECRET" ? "a-different-secret-of-enough-length" : env(n)}`).join(
      "\n",
    );
    writeFileSync(join(dir, "other.env"), env2);
    const mismatch = check("--env-file", join(dir, "other.env"), "--no-probe");
    expect(mismatch.code).toBe(1);
    expect(mismatch.json.missing).toEqual([
      "vault: cron_secret equals CRON_SECRET of the env file (differ: the cron jobs would get 401 from provision-key, reconcile-spend and ops-sweep)",
    ]);
  }, 120_000);
});
