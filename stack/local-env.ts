// The local stack's development values. Never used by deployed code: hosted Supabase injects its own.
// STACK_KEYS picks how the project's API keys and JWTs look (default new):
//   new     publishable/secret API keys (sb_publishable_..., sb_secret_..., made per start) and user JWTs
//           signed with an ES256 key (made per start, with a kid) whose public half is served as JWKS;
//           the legacy anon/service_role keys do not exist. Like a project created on hosted Supabase today.
//   legacy  anon/service_role keys that are HS256 JWTs and user JWTs signed with the same JWT secret.
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { configSchema, PLATFORM_INJECTED } from "../supabase/functions/_shared/config.ts";
import { fail } from "./log.ts";

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

// Supabase CLI's well-known local JWT secret: local only, public on purpose (legacy mode).
export const LEGACY_JWT_SECRET = Deno.env.get("SUPABASE_JWT_SECRET") ??
  "super-secret-jwt-token-with-at-least-32-characters-long";
export const DB_URL = `postgresql://postgres:postgres@127.0.0.1:${PORTS.db}/postgres`;
// What only the gateway (the stand-in Auth) may hold, the way hosted keeps it out of functions: the ES256
// private key or the legacy JWT secret. A file only our user can read, never an env var.
export const PLATFORM_KEYS_FILE = `${LOCAL_DIR}/platform-keys.json`;

export type KeysMode = "new" | "legacy";
export interface PlatformKeys {
  mode: KeysMode;
  signing_key?: JWK; // new: the ES256 private key (with kid)
  jwt_secret?: string; // legacy
}

export function keysMode(): KeysMode {
  const mode = Deno.env.get("STACK_KEYS") ?? "new";
  if (mode !== "new" && mode !== "legacy") fail(`STACK_KEYS must be new or legacy (got ${mode})`);
  return mode;
}

async function legacyApiKey(role: "anon" | "service_role"): Promise<string> {
  // Fixed iat/exp so the keys are the same on every start (like the CLI's demo keys).
  return await new SignJWT({ role, iss: "supabase-demo" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt(1641769200)
    .setExpirationTime(1983812996)
    .sign(new TextEncoder().encode(LEGACY_JWT_SECRET));
}

const randomToken = () =>
  btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(24)))).replace(/[+/=]/g, "");

/** The project's keys for this start: what hosted injects into functions, what tools use, what only Auth holds. */
async function projectKeys(
  mode: KeysMode,
): Promise<{ injected: Record<string, string>; tools: Record<string, string>; platform: PlatformKeys }> {
  if (mode === "legacy") {
    const keys = {
      SUPABASE_ANON_KEY: await legacyApiKey("anon"),
      SUPABASE_SERVICE_ROLE_KEY: await legacyApiKey("service_role"),
    };
    return { injected: keys, tools: {}, platform: { mode, jwt_secret: LEGACY_JWT_SECRET } };
  }
  const publishable = `sb_publishable_${randomToken()}`;
  const secret = `sb_secret_${randomToken()}`;
  const kid = crypto.randomUUID();
  const pair = await generateKeyPair("ES256", { extractable: true });
  const publicJwk = { ...(await exportJWK(pair.publicKey)), kid, alg: "ES256", use: "sig" };
  return {
    // The names and shapes hosted Supabase gives Edge Functions (docs: guides/functions/secrets).
    injected: {
      SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: publishable }),
      SUPABASE_SECRET_KEYS: JSON.stringify({ default: secret }),
      SUPABASE_JWKS: JSON.stringify({ keys: [publicJwk] }),
    },
    tools: { SUPABASE_PUBLISHABLE_KEY: publishable, SUPABASE_SECRET_KEY: secret },
    platform: { mode, signing_key: { ...(await exportJWK(pair.privateKey)), kid, alg: "ES256" } },
  };
}

function writePrivate(path: string, text: string) {
  Deno.writeTextFileSync(path, text, { mode: 0o600 });
  Deno.chmodSync(path, 0o600); // mode applies on create only: an older file keeps its mode otherwise
}

/** stack.env for tools and tests (it holds the keys: only our user reads it). Values quoted for the shell when needed (JSON). */
export function writeEnvFile(path: string, env: Record<string, string>) {
  const quote = (v: string) => (/^[A-Za-z0-9_./:@,+=-]*$/.test(v) ? v : `'${v.replaceAll("'", `'\\''`)}'`);
  writePrivate(path, Object.entries(env).map(([k, v]) => `${k}=${quote(v)}`).join("\n") + "\n");
}

// Process settings the gateway may inherit (none secret); everything else it gets is named below.
export const SYSTEM_ENV = ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR", "TZ", "LANG", "NO_COLOR"];
// The function secrets a deploy sets (`supabase secrets set`): every name _shared/config.ts reads, and LOG_LEVEL.
const FUNCTION_SECRETS = [
  ...Object.keys(configSchema.shape).filter((n) => !(PLATFORM_INJECTED as readonly string[]).includes(n)),
  "LOG_LEVEL",
];

/**
 * STACK_BARE=1: the project as hosted Supabase hands it over on creation (docs/deploy.md, step 1): the
 * platform (roles, auth, extensions, Auth/REST, the emulators) but no migrations, no vault secrets, no
 * function secrets and no demo user. `npm run deploy:rehearse` plays the rest of the deploy on it.
 */
export const bare = () => Deno.env.get("STACK_BARE") === "1";

/**
 * The environment of the functions host (the gateway), as on hosted Supabase: the process settings and the
 * stand-in's own STACK_* settings, the function secrets, and what the platform injects. Nothing else.
 */
export function functionsHostEnv(
  secrets: Record<string, string>,
  injected: Record<string, string>,
): Record<string, string> {
  const inherited = Deno.env.toObject();
  const out: Record<string, string> = {};
  for (const n of [...SYSTEM_ENV, ...Object.keys(inherited).filter((k) => k.startsWith("STACK_"))]) {
    if (inherited[n] !== undefined) out[n] = inherited[n];
  }
  return { ...out, ...secrets, ...injected };
}

/**
 * Environment of the local stack (functions read the same names as on hosted Supabase), made once per
 * start; writes the platform's private key material to PLATFORM_KEYS_FILE (mode 0600).
 *   env     every process and tool (also written to stack.env): includes SUPABASE_PUBLISHABLE_KEY and
 *           SUPABASE_SECRET_KEY (new) or SUPABASE_ANON_KEY and SUPABASE_SERVICE_ROLE_KEY (legacy);
 *   gateway the gateway, where the functions run: only what hosted injects into functions plus the
 *           function secrets (no legacy key in new mode, no private key or JWT secret in any mode).
 */
export async function localEnv(): Promise<{ env: Record<string, string>; gateway: Record<string, string> }> {
  const mode = keysMode();
  const base = `http://127.0.0.1:${PORTS.gateway}`;
  const defaults: Record<string, string> = {
    SUPABASE_URL: base,
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
    // Notification emails go to the stack's Resend-compatible capture (stack/platform/email-api.ts) and
    // land in the outbox at /_stack/mail; their links point at this stack's dashboard.
    EMAIL_API_URL: `${base}/_stack/email-api`,
    EMAIL_API_KEY: "re_local_capture_key",
    EMAIL_FROM: "litellm-credits (local) <billing@credits.localhost>",
    DASHBOARD_URL: `http://127.0.0.1:${PORTS.web}/`,
    // Every function runs in the gateway's one process, where hosted runs many isolates with a pool of
    // DB_POOL_MAX (3) each: the one process gets the pool of several (measured: docs/benchmarks.md).
    DB_POOL_MAX: "10",
  };
  // Anything set in the environment wins (e.g. a real LiteLLM for contract tests).
  const settings: Record<string, string> = {};
  for (const [k, v] of Object.entries(defaults)) settings[k] = Deno.env.get(k) ?? v;
  const keys = await projectKeys(mode);
  writePrivate(PLATFORM_KEYS_FILE, JSON.stringify(keys.platform));

  // A bare project has no function secrets yet (a deploy sets them).
  const available: Record<string, string> = bare() ? {} : { ...Deno.env.toObject(), ...settings };
  const secrets = Object.fromEntries(
    FUNCTION_SECRETS.filter((n) => available[n] !== undefined).map((n) => [n, available[n]]),
  );
  const gateway = functionsHostEnv(secrets, {
    SUPABASE_URL: settings.SUPABASE_URL,
    SUPABASE_DB_URL: settings.SUPABASE_DB_URL,
    ...keys.injected,
  });
  return { env: { ...settings, ...keys.injected, ...keys.tools, STACK_KEYS: mode }, gateway };
}
