// Issue 3: one payment applied from 20 concurrent database connections is credited exactly once.
import postgres from "postgres";
import { afterAll, expect, it } from "vitest";
import { closeSql, env, sql, uniqueEmail } from "./helpers.ts";

afterAll(closeSql);

it("apply_payment from 20 concurrent connections: one ledger row, one payment", async () => {
  const userId = crypto.randomUUID();
  await sql()`insert into auth.users (id, email, aud, role, created_at, email_confirmed_at) values (${userId}, ${
    uniqueEmail("race")
  }, 'authenticated', 'authenticated', now(), now())`;
  const [c] = await sql()`select * from private.create_checkout(${userId}, 'pro')`;
  const conns = Array.from({ length: 20 }, () => postgres(env("SUPABASE_DB_URL"), { max: 1, onnotice: () => {} }));
  try {
    // Open every connection first so the calls really overlap.
    await Promise.all(conns.map((db) => db`select 1`));
    const results = await Promise.all(conns.map((db) =>
      db`select outcome, is_new, target_max_budget::text as target
           from private.apply_payment(${c.reference}, 'success', 1500, 1500, 'USD', 'test', 'test', 77, now())`
    ));
    const rows = results.map((r) => r[0]);
    expect(rows.filter((r) => r.outcome === "credited" && r.is_new)).toHaveLength(1);
    expect(rows.filter((r) => r.outcome === "duplicate" && !r.is_new)).toHaveLength(19);
    // Every caller, first or not, is told the same absolute target.
    expect(new Set(rows.map((r) => r.target))).toEqual(new Set(["32.00"]));
  } finally {
    await Promise.all(conns.map((db) => db.end({ timeout: 5 })));
  }
  const payments = await sql()`select * from public.payments where reference = ${c.reference}`;
  expect(payments).toHaveLength(1);
  const purchases =
    await sql()`select amount::text from public.credit_ledger where user_id = ${userId} and kind = 'purchase'`;
  expect(purchases).toEqual([{ amount: "30.00" }]);
});
