// checkout, rotate-key and redeem-promo verify the caller's access token themselves (verify_jwt is off for every
// function; _shared/auth.ts): signature against the project's JWKS (ES256, new key mode) or by asking
// Auth (HS256, legacy mode), issuer, audience, expiry, role, and a session that still exists. Operator
// functions take a secret key (or the legacy service role key) and refuse the publishable key.
// Runs in both key modes (scripts/test.sh runs it again on a STACK_KEYS=legacy stack).
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  activeUser,
  claimsOf,
  closeSql,
  env,
  invoke,
  keysMode,
  platformKeys,
  publishableKey,
  secretKey,
  signAsProject,
  signHs256,
  signWithForeignKey,
  sql,
  type TestUser,
  unsignedJwt,
  waitFor,
  WELL_KNOWN_JWT_SECRET,
} from "./helpers.ts";

type User = TestUser & { key: string; keyId: string };
const FUNCTIONS = ["checkout", "rotate-key", "redeem-promo"] as const;
const BODY = { checkout: { plan: "starter" }, "rotate-key": {}, "redeem-promo": { code: "NO-SUCH-CODE" } };
const now = () => Math.floor(Date.now() / 1000);

let u: User;
/** The claims Auth put in u's access token: a bad token below differs from them in one way only. */
let claims: Record<string, unknown>;

async function footprint(userId: string) {
  const [r] = await sql()`select (select count(*) from public.checkouts where user_id = ${userId})::int as checkouts,
                                 (select count(*) from private.key_rotations where user_id = ${userId})::int as rotations,
                                 (select count(*) from private.rate_limit_hits where bucket = ${`promo:user:${userId}`})::int as promo_attempts`;
  return r;
}

const setting = (key: string, value: string) =>
  sql()`update private.settings set value = ${value}::jsonb where key = ${key}`;

beforeAll(async () => {
  await setting("rotation_settle_seconds", "0"); // the test stack writes spend at once (LITELLM_BATCH_WRITE_MS=0)
  u = await activeUser("jwt");
  claims = claimsOf(u.token);
});
afterAll(async () => {
  await setting("rotation_settle_seconds", "20");
  await closeSql();
});

describe("checkout and rotate-key refuse tokens that are not a live session of this project", () => {
  const projectKid = () => platformKeys().signing_key?.kid;
  const cases: [string, () => Promise<string> | string][] = [
    ["an expired token", () => signAsProject({ ...claims, iat: now() - 7200, exp: now() - 60 })],
    ["a token signed by another ES256 key", () => signWithForeignKey(claims, "another-kid")],
    ["a token signed by another ES256 key under the project's kid", () => signWithForeignKey(claims, projectKid())],
    ["a token for another audience", () => signAsProject({ ...claims, aud: "another-audience" })],
    [
      "a token from another issuer",
      () => signAsProject({ ...claims, iss: "https://another-project.supabase.co/auth/v1" }),
    ],
    ['an "alg": "none" token', () => unsignedJwt(claims)],
    ["the publishable key as a user token", () => publishableKey()],
    // The anon key: legacy mode's own; in new mode the well-known local one (HS256), and an anon-role
    // token signed with the project's real key.
    [
      "the anon key as a user token",
      () => (keysMode() === "legacy"
        ? env("SUPABASE_ANON_KEY")
        : signHs256({ role: "anon", iss: "supabase-demo" }, WELL_KNOWN_JWT_SECRET)),
    ],
    ["an anon-role token signed with the project's key", () => signAsProject({ iss: "supabase", role: "anon" })],
    [
      "a user token signed HS256 with a secret the project does not use",
      () => signHs256(claims, keysMode() === "new" ? WELL_KNOWN_JWT_SECRET : "another-secret-another-secret-another"),
    ],
    ["a token without a session", () => signAsProject({ ...claims, session_id: undefined })],
    ["a token of a session that never existed", () => signAsProject({ ...claims, session_id: crypto.randomUUID() })],
  ];
  for (const fn of FUNCTIONS) {
    it.each(cases)(`${fn}: 401 for %s, and nothing changes`, async (_what, make) => {
      const before = await footprint(u.id);
      const r = await invoke(fn, BODY[fn], await make());
      expect(r.status, r.text).toBe(401);
      expect(r.body.error).toBe("not_signed_in");
      expect(await footprint(u.id)).toEqual(before);
    });
  }

  it("the user's real token works for both (and a token the project signed for the same session too)", async () => {
    const c = await invoke("checkout", BODY.checkout, u.token);
    expect(c.status, c.text).toBe(200);
    expect(c.body.reference).toMatch(/^lc-/);
    const same = await invoke("checkout", BODY.checkout, await signAsProject(claims));
    expect(same.status, same.text).toBe(200);
    const r = await invoke("rotate-key", {}, u.token);
    expect(r.status, r.text).toBe(200);
    expect(r.body.state).toBe("done");
  });
});

describe("a signed-out session is refused although its token has not expired", () => {
  it("checkout and rotate-key: 401 after logout, while the token itself still verifies", async () => {
    const v = await activeUser("logout");
    const { session_id } = claimsOf(v.token);
    expect((await v.client.auth.signOut()).error).toBeNull();
    expect(await sql()`select 1 from auth.sessions where id = ${session_id as string}`).toHaveLength(0);
    // The token is still well signed and unexpired: REST (like hosted PostgREST) still takes it.
    const asUser = await fetch(`${env("SUPABASE_URL")}/rest/v1/my_key?select=status`, {
      headers: { apikey: publishableKey(), Authorization: `Bearer ${v.token}` },
    });
    expect(asUser.status).toBe(200);
    const before = await footprint(v.id);
    for (const fn of FUNCTIONS) {
      const r = await invoke(fn, BODY[fn], v.token);
      expect(r.status, r.text).toBe(401);
      expect(r.body.message).toContain("signed out");
    }
    expect(await footprint(v.id)).toEqual(before);
  });
});

describe("operator callers: a secret key works, the publishable key does not", () => {
  const noSuchUser = crypto.randomUUID();

  it("push-budget, ops-sweep and rotate-key's operator path take the secret key, in Authorization or apikey", async () => {
    // push-budget and rotate-key answer 404 for a user that does not exist: the caller got past the check.
    expect((await invoke("push-budget", { user_id: noSuchUser }, secretKey())).status).toBe(404);
    expect((await invoke("rotate-key", { user_id: noSuchUser }, secretKey())).status).toBe(404);
    const apikeyOnly = await fetch(`${env("SUPABASE_URL")}/functions/v1/push-budget`, {
      method: "POST",
      headers: { apikey: secretKey(), "Content-Type": "application/json" },
      body: JSON.stringify({ user_id: noSuchUser }),
    });
    expect(apikeyOnly.status).toBe(404);
    await apikeyOnly.body?.cancel();
    expect((await invoke("ops-sweep", {}, secretKey())).status).toBe(200);
  });

  it("the publishable key gets 401 from each", async () => {
    for (
      const [fn, body] of [["push-budget", { user_id: noSuchUser }], ["rotate-key", { user_id: noSuchUser }], [
        "ops-sweep",
        {},
      ]] as const
    ) {
      const r = await invoke(fn, body, publishableKey());
      expect(r.status, `${fn}: ${r.text}`).toBe(401);
    }
    const apikeyOnly = await fetch(`${env("SUPABASE_URL")}/functions/v1/push-budget`, {
      method: "POST",
      headers: { apikey: publishableKey(), "Content-Type": "application/json" },
      body: JSON.stringify({ user_id: noSuchUser }),
    });
    expect(apikeyOnly.status).toBe(401);
    await apikeyOnly.body?.cancel();
  });
});

describe("keys from the discovery endpoint when SUPABASE_JWKS is not injected", () => {
  // Legacy mode never injects SUPABASE_JWKS, so there every test above already takes this path.
  it.skipIf(keysMode() === "legacy")(
    "checkout served alone without SUPABASE_JWKS fetches <SUPABASE_URL>/auth/v1/.well-known/jwks.json",
    async () => {
      const port = Number(env("STACK_GATEWAY_PORT")) + 70; // in this stack's own range (the gateway's port + 70)
      const fnEnv = { ...process.env, NO_COLOR: "1" } as Record<string, string>;
      delete fnEnv.SUPABASE_JWKS;
      const child = spawn(`${process.cwd()}/node_modules/.bin/deno`, [
        "run",
        "-A",
        "supabase/tests/integration/fixtures/serve-function.ts",
        "checkout",
        String(port),
      ], {
        env: fnEnv,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      child.stdout!.on("data", (c) => (out += c));
      child.stderr!.on("data", (c) => (out += c));
      try {
        await waitFor(async () => out.includes("serving checkout"), "the function to listen", 15_000);
        const call = (token: string) =>
          fetch(`http://127.0.0.1:${port}/functions/v1/checkout`, {
            method: "POST",
            headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
            body: JSON.stringify(BODY.checkout),
          });
        const ok = await call(u.token);
        expect(ok.status, await ok.clone().text()).toBe(200);
        const foreign = await call(await signWithForeignKey(claims, platformKeys().signing_key!.kid));
        expect(foreign.status).toBe(401);
        const unknownKid = await call(await signWithForeignKey(claims, "a-kid-nobody-published"));
        expect(unknownKid.status).toBe(401);
      } finally {
        child.kill("SIGTERM");
      }
    },
  );
});
