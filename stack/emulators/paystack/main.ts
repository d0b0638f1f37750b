// Paystack emulator (test infrastructure; never imported by product code). Env and routes: README.md.
//   deno run -A stack/emulators/paystack/main.ts

import { makeAdminHandler } from "./admin.ts";
import { makeApiHandler } from "./api.ts";
import { EmulatorContext } from "./context.ts";

const env = (name: string, fallback: string) => Deno.env.get(name) || fallback;
const port = Number(env("PAYSTACK_EMULATOR_PORT", "54330"));
const adminPort = Number(env("PAYSTACK_EMULATOR_ADMIN_PORT", String(port + 1)));
const secretKey = env("PAYSTACK_SECRET_KEY", "sk_test_emulator_secret");
const retries = Deno.env.get("PAYSTACK_WEBHOOK_RETRY_MS") ?? "1000,2000,5000,10000";
const retryMs = retries.trim() === "" ? [] : retries.split(",").map(Number);
if (![port, adminPort, ...retryMs].every((n) => Number.isSafeInteger(n) && n >= 0)) {
  console.error("paystack emulator: ports and PAYSTACK_WEBHOOK_RETRY_MS must be non-negative integers");
  Deno.exit(1);
}

const ctx = new EmulatorContext(secretKey, `http://127.0.0.1:${port}`, {
  webhookUrl: env("PAYSTACK_WEBHOOK_URL", "http://127.0.0.1:54321/functions/v1/paystack-webhook"),
  retryMs,
});
const listen = (p: number, handler: (req: Request) => Promise<Response>) =>
  Deno.serve({ port: p, hostname: "127.0.0.1", onListen: () => {} }, handler);

// The API listener can be closed and reopened on the same port (admin config `down`); state is kept.
const apiHandler = makeApiHandler(ctx);
let api: Deno.HttpServer | null = listen(port, apiHandler);
const admin = listen(adminPort, makeAdminHandler(ctx));
let transition = Promise.resolve();
ctx.isDown = () => api === null;
ctx.setDown = (down) =>
  transition = transition.then(async () => { // one at a time, so concurrent admin calls cannot race
    if (down && api) {
      const closing = api;
      api = null;
      await closing.shutdown();
    } else if (!down && !api) api = listen(port, apiHandler);
  });

console.log(
  `paystack emulator listening on ${ctx.publicUrl} (admin port ${adminPort}, webhooks -> ${ctx.config.webhookUrl})`,
);
const stop = async () => {
  await transition;
  await Promise.all([api?.shutdown(), admin.shutdown()]);
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
