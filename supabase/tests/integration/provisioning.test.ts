// Issue 4: provisioning through the real chain (Auth sign-up -> trigger -> pg_net -> provision-key ->
// LiteLLM emulator), fault handling, and the official openai client using the provisioned key.
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  activeUser,
  breakerClosed,
  closeSql,
  env,
  invoke,
  keyOnLiteLLM,
  litellmAdmin,
  litellmApi,
  liveKey,
  publishableKey,
  signUp,
  sql,
  uniqueEmail,
  waitFor,
} from "./helpers.ts";

async function jobOf(userId: string) {
  const [j] = await sql()`select * from private.provisioning_jobs where user_id = ${userId} order by id desc limit 1`;
  return j;
}

/** A user whose provisioning call was never sent (as if pg_net lost it): the job waits for a sweep. */
async function userWithoutProvisioningCall() {
  const id = crypto.randomUUID();
  await sql().begin(async (tx) => {
    await tx`insert into auth.users (id, email, aud, role, created_at) values (${id}, ${
      uniqueEmail("crash")
    }, 'authenticated', 'authenticated', now())`;
    await tx`delete from net.http_request_queue where url like '%/functions/v1/provision-key'`;
  });
  return id;
}

beforeAll(async () => {
  await litellmAdmin("/admin/faults", undefined, "DELETE");
  await litellmAdmin("/admin/down", { down: false });
});
afterEach(async () => {
  await litellmAdmin("/admin/faults", undefined, "DELETE");
  await litellmAdmin("/admin/down", { down: false });
  await sql()`update private.settings set value = '8' where key = 'provision_max_attempts'`;
  await breakerClosed(); // a test that made LiteLLM fail leaves the next one a working client
});
afterAll(closeSql);

describe("provision-key", () => {
  it("creates the key within seconds of sign-up with the ledger budget, limits and no budget_duration", async () => {
    const u = await activeUser("prov"); // waits (with a deadline) for the key to turn active; bench:provision times it
    const k = await liveKey(u.id);
    expect(k.sync_status).toBe("synced");
    expect(Number(k.litellm_max_budget)).toBe(2);
    const info = await keyOnLiteLLM(u.key);
    expect(info.max_budget).toBe(2);
    expect(info.key_alias).toBe(`lc-${u.id}`);
    expect(info.metadata.user_id).toBe(u.id);
    expect(info.rpm_limit).toBe(100);
    expect(info.tpm_limit).toBe(10000);
    expect(info.budget_duration ?? null).toBeNull();
    expect(info.spend).toBe(0);
    const job = await jobOf(u.id);
    expect(job.status).toBe("done");
    expect(job.attempts).toBe(1);
  });

  it("rejects callers without the cron secret or service key", async () => {
    expect((await invoke("provision-key", {}, "not-the-secret")).status).toBe(401);
    expect((await invoke("provision-key", {}, publishableKey())).status).toBe(401);
    const r = await fetch(`${env("SUPABASE_URL")}/functions/v1/provision-key`, { method: "POST" });
    expect(r.status).toBe(401);
    await r.body?.cancel();
  });

  it("LiteLLM failing twice with 500 then recovering: one key, 3 attempts recorded", async () => {
    await litellmAdmin("/admin/faults", { route: "/key/generate", count: 2, mode: "500" });
    const u = await activeUser("flaky");
    const job = await jobOf(u.id);
    expect(job.status).toBe("done");
    expect(job.attempts).toBe(3);
    const list = await litellmApi(`/key/list?key_alias=${encodeURIComponent(`lc-${u.id}`)}&return_full_object=true`);
    expect(list.body.keys).toHaveLength(1);
  });

  it("LiteLLM down for the whole test: backs off, ends dead, shows in the admin view, one SQL call re-queues it", async () => {
    await sql()`update private.settings set value = '6' where key = 'provision_max_attempts'`;
    await litellmAdmin("/admin/down", { down: true });
    const u = await signUp("down");
    // First run (the sign-up call): 3 tries, then a back-off into the future.
    const first = await waitFor(async () => {
      const j = await jobOf(u.id);
      return j.attempts > 0 && j.status === "queued" ? j : null;
    }, "the first failed run");
    expect(first.attempts).toBe(3);
    expect(new Date(first.run_after).getTime()).toBeGreaterThan(Date.now());
    expect(first.last_error).toMatch(/LiteLLM/);
    // Later sweeps (run_after moved to now, as time would) until the job is dead.
    for (let i = 0; i < 6 && (await jobOf(u.id)).status !== "dead"; i++) {
      await sql()`update private.provisioning_jobs set run_after = now() where user_id = ${u.id} and status = 'queued'`;
      await breakerClosed(); // so each run really tries
      const r = await invoke("provision-key");
      expect(r.status).toBe(200);
    }
    const dead = await jobOf(u.id);
    expect(dead.status).toBe("dead");
    expect(dead.attempts).toBeGreaterThanOrEqual(6);
    expect((await liveKey(u.id)).status).toBe("failed");
    const view = await sql()`select * from public.admin_dead_jobs where user_id = ${u.id}`;
    expect(view).toHaveLength(1);
    // Back up; one SQL call re-queues; the next run creates the key.
    await litellmAdmin("/admin/down", { down: false });
    await breakerClosed();
    const [{ n }] = await sql()`select private.requeue_provisioning(${u.id}) as n`;
    expect(n).toBe(1);
    const r = await invoke("provision-key");
    expect(r.body.done).toBeGreaterThanOrEqual(1);
    expect((await liveKey(u.id)).status).toBe("active");
    expect(await sql()`select * from public.admin_dead_jobs where user_id = ${u.id}`).toHaveLength(0);
  });

  it("a crash between LiteLLM creating the key and our database write: the rerun creates no second key", async () => {
    const userId = await userWithoutProvisioningCall();
    const k = await liveKey(userId);
    expect(k.status).toBe("pending");
    // What the dying run managed to do: the key exists on LiteLLM, our database does not know.
    const created = await litellmApi("/key/generate", {
      key: k.key_value,
      key_alias: k.key_alias,
      max_budget: 2,
      metadata: { user_id: userId },
    });
    expect(created.status).toBe(200);
    const r = await invoke("provision-key");
    expect(r.status).toBe(200);
    const after = await liveKey(userId);
    expect(after.status).toBe("active");
    expect(after.key_value).toBe(k.key_value);
    const list = await litellmApi(`/key/list?key_alias=${encodeURIComponent(k.key_alias)}&return_full_object=true`);
    expect(list.body.keys).toHaveLength(1);
    expect((await jobOf(userId)).status).toBe("done");
  });
});

describe("the provisioned key with the official openai client", () => {
  it("chats, streams, then gets budget_exceeded once spend reaches the budget", async () => {
    const u = await activeUser("openai");
    const client = new OpenAI({ apiKey: u.key, baseURL: env("LITELLM_PUBLIC_URL"), maxRetries: 0 });
    const chat = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hello" }],
    });
    expect(chat.choices[0].message.content).toBeTruthy();
    expect(chat.usage?.total_tokens).toBeGreaterThan(0);

    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "stream please" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    expect(text.length).toBeGreaterThan(0);

    const spent = (await keyOnLiteLLM(u.key)).spend;
    expect(spent).toBeGreaterThan(0);

    // Burn the rest of the 2.00 with the expensive test model until LiteLLM refuses.
    let err: any;
    for (let i = 0; i < 200 && !err; i++) {
      try {
        await client.chat.completions.create({
          model: "test-expensive",
          messages: [{ role: "user", content: "x".repeat(4000) }],
        });
      } catch (e) {
        err = e;
      }
    }
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err.error?.type ?? err.type).toBe("budget_exceeded");
    expect([400, 429]).toContain(err.status);
    expect((await keyOnLiteLLM(u.key)).spend).toBeGreaterThanOrEqual(2);
  });
});
