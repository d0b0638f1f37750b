// Bad input gets a clear 4xx that says what to send, and changes nothing: bodies are read and checked by
// one helper (parseBody, _shared/http.ts) and SQL's refusals become answers through one table
// (_shared/sql-errors.ts).
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { activeUser, invoke, secretKey, sql } from "./helpers.ts";

const checkoutsOf = async (userId: string) =>
  (await sql()`select 1 from public.checkouts where user_id = ${userId}`).length;

describe("request bodies", () => {
  it("checkout: a body not JSON, with an extra field or naming no active plan: 400, nothing created", async () => {
    const u = await activeUser("bad-body");
    const notJson = await invoke("checkout", "{plan: starter", u.token);
    expect([notJson.status, notJson.body.error]).toEqual([400, "invalid_json"]);
    const extra = await invoke("checkout", { plan: "starter", amount: 1 }, u.token);
    expect([extra.status, extra.body.error]).toEqual([400, "invalid_request"]);
    expect(extra.body.message).toMatch(/"plan": "starter"/); // says what to send
    const plan = await invoke("checkout", { plan: "no-such-plan" }, u.token);
    expect([plan.status, plan.body.error]).toEqual([400, "unknown_plan"]);
    expect(plan.body.message).toContain('"no-such-plan"');
    expect(await checkoutsOf(u.id)).toBe(0);
  });

  it("push-budget: a missing user_id says what to send; a body that is not JSON says so", async () => {
    const empty = await invoke("push-budget", {}, secretKey());
    expect([empty.status, empty.body.error]).toEqual([400, "invalid_request"]);
    expect(empty.body.message).toMatch(/"user_id": "<uuid>"/);
    const notJson = await invoke("push-budget", "not json", secretKey());
    expect([notJson.status, notJson.body.error]).toEqual([400, "invalid_json"]);
  });

  it("reconcile-spend: an out-of-range option is a 400 naming the field", async () => {
    const r = await invoke("reconcile-spend", { max_chunks: 0 }, secretKey());
    expect([r.status, r.body.error]).toEqual([400, "invalid_request"]);
    expect(r.body.message).toMatch(/^max_chunks: /);
  });

  it("rotate-key: an operator naming a user that does not exist gets 404 unknown_user (SQL's refusal)", async () => {
    const r = await invoke("rotate-key", { user_id: randomUUID() }, secretKey());
    expect([r.status, r.body.error]).toEqual([404, "unknown_user"]);
  });
});
