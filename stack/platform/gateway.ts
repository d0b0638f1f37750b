// The local stack's stand-in for what hosted Supabase serves on one URL: /auth/v1 (GoTrue), /rest/v1
// (PostgREST), /functions/v1/<name> (edge runtime), plus pg_net's background worker, and the stack's own
// /_stack/mail (what Auth and the notification emails would have sent) and /_stack/email-api (a
// Resend-compatible capture of the email API). Test infrastructure only: never deployed (see
// docs/architecture.md, "Local stack").
import { closeAuth, handleAuth } from "./auth.ts";
import { invokeFunction, loadFunctions, statsRoute } from "./functions-host.ts";
import { json, log, withCors } from "./http.ts";
import { emailApiRoute } from "./email-api.ts";
import { mailRoute, resetOutbox } from "./mail.ts";
import { startPgNetWorker } from "./pgnet-worker.ts";
import { closeRest, handleRest } from "./rest.ts";

const port = Number(Deno.env.get("STACK_GATEWAY_PORT") ?? 54321);

async function route(req: Request, info: Deno.ServeHandlerInfo): Promise<Response> {
  const path = new URL(req.url).pathname;
  const api = /^\/(auth|rest|functions)\/v1(\/.*)?$/.exec(path);
  if (api?.[1] === "functions") {
    // Function responses pass through untouched: on hosted, functions send their own CORS headers.
    const { res, own } = await invokeFunction(req, api[2] ?? "", info);
    return own ? withCors(res) : res;
  }
  if (req.method === "OPTIONS") return withCors(new Response(null, { status: 204 }));
  if (path === "/health") return withCors(json({ ok: true }));
  if (api?.[1] === "auth") return withCors(await handleAuth(req, api[2] ?? "/"));
  if (api?.[1] === "rest") return withCors(await handleRest(req, api[2] ?? "/"));
  if (path.startsWith("/_stack/functions/stats")) return withCors(statsRoute(req, path));
  if (path.startsWith("/_stack/mail")) return withCors(mailRoute(req, path));
  if (path.startsWith("/_stack/email-api/")) return withCors(await emailApiRoute(req, path));
  return withCors(json({ message: "no route matched with those values" }, 404));
}

// Code from functions runs in this process: one of its stray promise rejections must not stop the gateway.
globalThis.addEventListener("unhandledrejection", (e) => {
  e.preventDefault();
  log(`unhandled rejection: ${e.reason instanceof Error ? e.reason.stack : e.reason}`);
});
globalThis.addEventListener("error", (e) => {
  e.preventDefault();
  log(`uncaught error: ${e.error instanceof Error ? e.error.stack : e.message}`);
});

resetOutbox(); // the database is fresh on every start: so is the outbox

// Bind before loadFunctions() replaces Deno.serve with the functions' shim.
const server = Deno.serve({
  port,
  hostname: "127.0.0.1",
  onListen: () =>
    log(
      `gateway listening on http://127.0.0.1:${port} (auth /auth/v1, rest /rest/v1, functions /functions/v1, pg_net worker)`,
    ),
}, async (req, info) => {
  try {
    return await route(req, info);
  } catch (e) {
    log(`${req.method} ${new URL(req.url).pathname} failed: ${(e as Error).stack ?? e}`);
    return withCors(json({ message: "gateway error", details: (e as Error).message }, 500));
  }
});
const worker = startPgNetWorker();
const functions = loadFunctions();
log(functions.length ? `functions: loading ${functions.join(", ")}` : "functions: none found in supabase/functions");

let closing = false;
async function shutdown() {
  if (closing) return;
  closing = true;
  setTimeout(() => Deno.exit(0), 4000); // a hanging stream or connection must not block the stack's stop
  await server.shutdown().catch(() => {});
  await Promise.allSettled([worker.stop(), closeAuth(), closeRest()]);
  Deno.exit(0);
}
Deno.addSignalListener("SIGTERM", shutdown);
Deno.addSignalListener("SIGINT", shutdown);
