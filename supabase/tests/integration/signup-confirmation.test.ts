// Abuse control: the sign-up credit waits for a confirmed email address (issue 13, item 6.1), through the real
// chain: Auth stand-in sign-up (confirmations on, as supabase/config.toml says) -> trigger -> provisioning at
// a budget of 0 -> the emailed link (the stack's outbox) -> GET /auth/v1/verify -> confirmation trigger ->
// push-budget -> LiteLLM. Also GoTrue's shapes for all of it, and CAPTCHA in the stand-in (item 6.2).
import OpenAI from "openai";
import { afterAll, describe, expect, it } from "vitest";
import {
  anonClient,
  closeSql,
  confirmationLink,
  env,
  keyOnLiteLLM,
  liveKey,
  mailTo,
  openLink,
  publishableKey,
  secretKey,
  serveFixture,
  signUpUnconfirmed,
  sql,
  uniqueEmail,
  waitFor,
} from "./helpers.ts";

const AUTH = () => `${env("SUPABASE_URL")}/auth/v1`;
const PASSWORD = "correct-horse-battery";
const ledger = async (userId: string) =>
  await sql()`select kind, amount::text as amount, idempotency_key from public.credit_ledger where user_id = ${userId} order by id`;
/** The key once provisioning made it active (whatever its budget). */
const provisioned = (userId: string) =>
  waitFor(
    async () => ((await liveKey(userId))?.status === "active" ? await liveKey(userId) : null),
    "the key to be provisioned",
    15_000,
  );

afterAll(closeSql);

describe("sign-up credit on email confirmation", () => {
  it("a sign-up without confirmation gets no credit and no usable key budget (max_budget 0 on LiteLLM)", async () => {
    const u = await signUpUnconfirmed("unconfirmed");
    const k = await provisioned(u.id);
    expect((await keyOnLiteLLM(k.key_value)).max_budget).toBe(0);
    expect(await ledger(u.id)).toEqual([]);
    // LiteLLM refuses the key: spend 0 >= max_budget 0.
    const llm = new OpenAI({ apiKey: k.key_value, baseURL: env("LITELLM_PUBLIC_URL"), maxRetries: 0 });
    const refused = await llm.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hi" }],
    }).catch((e) => e);
    expect(refused).toBeInstanceOf(OpenAI.APIError);
    expect(refused.error?.type ?? refused.type).toBe("budget_exceeded");
    // And the user cannot sign in yet: GoTrue's email_not_confirmed.
    const signIn = await anonClient().auth.signInWithPassword({ email: u.email, password: PASSWORD });
    expect(signIn.error?.status).toBe(400);
    expect(signIn.error?.code).toBe("email_not_confirmed");
    expect(await ledger(u.id)).toEqual([]);
  });

  it("confirming grants the credit exactly once: the link opened five times at once gives one ledger row, then max_budget 2", async () => {
    const u = await signUpUnconfirmed("confirm-race");
    const k = await provisioned(u.id);
    const link = await confirmationLink(u.email);
    const opened = await Promise.all(Array.from({ length: 5 }, () => openLink(link)));
    expect(opened.map((o) => o.status)).toEqual(Array(5).fill(303));
    const signedIn = opened.filter((o) => o.fragment.get("access_token"));
    expect(signedIn).toHaveLength(1);
    expect(opened.filter((o) => o.fragment.get("error_code") === "otp_expired")).toHaveLength(4);
    expect(await ledger(u.id)).toEqual([{ kind: "signup_grant", amount: "2.00", idempotency_key: `signup:${u.id}` }]);
    // The usual versioned absolute push raises the key from 0 to the grant.
    await waitFor(async () => (await keyOnLiteLLM(k.key_value)).max_budget === 2, "max_budget 2 on LiteLLM", 15_000);
    await waitFor(async () => (await liveKey(u.id)).sync_status === "synced", "the key in sync");
    // Opened again later: nothing more.
    expect((await openLink(link)).fragment.get("error_code")).toBe("otp_expired");
    expect(await ledger(u.id)).toHaveLength(1);
    // The session the link returned is a live one for this user.
    const me = await fetch(`${AUTH()}/user`, {
      headers: { apikey: publishableKey(), Authorization: `Bearer ${signedIn[0].fragment.get("access_token")}` },
    });
    expect((await me.json()).id).toBe(u.id);
  });

  it("a user created already confirmed (admin API with email_confirm) is granted at once", async () => {
    const r = await fetch(`${AUTH()}/admin/users`, {
      method: "POST",
      headers: { apikey: secretKey(), Authorization: `Bearer ${secretKey()}`, "Content-Type": "application/json" },
      body: JSON.stringify({ email: uniqueEmail("admin-made"), password: PASSWORD, email_confirm: true }),
    });
    expect(r.status).toBe(200);
    const user = await r.json();
    expect(user.email_confirmed_at).toBeTruthy();
    expect(await ledger(user.id)).toEqual([{
      kind: "signup_grant",
      amount: "2.00",
      idempotency_key: `signup:${user.id}`,
    }]);
    expect(await mailTo(user.email)).toEqual([]); // the admin API sends no confirmation mail
  });
});

describe("the Auth stand-in confirms like GoTrue", () => {
  it("sign-up answers the user without a session, with confirmation_sent_at, and mails a link to /verify", async () => {
    const email = uniqueEmail("shape");
    const redirect = `http://127.0.0.1:${env("STACK_WEB_PORT")}/`;
    const r = await fetch(`${AUTH()}/signup?redirect_to=${encodeURIComponent(redirect)}`, {
      method: "POST",
      headers: { apikey: publishableKey(), "Content-Type": "application/json" },
      body: JSON.stringify({ email, password: PASSWORD }),
    });
    expect(r.status).toBe(200);
    const body = await r.json();
    expect(body.access_token).toBeUndefined();
    expect(body.email).toBe(email);
    expect(body.confirmation_sent_at).toBeTruthy();
    expect(body.email_confirmed_at).toBeUndefined();
    const [mail] = await mailTo(email);
    expect(mail.subject).toBe("Confirm your email address");
    const link = new URL(mail.link);
    expect(`${link.origin}${link.pathname}`).toBe(`${AUTH()}/verify`);
    expect(link.searchParams.get("type")).toBe("signup");
    expect(link.searchParams.get("token")).toMatch(/^[0-9a-f]{56}$/); // sha224 hex, as GoTrue's token hash
    expect(link.searchParams.get("redirect_to")).toBe(redirect);
    const [row] = await sql()`select confirmation_token, email_confirmed_at from auth.users where id = ${body.id}`;
    expect(row).toEqual({ confirmation_token: link.searchParams.get("token"), email_confirmed_at: null });
    // The outbox page a newcomer opens (npm start prints its URL) shows the link.
    const page = await (await fetch(`${env("SUPABASE_URL")}/_stack/mail`)).text();
    expect(page).toContain(mail.link.replaceAll("&", "&#38;"));

    // The link: 303 to redirect_to with GoTrue's fragment (implicit flow); the token is then spent.
    const { status, location, fragment } = await openLink(mail.link);
    expect(status).toBe(303);
    expect(location.startsWith(`${redirect}#`)).toBe(true);
    expect([...fragment.keys()]).toEqual([
      "access_token",
      "expires_at",
      "expires_in",
      "refresh_token",
      "sb",
      "token_type",
      "type",
    ]);
    expect(fragment.get("token_type")).toBe("bearer");
    expect(fragment.get("type")).toBe("signup");
    const [after] =
      await sql()`select confirmation_token, email_confirmed_at is not null as confirmed, raw_user_meta_data from auth.users where id = ${body.id}`;
    expect(after).toMatchObject({
      confirmation_token: "",
      confirmed: true,
      raw_user_meta_data: { email_verified: true },
    });
    const signIn = await anonClient().auth.signInWithPassword({ email, password: PASSWORD });
    expect(signIn.error).toBeNull();
  });

  it("bad links redirect with GoTrue's error fragment; a redirect_to off the site goes to the site URL; no token is 400", async () => {
    const bad = await openLink(
      `${AUTH()}/verify?token=${"0".repeat(56)}&type=signup&redirect_to=${encodeURIComponent("https://evil.example/")}`,
    );
    expect(bad.status).toBe(303);
    expect(bad.location.startsWith(`http://127.0.0.1:${env("STACK_WEB_PORT")}/#`)).toBe(true);
    expect(Object.fromEntries(bad.fragment)).toEqual({
      error: "access_denied",
      error_code: "otp_expired",
      error_description: "Email link is invalid or has expired",
      sb: "",
    });
    const none = await fetch(`${AUTH()}/verify?type=signup`);
    expect(none.status).toBe(400);
    expect(await none.json()).toMatchObject({
      code: 400,
      error_code: "validation_failed",
      msg: "Verify requires a token or a token hash",
    });
  });

  it("signing up again: an unconfirmed address within a minute is 429, a confirmed one gets a decoy user and no mail", async () => {
    const u = await signUpUnconfirmed("again");
    const again = await anonClient().auth.signUp({ email: u.email, password: PASSWORD });
    expect(again.error?.status).toBe(429);
    expect(again.error?.code).toBe("over_email_send_rate_limit");
    expect(again.error?.message).toMatch(/^For security purposes, you can only request this after \d+ seconds\.$/);
    expect(await mailTo(u.email)).toHaveLength(1);

    await openLink(await confirmationLink(u.email));
    const decoy = await anonClient().auth.signUp({ email: u.email, password: PASSWORD });
    expect(decoy.error).toBeNull();
    expect(decoy.data.session).toBeNull();
    expect(decoy.data.user?.id).not.toBe(u.id); // GoTrue does not reveal that the address is registered
    expect(await mailTo(u.email)).toHaveLength(1);
    expect(await ledger(u.id)).toHaveLength(1);
  });

  it("/settings says confirmations are on (mailer_autoconfirm false)", async () => {
    const r = await fetch(`${AUTH()}/settings`, { headers: { apikey: publishableKey() } });
    expect((await r.json()).mailer_autoconfirm).toBe(false);
  });
});

describe("CAPTCHA in the Auth stand-in", () => {
  it("with a captcha secret configured, sign-up and sign-in without gotrue_meta_security.captcha_token are refused like GoTrue", async () => {
    const auth = await serveFixture("serve-auth.ts", [], {
      STACK_AUTH_CAPTCHA_SECRET: "0x0000000000000000000000000000000000000000",
    });
    try {
      const post = (path: string, body: Record<string, unknown>) =>
        fetch(`${auth.url}/auth/v1${path}`, {
          method: "POST",
          headers: { apikey: publishableKey(), "Content-Type": "application/json" },
          body: JSON.stringify(body),
        });
      const email = uniqueEmail("captcha");
      const without = await post("/signup", { email, password: PASSWORD });
      expect(without.status).toBe(400);
      expect(await without.json()).toEqual({
        code: 400,
        error_code: "captcha_failed",
        msg: "captcha protection: request disallowed (no captcha_token found)",
      });
      expect(
        (await post("/signup", { email, password: PASSWORD, gotrue_meta_security: { captcha_token: "  " } })).status,
      ).toBe(400);
      expect(await sql()`select 1 from auth.users where email = ${email}`).toHaveLength(0); // refused before anything was written
      const signIn = await post("/token?grant_type=password", { email, password: PASSWORD });
      expect((await signIn.json()).error_code).toBe("captcha_failed");
      const withToken = await post("/signup", {
        email,
        password: PASSWORD,
        gotrue_meta_security: { captcha_token: "10000000-aaaa-bbbb-cccc-000000000001" },
      });
      expect(withToken.status, await withToken.clone().text()).toBe(200);
      expect((await withToken.json()).email).toBe(email);
    } finally {
      auth.stop();
    }
  });
});
