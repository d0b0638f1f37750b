// `npm run admin -- promo create|list|disable`: thin calls of the promo SQL (migration 20261202000900).
//   promo create <CODE> <amount> [--days N | --expires-on YYYY-MM-DD] [--max-redemptions N] [--note "..."]
//   promo list
//   promo disable <CODE>
import type postgres from "postgres";

const positiveInt = (v: string | boolean | undefined, name: string, usage: (m: string) => never) => {
  if (v === undefined) return null;
  if (typeof v !== "string" || !/^[1-9]\d{0,6}$/.test(v)) usage(`--${name} must be a whole number from 1`);
  return Number(v);
};

/** Runs one promo command; returns what to print (rows, or the changed code). */
export async function promo(
  sql: postgres.Sql,
  args: string[],
  flags: Record<string, string | boolean>,
  by: string,
  usage: (message: string) => never,
): Promise<{ rows: Record<string, unknown>[]; message: string }> {
  const [verb, ...rest] = args;
  if (verb === "list") {
    if (rest.length) usage("promo list takes no arguments");
    const rows = await sql`select * from public.admin_promo_codes order by created_at desc, code`;
    return { rows, message: "no promo codes" };
  }
  if (verb === "create") {
    const [code, amount] = rest;
    if (rest.length !== 2 || !/^\d{1,7}(\.\d{1,2})?$/.test(amount)) {
      usage("promo create <CODE> <amount in USD, e.g. 5 or 2.50> [--days N | --expires-on YYYY-MM-DD]");
    }
    const on = flags["expires-on"];
    if (on !== undefined && (typeof on !== "string" || !/^\d{4}-\d{2}-\d{2}$/.test(on))) {
      usage("--expires-on must be a date, YYYY-MM-DD");
    }
    const rows = await sql`
      select * from private.create_promo_code(${code}, ${amount}::numeric, ${on ?? null}::date,
        ${positiveInt(flags.days, "days", usage)}::int, ${
      positiveInt(flags["max-redemptions"], "max-redemptions", usage)
    }::int,
        ${typeof flags.note === "string" ? flags.note : null}, ${by})`;
    return { rows, message: "" };
  }
  if (verb === "disable") {
    if (rest.length !== 1) usage("promo disable <CODE>");
    const rows = await sql`select * from private.disable_promo_code(${rest[0]})`;
    return { rows, message: "" };
  }
  usage("promo create|list|disable (see `npm run admin -- help`)");
}
