// Money in TypeScript is a decimal string ("12.5", "0.00012345"), never a float: the database hands numerics
// over as strings (_shared/db.ts), and LiteLLM's JSON numbers are turned into the exact decimal of the
// double LiteLLM sent as soon as they are parsed (_shared/litellm.ts). Money is compared here exactly (as
// integers scaled to a common number of decimals) or in SQL, and sent to LiteLLM as the same digits.

export const DECIMAL_TEXT = /^-?\d+(\.\d+)?$/;

/** A decimal string, or an error naming what was not one. */
export function decimal(text: string): string {
  if (!DECIMAL_TEXT.test(text)) throw new TypeError(`not a decimal amount: ${JSON.stringify(text)}`);
  return text;
}

/**
 * The exact decimal of a JSON number (a double): the shortest digits that parse back to it, which are the
 * digits the sender's float printed (Python's repr and JavaScript's String agree on them), written out
 * without an exponent. "1e-7" -> "0.0000001".
 */
export function decimalOfNumber(n: number): string {
  if (!Number.isFinite(n)) throw new TypeError(`not a finite amount: ${n}`);
  const s = String(n);
  const m = /^(-?)(\d+)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (!m) return s;
  const [, sign, int, frac = "", exp] = m;
  const digits = int + frac;
  const point = int.length + parseInt(exp, 10);
  if (point <= 0) return `${sign}0.${"0".repeat(-point)}${digits}`;
  if (point >= digits.length) return sign + digits + "0".repeat(point - digits.length);
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/**
 * Integer subunits (Paystack's amounts) as the exact decimal in major units, with exactly `exponent`
 * decimals: (150050, 2) -> "1500.50", (7, 2) -> "0.07". No float is involved.
 */
export function fromSubunits(subunits: number | bigint | string, exponent: number): string {
  if (!Number.isInteger(exponent) || exponent < 0) throw new TypeError(`not an exponent: ${exponent}`);
  const v = BigInt(subunits); // throws on a non-integer
  const digits = (v < 0n ? -v : v).toString().padStart(exponent + 1, "0");
  const out = exponent === 0 ? digits : `${digits.slice(0, -exponent)}.${digits.slice(-exponent)}`;
  return v < 0n ? `-${out}` : out;
}

function scaled(text: string, places: number): bigint {
  const [int, frac = ""] = decimal(text).replace("-", "").split(".");
  const v = BigInt(int + frac.padEnd(places, "0"));
  return text.startsWith("-") ? -v : v;
}

function places(...texts: string[]): number {
  return Math.max(...texts.map((t) => (t.split(".")[1] ?? "").length));
}

/** -1, 0 or 1 as a < b, a = b, a > b, exactly ("12" equals "12.00"). */
export function compareMoney(a: string, b: string): -1 | 0 | 1 {
  const p = places(a, b);
  const d = scaled(a, p) - scaled(b, p);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

export const sameMoney = (a: string, b: string): boolean => compareMoney(a, b) === 0;

/** Rounded half away from zero to `digits` decimals, exactly: formatMoney("2.305") = "2.31". */
export function formatMoney(text: string, digits = 2): string {
  const p = Math.max(places(text), digits);
  const v = scaled(text, p);
  const unit = 10n ** BigInt(p - digits);
  const abs = v < 0n ? -v : v;
  let q = abs / unit;
  if ((abs % unit) * 2n >= unit) q += 1n;
  const s = q.toString().padStart(digits + 1, "0");
  const out = digits === 0 ? s : `${s.slice(0, -digits)}.${s.slice(-digits)}`;
  return v < 0n && q !== 0n ? `-${out}` : out;
}

/**
 * JSON text in which `money` fields are written as JSON numbers with exactly their decimal digits (LiteLLM
 * wants a number for max_budget; going through a float could change the digits).
 */
export function jsonWithMoney(body: Record<string, unknown>, money: Record<string, string>): string {
  const rest = JSON.stringify(body);
  const fields = Object.entries(money).map(([k, v]) => `${JSON.stringify(k)}:${decimal(v)}`).join(",");
  if (!fields) return rest;
  return rest === "{}" ? `{${fields}}` : `${rest.slice(0, -1)},${fields}}`;
}
