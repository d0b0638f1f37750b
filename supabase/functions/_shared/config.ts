// The one config loader: every function reads its environment through here, validated with zod, so a
// missing or malformed variable is one clear error naming the variable (not a crash deep in a call).
import { z } from "zod";

const url = z.string().url();
const schema = z.object({
  SUPABASE_URL: url,
  SUPABASE_DB_URL: z.string().min(1),
  SUPABASE_SERVICE_ROLE_KEY: z.string().min(1),
  SUPABASE_ANON_KEY: z.string().min(1),
  CRON_SECRET: z.string().min(16, "must be at least 16 characters"),
  LITELLM_BASE_URL: url,
  LITELLM_MASTER_KEY: z.string().min(1),
  LITELLM_TIMEOUT_MS: z.coerce.number().int().positive().default(5000),
  LITELLM_MAX_RETRIES: z.coerce.number().int().min(0).max(5).default(2),
  LITELLM_BREAKER_THRESHOLD: z.coerce.number().int().positive().default(5),
  LITELLM_BREAKER_COOLDOWN_MS: z.coerce.number().int().positive().default(30_000),
  PAYSTACK_BASE_URL: url.default("https://api.paystack.co"),
  PAYSTACK_SECRET_KEY: z.string().regex(/^sk_(test|live)_/, "must be a Paystack secret key (sk_test_... or sk_live_...)"),
  PAYSTACK_TIMEOUT_MS: z.coerce.number().int().positive().default(8000),
  PAYSTACK_CALLBACK_URL: url.optional(),
  // Hosted: the transaction pooler's URL (Supavisor, port 6543). Unset: SUPABASE_DB_URL (direct). A
  // function secret may not start with SUPABASE_ (reserved), hence the name. See _shared/db.ts.
  DB_POOLER_URL: z.preprocess((v) => (v === "" ? undefined : v), z.string().url().optional()),
  // Connections per isolate (each hosted isolate holds its own pool): see _shared/db.ts for the number.
  DB_POOL_MAX: z.coerce.number().int().positive().default(3),
  // Low-balance alerts (Slack-compatible incoming webhook). Unset: alerts are recorded, not sent. A vault
  // secret named alert_webhook_url, when present, wins (changeable without a redeploy).
  // Shared with LiteLLM's generic API logging callback (Authorization: Bearer <secret>); unset = off.
  LITELLM_CALLBACK_SECRET: z.preprocess((v) => (v === "" ? undefined : v), z.string().min(16, "must be at least 16 characters").optional()),
  ALERT_WEBHOOK_URL: z.preprocess((v) => (v === "" ? undefined : v), url.optional()),
  ALERT_WEBHOOK_TIMEOUT_MS: z.coerce.number().int().positive().default(5000),
});

/** The schema itself, for scripts/deploy-check.ts (which env names a deploy needs). */
export const configSchema = schema;

/** Set by hosted Supabase for every function: never put them in `supabase secrets set`. */
export const PLATFORM_INJECTED = ["SUPABASE_URL", "SUPABASE_DB_URL", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_ANON_KEY"] as const;

export type Config = z.infer<typeof schema>;

export class ConfigError extends Error {}

let cached: Config | undefined;

/** Reads and validates the environment once per isolate. Throws ConfigError naming every bad variable. */
export function config(): Config {
  if (cached) return cached;
  const parsed = schema.safeParse(Deno.env.toObject());
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new ConfigError(`configuration error (${problems}): set these with \`supabase secrets set\` (see .env.example)`);
  }
  cached = parsed.data;
  return cached;
}

/** Paystack mode follows the secret key: test keys only see test payments, live keys live ones. */
export function paystackMode(c: Config = config()): "test" | "live" {
  return c.PAYSTACK_SECRET_KEY.startsWith("sk_live_") ? "live" : "test";
}
