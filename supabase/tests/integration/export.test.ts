// The operator's ledger export (`npm run admin -- export ledger`, scripts/admin-export.ts) on a small seeded
// set: CSV and JSONL on stdout with the documented columns, the date and user filters, running balances
// that keep earlier history, and the totals per entry type and per currency on stderr.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminCli, closeSql, sql, uniqueEmail } from "./helpers.ts";

afterAll(closeSql);

// Dates no other test writes: the seeded rows are the only ones in the range.
const users: { a: string; b: string; emailA: string } = { a: "", b: "", emailA: "" };

beforeAll(async () => {
  const db = sql();
  const emailA = uniqueEmail("export-a");
  const [a, b] = await db<{ id: string }[]>`
    insert into auth.users (id, email, aud, role, email_confirmed_at)
    values (gen_random_uuid(), ${emailA}, 'authenticated', 'authenticated', now()),
           (gen_random_uuid(), ${uniqueEmail("export-b")}, 'authenticated', 'authenticated', now())
    returning id`;
  const [{ id: paymentId }] = await db<{ id: string }[]>`
    insert into public.payments (reference, user_id, plan_code, amount_subunits, currency, credit, charged_subunits,
                                 exponent, usd_value, merchant_name, paid_at, created_at)
    values (${`vitest-export-${b.id}`}, ${b.id}, 'starter', 500, 'USD', 10.00, 500, 2, 5.00, 'vitest', '2020-01-11T09:00:00Z',
            '2020-01-11T09:00:00Z')
    returning id`;
  await db`
    insert into public.credit_ledger (user_id, kind, amount, payment_id, reason, idempotency_key, created_at) values
      (${a.id}, 'adjustment', 1.00, null, 'vitest export one', ${`vx1-${a.id}`}, '2020-01-10T12:00:00Z'),
      (${a.id}, 'adjustment', 2.50, null, 'vitest, "quoted"', ${`vx2-${a.id}`}, '2020-01-11T12:00:00Z'),
      (${a.id}, 'adjustment', -0.75, null, 'vitest export three', ${`vx3-${a.id}`}, '2020-01-12T12:00:00Z'),
      (${b.id}, 'adjustment', 4.00, null, 'vitest export four', ${`vx4-${b.id}`}, '2020-01-11T08:00:00Z'),
      (${b.id}, 'purchase', 10.00, ${paymentId}, null, ${`vx5-${b.id}`}, '2020-01-11T09:00:00Z')`;
  Object.assign(users, { a: a.id, b: b.id, emailA });
});

describe("admin export ledger", () => {
  it("CSV: header, every entry of the range in user then ledger order, totals on stderr", async () => {
    const r = adminCli("export", "ledger", "--from", "2020-01-10", "--to", "2020-01-12");
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split("\r\n").filter(Boolean);
    expect(lines[0]).toBe(
      "user_id,email,date,entry_type,description,reference,amount_usd,currency,amount_paid,balance_usd",
    );
    const mine = lines.slice(1).filter((l) => l.startsWith(users.a) || l.startsWith(users.b));
    expect(mine).toHaveLength(lines.length - 1); // nobody else has entries in 2020
    const a = mine.filter((l) => l.startsWith(users.a)).map((l) => l.split(",").slice(2));
    expect(a).toEqual([
      ["2020-01-10", "adjustment", "vitest export one", "", "1.00", "", "", "1.00"],
      ["2020-01-11", "adjustment", '"vitest', ' ""quoted"""', "", "2.50", "", "", "3.50"],
      ["2020-01-12", "adjustment", "vitest export three", "", "-0.75", "", "", "2.75"],
    ]);
    expect(mine.filter((l) => l.startsWith(users.b)).map((l) => l.split(",").slice(3, 10))).toEqual([
      ["adjustment", "vitest export four", "", "4.00", "", "", "4.00"],
      ["purchase", "Starter pack", `vitest-export-${users.b}`, "10.00", "USD", "5.00", "14.00"],
    ]);
    expect(r.stderr).toContain("exported 5 ledger entries (2020-01-10 to 2020-01-12)");
    expect(r.stderr).toMatch(/adjustment\t4\t6\.75\n/);
    expect(r.stderr).toMatch(/purchase\t1\t10\.00\n/);
    expect(r.stderr).toMatch(/totals per currency \(paid\):\n {2}USD\t1\t5\.00/);
  });

  it("JSONL for one user (by email) and one day: the balance keeps the earlier history", async () => {
    const r = adminCli(
      "export",
      "ledger",
      "--from",
      "2020-01-11",
      "--to",
      "2020-01-11",
      "--user",
      users.emailA,
      "--format",
      "jsonl",
    );
    expect(r.code, r.stderr).toBe(0);
    const rows = r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l));
    expect(rows).toEqual([{
      user_id: users.a,
      email: users.emailA,
      date: "2020-01-11",
      entry_type: "adjustment",
      description: 'vitest, "quoted"',
      reference: null,
      amount_usd: "2.50",
      currency: null,
      amount_paid: null,
      balance_usd: "3.50",
    }]);
    expect(r.stderr).toContain("exported 1 ledger entries");
  });

  it("bad arguments: exit 2, nothing on stdout", () => {
    for (
      const args of [["--from", "2020-13-01", "--to", "2020-01-12"], ["--from", "2020-01-12", "--to", "2020-01-10"], [
        "--from",
        "2020-01-10",
        "--to",
        "2020-01-12",
        "--format",
        "xml",
      ]]
    ) {
      const r = adminCli("export", "ledger", ...args);
      expect([r.code, r.stdout]).toEqual([2, ""]);
    }
  });
});
