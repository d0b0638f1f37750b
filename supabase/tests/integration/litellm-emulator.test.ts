// deno-lint-ignore-file no-explicit-any
// (response bodies are arbitrary JSON, asserted field by field)

// Integration tests of the LiteLLM proxy emulator (stack/emulators/litellm), run by vitest on
// Node: the emulator is a Deno program, so it is spawned as a subprocess on test ports.
// These tests pin the behaviour product code relies on (shapes, errors, spend timing,
// enforcement) so that the emulator keeps matching the real proxy.

import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import OpenAI, { APIError } from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
// Derived from the stack's LiteLLM port, so that test runs on other ports (other stacks) never share it.
const PORT = Number(process.env.STACK_LITELLM_PORT ?? 4010) + 150;
const ADMIN_PORT = PORT + 1;
const BASE = `http://127.0.0.1:${PORT}`;
const ADMIN = `http://127.0.0.1:${ADMIN_PORT}`;
const MASTER = "sk-emulator-test-master";
const REPLY = "This is a deterministic reply from the LiteLLM emulator.";

let child: ChildProcess | null = null;
let childLog = "";

type Res = { status: number; body: any; headers: Headers };

async function call(
  method: string,
  path: string,
  opts: {
    body?: unknown;
    raw?: string;
    key?: string | null;
    base?: string;
    signal?: AbortSignal;
  } = {},
): Promise<Res> {
  const headers: Record<string, string> = {
    "content-type": "application/json",
  };
  const key = opts.key === undefined ? MASTER : opts.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  const res = await fetch(`${opts.base ?? BASE}${path}`, {
    method,
    headers,
    body: opts.raw ??
      (opts.body === undefined ? undefined : JSON.stringify(opts.body)),
    signal: opts.signal,
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch { /* not JSON */ }
  return { status: res.status, body, headers: res.headers };
}

const api = {
  get: (path: string, key?: string | null) => call("GET", path, { key }),
  post: (path: string, body?: unknown, key?: string | null) =>
    call("POST", path, { body, key }),
};

async function admin(
  method: string,
  path: string,
  body?: unknown,
): Promise<any> {
  const r = await call(method, path, { body, base: ADMIN });
  expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).toBe(200);
  return r.body;
}

async function generate(body: Record<string, unknown> = {}): Promise<any> {
  const r = await api.post("/key/generate", body);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body;
}

function chat(key: string, extra: Record<string, unknown> = {}): Promise<Res> {
  return api.post("/chat/completions", {
    model: "test-expensive",
    messages: [{ role: "user", content: "hello there" }], // 11 chars -> 3 prompt tokens
    ...extra,
  }, key);
}

// test-expensive costs $0.001 per token; "hello there" + 16 completion tokens = 19 tokens.
const CALL_COST = 0.019;

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  child = spawn(`${ROOT}/node_modules/.bin/deno`, [
    "run",
    "-A",
    "stack/emulators/litellm/main.ts",
  ], {
    cwd: ROOT,
    env: {
      ...process.env,
      LITELLM_EMULATOR_PORT: String(PORT),
      LITELLM_EMULATOR_ADMIN_PORT: String(ADMIN_PORT),
      LITELLM_MASTER_KEY: MASTER,
      LITELLM_BATCH_WRITE_MS: "0",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.on("data", (d) => (childLog += d));
  child.stderr!.on("data", (d) => (childLog += d));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`emulator exited early:\n${childLog}`);
    }
    try {
      const r = await fetch(`${BASE}/health/liveliness`);
      if (r.ok) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) {
      throw new Error(`emulator did not start:\n${childLog}`);
    }
    await sleep(100);
  }
}, 40_000);

afterAll(async () => {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((r) => child!.once("exit", r));
  child.kill("SIGTERM");
  await Promise.race([exited, sleep(5000)]);
  if (child.exitCode === null) child.kill("SIGKILL");
});

beforeEach(async () => {
  await admin("POST", "/admin/reset");
});

describe("health and models", () => {
  it("answers liveliness without a key and lists the price-table models", async () => {
    const live = await api.get("/health/liveliness", null);
    expect(live).toMatchObject({ status: 200, body: "I'm alive!" });
    const models = await api.get("/v1/models");
    expect(models.status).toBe(200);
    expect(models.body.object).toBe("list");
    expect(models.body.data.map((m: { id: string }) => m.id)).toEqual(
      expect.arrayContaining(["gpt-4o-mini", "gpt-4o", "test-expensive"]),
    );
    expect((await api.get("/models", null)).status).toBe(401);
  });
});

describe("POST /key/generate", () => {
  it("returns the raw key, its hash and the stored fields", async () => {
    const g = await generate({
      key_alias: "user-1",
      max_budget: 2,
      metadata: { user: "u1" },
      user_id: "u1",
    });
    expect(g.key).toMatch(/^sk-[A-Za-z0-9_-]{22}$/);
    expect(g.token).toBe(sha256(g.key));
    expect(g.key_name).toBe(`sk-...${g.key.slice(-4)}`);
    expect(g).toMatchObject({
      key_alias: "user-1",
      max_budget: 2,
      user_id: "u1",
      metadata: { user: "u1" },
      expires: null,
    });
    expect(g).toHaveProperty("rpm_limit", null);
    expect(g).toHaveProperty("tpm_limit", null);

    const info = await api.get(`/key/info?key=${g.key}`);
    expect(info.status).toBe(200);
    expect(info.body.key).toBe(g.key);
    expect(info.body.info).toMatchObject({
      spend: 0,
      max_budget: 2,
      key_alias: "user-1",
      blocked: null,
    });
    expect(info.body.info).not.toHaveProperty("token"); // the proxy pops the hash from /key/info
  });

  it("refuses a duplicate alias with the proxy's 400, before looking at a custom key", async () => {
    const first = await generate({
      key_alias: "dup",
      key: "sk-custom-duplicate-0001",
    });
    for (
      const body of [{ key_alias: "dup" }, { key_alias: "dup", key: first.key }]
    ) {
      const r = await api.post("/key/generate", body);
      expect(r.status).toBe(400);
      expect(r.body.error).toEqual({
        message:
          "Key with alias 'dup' already exists. Unique key aliases across all keys are required.",
        type: "bad_request_error",
        param: "key_alias",
        code: "400",
      });
    }
  });

  it("answers 200 for an existing custom key but changes nothing", async () => {
    const key = "sk-custom-existing-key-01";
    await generate({ key, max_budget: 5, metadata: { v: 1 } });
    const again = await api.post("/key/generate", {
      key,
      max_budget: 99,
      metadata: { v: 2 },
    });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ key, max_budget: 99 }); // echoes the request...
    const info = await api.get(`/key/info?key=${key}`);
    expect(info.body.info).toMatchObject({ max_budget: 5, metadata: { v: 1 } }); // ...stored row untouched
  });

  it("validates custom keys, budgets, types and the caller", async () => {
    const bad = await api.post("/key/generate", {
      key: "bad-prefix-1234567890abcdefghijklmnop",
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain(
      "LiteLLM Virtual Key must start with 'sk-'. Received: bad-****mnop",
    );

    const neg = await api.post("/key/generate", { max_budget: -1 });
    expect(neg.status).toBe(400);
    expect(neg.body.error.message).toBe(
      "{'error': 'max_budget cannot be negative. Received: -1.0'}",
    );

    const types = await api.post("/key/generate", {
      max_budget: "lots",
      rpm_limit: 1.5,
    });
    expect(types.status).toBe(422);
    expect(types.body.detail.map((d: { loc: unknown[] }) => d.loc)).toEqual([[
      "body",
      "max_budget",
    ], ["body", "rpm_limit"]]);

    const json = await call("POST", "/key/generate", { raw: "{not json" });
    expect(json.status).toBe(422);
    expect(json.body.detail[0].type).toBe("json_invalid");

    const user = await generate();
    const nonAdmin = await api.post("/key/generate", {}, user.key);
    expect(nonAdmin.status).toBe(401);
    expect(nonAdmin.body.error.type).toBe("auth_error");
    expect(nonAdmin.body.error.message).toContain(
      "Only proxy admin can be used to generate",
    );
  });
});

describe("POST /key/update", () => {
  it("applies only the fields sent, with absolute budgets and whole metadata", async () => {
    const g = await generate({
      key_alias: "upd",
      max_budget: 2,
      metadata: { a: 1, b: 2 },
      rpm_limit: 10,
    });
    const r = await api.post("/key/update", {
      key: g.key,
      max_budget: 12,
      metadata: { c: 3 },
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      key: g.key,
      token: g.token,
      max_budget: 12,
      metadata: { c: 3 },
      rpm_limit: 10,
    });
    expect(r.body.metadata).not.toHaveProperty("a");

    const byHash = await api.post("/key/update", {
      key: g.token,
      max_budget: null,
    });
    expect(byHash.status).toBe(200);
    expect(byHash.body).toMatchObject({
      key: g.token,
      max_budget: null,
      key_alias: "upd",
    });

    const withDuration = await api.post("/key/update", {
      key: g.key,
      budget_duration: "30d",
    });
    expect(Date.parse(withDuration.body.budget_reset_at)).toBeGreaterThan(
      Date.now() + 29 * 86_400_000,
    );
  });

  it("refuses unknown keys (401), missing key (422) and a taken alias (400)", async () => {
    const unknown = await api.post("/key/update", {
      key: "sk-does-not-exist",
      max_budget: 1,
    });
    expect(unknown.status).toBe(401);
    expect(unknown.body.error.type).toBe("auth_error");
    expect(unknown.body.error.message).toContain(
      "user key does not exist in db",
    );

    const missing = await api.post("/key/update", { max_budget: 1 });
    expect(missing.status).toBe(422);
    expect(missing.body.detail[0]).toMatchObject({
      type: "missing",
      loc: ["body", "key"],
    });

    await generate({ key_alias: "taken" });
    const other = await generate({ key_alias: "mine" });
    const clash = await api.post("/key/update", {
      key: other.key,
      key_alias: "taken",
    });
    expect(clash.status).toBe(400);
    expect(clash.body.error.type).toBe("bad_request_error");
    const same = await api.post("/key/update", {
      key: other.key,
      key_alias: "mine",
    });
    expect(same.status).toBe(200);
  });
});

describe("GET /key/info", () => {
  it("404s unknown keys and lets a virtual key read only itself", async () => {
    const unknown = await api.get(`/key/info?key=sk-${"x".repeat(22)}`);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({
      message: "Key not found in database",
      code: "404",
    });

    const a = await generate({ key_alias: "a" });
    const b = await generate({ key_alias: "b" });
    const self = await api.get("/key/info", a.key);
    expect(self.status).toBe(200);
    expect(self.body.info.key_alias).toBe("a");
    expect((await api.get(`/key/info?key=${a.key}`, a.key)).status).toBe(200);
    const other = await api.get(`/key/info?key=${b.key}`, a.key);
    expect(other.status).toBe(403);
  });

  it("still answers for a key that is over budget", async () => {
    const g = await generate({ max_budget: 0 });
    expect((await chat(g.key)).body.error.type).toBe("budget_exceeded");
    expect((await api.get("/key/info", g.key)).status).toBe(200);
  });
});

describe("POST /v2/key/info", () => {
  it("orders rows by spend desc, leaves unknown keys out and accepts hashes", async () => {
    const keys = await Promise.all(
      ["k1", "k2", "k3"].map((a) => generate({ key_alias: a })),
    );
    const spends = [1, 3, 2];
    for (const [i, k] of keys.entries()) {
      await admin("POST", "/admin/spend", { key: k.key, spend: spends[i] });
    }
    const asked = [
      keys[0].key,
      `sk-${"m".repeat(22)}`,
      keys[1].key,
      keys[2].token,
    ];
    const r = await api.post("/v2/key/info", { keys: asked });
    expect(r.status).toBe(200);
    expect(r.body.key).toEqual(asked);
    expect(r.body.info.map((row: { key_alias: string }) => row.key_alias))
      .toEqual(["k2", "k3", "k1"]);
    expect(r.body.info.map((row: { spend: number }) => row.spend)).toEqual([
      3,
      2,
      1,
    ]);
    expect(r.body.info[0].token).toBe(keys[1].token);

    expect((await api.post("/v2/key/info", { keys: [] })).status).toBe(422);
    expect(
      (await api.post("/v2/key/info", { keys: [keys[0].key] }, keys[0].key))
        .status,
    ).toBe(401);
  });
});

describe("GET /key/list", () => {
  it("pages newest first with stable totals, full objects and filters", async () => {
    const made: string[] = [];
    for (let i = 0; i < 25; i++) {
      made.push(
        (await generate({
          key_alias: `list-${i}`,
          user_id: i % 5 === 0 ? "u5" : "u",
        })).token,
      );
    }

    const pages = [];
    for (const page of [1, 2, 3]) {
      const r = await api.get(`/key/list?page=${page}&size=10`);
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({
        total_count: 25,
        current_page: page,
        total_pages: 3,
      });
      pages.push(r.body.keys as string[]);
    }
    expect(pages.map((p) => p.length)).toEqual([10, 10, 5]);
    const all = pages.flat();
    expect(new Set(all)).toEqual(new Set(made));
    expect(all[0]).toBe(made[24]); // newest first

    const full = await api.get(
      "/key/list?page=1&size=2&return_full_object=true",
    );
    expect(full.body.keys[0]).toMatchObject({
      token: made[24],
      key_alias: "list-24",
      spend: 0,
    });

    const byAlias = await api.get(
      "/key/list?key_alias=list-7&return_full_object=true",
    );
    expect(byAlias.body).toMatchObject({ total_count: 1 });
    expect(byAlias.body.keys[0].token).toBe(made[7]);
    const byUser = await api.get("/key/list?user_id=u5&size=100");
    expect(byUser.body.total_count).toBe(5);

    for (const size of [0, 101, "x"]) {
      expect((await api.get(`/key/list?size=${size}`)).status).toBe(422);
    }
    const user = await generate();
    expect((await api.get("/key/list", user.key)).status).toBe(403);
  });
});

describe("POST /key/delete, /key/block, /key/unblock, /key/regenerate", () => {
  it("deletes by key or alias and 404s when nothing matches", async () => {
    const a = await generate({ key_alias: "del-a" });
    const b = await generate({ key_alias: "del-b" });
    const byKey = await api.post("/key/delete", { keys: [a.key] });
    expect(byKey).toMatchObject({
      status: 200,
      body: { deleted_keys: [a.key] },
    });
    const byAlias = await api.post("/key/delete", { key_aliases: ["del-b"] });
    expect(byAlias).toMatchObject({
      status: 200,
      body: { deleted_keys: ["del-b"] },
    });
    expect((await api.get(`/key/info?key=${b.key}`)).status).toBe(404);
    const none = await api.post("/key/delete", { keys: [a.key] });
    expect(none.status).toBe(404);
    const gone = await chat(a.key);
    expect(gone.status).toBe(401);
    expect(gone.body.error.type).toBe("token_not_found_in_db");
    // The alias is free again once its key is gone.
    await generate({ key_alias: "del-a" });
  });

  it("blocks and unblocks a key", async () => {
    const g = await generate({ max_budget: 10 });
    const blocked = await api.post("/key/block", { key: g.key });
    expect(blocked).toMatchObject({
      status: 200,
      body: { token: g.token, blocked: true },
    });
    const refused = await chat(g.key);
    expect(refused.status).toBe(401);
    expect(refused.body.error).toMatchObject({
      type: "auth_error",
      message:
        "Authentication Error, Key is blocked. Update via `/key/unblock` if you're an admin.",
    });
    expect((await api.post("/key/unblock", { key: g.token })).body.blocked)
      .toBe(false);
    expect((await chat(g.key)).status).toBe(200);
  });

  it("refuses /key/regenerate like open-source LiteLLM", async () => {
    const g = await generate();
    expect((await api.post("/key/regenerate", { key: g.key })).status).toBe(
      500,
    );
    expect((await api.post(`/key/${g.key}/regenerate`, {})).status).toBe(500);
  });
});

describe("chat completions and budget enforcement", () => {
  it("refuses missing, malformed and unknown keys, and unknown models", async () => {
    const none = await api.post("/chat/completions", {
      model: "gpt-4o-mini",
      messages: [],
    }, null);
    expect(none.status).toBe(401);
    expect(none.body.error.message).toBe(
      "Authentication Error, No api key passed in.",
    );
    const notSk = await chat("not-a-virtual-key");
    expect(notSk.status).toBe(401);
    expect(notSk.body.error.message).toContain("expected to start with 'sk-'");
    const unknown = await chat(`sk-${"u".repeat(22)}`);
    expect(unknown.status).toBe(401);
    expect(unknown.body.error.type).toBe("token_not_found_in_db");
    const g = await generate();
    const model = await chat(g.key, { model: "no-such-model" });
    expect(model.status).toBe(400);
    expect(model.body.error.message).toContain(
      "Invalid model name passed in model=no-such-model",
    );
  });

  it("works with the official openai client, streams, and ends in budget_exceeded", async () => {
    const g = await generate({ max_budget: 0.05 });
    const client = new OpenAI({ apiKey: g.key, baseURL: BASE, maxRetries: 0 });

    const { data: completion, response } = await client.chat.completions.create(
      {
        model: "test-expensive",
        messages: [{ role: "user", content: "hello there" }],
      },
    ).withResponse();
    expect(completion.choices[0].message).toMatchObject({
      role: "assistant",
      content: REPLY,
    });
    expect(completion.usage).toEqual({
      prompt_tokens: 3,
      completion_tokens: 16,
      total_tokens: 19,
    });
    expect(Number(response.headers.get("x-litellm-response-cost"))).toBeCloseTo(
      CALL_COST,
      10,
    );
    expect(response.headers.get("x-litellm-key-max-budget")).toBe("0.05");
    expect(response.headers.get("x-litellm-call-id")).toBeTruthy();

    const stream = await client.chat.completions.create({
      model: "test-expensive",
      messages: [{ role: "user", content: "hello there" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(REPLY);
    expect(usage).toEqual({
      prompt_tokens: 3,
      completion_tokens: 16,
      total_tokens: 19,
    });

    // spend 0.038 < 0.05: allowed, and the cost lands after the call (overshoot to 0.057).
    await client.chat.completions.create({
      model: "test-expensive",
      messages: [{ role: "user", content: "hello there" }],
    });
    const err = await client.chat.completions
      .create({
        model: "test-expensive",
        messages: [{ role: "user", content: "hello there" }],
      })
      .then(() => null, (e) => e);
    expect(err).toBeInstanceOf(APIError);
    expect(err.status).toBe(400);
    expect(err.type).toBe("budget_exceeded");
    // Python's str(float) of the accumulated spend (float noise included, like the proxy).
    const m =
      /^Budget has been exceeded! Current cost: ([\d.e-]+), Max budget: 0\.05$/
        .exec(err.error.message);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeCloseTo(3 * CALL_COST, 10);
    expect(err.param).toBeNull();

    const info = await api.get(`/key/info?key=${g.key}`);
    expect(info.body.info.spend).toBeCloseTo(3 * CALL_COST, 10);

    // The newest releases answer 429 instead; the type is what callers must key on.
    await admin("POST", "/admin/config", { budget_exceeded_status: 429 });
    const err429 = await client.chat.completions
      .create({
        model: "test-expensive",
        messages: [{ role: "user", content: "hello there" }],
      })
      .then(() => null, (e) => e);
    expect(err429.status).toBe(429);
    expect(err429.type).toBe("budget_exceeded");

    // Raising the budget (absolute) re-opens the key at once.
    await api.post("/key/update", { key: g.key, max_budget: 1 });
    await client.chat.completions.create({
      model: "test-expensive",
      messages: [{ role: "user", content: "hi" }],
    });
  });

  it("costs a stream only when it ends", async () => {
    await admin("POST", "/admin/config", { stream_chunk_delay_ms: 100 });
    const g = await generate({ max_budget: 1 });
    const res = await fetch(`${BASE}/v1/chat/completions`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${g.key}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({
        model: "test-expensive",
        messages: [{ role: "user", content: "hello there" }],
        stream: true,
      }),
    });
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const reader = res.body!.getReader();
    await reader.read(); // first chunk: the stream has started, the call is not over
    expect((await api.get(`/key/info?key=${g.key}`)).body.info.spend).toBe(0);
    let raw = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      raw += new TextDecoder().decode(value);
    }
    expect(raw.trimEnd().endsWith("data: [DONE]")).toBe(true);
    expect((await api.get(`/key/info?key=${g.key}`)).body.info.spend)
      .toBeCloseTo(CALL_COST, 10);
  });

  it("rate-limits by rpm with the proxy's 429 headers", async () => {
    const g = await generate({ rpm_limit: 2 });
    expect((await chat(g.key)).status).toBe(200);
    expect((await chat(g.key)).status).toBe(200);
    const third = await chat(g.key);
    expect(third.status).toBe(429);
    expect(third.body.error.type).toBe("throttling_error");
    expect(third.headers.get("retry-after")).toBe("60");
    expect(third.headers.get("rate_limit_type")).toBe("requests");
    expect(third.headers.get("reset_at")).toMatch(
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/,
    );
  });
});

describe("spend reaches the read routes in batches", () => {
  it("enforces at once but shows spend on /key/info only after the batch write", async () => {
    await admin("POST", "/admin/config", { batch_write_ms: 60_000 });
    const g = await generate({ max_budget: 0.03 });
    expect((await chat(g.key)).status).toBe(200);
    expect((await api.get(`/key/info?key=${g.key}`)).body.info.spend).toBe(0);
    expect(
      (await api.post("/v2/key/info", { keys: [g.key] })).body.info[0].spend,
    ).toBe(0);
    expect((await chat(g.key)).status).toBe(200); // 0.019 < 0.03
    const blocked = await chat(g.key); // enforcement already sees 0.038
    expect(blocked.body.error.type).toBe("budget_exceeded");
    expect((await api.get(`/key/info?key=${g.key}`)).body.info.spend).toBe(0);

    expect((await admin("POST", "/admin/flush")).flushed).toBe(1);
    expect((await api.get(`/key/info?key=${g.key}`)).body.info.spend)
      .toBeCloseTo(2 * CALL_COST, 10);
  });

  it("writes on its own timer", async () => {
    await admin("POST", "/admin/config", { batch_write_ms: 300 });
    const g = await generate();
    expect((await chat(g.key)).status).toBe(200);
    const deadline = Date.now() + 3000;
    let spend = 0;
    while (Date.now() < deadline && spend === 0) {
      await sleep(50);
      spend = (await api.get(`/key/info?key=${g.key}`)).body.info.spend;
    }
    expect(spend).toBeCloseTo(CALL_COST, 10);
  });
});

describe("admin: faults, down/up, stats", () => {
  it("fails the next N calls of a route, then succeeds", async () => {
    await admin("POST", "/admin/stats/reset");
    await admin("POST", "/admin/faults", {
      route: "/key/generate",
      count: 2,
      mode: "500",
    });
    expect((await api.post("/key/generate", { key_alias: "f" })).status).toBe(
      500,
    );
    expect((await api.post("/key/generate", { key_alias: "f" })).status).toBe(
      500,
    );
    expect((await api.post("/key/generate", { key_alias: "f" })).status).toBe(
      200,
    );
    expect((await admin("GET", "/admin/faults")).faults).toEqual([]);
    const stats = await admin("GET", "/admin/stats");
    expect(stats.requests["POST /key/generate"]).toBe(3);
    expect(stats.keys).toBe(1);
  });

  it("applies a timed-out request but answers late, and holds a hung one until cleared", async () => {
    await admin("POST", "/admin/faults", {
      route: "/key/generate",
      count: 1,
      mode: "timeout",
      delay_ms: 400,
    });
    const t0 = Date.now();
    expect((await api.post("/key/generate", { key_alias: "slow" })).status)
      .toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350);

    await admin("POST", "/admin/faults", {
      route: "*",
      count: 1,
      mode: "hang",
    });
    const hung = call("POST", "/key/generate", { body: { key_alias: "hung" } });
    await sleep(200);
    await admin("DELETE", "/admin/faults");
    expect((await hung).status).toBe(503);
    expect((await api.get("/key/list?key_alias=hung")).body.total_count).toBe(
      0,
    );
  });

  it("a bare fault applies the request and answers 200 {} (an answer that confirms nothing)", async () => {
    const g = await generate({ key_alias: "bare", max_budget: 2 });
    await admin("POST", "/admin/faults", { route: "/key/update", count: 1, mode: "bare" });
    const r = await api.post("/key/update", { key: g.key, max_budget: 7 });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({});
    expect((await api.get(`/key/info?key=${g.key}`)).body.info.max_budget).toBe(7);
  });

  it("refuses connections while down and serves again when up", async () => {
    const g = await generate({ key_alias: "survives" });
    await admin("POST", "/admin/down", { down: true });
    // A pooled keep-alive socket may report its close first; a fresh connect must be refused.
    let code: string | undefined;
    for (let i = 0; i < 3 && code !== "ECONNREFUSED"; i++) {
      const err = await fetch(`${BASE}/health/liveliness`).then(
        () => null,
        (e) => e,
      );
      code = err?.cause?.code ?? "answered";
    }
    expect(code).toBe("ECONNREFUSED");
    await admin("POST", "/admin/down", { down: false });
    expect((await api.get(`/key/info?key=${g.key}`)).status).toBe(200);
  });

  it("needs the master key", async () => {
    expect(
      (await call("GET", "/admin/stats", { base: ADMIN, key: "sk-wrong" }))
        .status,
    ).toBe(401);
  });
});

describe("scale", () => {
  it("seeds 100k keys and serves batched reads and deep pages of them", async () => {
    const seeded = await admin("POST", "/admin/seed", {
      count: 100_000,
      max_budget: 10,
      spend_max: 10,
      rng_seed: 7,
    });
    expect(seeded.keys_created).toBe(100_000);

    const { keys } = await admin("GET", "/admin/keys?offset=5000&limit=1000");
    const r = await api.post("/v2/key/info", {
      keys: keys.map((k: { key: string }) => k.key),
    });
    expect(r.body.info).toHaveLength(1000);
    const spends = r.body.info.map((row: { spend: number }) => row.spend);
    expect(spends).toEqual([...spends].sort((a, b) => b - a));

    const page = await api.get(
      "/key/list?page=900&size=100&return_full_object=true",
    );
    expect(page.body).toMatchObject({
      total_count: 100_000,
      total_pages: 1000,
    });
    expect(page.body.keys).toHaveLength(100);
  }, 30_000);
});

describe("admin: import keys with given values", () => {
  it("creates keys as given, readable by raw key and token, and skips duplicates", async () => {
    const keys = Array.from({ length: 3 }, (_, i) => ({
      key: `sk-import-test-key-${i}-abcdefghijklmnop`,
      key_alias: `imp-${i}`,
      max_budget: 2,
      spend: 0.25 * i,
      user_id: `user-${i}`,
      metadata: { app: "bench" },
    }));
    const r = await admin("POST", "/admin/import", { keys });
    expect(r).toMatchObject({
      keys_created: 3,
      skipped_duplicates: 0,
      total_keys: 3,
    });

    const info = await api.get(`/key/info?key=${keys[2].key}`);
    expect(info.status).toBe(200);
    expect(info.body.info).toMatchObject({
      key_alias: "imp-2",
      max_budget: 2,
      spend: 0.5,
      user_id: "user-2",
      metadata: { app: "bench" },
    });
    const v2 = await api.post("/v2/key/info", {
      keys: keys.map((k) => sha256(k.key)),
    });
    expect(v2.body.info.map((row: any) => row.token).sort()).toEqual(
      keys.map((k) => sha256(k.key)).sort(),
    );
    // The imported key works on the main port like a generated one.
    expect((await chat(keys[0].key)).status).toBe(200);

    const again = await admin("POST", "/admin/import", {
      keys: [keys[0], {
        key: "sk-import-other-key-abcdefghijkl",
        key_alias: "imp-1",
      }],
    });
    expect(again).toMatchObject({
      keys_created: 0,
      skipped_duplicates: 2,
      total_keys: 3,
    });
  });

  it("rejects the whole request when one entry is invalid", async () => {
    const r = await call("POST", "/admin/import", {
      base: ADMIN,
      body: {
        keys: [{ key: "sk-import-fine-key-abcdefghijkl" }, {
          key: "not-a-key",
        }],
      },
    });
    expect(r.status).toBe(400);
    expect(r.body.error).toContain("keys[1].key");
    expect((await admin("GET", "/admin/stats")).keys).toBe(0);
  });
});
