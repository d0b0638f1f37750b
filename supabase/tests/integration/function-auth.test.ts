// Every function that is not for signed-in users refuses callers without its secret (verify_jwt is off
// for them, so this check is all that stands in front of them).
import { describe, expect, it } from "vitest";
import { env, invoke, publishableKey, secretKey } from "./helpers.ts";

describe("functions refuse callers without the right secret", () => {
  it.each(["provision-key", "reconcile-spend", "ops-sweep", "push-budget", "send-notifications", "auto-topup"])(
    "%s: 401 without, with a wrong one, with the publishable key",
    async (name) => {
      const none = await fetch(`${env("SUPABASE_URL")}/functions/v1/${name}`, { method: "POST", body: "{}" });
      expect(none.status).toBe(401);
      await none.body?.cancel();
      expect((await invoke(name, {}, "not-the-cron-secret-at-all")).status).toBe(401);
      expect((await invoke(name, {}, publishableKey())).status).toBe(401);
    },
  );

  it("litellm-spend-callback: 401 without its own secret (the cron secret is not it)", async () => {
    expect((await invoke("litellm-spend-callback", [], env("CRON_SECRET"))).status).toBe(401);
  });

  it("paystack-webhook: 401 without a valid signature, whatever bearer token comes along", async () => {
    expect((await invoke("paystack-webhook", { event: "charge.success", data: {} }, secretKey())).status).toBe(401);
  });
});
