// Abuse controls (issue 13, item 6) against the running stack: checkout's rate limits and open-checkout cap
// (429 with Retry-After, counted in SQL, race-safe), the webhook's door (413 for oversized bodies before
// anything is stored, unsigned posts kept as hash + size + reason in a capped table, the optional source IP
// allow-list), configuration errors answered without naming a variable, and the REST stand-in's 400 for a
// bad percent-escape. Limits are lowered through private.settings and restored afterwards.
import { createHash, createHmac, randomBytes } from "node:crypto";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  activeUser,
  closeSql,
  env,
  invoke,
  paystackAdmin,
  publishableKey,
  serveFixture,
  signAsProject,
  sql,
  type TestUser,
  waitFor,
} from "./helpers.ts";

const WEBHOOK = () => `${env("SUPABASE_URL")}/functions/v1/paystack-webhook`;
const sign = (body: string | Buffer) => createHmac("sha512", env("PAYSTACK_SECRET_KEY")).update(body).digest("hex");
const saved = new Map<string, unknown>();

async function setting(key: string, value: string) {
  if (!saved.has(key)) {
    const [row] = await sql()`select value from private.settings where key = ${key}`;
    expect(row, `private.settings has ${key}`).toBeTruthy();
    saved.set(key, row.value);
  }
  await sql()`update private.settings set value = ${value}::text::jsonb where key = ${key}`; // text: no second JSON encoding
}
async function restoreSettings() {
  for (const [key, value] of saved) {
    await sql()`update private.settings set value = ${JSON.stringify(value)}::text::jsonb where key = ${key}`;
  }
  saved.clear();
}

const checkout = (u: TestUser, ip?: string) =>
  invoke("checkout", { plan: "starter" }, u.token, ip ? { "x-forwarded-for": `${ip}, 10.0.0.1` } : {});
const checkouts = async (userId: string) =>
  (await sql()`select count(*)::int as n from public.checkouts where user_id = ${userId}`)[0].n as number;
/** Runs fn for each item with at most `limit` in flight. */
async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]);
  }));
  return out;
}
const dbSize = async () => Number((await sql()`select pg_database_size(current_database())::text as b`)[0].b);
/** Runs fn with this stack's pg_cron jobs paused, so the database's growth is what fn caused (not a reconcile). */
async function withCronPaused<T>(fn: () => Promise<T>): Promise<T> {
  const paused = await sql()<{ jobid: number }[]>`select jobid from cron.job where active`;
  for (const { jobid } of paused) await sql()`select cron.alter_job(${jobid}, active := false)`;
  try {
    return await fn();
  } finally {
    for (const { jobid } of paused) await sql()`select cron.alter_job(${jobid}, active := true)`;
  }
}
const rejectedRows = async () =>
  (await sql()`select count(*)::int as n from private.rejected_webhook_posts`)[0].n as number;

afterEach(restoreSettings);
afterAll(async () => {
  await restoreSettings();
  await closeSql();
});

describe("checkout rate limits", () => {
  it("the N+1th checkout of a user in the window gets 429 with Retry-After and creates nothing; a different user is unaffected", async () => {
    const [u, other] = await Promise.all([activeUser("limit-a"), activeUser("limit-b")]);
    await setting("checkout_window_seconds", "86400"); // one window for the whole test
    await setting("checkout_user_limit", "3");
    await setting("checkout_max_open_per_user", "100");
    for (let i = 0; i < 3; i++) expect((await checkout(u)).status).toBe(200);
    const limited = await fetch(`${env("SUPABASE_URL")}/functions/v1/checkout`, {
      method: "POST",
      headers: { Authorization: `Bearer ${u.token}`, "Content-Type": "application/json" },
      body: '{"plan":"starter"}',
    });
    expect(limited.status).toBe(429);
    const retryAfter = Number(limited.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(86400);
    const body = await limited.json();
    expect(body.error).toBe("user_rate_limited");
    expect(body.message).toContain(`try again in ${retryAfter} s`);
    expect(await checkouts(u.id)).toBe(3);
    expect((await checkout(other)).status).toBe(200);
  });

  it("concurrent requests cannot overshoot the limit: 8 at once with a limit of 3 give exactly three checkouts", async () => {
    const u = await activeUser("limit-race");
    await setting("checkout_window_seconds", "86400");
    await setting("checkout_user_limit", "3");
    await setting("checkout_max_open_per_user", "100");
    const results = await Promise.all(Array.from({ length: 8 }, () => checkout(u)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(3);
    expect(results.filter((r) => r.status === 429)).toHaveLength(5);
    expect(await checkouts(u.id)).toBe(3);
  });

  it("per client IP (x-forwarded-for, first entry): the third user from one address is limited, another address is not", async () => {
    const users = await Promise.all([activeUser("ip-a"), activeUser("ip-b"), activeUser("ip-c")]);
    const ip = `198.51.100.${1 + Math.floor(Math.random() * 250)}`;
    await setting("checkout_window_seconds", "86400");
    await setting("checkout_ip_limit", "2");
    expect((await checkout(users[0], ip)).status).toBe(200);
    expect((await checkout(users[1], ip)).status).toBe(200);
    const third = await checkout(users[2], ip);
    expect(third.status).toBe(429);
    expect(third.body.error).toBe("ip_rate_limited");
    expect((await checkout(users[2], "2001:db8::17")).status).toBe(200);
    // A header that is not an IP address is never counted or stored: the request is limited per user only.
    expect((await checkout(users[2], "not-an-ip")).status).toBe(200);
    const buckets = await sql()`select bucket from private.rate_limit_hits where bucket like 'checkout:ip:%not-an-ip%'`;
    expect(buckets).toEqual([]);
  });

  it("open (unpaid) checkouts are capped per user; paying one frees a slot", async () => {
    const u = await activeUser("open-cap");
    await setting("checkout_max_open_per_user", "2");
    const first = await checkout(u);
    expect(first.status).toBe(200);
    expect((await checkout(u)).status).toBe(200);
    const third = await checkout(u);
    expect(third.status).toBe(429);
    expect(third.body.error).toBe("too_many_open_checkouts");
    expect(await checkouts(u.id)).toBe(2);
    // Paid on Paystack; the emulator's webhook credits it and the checkout is no longer open.
    await paystackAdmin("/admin/pay", { reference: first.body.reference });
    await waitFor(
      async () =>
        (await sql()`select status from public.checkouts where reference = ${first.body.reference}`)[0].status ===
          "paid",
      "the checkout to be paid",
    );
    expect((await checkout(u)).status).toBe(200);
  });
});

describe("the webhook's door", () => {
  it("a signed body over PAYSTACK_WEBHOOK_MAX_BYTES is refused with 413 and nothing is stored", async () => {
    const body = JSON.stringify({ event: "charge.success", data: { reference: "big", padding: "x".repeat(70_000) } });
    const before = await rejectedRows();
    const [{ n: deliveries }] = await sql()`select count(*)::int as n from private.webhook_deliveries`;
    const r = await fetch(WEBHOOK(), {
      method: "POST",
      headers: { "Content-Type": "application/json", "x-paystack-signature": sign(body) },
      body,
    });
    expect(r.status).toBe(413);
    expect((await r.json()).error).toBe("payload_too_large");
    expect(await rejectedRows()).toBe(before);
    expect((await sql()`select count(*)::int as n from private.webhook_deliveries`)[0].n).toBe(deliveries);
  });

  it("1,000 unsigned 1 MB posts grow the database by less than 1 MB", () =>
    withCronPaused(async () => {
      const body = randomBytes(1024 * 1024);
      const before = { size: await dbSize(), rows: await rejectedRows() };
      const statuses = await pool(Array.from({ length: 1000 }, (_, i) => i), 8, async () => {
        const r = await fetch(WEBHOOK(), { method: "POST", headers: { "Content-Type": "application/json" }, body });
        await r.body?.cancel();
        return r.status;
      });
      expect(new Set(statuses)).toEqual(new Set([413]));
      const grown = (await dbSize()) - before.size;
      console.log(`1,000 unsigned 1 MB posts: the database grew by ${grown} bytes`);
      expect(grown).toBeLessThan(1024 * 1024);
      expect(await rejectedRows()).toBe(before.rows);
    }), 180_000);

  it(
    "unsigned posts under the size limit keep only hash, size, time and reason (500 x 60 KB: under 1 MB of database)",
    () =>
      withCronPaused(async () => {
        const before = { size: await dbSize(), rows: await rejectedRows() };
        const bodies = Array.from({ length: 500 }, () => randomBytes(60_000));
        const statuses = await pool(bodies, 8, async (body) => {
          const r = await fetch(WEBHOOK(), {
            method: "POST",
            headers: { "Content-Type": "application/json", "x-paystack-signature": "f".repeat(128) },
            body,
          });
          await r.body?.cancel();
          return r.status;
        });
        expect(new Set(statuses)).toEqual(new Set([401]));
        expect((await dbSize()) - before.size).toBeLessThan(1024 * 1024);
        expect(await rejectedRows()).toBe(before.rows + 500);
        const last = bodies[bodies.length - 1];
        const [row] = await sql()`select * from private.rejected_webhook_posts where body_sha256 = ${
          createHash("sha256").update(last).digest("hex")
        }`;
        expect(row).toMatchObject({ body_bytes: 60_000, reason: "signature mismatch", provider: "paystack" });
        expect(Object.keys(row).sort()).toEqual([
          "body_bytes",
          "body_sha256",
          "id",
          "provider",
          "reason",
          "received_at",
        ]);
      }),
    120_000,
  );

  it("the rejected-post table keeps at most webhook_rejected_max_rows, the oldest dropped", async () => {
    await setting("webhook_rejected_max_rows", "20");
    const bodies = Array.from(
      { length: 30 },
      (_, i) => `{"event":"forged","n":${i},"r":"${randomBytes(8).toString("hex")}"}`,
    );
    for (const body of bodies) {
      const r = await fetch(WEBHOOK(), { method: "POST", headers: { "Content-Type": "application/json" }, body });
      expect(r.status).toBe(401);
      await r.body?.cancel();
    }
    const rows = await sql()`select body_sha256 from private.rejected_webhook_posts order by id`;
    expect(rows).toHaveLength(20);
    expect(rows.map((r) => r.body_sha256)).toEqual(
      bodies.slice(10).map((b) => createHash("sha256").update(b).digest("hex")),
    );
  });

  it("with the allow-list on, only Paystack's documented addresses get past the door (x-forwarded-for, first entry)", async () => {
    const fn = await serveFixture("serve-function.ts", ["paystack-webhook"], {
      PAYSTACK_WEBHOOK_ALLOWED_IPS: "paystack",
    });
    try {
      const body = JSON.stringify({ event: "subscription.create", data: { reference: `allow-${Date.now()}` } });
      const post = (headers: Record<string, string>) =>
        fetch(`${fn.url}/functions/v1/paystack-webhook`, {
          method: "POST",
          headers: { "Content-Type": "application/json", "x-paystack-signature": sign(body), ...headers },
          body,
        });
      const before = await rejectedRows();
      const stranger = await post({ "x-forwarded-for": "203.0.113.50" });
      expect(stranger.status).toBe(403);
      expect((await stranger.json()).error).toBe("forbidden_source");
      expect((await post({})).status).toBe(403);
      expect((await post({ "x-forwarded-for": "10.0.0.1, 52.31.139.75" })).status).toBe(403); // only the first entry counts
      const reasons = await sql()`select reason from private.rejected_webhook_posts order by id desc limit 3`;
      expect(reasons.map((r) => r.reason)).toEqual(Array(3).fill("source ip not allowed"));
      expect(await rejectedRows()).toBe(before + 3);
      for (const ip of ["52.31.139.75", "52.49.173.169", "52.214.14.220"]) {
        const r = await post({ "x-forwarded-for": `${ip}, 10.0.0.1` });
        expect(r.status, ip).toBe(200);
        expect((await r.json()).outcome).toBe("ignored");
      }
    } finally {
      fn.stop();
    }
  });
});

describe("configuration errors", () => {
  it('checkout answers a generic 500 {"error":"misconfigured"} that names no variable, and logs which one', async () => {
    const fn = await serveFixture("serve-function.ts", ["checkout"], {
      PAYSTACK_SECRET_KEY: "pk_test_not_a_secret_key",
    });
    try {
      // A user token, so checkout gets as far as reading its configuration.
      const token = await signAsProject({
        role: "authenticated",
        aud: "authenticated",
        iss: `${env("SUPABASE_URL")}/auth/v1`,
        sub: crypto.randomUUID(),
        session_id: crypto.randomUUID(),
      });
      const r = await fetch(`${fn.url}/functions/v1/checkout`, {
        method: "POST",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: '{"plan":"starter"}',
      });
      expect(r.status).toBe(500);
      expect(await r.text()).toBe('{"error":"misconfigured"}');
      await waitFor(async () => fn.out.includes('"msg":"configuration error"'), "the configuration error in the log");
      expect(fn.out).toContain("PAYSTACK_SECRET_KEY: must be a Paystack secret key");
    } finally {
      fn.stop();
    }
  });

  it("health says the configuration is wrong (503) without naming the variable", async () => {
    const fn = await serveFixture("serve-function.ts", ["health"], { PAYSTACK_WEBHOOK_ALLOWED_IPS: "not-an-ip" });
    try {
      const r = await fetch(`${fn.url}/functions/v1/health`);
      expect(r.status).toBe(503);
      const text = await r.text();
      expect(JSON.parse(text)).toEqual({ status: "error", configuration: { status: "error" } });
      expect(text).not.toMatch(/PAYSTACK|ALLOWED|not-an-ip/);
      await waitFor(async () => fn.out.includes("PAYSTACK_WEBHOOK_ALLOWED_IPS"), "the variable named in the log");
    } finally {
      fn.stop();
    }
  });
});

describe("REST stand-in", () => {
  it("a bad percent-escape in the path is PostgREST's 400 error shape, not a 500", async () => {
    for (const path of ["my_%zzkey", "plans%E0%A4%A"]) {
      const r = await fetch(`${env("SUPABASE_URL")}/rest/v1/${path}`, { headers: { apikey: publishableKey() } });
      expect(r.status, path).toBe(400);
      const body = await r.json();
      expect(Object.keys(body).sort()).toEqual(["code", "details", "hint", "message"]);
      expect(body.code).toBe("PGRST100");
      expect(body.message).toMatch(/percent-encoding/);
    }
    const ok = await fetch(`${env("SUPABASE_URL")}/rest/v1/pl%61ns?select=code`, {
      headers: { apikey: publishableKey() },
    });
    expect(ok.status).toBe(200); // a good escape still decodes
  });
});
