// The demo user `npm start` creates, so the dashboard has something to show: created already confirmed through
// the Auth stand-in's admin API (email_confirm, so the real trigger grants the sign-up credit at once and
// provisioning runs) and signed in with its password, one Starter pack paid in USD on the Paystack emulator
// (the real checkout and webhook run), then a second Starter pack paid in NGN (naira on sale for it the way an
// operator does it; each purchase's receipt email lands in the outbox, /_stack/mail), a few chat calls on the LiteLLM emulator, then one reconcile. Every step goes
// through the product's own paths; if one fails the stack still starts and says so.
import { say } from "./log.ts";

export const DEMO = { email: "demo@example.com", password: "demo-password-1" };

/** A JSON request; a non-2xx answer throws with its path, status and the start of its body. */
export async function call(url: string, init: RequestInit & { json?: unknown } = {}) {
  const r = await fetch(url, {
    ...init,
    headers: { "Content-Type": "application/json", ...(init.headers ?? {}) },
    body: init.json === undefined ? init.body : JSON.stringify(init.json),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${new URL(url).pathname} answered ${r.status}: ${text.slice(0, 200)}`);
  return text ? JSON.parse(text) : null;
}

/** Polls fn (errors count as "not yet") until it returns a value, or throws "timed out waiting for <what>". */
export async function until<T>(what: string, fn: () => Promise<T | null | undefined>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await fn().catch(() => null);
    if (v) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function adminUrl(base: string): string {
  const u = new URL(base);
  u.port = String(Number(u.port) + 1);
  return u.origin;
}

/** The browser-safe API key: publishable (new key mode), anon (legacy). */
const publicKey = (env: Record<string, string>) => env.SUPABASE_PUBLISHABLE_KEY ?? env.SUPABASE_ANON_KEY;
/** The server key: secret (new key mode), service_role (legacy). */
const serverKey = (env: Record<string, string>) => env.SUPABASE_SECRET_KEY ?? env.SUPABASE_SERVICE_ROLE_KEY;

/**
 * NGN goes on sale as an operator puts it there (`npm run admin -- currencies enable NGN`,
 * `npm run admin -- prices derive NGN --rate 1500 --round 100`: the same SQL functions; Starter costs 7,500 NGN),
 * and stays on sale, so the dashboard's picker offers naira next to dollars.
 */
async function inNaira(buy: () => Promise<void>) {
  const { psql } = await import("./pg.ts"); // Deno only: web/tests (Node) import DEMO from this file
  await psql({ sql: "select private.set_currency('NGN', true); select private.derive_prices('NGN', 1500, 100)" });
  await buy();
}

/** One Starter pack, checked out in `currency` (none: the user's usual one), paid on the emulator and credited. */
async function buyStarter(env: Record<string, string>, token: string, currency?: string) {
  const rest = { apikey: publicKey(env), Authorization: `Bearer ${token}` };
  const checkout = await call(`${env.SUPABASE_URL}/functions/v1/checkout`, {
    method: "POST",
    headers: rest,
    json: currency ? { plan: "starter", currency } : { plan: "starter" },
  });
  await call(`${adminUrl(env.PAYSTACK_BASE_URL)}/admin/pay`, {
    method: "POST",
    headers: { Authorization: `Bearer ${env.PAYSTACK_SECRET_KEY}` },
    json: { reference: checkout.reference },
  });
  await until(`the ${checkout.currency} payment to be credited`, async () => {
    const ref = encodeURIComponent(checkout.reference);
    const url = `${env.SUPABASE_URL}/rest/v1/my_payments?select=reference&reference=eq.${ref}`;
    const rows = await call(url, { headers: rest });
    return rows.length > 0;
  });
}

async function seedActivity(env: Record<string, string>, token: string) {
  const rest = { apikey: publicKey(env), Authorization: `Bearer ${token}` };
  const key = await until("the demo key to turn active", async () => {
    const rows = await call(`${env.SUPABASE_URL}/rest/v1/my_key?select=key_value,status`, { headers: rest });
    return rows[0]?.status === "active" ? rows[0].key_value as string : null;
  });
  await buyStarter(env, token);
  await inNaira(() => buyStarter(env, token, "NGN"));
  // Each purchase notifies (a receipt); its email is sent through the stack's email capture to the outbox
  // (/_stack/mail), where the banner points a newcomer.
  await until("the demo's receipt emails in the outbox", async () => {
    const mails = await call(`${env.SUPABASE_URL}/_stack/mail.json?to=${encodeURIComponent(DEMO.email)}`);
    return mails.filter((m: { type: string }) => m.type === "notification").length >= 2;
  });
  for (const content of ["Summarise the plot of Hamlet.", "Write a haiku about budgets.", "x".repeat(1500)]) {
    await call(`${env.LITELLM_PUBLIC_URL}/chat/completions`, {
      method: "POST",
      headers: { Authorization: `Bearer ${key}` },
      json: { model: "test-expensive", messages: [{ role: "user", content }] },
    });
  }
  await until("a reconcile run", async () => {
    const r = await call(`${env.SUPABASE_URL}/functions/v1/reconcile-spend`, {
      method: "POST",
      headers: { Authorization: `Bearer ${env.CRON_SECRET}` },
      json: { force: true, max_chunks: 100 },
    });
    return r.claimed > 0;
  });
}

export async function createDemoUser(env: Record<string, string>, opts: { activity: boolean }): Promise<string> {
  try {
    const admin = { apikey: serverKey(env), Authorization: `Bearer ${serverKey(env)}` };
    await call(`${env.SUPABASE_URL}/auth/v1/admin/users`, {
      method: "POST",
      headers: admin,
      json: { ...DEMO, email_confirm: true },
    });
    const session = await call(`${env.SUPABASE_URL}/auth/v1/token?grant_type=password`, {
      method: "POST",
      headers: { apikey: publicKey(env) },
      json: DEMO,
    });
    if (opts.activity) {
      await seedActivity(env, session.access_token);
      say(
        "demo user: created confirmed, bought the Starter pack in USD and again in NGN (receipt emails in the " +
          "outbox), made a few chat calls, reconciled",
      );
    }
  } catch (e) {
    say(`demo user not fully set up: ${(e as Error).message}`);
  }
  return `${DEMO.email} / ${DEMO.password}`;
}
