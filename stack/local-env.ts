// The local stack's fixed development values. Never used by deployed code: hosted Supabase injects its own.
import { SignJWT } from "jose";

export const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
export const LOCAL_DIR = Deno.env.get("STACK_LOCAL_DIR") ?? `${ROOT}/.local`;

export const PORTS = {
  gateway: Number(Deno.env.get("STACK_GATEWAY_PORT") ?? 54321),
  db: Number(Deno.env.get("STACK_DB_PORT") ?? 54322),
  web: Number(Deno.env.get("STACK_WEB_PORT") ?? 54323),
  litellm: Number(Deno.env.get("STACK_LITELLM_PORT") ?? 4000),
  paystack: Number(Deno.env.get("STACK_PAYSTACK_PORT") ?? 54330),
  pooler: Number(Deno.env.get("STACK_POOLER_PORT") ?? 54329), // PgBouncer (stack/pooler.ts)
};
// Each emulator has an admin API on the next port (so "down" can refuse connections on the main one).
export const ADMIN_PORTS = { litellm: PORTS.litellm + 1, paystack: PORTS.paystack + 1 };

// Supabase CLI's well-known local JWT secret: local only, public on purpose.
export const JWT_SECRET = Deno.env.get("SUPABASE_JWT_SECRET") ?? "super-secret-jwt-token-with-at-least-32-characters-long";
export const DB_URL = `postgresql://postgres:postgres@127.0.0.1:${PORTS.db}/postgres`;

async function apiKey(role: "anon" | "service_role"): Promise<string> {
  // Fixed iat/exp so the keys are the same on every start (like the CLI's demo keys).
  return await new SignJWT({ role, iss: "supabase-demo" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt(1641769200)
    .setExpirationTime(1983812996)
    .sign(new TextEncoder().encode(JWT_SECRET));
}

/** Environment for every process of the local stack (functions read the same names as on hosted Supabase). */
export async function localEnv(): Promise<Record<string, string>> {
  const base = `http://127.0.0.1:${PORTS.gateway}`;
  const defaults: Record<string, string> = {
    SUPABASE_URL: base,
    SUPABASE_ANON_KEY: await apiKey("anon"),
    SUPABASE_SERVICE_ROLE_KEY: await apiKey("service_role"),
    SUPABASE_JWT_SECRET: JWT_SECRET,
    SUPABASE_DB_URL: DB_URL,
    CRON_SECRET: "local-cron-secret-change-me",
    LITELLM_BASE_URL: `http://127.0.0.1:${PORTS.litellm}`,
    LITELLM_PUBLIC_URL: `http://127.0.0.1:${PORTS.litellm}`,
    LITELLM_MASTER_KEY: "sk-local-master-key",
    LITELLM_CALLBACK_SECRET: "local-litellm-callback-secret",
    PAYSTACK_BASE_URL: `http://127.0.0.1:${PORTS.paystack}`,
    PAYSTACK_SECRET_KEY: "sk_test_emulator_secret",
    PAYSTACK_MODE: "test",
    PAYSTACK_CALLBACK_URL: `http://127.0.0.1:${PORTS.web}/`,
    PAYSTACK_WEBHOOK_URL: `${base}/functions/v1/paystack-webhook`,
    LITELLM_BATCH_WRITE_MS: "10000",
  };
  // Anything set in the environment wins (e.g. a real LiteLLM for contract tests).
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(defaults)) env[k] = Deno.env.get(k) ?? v;
  return env;
}
