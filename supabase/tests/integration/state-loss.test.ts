// Issue 19: LiteLLM losing state. Its spend for a key going down (a restored or reset LiteLLM database) is a
// reset: no credit is given back, the max_budget pushed to LiteLLM drops by the lost spend so LiteLLM's own
// counter still stops the user at the right total, and the operator is told (admin view, health, alert).
// Keys deleted on LiteLLM are re-created with the same key value (operator command, or opt-in automatic).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  activeUser,
  adminCli as admin,
  alertSink,
  closeSql,
  invoke,
  keyOnLiteLLM,
  litellmAdmin,
  litellmApi,
  liveKey,
  reconcileNow,
  sql,
  type TestUser,
  usable,
  waitFor,
} from "./helpers.ts";

type User = TestUser & { key: string; keyId: string };

async function accountOf(u: User) {
  const { data, error } = await u.client.from("my_account").select("spent, remaining").single();
  if (error) throw new Error(error.message);
  return { spent: Number(data.spent), remaining: Number(data.remaining) };
}
const keyRow = async (u: User) =>
  (await sql()`select spend::text, spend_offset::text, private.key_target_budget(id)::text as target from public.api_keys where id = ${u.keyId}`)[
    0
  ];
const resetsOf = async (u: User) =>
  await sql()`select recorded_spend::text, litellm_spend::text, offset_after::text from public.admin_spend_resets where key_id = ${u.keyId} order by id`;
const health = async () =>
  (await invoke("health", {}, process.env.SUPABASE_SECRET_KEY ?? process.env.SUPABASE_SERVICE_ROLE_KEY)).body;

let sink: Awaited<ReturnType<typeof alertSink>>;
beforeAll(async () => {
  await litellmAdmin("/admin/down", { down: false });
  sink = await alertSink();
});
afterAll(async () => {
  await sink.close();
  await closeSql();
});

describe("spend restored lower on LiteLLM", () => {
  it(
    "one key: no credit regained, max_budget lowered by the lost spend, the reset recorded, health and an alert",
    async () => {
      const u = await activeUser("restore1"); // 2.00 sign-up credit
      await litellmAdmin("/admin/spend", { key: u.key, spend: 1.5 });
      await reconcileNow();
      expect(await accountOf(u)).toEqual({ spent: 1.5, remaining: 0.5 });

      expect(await litellmAdmin("/admin/restore-spend", { key: u.key, spend: 0.1 })).toEqual({ restored: 1 });
      expect((await keyOnLiteLLM(u.key)).spend).toBe(0.1);
      const run = await reconcileNow();
      expect(run.resets).toBeGreaterThanOrEqual(1);

      expect(await accountOf(u)).toEqual({ spent: 1.5, remaining: 0.5 });
      const k = await keyRow(u);
      expect([k.spend, k.spend_offset, Number(k.target)]).toEqual(["1.5", "1.4", 0.6]);
      const onLiteLLM = await keyOnLiteLLM(u.key);
      expect(onLiteLLM.max_budget).toBe(0.6); // 0.10 + 0.60 = 0.70 on LiteLLM's counter = 2.00 in total
      expect(await resetsOf(u)).toEqual([{ recorded_spend: "1.5", litellm_spend: "0.1", offset_after: "1.4" }]);

      const h = await health();
      expect(h.status).toBe("degraded");
      expect(h.attention.spend_resets).toBeGreaterThanOrEqual(1);
      expect(sink.received.some((m) => /less spend than recorded for \d+ key/.test(m.text))).toBe(true);

      // Spend after the restore counts on top of the offset; a second run finds nothing new.
      await litellmAdmin("/admin/spend", { key: u.key, spend: 0.3 });
      const again = await reconcileNow();
      expect(again.resets).toBe(0);
      expect(await accountOf(u)).toEqual({ spent: 1.7, remaining: 0.3 });
      expect(await resetsOf(u)).toHaveLength(1);

      const listed = admin("resets", "--json");
      expect(listed.code, listed.stderr).toBe(0);
      expect(listed.json.some((r: { key_id: string }) => r.key_id === u.keyId)).toBe(true);
    },
    60_000,
  );

  it("every key (an older backup): no user regains credit, each max_budget lowered, each reset recorded", async () => {
    const users = [await activeUser("restoreall1"), await activeUser("restoreall2")];
    await litellmAdmin("/admin/spend", { key: users[0].key, spend: 1.2 });
    await litellmAdmin("/admin/spend", { key: users[1].key, spend: 0.8 });
    await reconcileNow();
    const before = await Promise.all(users.map(accountOf));

    expect((await litellmAdmin("/admin/restore-spend", { fraction: 0.25 })).restored).toBeGreaterThanOrEqual(2);
    await reconcileNow();

    for (const [i, u] of users.entries()) {
      expect(await accountOf(u)).toEqual(before[i]);
      const k = await keyRow(u);
      const lost = Number(k.spend_offset);
      expect(lost).toBeCloseTo(before[i].spent * 0.75, 10);
      expect((await keyOnLiteLLM(u.key)).max_budget).toBeCloseTo(2 - lost, 10);
      expect(Number(k.target)).toBeCloseTo(2 - lost, 10);
      expect(await resetsOf(u)).toHaveLength(1);
    }
  }, 60_000);
});

describe("keys deleted on LiteLLM", () => {
  it(
    "one key deleted: health degraded; recreate brings back the same key value at the right budget; it serves a chat again",
    async () => {
      const u = await activeUser("deleted1"); // 2.00
      const alias = (await liveKey(u.id)).key_alias;
      await litellmAdmin("/admin/spend", { key: u.key, spend: 0.5 });
      await reconcileNow();
      expect((await litellmApi("/key/delete", { keys: [u.key] })).status).toBe(200);
      expect(await usable(u.key)).toBe(false);
      expect((await reconcileNow()).missing).toBeGreaterThanOrEqual(1);
      const h = await health();
      expect(h.status).toBe("degraded");
      expect(h.attention.flagged_keys.deleted_externally).toBeGreaterThanOrEqual(1);

      const r = admin("recreate", u.email, "--json");
      expect(r.code, r.stderr).toBe(0);
      expect(r.json).toMatchObject({ queued: 1, recreated: 1 });
      const info = await keyOnLiteLLM(u.key);
      expect(info).toMatchObject({ key_alias: alias, max_budget: 1.5, spend: 0 }); // 2.00 - the 0.50 LiteLLM lost with the key
      expect(await usable(u.key)).toBe(true);
      expect(await accountOf(u)).toEqual({ spent: 0.5, remaining: 1.5 });
      const [k] = await sql()`select status, flag, key_value from public.api_keys where id = ${u.keyId}`;
      expect(k).toEqual({ status: "active", flag: null, key_value: u.key });
    },
    60_000,
  );

  it("an empty LiteLLM: the automatic mode (opt-in) re-creates every key with its budget", async () => {
    const users = [await activeUser("empty1"), await activeUser("empty2")];
    await litellmAdmin("/admin/spend", { key: users[0].key, spend: 0.4 });
    await reconcileNow();
    await sql()`update private.settings set value = 'true' where key = 'recreate_missing_keys_automatically'`;
    try {
      await litellmAdmin("/admin/reset", {});
      expect(await keyOnLiteLLM(users[0].key)).toBeNull();
      expect((await reconcileNow()).recreated).toBeGreaterThanOrEqual(2);
      const expected = [1.6, 2];
      for (const [i, u] of users.entries()) {
        const info = await waitFor(
          async () => {
            const k = await keyOnLiteLLM(u.key);
            return k && k.max_budget === expected[i] ? k : null;
          },
          "the key re-created with its budget",
          30_000,
          300,
        );
        expect(info.spend).toBe(0);
        expect(await usable(u.key)).toBe(true);
      }
      expect(await accountOf(users[0])).toEqual({ spent: 0.4, remaining: 1.6 });
    } finally {
      await sql()`update private.settings set value = 'false' where key = 'recreate_missing_keys_automatically'`;
    }
  }, 90_000);
});

describe("keys edited by hand on LiteLLM", () => {
  it(
    "a hand-edited max_budget and a lifted dispute block are both repaired, each recorded with what was found",
    async () => {
      const u = await activeUser("handedit"); // 2.00
      const [c] = await sql()`select * from private.create_checkout(${u.id}, 'starter')`;
      await sql()`select * from private.apply_payment(${c.reference}, 'success', 500, 500, 'USD', 'test', 'test', 1, now())`;
      const [d] = await sql()`select blocked from private.apply_dispute(${
        Date.now() % 1_000_000_000
      }, ${c.reference}, 'create', null)`;
      expect(d.blocked).toBe(true);
      await reconcileNow(); // pushes the 12.00 target and the dispute's block
      expect(await keyOnLiteLLM(u.key)).toMatchObject({ max_budget: 12, blocked: true });
      const [{ before }] = await sql()`select now() as before`;

      expect((await litellmApi("/key/update", { key: u.key, max_budget: 99 })).status).toBe(200);
      expect((await litellmApi("/key/unblock", { key: u.key })).status).toBe(200);
      const run = await reconcileNow();
      expect(run.repairs).toBeGreaterThanOrEqual(1);
      expect(await keyOnLiteLLM(u.key)).toMatchObject({ max_budget: 12, blocked: true });

      const repairs = await sql()`select kind, found, set_to, outcome from public.admin_litellm_repairs
                                 where key_id = ${u.keyId} and created_at > ${before} order by kind`;
      expect(repairs).toEqual([
        { kind: "blocked", found: "false", set_to: "true", outcome: "pushed" },
        { kind: "max_budget", found: "99", set_to: "12.00", outcome: "pushed" },
      ]);
      const listed = admin("repairs", "--json");
      expect(listed.code, listed.stderr).toBe(0);
      expect(listed.json.filter((r: { key_id: string }) => r.key_id === u.keyId).length).toBeGreaterThanOrEqual(2);
    },
    60_000,
  );
});

describe("audit", () => {
  type Mismatch = { key_id: string; kind: string; ledger: string | null; litellm: string | null };
  const audit = () => admin("audit", "--json");
  const of = (r: ReturnType<typeof audit>, u: User) =>
    (r.json.mismatches as Mismatch[]).filter((m) => m.key_id === u.keyId).map(({ kind, ledger, litellm }) => ({
      kind,
      ledger,
      litellm,
    }));

  it(
    "keys in sync have no mismatch; each injected mismatch is named with its kind; totals; health shows the last audit",
    async () => {
      const a = await activeUser("audit1"); // 2.00
      const b = await activeUser("audit2");
      await reconcileNow();
      const clean = audit();
      expect(of(clean, a)).toEqual([]);
      expect(of(clean, b)).toEqual([]);
      expect(Object.keys(clean.json.totals).sort()).toEqual(
        ["credit_granted", "credit_sold", "outstanding_liability", "spend_on_litellm", "spend_recorded"],
      );
      expect(Number(clean.json.totals.credit_granted)).toBeGreaterThanOrEqual(4);

      // Behind our back: a's budget, spend and block state change on LiteLLM; b's key is deleted.
      expect((await litellmApi("/key/update", { key: a.key, max_budget: 99 })).status).toBe(200);
      await litellmAdmin("/admin/spend", { key: a.key, spend: 0.25 });
      expect((await litellmApi("/key/block", { key: a.key })).status).toBe(200);
      expect((await litellmApi("/key/delete", { keys: [b.key] })).status).toBe(200);
      const found = audit();
      expect(found.code).toBe(1);
      expect(of(found, a)).toEqual([
        { kind: "blocked", ledger: "false", litellm: "true" },
        { kind: "max_budget", ledger: "2.00", litellm: "99" },
        { kind: "spend", ledger: "0", litellm: "0.25" },
      ]);
      expect(of(found, b)).toEqual([{ kind: "missing", ledger: null, litellm: null }]);
      expect(found.json.by_kind.missing).toBeGreaterThanOrEqual(1);
      expect((await health()).last_audit.mismatches).toBe(found.json.mismatches.length);
      // the audit changed nothing
      expect(await keyOnLiteLLM(a.key)).toMatchObject({ max_budget: 99, blocked: true });

      // Put back what was done by hand, so no flag is left for other tests.
      expect((await litellmApi("/key/unblock", { key: a.key })).status).toBe(200);
      await reconcileNow();
      expect(admin("recreate", b.email, "--json").code).toBe(0);
      await reconcileNow();
      const after = audit();
      expect(of(after, a)).toEqual([]);
      expect(of(after, b)).toEqual([]);
    },
    90_000,
  );
});

describe("operator", () => {
  it("acknowledged by an operator: health stops counting them", async () => {
    const ack = admin("resets", "--ack", "--json");
    expect(ack.code, ack.stderr).toBe(0);
    expect(ack.json.acknowledged).toBeGreaterThanOrEqual(1);
    expect((await health()).attention.spend_resets).toBe(0);
    expect(admin("resets", "--json").json).toEqual([]);
  });
});
