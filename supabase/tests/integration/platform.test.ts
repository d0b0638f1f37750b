// The local stack's platform stand-ins (stack/platform/gateway.ts) behave like hosted Supabase where our
// code depends on it: Auth sessions, REST under RLS, API keys and signing keys in both key modes (new:
// sb_publishable_/sb_secret_ and ES256; legacy: anon/service_role and HS256), the functions host's
// routing and environment, and pg_net delivering only committed requests. Needs the stack running (the
// test command starts it and exports .local/stack.env).
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  confirmEmail,
  env,
  keysMode,
  mailTo,
  platformKeys,
  publishableKey,
  secretKey,
  signAsProject,
  signHs256,
  signWithForeignKey,
  WELL_KNOWN_JWT_SECRET,
} from "./helpers.ts";

const URL_ = env("SUPABASE_URL");
const ANON = publishableKey();
const SERVICE = secretKey();
const sql = postgres(env("SUPABASE_DB_URL"), { max: 4, onnotice: () => {} });

// Node 20 has no global WebSocket and supabase-js refuses to build its (unused here) realtime client without one.
class NoWebSocket {
  constructor() {
    throw new Error("realtime is not used by these tests");
  }
}
const options = (headers: Record<string, string> = {}) => ({
  auth: { persistSession: false, autoRefreshToken: false },
  realtime: { transport: NoWebSocket as never },
  global: { headers },
});
const client = (key = ANON) => createClient(URL_, key, options());
const withToken = (token: string) => createClient(URL_, ANON, options({ Authorization: `Bearer ${token}` }));
const uniqueEmail = (tag: string) =>
  `platform-${tag}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}@Example.com`;
const PASSWORD = "correct-horse-1";

async function signedUp(
  tag: string,
): Promise<{ db: SupabaseClient; id: string; email: string; access: string; refresh: string }> {
  const email = uniqueEmail(tag);
  const db = client();
  const { data, error } = await db.auth.signUp({ email, password: PASSWORD, options: { data: { tag } } });
  expect(error).toBeNull();
  expect(data.session).toBeNull(); // confirmations on (supabase/config.toml): the session comes with the emailed link
  const access = await confirmEmail(email.toLowerCase(), db);
  const { data: s } = await db.auth.getSession();
  return { db, id: data.user!.id, email: email.toLowerCase(), access, refresh: s.session!.refresh_token };
}

/** A JWT the project did not sign: another ES256 key (new mode) or another HS256 secret (legacy). */
const forged = (claims: Record<string, unknown>) =>
  keysMode() === "new"
    ? signWithForeignKey(claims, "another-kid")
    : signHs256(claims, "another-secret-another-secret-another");

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

afterAll(async () => {
  await sql.end({ timeout: 2 });
});

describe("gateway", () => {
  it("answers /health and CORS preflights", async () => {
    const health = await fetch(`${URL_}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true });
    expect(health.headers.get("access-control-allow-origin")).toBe("*");

    const pre = await fetch(`${URL_}/rest/v1/profiles`, { method: "OPTIONS" });
    expect(pre.status).toBe(204);
    const allowed = pre.headers.get("access-control-allow-headers") ?? "";
    for (const h of ["authorization", "apikey", "content-type", "x-client-info", "prefer", "accept-profile"]) {
      expect(allowed).toContain(h);
    }
    expect(pre.headers.get("access-control-allow-methods")).toContain("PATCH");
  });
});

describe("auth stand-in", () => {
  it("signs up (firing handle_new_user), signs in, reads the user", async () => {
    const u = await signedUp("auth");
    const [profile] = await sql`select email from public.profiles where id = ${u.id}`;
    expect(profile?.email).toBe(u.email); // the trigger ran in the sign-up transaction

    const other = client();
    const { data, error } = await other.auth.signInWithPassword({ email: u.email.toUpperCase(), password: PASSWORD });
    expect(error).toBeNull();
    expect(data.user?.id).toBe(u.id);
    expect(data.session?.token_type).toBe("bearer");
    expect(data.session?.expires_in).toBe(3600);
    const { data: me } = await other.auth.getUser();
    expect(me.user?.email).toBe(u.email);
    expect(me.user?.user_metadata).toMatchObject({ tag: "auth" });
    expect(me.user?.app_metadata).toMatchObject({ provider: "email", providers: ["email"] });

    const claims = JSON.parse(Buffer.from(data.session!.access_token.split(".")[1], "base64url").toString());
    expect(claims).toMatchObject({
      sub: u.id,
      role: "authenticated",
      aud: "authenticated",
      aal: "aal1",
      iss: `${URL_}/auth/v1`,
      is_anonymous: false,
    });
    expect(claims.exp - claims.iat).toBe(3600);
  });

  it("refuses bad credentials, duplicate e-mails, weak passwords and a missing apikey like GoTrue", async () => {
    const u = await signedUp("errors");
    const bad = await client().auth.signInWithPassword({ email: u.email, password: "wrong-password" });
    expect(bad.error?.status).toBe(400);
    expect(bad.error?.code).toBe("invalid_credentials");
    expect(bad.error?.message).toBe("Invalid login credentials");

    // With confirmations on, GoTrue answers a registered address with a decoy user (no session, no mail)
    // instead of an error, so sign-up does not reveal who has an account.
    const dup = await client().auth.signUp({ email: u.email, password: PASSWORD });
    expect(dup.error).toBeNull();
    expect(dup.data.session).toBeNull();
    expect(dup.data.user?.id).not.toBe(u.id);
    expect(await mailTo(u.email)).toHaveLength(1);

    const weak = await client().auth.signUp({ email: uniqueEmail("weak"), password: "12345" });
    expect(weak.error?.status).toBe(422);
    expect(weak.error?.code).toBe("weak_password");

    const noKey = await fetch(`${URL_}/auth/v1/signup`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: uniqueEmail("nokey"), password: PASSWORD }),
    });
    expect(noKey.status).toBe(401);
  });

  it("rotates refresh tokens and signs out", async () => {
    const u = await signedUp("refresh");
    const { data, error } = await u.db.auth.setSession({ access_token: u.access, refresh_token: u.refresh });
    expect(error).toBeNull();
    const refreshed = await u.db.auth.refreshSession();
    expect(refreshed.error).toBeNull();
    const next = refreshed.data.session!;
    expect(next.refresh_token).not.toBe(u.refresh);
    expect(next.user.id).toBe(data.user!.id);
    const { data: rows } = await u.db.from("profiles").select("id");
    expect(rows).toEqual([{ id: u.id }]);

    expect((await u.db.auth.signOut()).error).toBeNull();
    // The session is gone: its refresh token and its access token no longer work.
    const reuse = await fetch(`${URL_}/auth/v1/token?grant_type=refresh_token`, {
      method: "POST",
      headers: { apikey: ANON, "content-type": "application/json" },
      body: JSON.stringify({ refresh_token: next.refresh_token }),
    });
    expect(reuse.status).toBe(400);
    expect((await reuse.json()).error_code).toBe("refresh_token_not_found");
    const user = await fetch(`${URL_}/auth/v1/user`, {
      headers: { apikey: ANON, authorization: `Bearer ${next.access_token}` },
    });
    expect(user.status).toBe(403);
    expect((await user.json()).error_code).toBe("session_not_found");
  });

  it("rejects a forged access token on /user", async () => {
    const r = await fetch(`${URL_}/auth/v1/user`, {
      headers: {
        apikey: ANON,
        authorization: `Bearer ${await forged({ sub: crypto.randomUUID(), role: "authenticated" })}`,
      },
    });
    expect(r.status).toBe(403);
    expect((await r.json()).error_code).toBe("bad_jwt");
  });
});

describe("REST stand-in: profiles under RLS", () => {
  let a: Awaited<ReturnType<typeof signedUp>>;
  let b: Awaited<ReturnType<typeof signedUp>>;
  beforeAll(async () => {
    [a, b] = await Promise.all([signedUp("rls-a"), signedUp("rls-b")]);
  });

  it("each user sees only their own profile", async () => {
    const ra = await a.db.from("profiles").select("id, email");
    expect(ra.error).toBeNull();
    expect(ra.data).toEqual([{ id: a.id, email: a.email }]);
    const rb = await b.db.from("profiles").select("*");
    expect(rb.data?.map((r) => r.id)).toEqual([b.id]);
    const peek = await a.db.from("profiles").select("id").eq("id", b.id);
    expect(peek.data).toEqual([]);
  });

  it(".single() and .maybeSingle() work", async () => {
    const one = await a.db.from("profiles").select("id, email").single();
    expect(one.error).toBeNull();
    expect(one.data).toEqual({ id: a.id, email: a.email });
    const none = await a.db.from("profiles").select("id").eq("id", b.id).single();
    expect(none.status).toBe(406);
    expect(none.error?.code).toBe("PGRST116");
    const maybe = await a.db.from("profiles").select("id").eq("id", b.id).maybeSingle();
    expect(maybe.error).toBeNull();
    expect(maybe.data).toBeNull();
  });

  it("anon gets no profiles; service_role sees both", async () => {
    const anon = await client().from("profiles").select("id");
    expect(anon.data ?? []).toEqual([]);
    if (anon.error) expect([anon.status, anon.error.code]).toEqual([401, "42501"]);
    const svc = await client(SERVICE).from("profiles").select("id", { count: "exact" }).in("id", [a.id, b.id]).order(
      "id",
    );
    expect(svc.data?.map((r) => r.id)).toEqual([a.id, b.id].sort());
    expect(svc.count).toBe(2);
  });

  it("refuses forged, expired and unknown-role JWTs with 401", async () => {
    const f = await withToken(await forged({ sub: a.id, role: "authenticated" })).from("profiles").select("id");
    expect(f.status).toBe(401);
    expect(f.error?.code).toBe("PGRST301");
    expect(f.data).toBeNull();

    const expired = withToken(
      await signAsProject({ sub: a.id, role: "authenticated", exp: Math.floor(Date.now() / 1000) - 10 }),
    );
    const e = await expired.from("profiles").select("id");
    expect([e.status, e.error?.code]).toEqual([401, "PGRST303"]);

    const odd = withToken(await signAsProject({ sub: a.id, role: "postgres" }));
    expect((await odd.from("profiles").select("id")).status).toBe(401);
  });

  it("answers unknown tables and functions like PostgREST", async () => {
    const t = await a.db.from("no_such_table").select("*");
    expect([t.status, t.error?.code]).toEqual([404, "PGRST205"]);
    const f = await a.db.rpc("no_such_function", { x: 1 });
    expect([f.status, f.error?.code]).toEqual([404, "PGRST202"]);
  });
});

describe("REST stand-in: writes, filters and RPC (throwaway objects)", () => {
  const t = `platform_test_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  // Each test's own users: RLS keeps the table's rows per owner, so no test sees another's rows.
  const users = () => Promise.all([signedUp("w-a"), signedUp("w-b")]);

  beforeAll(async () => {
    await sql.unsafe(`
      create table public.${t} (
        id bigint generated by default as identity primary key,
        owner uuid not null default auth.uid(),
        name text not null check (length(name) > 0),
        qty int default 7,
        price numeric(12, 4),
        tags text[],
        meta jsonb,
        code text unique
      );
      alter table public.${t} enable row level security;
      grant select, insert, update, delete on public.${t} to authenticated;
      create policy own on public.${t} to authenticated using (owner = (select auth.uid())) with check (owner = (select auth.uid()));
      create function public.${t}_sum(a int, b int default 1) returns int language sql as 'select a + b';
      create function public.${t}_items(min_qty int) returns setof public.${t} language sql stable as 'select * from public.${t} where qty >= min_qty';
      create function public.${t}_fail(msg text) returns void language plpgsql as 'begin raise exception ''%'', msg; end';
      create function public.${t}_summary(out n bigint, out total numeric, out ok boolean) language sql stable
        as 'select count(*), sum(qty), true from public.${t}';
      revoke execute on function public.${t}_sum(int, int), public.${t}_items(int), public.${t}_fail(text), public.${t}_summary() from public;
      grant execute on function public.${t}_sum(int, int), public.${t}_items(int), public.${t}_fail(text), public.${t}_summary() to authenticated;
    `);
  });
  afterAll(async () => {
    await sql.unsafe(`drop table if exists public.${t} cascade;
      drop function if exists public.${t}_sum(int, int); drop function if exists public.${t}_fail(text);
      drop function if exists public.${t}_summary();`);
  });

  it("inserts, filters, orders, counts, updates and deletes", async () => {
    const [a, b] = await users();
    const one = await a.db.from(t).insert({ name: "alpha" }).select().single();
    expect(one.status).toBe(201);
    expect(one.data).toMatchObject({ name: "alpha", owner: a.id, qty: 7 }); // absent keys take defaults

    const many = await a.db.from(t).insert([
      { name: "beta", qty: 1, price: 1.5, tags: ["x", "y"], meta: { k: [1, 2] } },
      { name: "gamma", code: "g1" },
    ]).select("name, qty, price, tags, meta");
    expect(many.error).toBeNull();
    expect(many.data).toEqual([
      { name: "beta", qty: 1, price: 1.5, tags: ["x", "y"], meta: { k: [1, 2] } },
      { name: "gamma", qty: null, price: null, tags: null, meta: null }, // PostgREST: missing keys in a batch are null
    ]);
    const defaults = await a.db.from(t).insert([{ name: "delta", code: "d1" }, { name: "eps", qty: 2 }], {
      defaultToNull: false,
    }).select("name, qty");
    expect(defaults.data).toEqual([{ name: "delta", qty: 7 }, { name: "eps", qty: 2 }]);

    const page = await a.db.from(t).select("name", { count: "exact" }).gte("qty", 2).order("qty", { ascending: false })
      .order("name").range(0, 1);
    expect(page.data).toEqual([{ name: "alpha" }, { name: "delta" }]);
    expect(page.count).toBe(3);
    expect((await a.db.from(t).select("name").in("name", ["beta", "gamma"]).order("name")).data).toEqual([{
      name: "beta",
    }, { name: "gamma" }]);
    expect((await a.db.from(t).select("name").ilike("name", "%ELT%")).data).toEqual([{ name: "delta" }]);
    expect((await a.db.from(t).select("name").is("qty", null)).data).toEqual([{ name: "gamma" }]);
    expect((await a.db.from(t).select("name").neq("name", "alpha").lt("qty", 3).order("name")).data).toEqual([{
      name: "beta",
    }, { name: "eps" }]);
    const head = await a.db.from(t).select("*", { count: "exact", head: true });
    expect([head.count, head.data]).toEqual([5, null]);

    const upd = await a.db.from(t).update({ qty: 50, meta: { v: 2 } }).eq("name", "beta").select("name, qty, meta");
    expect(upd.data).toEqual([{ name: "beta", qty: 50, meta: { v: 2 } }]);
    const del = await a.db.from(t).delete().eq("name", "eps");
    expect(del.status).toBe(204);
    expect((await a.db.from(t).select("id", { count: "exact", head: true })).count).toBe(4);

    // RLS: b sees and changes none of a's rows.
    expect((await b.db.from(t).select("*")).data).toEqual([]);
    const stolen = await b.db.from(t).update({ qty: 0 }).eq("name", "alpha").select();
    expect(stolen.data).toEqual([]);
    const denied = await b.db.from(t).insert({ name: "x", owner: a.id });
    expect([denied.status, denied.error?.code]).toEqual([403, "42501"]);
    expect((await client().from(t).select("*")).status).toBe(401); // anon has no grant
  });

  it("maps constraint errors like PostgREST", async () => {
    const a = await signedUp("w-a");
    await a.db.from(t).insert({ name: "uniq", code: "u1" });
    const dup = await a.db.from(t).insert({ name: "uniq2", code: "u1" });
    expect([dup.status, dup.error?.code]).toEqual([409, "23505"]);
    const check = await a.db.from(t).insert({ name: "" });
    expect([check.status, check.error?.code]).toEqual([400, "23514"]);
    const notNull = await a.db.from(t).insert({ qty: 1 });
    expect([notNull.status, notNull.error?.code]).toEqual([400, "23502"]);
    const badType = await a.db.from(t).select("id").eq("qty", "many");
    expect([badType.status, badType.error?.code]).toEqual([400, "22P02"]);
    const badCol = await a.db.from(t).select("nope");
    expect([badCol.status, badCol.error?.code]).toEqual([400, "42703"]);
  });

  it("calls functions: scalar, set-returning and raise exception", async () => {
    const [a, b] = await users();
    expect((await a.db.rpc(`${t}_sum`, { a: 2 })).data).toBe(3);
    expect((await a.db.rpc(`${t}_sum`, { a: 2, b: 40 })).data).toBe(42);
    await a.db.from(t).insert([{ name: "r1", qty: 100 }, { name: "r2", qty: 200 }]);
    const items = await a.db.rpc(`${t}_items`, { min_qty: 100 }).select("name").order("qty", { ascending: false });
    expect(items.data).toEqual([{ name: "r2" }, { name: "r1" }]);
    expect((await b.db.rpc(`${t}_items`, { min_qty: 0 })).data).toEqual([]); // RLS applies inside invoker functions
    expect((await b.db.rpc(`${t}_summary`)).data).toEqual({ n: 0, total: null, ok: true }); // OUT parameters: one object
    const one = await a.db.rpc(`${t}_items`, { min_qty: 150 }).single();
    expect(one.data).toMatchObject({ name: "r2", qty: 200 });
    const raised = await a.db.rpc(`${t}_fail`, { msg: "nope: insufficient credit" });
    expect([raised.status, raised.error?.code, raised.error?.message]).toEqual([
      400,
      "P0001",
      "nope: insufficient credit",
    ]);
    const anon = await client().rpc(`${t}_sum`, { a: 1 });
    expect([anon.status, anon.error?.code]).toEqual([401, "42501"]);
  });
});

describe("API keys and signing keys (STACK_KEYS)", () => {
  const isNew = keysMode() === "new";
  const rest = (headers: Record<string, string>) => fetch(`${URL_}/rest/v1/plans?select=code&limit=1`, { headers }); // anon may read plans

  it("serves the public signing key at /auth/v1/.well-known/jwks.json (no apikey needed); Auth signs with it", async () => {
    const jwks = await (await fetch(`${URL_}/auth/v1/.well-known/jwks.json`)).json();
    const u = await signedUp("jwks");
    const header = JSON.parse(Buffer.from(u.access.split(".")[0], "base64url").toString());
    if (isNew) {
      expect(jwks.keys).toHaveLength(1);
      expect(jwks.keys[0]).toMatchObject({
        kty: "EC",
        crv: "P-256",
        alg: "ES256",
        kid: platformKeys().signing_key!.kid,
      });
      expect(jwks.keys[0].d).toBeUndefined(); // never the private part
      expect(header).toMatchObject({ alg: "ES256", kid: jwks.keys[0].kid });
      expect(JSON.parse(env("SUPABASE_JWKS"))).toEqual(jwks); // what functions get injected
    } else {
      expect(jwks).toEqual({ keys: [] }); // a legacy HS256 project publishes no key
      expect(header.alg).toBe("HS256");
    }
  });

  it("an API key alone (or the same key in Authorization) runs as its role; a user JWT decides otherwise", async () => {
    const u = await signedUp("keys");
    expect((await rest({ apikey: ANON })).status).toBe(200);
    const asService = await (await fetch(`${URL_}/rest/v1/profiles?select=id&id=eq.${u.id}`, {
      headers: { apikey: SERVICE, authorization: `Bearer ${SERVICE}` },
    })).json();
    expect(asService).toEqual([{ id: u.id }]); // service_role reads any row
    const asUser = await (await fetch(`${URL_}/rest/v1/profiles?select=id`, {
      headers: { apikey: ANON, authorization: `Bearer ${u.access}` },
    })).json();
    expect(asUser).toEqual([{ id: u.id }]);
    const admin = createClient(URL_, SERVICE, options());
    expect((await admin.auth.admin.getUserById(u.id)).data.user?.id).toBe(u.id); // Auth's admin API takes the secret key
    expect((await client().auth.admin.getUserById(u.id)).error?.status).toBe(403);
  });

  it.skipIf(!isNew)(
    "new mode: the legacy JWT keys are not accepted; an sb_ key in Authorization must equal apikey; no secret key from a browser",
    async () => {
      const legacyAnon = await signHs256({ role: "anon", iss: "supabase-demo" }, WELL_KNOWN_JWT_SECRET);
      expect((await rest({ apikey: legacyAnon })).status).toBe(401);
      expect((await rest({ apikey: ANON, authorization: `Bearer ${legacyAnon}` })).status).toBe(401);
      expect((await rest({ apikey: ANON, authorization: `Bearer ${SERVICE}` })).status).toBe(401); // not a JWT, not the apikey
      const browser = await rest({ apikey: SERVICE, "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0" });
      expect(browser.status).toBe(401);
      expect((await rest({ apikey: SERVICE, "user-agent": "node" })).status).toBe(200);
      expect((await rest({ apikey: ANON, "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0" })).status).toBe(
        200,
      );
    },
  );

  it("the gateway, where the functions run, holds only what hosted injects: no legacy key in new mode, no private key or JWT secret", () => {
    const pid = JSON.parse(readFileSync(join(env("STACK_LOCAL_DIR"), "stack.json"), "utf8")).pids.gateway;
    const environ = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").filter(Boolean);
    const names = environ.map((e) => e.slice(0, e.indexOf("=")));
    const keys = platformKeys();
    const forbiddenNames = [
      "SUPABASE_JWT_SECRET",
      "SUPABASE_PUBLISHABLE_KEY",
      "SUPABASE_SECRET_KEY",
      ...(isNew ? ["SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY"] : []),
    ];
    for (const n of forbiddenNames) expect(names).not.toContain(n);
    const forbiddenValues = [WELL_KNOWN_JWT_SECRET, keys.jwt_secret, keys.signing_key?.d].filter((v): v is string =>
      !!v
    );
    expect(forbiddenValues.length).toBeGreaterThan(0);
    for (const v of forbiddenValues) expect(environ.some((e) => e.includes(v))).toBe(false);
    const supabase = names.filter((n) => n.startsWith("SUPABASE_")).sort();
    expect(supabase).toEqual(
      isNew
        ? ["SUPABASE_DB_URL", "SUPABASE_JWKS", "SUPABASE_PUBLISHABLE_KEYS", "SUPABASE_SECRET_KEYS", "SUPABASE_URL"]
        : ["SUPABASE_ANON_KEY", "SUPABASE_DB_URL", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_URL"],
    );
    // The private material lives in a file only the stack's user can read.
    expect(statSync(join(env("STACK_LOCAL_DIR"), "platform-keys.json")).mode & 0o777).toBe(0o600);
  });
});

describe("pg_net worker", () => {
  let server: http.Server;
  let base = "";
  const received: { path: string; body: string; type?: string; at: number }[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        received.push({
          path: req.url ?? "",
          body: Buffer.concat(chunks).toString(),
          type: req.headers["content-type"],
          at: Date.now(),
        });
        const delay = req.url?.startsWith("/slow") ? 1500 : 0;
        setTimeout(() => {
          res.writeHead(201, { "content-type": "application/json" });
          res.end(JSON.stringify({ got: req.url }));
        }, delay);
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const responseRow = (id: string) => async () => {
    const [row] = await sql`select status_code, content, timed_out, error_msg from net._http_response where id = ${id}`;
    return row;
  };

  it("sends a committed request and stores the response", async () => {
    const t0 = Date.now();
    const [{ id }] =
      await sql`select net.http_post(url := ${`${base}/committed`}, body := '{"x":1}'::jsonb, timeout_milliseconds := 2000) as id`;
    const hit = await waitFor("delivery", async () => received.find((r) => r.path === "/committed"), 10_000);
    expect(JSON.parse(hit.body)).toEqual({ x: 1 });
    expect(hit.type).toBe("application/json");
    const row = await waitFor("response row", responseRow(id), 10_000);
    expect(row).toMatchObject({ status_code: 201, timed_out: false, error_msg: null });
    expect(JSON.parse(row.content)).toEqual({ got: "/committed" });
    console.log(`pg_net delivery ${hit.at - t0} ms after commit, response stored after ${Date.now() - t0} ms`);
  });

  it("never sends a request from a rolled-back transaction", async () => {
    let id = "";
    await sql.begin(async (tx) => {
      [{ id }] = await tx`select net.http_post(url := ${`${base}/rolled-back`}) as id`;
      throw new Error("roll back");
    }).catch((e) => expect((e as Error).message).toBe("roll back"));
    // The worker claims committed rows in id order: once two later requests (each made after the previous
    // one was answered, so each in a pass of its own) have been sent and answered, it has passed the
    // rolled-back id twice.
    for (const path of ["/after-rollback-1", "/after-rollback-2"]) {
      const [{ id: later }] = await sql`select net.http_get(url := ${`${base}${path}`}) as id`;
      await waitFor(`the response to ${path}`, responseRow(later), 10_000);
    }
    expect(received.some((r) => r.path === "/rolled-back")).toBe(false);
    expect(await responseRow(id)()).toBeUndefined();
  });

  it("records timeouts and connection errors", async () => {
    const [{ id: slow }] = await sql`select net.http_get(url := ${`${base}/slow`}, timeout_milliseconds := 200) as id`;
    const timedOut = await waitFor("timeout row", responseRow(slow), 10_000);
    expect(timedOut).toMatchObject({ status_code: null, timed_out: true, error_msg: "Timeout of 200 ms reached" });
    const [{ id: refused }] = await sql`select net.http_get(url := 'http://127.0.0.1:9/closed') as id`;
    const failed = await waitFor("error row", responseRow(refused), 10_000);
    expect(failed.status_code).toBeNull();
    expect(failed.error_msg).toBeTruthy();
  });
});

describe("functions host", () => {
  const functionsDir = new URL("../../functions", import.meta.url).pathname;
  const config = existsSync(new URL("../../config.toml", import.meta.url))
    ? readFileSync(new URL("../../config.toml", import.meta.url), "utf8")
    : "";
  const present = existsSync(functionsDir)
    ? readdirSync(functionsDir).filter((n) => !n.startsWith("_") && existsSync(`${functionsDir}/${n}/index.ts`))
    : [];
  const verifyJwt = (name: string) =>
    !new RegExp(`\\[functions\\.${name}\\][^\\[]*verify_jwt\\s*=\\s*false`).test(config);
  const open = present.find((n) => !verifyJwt(n));
  const stats = (key?: string) =>
    fetch(`${URL_}/_stack/functions/stats`, { headers: key ? { authorization: `Bearer ${key}` } : {} });

  it("answers 404 for an unknown function", async () => {
    const r = await fetch(`${URL_}/functions/v1/no-such-function-here`, {
      method: "POST",
      headers: { authorization: `Bearer ${ANON}` },
    });
    expect(r.status).toBe(404);
    await r.body?.cancel();
  });

  it("serves stats to a secret key (service role) only", async () => {
    expect((await stats()).status).toBe(401);
    expect((await stats(ANON)).status).toBe(401);
    const ok = await stats(SERVICE);
    expect(ok.status).toBe(200);
    expect(typeof (await ok.json())).toBe("object");
    const byApikey = await fetch(`${URL_}/_stack/functions/stats`, { headers: { apikey: SERVICE } }); // how the benches send it
    expect(byApikey.status).toBe(200);
    await byApikey.body?.cancel();
  });

  it.skipIf(!open)("routes to a verify_jwt = false function without a JWT and measures it", async () => {
    // No stats reset here: other test files may read the shared counters at the same time.
    const before = (await (await stats(SERVICE)).json())[open!]?.invocations ?? 0;
    const r = await fetch(`${URL_}/functions/v1/${open}`, {
      method: "POST",
      body: "{}",
      headers: { "content-type": "application/json" },
    });
    await r.body?.cancel();
    expect(r.status).not.toBe(404);
    const after = (await (await stats(SERVICE)).json())[open!];
    expect(after.invocations).toBeGreaterThan(before);
    expect(after.max_rss_mb).toBeGreaterThan(0);
  });
});
