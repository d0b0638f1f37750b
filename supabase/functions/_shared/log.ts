// The one logger: JSON lines, with every LiteLLM key, Paystack or Supabase secret, Paystack authorization code
// and email masked, whatever message or field they appear in.

const KEY = /\bsk-[A-Za-z0-9_-]{4,}/g;
const PAYSTACK_SECRET = /\bsk_(test|live)_[A-Za-z0-9]+/g;
const SUPABASE_SECRET = /\bsb_secret_[A-Za-z0-9_-]+/g;
const RESEND_KEY = /\bre_[A-Za-z0-9_]{8,}/g; // an email API key (Resend's format)
const BEARER = /\b(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}/gi;
const EMAIL = /\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b/g;
const HEX_TOKEN = /\b[a-f0-9]{64}\b/g;
const PAYSTACK_AUTHORIZATION = /\bAUTH_[A-Za-z0-9]+/g; // a saved card's charge code

/** sk-abcdef...wxyz -> sk-...wxyz; emails -> a***@example.com; bearer tokens and hashes hidden. */
export function mask(text: string): string {
  return text
    .replace(KEY, (k) => `sk-...${k.slice(-4)}`)
    .replace(PAYSTACK_SECRET, (_m, mode) => `sk_${mode}_***`)
    .replace(SUPABASE_SECRET, "sb_secret_***")
    .replace(RESEND_KEY, "re_***")
    .replace(BEARER, "$1***")
    .replace(HEX_TOKEN, (h) => `${h.slice(0, 6)}...`)
    .replace(PAYSTACK_AUTHORIZATION, "AUTH_***")
    .replace(EMAIL, "$1***@$2");
}

export function maskKey(key: string | null | undefined): string {
  if (!key) return "";
  return key.startsWith("sk-") ? `sk-...${key.slice(-4)}` : mask(key);
}

type Level = "debug" | "info" | "warn" | "error";

function emit(level: Level, msg: string, fields: Record<string, unknown> = {}) {
  const line = mask(
    JSON.stringify(
      { ts: new Date().toISOString(), level, msg, ...fields },
      (_k, v) => v instanceof Error ? { name: v.name, message: v.message } : v,
    ),
  );
  if (level === "error" || level === "warn") console.error(line);
  else console.log(line);
}

export const log = {
  debug: (msg: string, f?: Record<string, unknown>) => Deno.env.get("LOG_LEVEL") === "debug" && emit("debug", msg, f),
  info: (msg: string, f?: Record<string, unknown>) => emit("info", msg, f),
  warn: (msg: string, f?: Record<string, unknown>) => emit("warn", msg, f),
  error: (msg: string, f?: Record<string, unknown>) => emit("error", msg, f),
};
