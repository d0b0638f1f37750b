// Issue 13: one lock order everywhere (private.lock_user, migration 20261126000200). Every function that changes a user's
// money or keys takes the user's lock first, so rotation steps, payments and credit adjustments of one
// user, run at the same moment from separate connections, queue up instead of deadlocking.
//
// Each try forces the interleaving that deadlocked when start_key_rotation locked the key then the
// rotation while rotation_retire_old locked the rotation then the key: a third connection holds the key
// row, start_key_rotation queues behind it, rotation_retire_old queues next, the key is released. Then all
// steps of the rotation, a payment and a credit adjustment are fired at once. 100 tries, no deadlock.
import postgres from "postgres";
import { afterAll, beforeAll, expect, it } from "vitest";
import { closeSql, env, sql, uniqueEmail, waitFor } from "./helpers.ts";

const conns: postgres.Sql[] = [];
const connect = () => {
  const c = postgres(env("SUPABASE_DB_URL"), { max: 1, onnotice: () => {} });
  conns.push(c);
  return c;
};
const pidOf = async (c: postgres.Sql) => (await c`select pg_backend_pid() as pid`)[0].pid as number;

/** Resolves once the backend waits for a lock (proof that the calls really queue in this order). */
async function waitingForLock(pid: number) {
  await waitFor(
    async () => {
      const [a] = await sql()`select wait_event_type from pg_stat_activity where pid = ${pid}`;
      return a?.wait_event_type === "Lock";
    },
    `backend ${pid} to wait for a lock`,
    10_000,
    5,
  );
}

/** Runs a call; a deadlock (40P01) fails the test, an orderly refusal of a step done out of turn does not. */
async function settle(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (e) {
    const err = e as { code?: string; hint?: string; message: string };
    if (err.code === "40P01") throw new Error(`deadlock: ${err.message}`);
    if (err.code === "P0001" && err.hint === "wrong_state") return "wrong_state";
    throw e;
  }
}

let userId: string;
beforeAll(async () => {
  userId = crypto.randomUUID();
  // A user whose key is active without LiteLLM (the SQL steps alone; no provisioning call queued).
  await sql().begin(async (tx) => {
    await tx`insert into auth.users (id, email, aud, role, created_at, email_confirmed_at) values (${userId}, ${
      uniqueEmail("lockorder")
    }, 'authenticated', 'authenticated', now(), now())`;
    await tx`delete from net.http_request_queue where url like '%/functions/v1/provision-key'`;
  });
  await sql()`select private.complete_provisioning(j.id, 1, 2.00) from private.provisioning_jobs j where j.user_id = ${userId}`;
  await sql()`update private.settings set value = '0' where key = 'rotation_settle_seconds'`;
});
afterAll(async () => {
  await sql()`update private.settings set value = '20' where key = 'rotation_settle_seconds'`;
  await Promise.all(conns.map((c) => c.end({ timeout: 5 })));
  await closeSql();
});

it("concurrent rotation steps, payments and adjustments of one user: no deadlock over 100 tries", async () => {
  const [holder, starter, retirer, ...others] = Array.from({ length: 7 }, connect);
  await Promise.all(conns.map((c) => c`select 1`));
  const [starterPid, retirerPid] = [await pidOf(starter), await pidOf(retirer)];
  for (let i = 0; i < 100; i++) {
    const [{ rotation_id: rot }] =
      await sql()`select rotation_id from private.start_key_rotation(${userId}, 'vitest', false)`;
    await sql()`select private.rotation_block_intent(${rot})`;
    await sql()`select private.rotation_old_blocked(${rot})`;
    const [{ old_key_id: oldKey }] = await sql()`select old_key_id from private.key_rotations where id = ${rot}`;

    // The interleaving: key row held; start_key_rotation waits; rotation_retire_old waits after it.
    let release!: () => void;
    let locked!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const isLocked = new Promise<void>((r) => (locked = r));
    const held = holder.begin(async (tx) => {
      await tx`select 1 from public.api_keys where id = ${oldKey} for update`;
      locked();
      await released;
    });
    await isLocked;
    const start = settle(starter`select * from private.start_key_rotation(${userId}, 'vitest', false)`);
    await waitingForLock(starterPid);
    const retire = settle(retirer`select * from private.rotation_retire_old(${rot}, 0.01)`);
    await waitingForLock(retirerPid);
    release();
    await held;
    expect(await Promise.all([start, retire])).toEqual(["ok", "ok"]);

    // Everything else at once, each on its own connection.
    const [{ reference }] = await sql()`select reference from private.create_checkout(${userId}, 'starter')`;
    const [{ target }] =
      await sql()`select private.key_target_budget(new_key_id)::text as target from private.key_rotations where id = ${rot}`;
    const results = await Promise.all([
      settle(others[0]`select * from private.rotation_new_key_active(${rot}, ${target})`),
      settle(others[1]`select private.rotation_finish(${rot})`),
      settle(
        others[2]`select * from private.apply_payment(${reference}, 'success', 500, 500, 'USD', 'test', 'test', ${
          i + 1
        }, now())`,
      ),
      settle(others[3]`select * from private.adjust_credit(${userId}, 0.01, 'lock order test', 'vitest')`),
    ]);
    expect([results[0], results[2], results[3]]).toEqual(["ok", "ok", "ok"]); // finish may come first: refused in order
    // Finish the rotation if its last step ran before activation (it was refused, in order).
    await sql()`select private.rotation_finish(${rot})`;
  }
  const [{ n, done }] = await sql()`select count(*)::int as n, count(*) filter (where state = 'done')::int as done
                                      from private.key_rotations where user_id = ${userId}`;
  expect([n, done]).toEqual([100, 100]);
  const [{ live }] =
    await sql()`select count(*)::int as live from public.api_keys where user_id = ${userId} and status <> 'retired'`;
  expect(live).toBe(1);
  // 100 payments of 10.00 and 100 adjustments of 0.01, each exactly once.
  const [{ total }] =
    await sql()`select sum(amount)::text as total from public.credit_ledger where user_id = ${userId}`;
  expect(total).toBe("1003.00");
}, 240_000);
