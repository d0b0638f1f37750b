// The one config loader: every function reads its environment through here, validated with zod, so a
// missing or malformed variable is one clear error naming the variable (not a crash deep in a call).
import { isIP } from "node:net";
import { z } from "zod";
import { PAYSTACK_WEBHOOK_IPS } from "./paystack-ips.ts";

const url = z.string().url();
const unsetIfEmpty = (v: unknown) => (v === "" ? undefined : v);
/**
 * An optional variable whose text `parse` turns into a value (undefined or a throw: malformed, reported
 * with `message`); unset or empty is undefined.
 */
const optionalParsed = <T>(parse: (text: string) => T | undefined, message: string) =>
  z.preprocess(
    unsetIfEmpty,
    z.string().transform((text, ctx) => {
      let v: T | undefined;
      try {
        v = parse(text);
      } catch { /* reported below */ }
      if (v !== undefined) return v;
      ctx.addIssue({ code: "custom", message });
      return z.NEVER;
    }).optional(),
  );
/** SUPABASE_PUBLISHABLE_KEYS / SUPABASE_SECRET_KEYS: a JSON dictionary of named keys, e.g. {"default":"sb_secret_..."}. */
const namedKeys = optionalParsed((text) => {
  const v = JSON.parse(text);
  const ok = v && typeof v === "object" && !Array.isArray(v) &&
    Object.values(v).every((k) => typeof k === "string" && k !== "");
  return ok ? v as Record<string, string> : undefined;
}, 'must be a JSON object of named keys, e.g. {"default":"sb_..."}');
/** SUPABASE_JWKS: {"keys":[...]} (or a bare array of JWKs). */
const jwks = optionalParsed((text) => {
  const v = JSON.parse(text);
  const keys = Array.isArray(v) ? v : v?.keys;
  return Array.isArray(keys) && keys.every((k) => k && typeof k === "object")
    ? { keys: keys as Record<string, unknown>[] }
    : undefined;
}, 'must be a JSON Web Key Set, {"keys":[...]}');
const optionalKey = z.preprocess(unsetIfEmpty, z.string().min(1).optional());
/** PAYSTACK_WEBHOOK_ALLOWED_IPS: unset = off; "paystack" = Paystack's documented addresses; else a comma list of IPs. */
const allowedIps = optionalParsed((text) => {
  if (text.trim().toLowerCase() === "paystack") return [...PAYSTACK_WEBHOOK_IPS];
  const ips = text.split(",").map((s) => s.trim()).filter(Boolean);
  return ips.length && ips.every((ip) => isIP(ip)) ? ips : undefined;
}, 'must be "paystack" or a comma-separated list of IP addresses');

const schema = z.object({
  SUPABASE_URL: url,
  SUPABASE_DB_URL: z.string().min(1),
  // API keys as hosted Supabase injects them: the new keys (JSON dictionaries) and the legacy JWT-based
  // keys, either of which may be absent (new projects may have no legacy keys; old ones no new keys).
  SUPABASE_PUBLISHABLE_KEYS: namedKeys,
  SUPABASE_SECRET_KEYS: namedKeys,
  SUPABASE_JWKS: jwks,
  SUPABASE_ANON_KEY: optionalKey,
  SUPABASE_SERVICE_ROLE_KEY: optionalKey,
  CRON_SECRET: z.string().min(16, "must be at least 16 characters"),
  LITELLM_BASE_URL: url,
  LITELLM_MASTER_KEY: z.string().min(1),
  LITELLM_TIMEOUT_MS: z.coerce.number().int().positive().default(5000),
  LITELLM_MAX_RETRIES: z.coerce.number().int().min(0).max(5).default(2),
  LITELLM_BREAKER_THRESHOLD: z.coerce.number().int().positive().default(5),
  LITELLM_BREAKER_COOLDOWN_MS: z.coerce.number().int().positive().default(30_000),
  PAYSTACK_BASE_URL: url.default("https://api.paystack.co"),
  PAYSTACK_SECRET_KEY: z.string().regex(
    /^sk_(test|live)_/,
    "must be a Paystack secret key (sk_test_... or sk_live_...)",
  ),
  PAYSTACK_TIMEOUT_MS: z.coerce.number().int().positive().default(8000),
  PAYSTACK_CALLBACK_URL: url.optional(),
  // Hosted: the transaction pooler's URL (Supavisor, port 6543). Unset: SUPABASE_DB_URL (direct). A
  // function secret may not start with SUPABASE_ (reserved), hence the name. See _shared/db.ts.
  DB_POOLER_URL: z.preprocess(unsetIfEmpty, z.string().url().optional()),
  // Connections per isolate (each hosted isolate holds its own pool): see _shared/db.ts for the number.
  DB_POOL_MAX: z.coerce.number().int().positive().default(3),
  // Abuse controls at the webhook's door (README "Abuse controls"): the largest body accepted (Paystack's
  // events are a few KB), and an optional allow-list of source IPs (off unless set).
  PAYSTACK_WEBHOOK_MAX_BYTES: z.coerce.number().int().min(1024).default(65536),
  PAYSTACK_WEBHOOK_ALLOWED_IPS: allowedIps,
  // The request header that carries the caller's IP (first entry), for checkout's per-IP limit and the allow-list.
  CLIENT_IP_HEADER: z.string().regex(/^[A-Za-z0-9-]+$/, "must be a header name").transform((h) => h.toLowerCase())
    .default("x-forwarded-for"),
  // Low-balance alerts (Slack-compatible incoming webhook). Unset: alerts are recorded, not sent. A vault
  // secret named alert_webhook_url, when present, wins (changeable without a redeploy).
  // Shared with LiteLLM's generic API logging callback (Authorization: Bearer <secret>); unset = off.
  LITELLM_CALLBACK_SECRET: z.preprocess(unsetIfEmpty, z.string().min(16, "must be at least 16 characters").optional()),
  ALERT_WEBHOOK_URL: z.preprocess(unsetIfEmpty, url.optional()),
  ALERT_WEBHOOK_TIMEOUT_MS: z.coerce.number().int().positive().default(5000),
  // Notification emails (_shared/email.ts): an HTTP email API shaped like Resend's (POST <url>/emails).
  // Without EMAIL_API_KEY and EMAIL_FROM no email is attempted: notifications stay in the dashboard.
  EMAIL_API_URL: z.preprocess(unsetIfEmpty, url.default("https://api.resend.com")),
  EMAIL_API_KEY: optionalKey,
  EMAIL_FROM: optionalKey, // e.g. "Credits <billing@example.com>", a sender the provider has verified
  EMAIL_API_TIMEOUT_MS: z.coerce.number().int().positive().default(8000),
  // The dashboard's public URL: the notifications' '#/...' links become absolute in emails. Unset: no link.
  DASHBOARD_URL: z.preprocess(unsetIfEmpty, url.optional()),
});

/** The schema itself, for scripts/deploy-check.ts (which env names a deploy needs). */
export const configSchema = schema;

/** Set by hosted Supabase for every function: never put them in `supabase secrets set`. */
export const PLATFORM_INJECTED = [
  "SUPABASE_URL",
  "SUPABASE_DB_URL",
  "SUPABASE_PUBLISHABLE_KEYS",
  "SUPABASE_SECRET_KEYS",
  "SUPABASE_JWKS",
  "SUPABASE_ANON_KEY",
  "SUPABASE_SERVICE_ROLE_KEY",
] as const;

export type Config = z.infer<typeof schema>;

export class ConfigError extends Error {}

let cached: Config | undefined;

/** Reads and validates the environment once per isolate. Throws ConfigError naming every bad variable. */
export function config(): Config {
  if (cached) return cached;
  const parsed = schema.safeParse(Deno.env.toObject());
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new ConfigError(
      `configuration error (${problems}): set these with \`supabase secrets set\` (see .env.example)`,
    );
  }
  cached = parsed.data;
  return cached;
}

/** Paystack mode follows the secret key: test keys only see test payments, live keys live ones. */
export function paystackMode(c: Config = config()): "test" | "live" {
  return c.PAYSTACK_SECRET_KEY.startsWith("sk_live_") ? "live" : "test";
}

/** The key named "default" (else the first one) of a SUPABASE_*_KEYS dictionary. */
function defaultKey(keys: Record<string, string> | undefined): string | undefined {
  return keys ? keys.default ?? Object.values(keys)[0] : undefined;
}

/**
 * Every key that grants service access: all current secret keys, plus the legacy service role key.
 * Operator callers may send any of them (a secret key can be rotated without redeploying).
 */
export function serviceKeys(c: Config = config()): string[] {
  return [
    ...Object.values(c.SUPABASE_SECRET_KEYS ?? {}),
    ...(c.SUPABASE_SERVICE_ROLE_KEY ? [c.SUPABASE_SERVICE_ROLE_KEY] : []),
  ];
}

/** The key our outgoing calls to the project's APIs carry as `apikey`: the default publishable key, else the anon key. */
export function publishableKey(c: Config = config()): string {
  const key = defaultKey(c.SUPABASE_PUBLISHABLE_KEYS) ?? c.SUPABASE_ANON_KEY;
  if (!key) {
    throw new ConfigError(
      "configuration error (SUPABASE_PUBLISHABLE_KEYS or SUPABASE_ANON_KEY: missing): hosted Supabase injects one of them",
    );
  }
  return key;
}
