// Exact money formatting. Postgres numerics reach us as decimal strings (we select them ::text) or, from
// other callers, as JSON numbers; either way they are turned into integer micro-cents (BigInt) before any
// arithmetic or rounding, so no float drift ever shows up on screen (0.1 + 0.2 stays 0.30).

const SCALE = 12n; // fractional digits kept: far below a cent, so truncation there never shows
const ONE = 10n ** SCALE;
const CENT = ONE / 100n;

/** A decimal (string like "12.50", "-3", "1.5e-7", or a number) as an integer count of 10^-12 units. */
export function units(v: unknown): bigint {
  if (typeof v === "bigint") return v * ONE;
  const s = typeof v === "number" ? (Number.isFinite(v) ? String(v) : "0") : String(v ?? "0").trim();
  const m = /^([+-])?(\d*)(?:\.(\d*))?(?:e([+-]?\d+))?$/i.exec(s);
  if (!m || (m[2] === "" && (m[3] ?? "") === "")) return 0n;
  const [, sign, int, frac = "", exp = "0"] = m;
  const shift = BigInt(exp) - BigInt(frac.length) + SCALE; // digits * 10^shift
  let n = BigInt((int || "0") + frac);
  n = shift >= 0n ? n * 10n ** shift : n / 10n ** -shift;
  return sign === "-" ? -n : n;
}

/** Rounded half away from zero to whole cents. */
export function cents(v: unknown): bigint {
  const u = units(v);
  const abs = u < 0n ? -u : u;
  const c = (abs + CENT / 2n) / CENT;
  return u < 0n ? -c : c;
}

function symbol(currency: string): string {
  return currency === "USD" ? "$" : `${currency} `;
}

function group(int: bigint): string {
  return int.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** "$12.00", "-$1.25", "$1,234.50"; `tiny: true` shows a non-zero amount under half a cent as "< $0.01". */
export function money(v: unknown, opts: { currency?: string; tiny?: boolean } = {}): string {
  const sym = symbol(opts.currency ?? "USD");
  const u = units(v);
  const c = cents(v);
  if (opts.tiny && u !== 0n && c === 0n) return u > 0n ? `< ${sym}0.01` : `> -${sym}0.01`;
  const abs = c < 0n ? -c : c;
  return `${c < 0n ? "-" : ""}${sym}${group(abs / 100n)}.${(abs % 100n).toString().padStart(2, "0")}`;
}

/**
 * Integer subunits as the exact decimal in major units, with `exponent` fraction digits (Paystack amounts:
 * 150000 NGN subunits, exponent 2 -> "1500.00"; exponent 0 -> "1500"). String arithmetic only.
 */
export function majorUnits(n: number | string | bigint, exponent: number): string {
  const c = BigInt(String(n).split(".")[0] || "0");
  const digits = (c < 0n ? -c : c).toString().padStart(exponent + 1, "0");
  const int = digits.slice(0, digits.length - exponent);
  return `${c < 0n ? "-" : ""}${int}${exponent > 0 ? `.${digits.slice(-exponent)}` : ""}`;
}

const formats = new Map<string, Intl.NumberFormat>();
function format(locale: string | undefined, currency: string, digits: number): Intl.NumberFormat {
  const id = `${locale ?? ""}|${currency}|${digits}`;
  let f = formats.get(id);
  if (!f) {
    const fraction = digits < 0 ? {} : { minimumFractionDigits: digits, maximumFractionDigits: digits };
    f = new Intl.NumberFormat(locale, { style: "currency", currency, currencyDisplay: "narrowSymbol", ...fraction });
    formats.set(id, f);
  }
  return f;
}

/**
 * A Paystack amount in its own currency for the reader's locale: "₦7,500.00", "$5.00", "GH₵75.50". Intl
 * formats the exact decimal string (ECMA-402 takes a string as an exact decimal) with the amount's subunit
 * digits, the narrow symbol (so a browser set to English (US) still shows ₦ rather than "NGN"), and the
 * locale's separators. Paystack counts XOF and RWF in hundredths too, though they have no minor unit (ISO
 * 4217): whole amounts of such a currency show without ".00"; a non-zero subunit is never hidden.
 */
export function price(n: number | string | bigint, currency: string, exponent: number, locale?: string): string {
  const exact = majorUnits(n, exponent);
  const iso = format(locale, currency, -1).resolvedOptions().maximumFractionDigits ?? exponent;
  const whole = iso < exponent && /^0+$/.test(exact.slice(exact.length - (exponent - iso)));
  // The string overload is ES2023 (Intl.NumberFormat v3); TypeScript's es2022 lib only knows number | bigint.
  return format(locale, currency, whole ? iso : exponent).format(exact as unknown as number);
}

/** A display-only ratio (bar widths, chart heights): a / b clamped to [0, 1]. */
export function ratio(a: unknown, b: unknown): number {
  const ua = units(a), ub = units(b);
  if (ub <= 0n || ua <= 0n) return 0;
  if (ua >= ub) return 1;
  return Number((ua * 1_000_000n) / ub) / 1_000_000;
}

export const isPositive = (v: unknown) => units(v) > 0n;
export const isZero = (v: unknown) => units(v) === 0n;
