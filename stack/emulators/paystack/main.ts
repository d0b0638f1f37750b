// Paystack emulator (test infrastructure; never imported by product code).
//
//   deno run -A stack/emulators/paystack/main.ts
//
// Env: PAYSTACK_EMULATOR_PORT (54330), PAYSTACK_EMULATOR_ADMIN_PORT (port + 1),
// PAYSTACK_EMULATOR_HOST (127.0.0.1), PAYSTACK_SECRET_KEY (sk_test_emulator_secret; its
// sk_test_/sk_live_ prefix sets the domain), PAYSTACK_WEBHOOK_URL
// (http://127.0.0.1:54321/functions/v1/paystack-webhook), PAYSTACK_EMULATOR_PUBLIC_URL
// (http://127.0.0.1:<port>), PAYSTACK_WEBHOOK_RETRY_MS ("1000,2000,5000,10000"),
// PAYSTACK_WEBHOOK_TIMEOUT_MS (30000), PAYSTACK_REFUND_DELAY_MS (200),
// PAYSTACK_EMULATOR_VERBOSE (unset; "1" logs every webhook attempt to stderr).

import { makeAdminHandler } from "./admin.ts";
import { makeApiHandler } from "./api.ts";
import { EmulatorContext } from "./context.ts";
import type { Domain } from "./store.ts";

export { signPaystackBody } from "./webhooks.ts";
export type { EmulatorContext } from "./context.ts";

export interface PaystackEmulatorOptions {
  /** API + checkout port; 0 picks a free port. Default 54330. */
  port?: number;
  /** admin port; default port + 1 (or a free port when port is 0) */
  adminPort?: number;
  hostname?: string;
  secretKey?: string;
  webhookUrl?: string;
  /** base of authorization_url; default http://<hostname>:<port> */
  publicUrl?: string;
  retryMs?: number[];
  timeoutMs?: number;
  refundDelayMs?: number;
  verbose?: boolean;
}

export interface PaystackEmulator {
  url: string;
  adminUrl: string;
  context: EmulatorContext;
  close(): Promise<void>;
}

export const DEFAULTS = {
  port: 54330,
  hostname: "127.0.0.1",
  secretKey: "sk_test_emulator_secret",
  webhookUrl: "http://127.0.0.1:54321/functions/v1/paystack-webhook",
  retryMs: [1000, 2000, 5000, 10000],
  timeoutMs: 30000,
  refundDelayMs: 200,
};

export function domainOf(secretKey: string): Domain {
  if (secretKey.startsWith("sk_test_")) return "test";
  if (secretKey.startsWith("sk_live_")) return "live";
  throw new Error(`PAYSTACK_SECRET_KEY must start with sk_test_ or sk_live_`);
}

export async function startPaystackEmulator(
  opts: PaystackEmulatorOptions = {},
): Promise<PaystackEmulator> {
  const hostname = opts.hostname ?? DEFAULTS.hostname;
  const secretKey = opts.secretKey ?? DEFAULTS.secretKey;
  const domain = domainOf(secretKey);
  const requestedPort = opts.port ?? DEFAULTS.port;
  const log = opts.verbose
    ? (line: string) => console.error(`paystack emulator: ${line}`)
    : () => {};

  // The API listener can be closed and reopened (admin "down"). It is bound before the context
  // exists so that publicUrl can use the actual port when port 0 was asked for.
  let apiHandler: (req: Request) => Promise<Response> = () =>
    Promise.resolve(new Response("starting", { status: 503 }));
  const listenApi = (port: number) =>
    Deno.serve(
      { port, hostname, onListen: () => {} },
      (req) => apiHandler(req),
    );
  let apiServer: Deno.HttpServer<Deno.NetAddr> | null = listenApi(
    requestedPort,
  );
  const apiPort = apiServer.addr.port;

  const publicUrl = (opts.publicUrl ?? `http://${hostname}:${apiPort}`).replace(
    /\/+$/,
    "",
  );
  const ctx = new EmulatorContext(secretKey, domain, publicUrl, {
    webhookUrl: opts.webhookUrl ?? DEFAULTS.webhookUrl,
    retryMs: opts.retryMs ?? DEFAULTS.retryMs,
    timeoutMs: opts.timeoutMs ?? DEFAULTS.timeoutMs,
    refundDelayMs: opts.refundDelayMs ?? DEFAULTS.refundDelayMs,
  }, log);
  apiHandler = makeApiHandler(ctx);

  let adminServer: Deno.HttpServer<Deno.NetAddr>;
  try {
    const adminPort = opts.adminPort ?? (requestedPort === 0 ? 0 : apiPort + 1);
    adminServer = Deno.serve(
      { port: adminPort, hostname, onListen: () => {} },
      makeAdminHandler(ctx),
    );
  } catch (e) {
    await apiServer.shutdown();
    throw e;
  }

  let transition = Promise.resolve();
  ctx.isDown = () => apiServer === null;
  ctx.setDown = (down: boolean) => {
    // Serialise open/close so concurrent admin calls cannot race.
    transition = transition.then(async () => {
      if (down && apiServer) {
        const s = apiServer;
        apiServer = null;
        await s.shutdown();
      } else if (!down && !apiServer) {
        apiServer = listenApi(apiPort);
      }
    });
    return transition;
  };

  let closed = false;
  return {
    url: `http://${hostname}:${apiPort}`,
    adminUrl: `http://${hostname}:${adminServer.addr.port}`,
    context: ctx,
    async close() {
      if (closed) return;
      closed = true;
      ctx.close();
      await transition;
      await Promise.all([apiServer?.shutdown(), adminServer.shutdown()]);
      apiServer = null;
    },
  };
}

function envInt(name: string, fallback: number): number {
  const v = Deno.env.get(name);
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new Error(`${name} must be a non-negative integer, got ${v}`);
  }
  return n;
}

export function parseRetryMs(v: string | undefined): number[] {
  if (v === undefined) return [...DEFAULTS.retryMs];
  if (v.trim() === "") return [];
  return v.split(",").map((s) => {
    const n = Number(s.trim());
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new Error(`PAYSTACK_WEBHOOK_RETRY_MS: bad delay "${s}"`);
    }
    return n;
  });
}

if (import.meta.main) {
  try {
    const port = envInt("PAYSTACK_EMULATOR_PORT", DEFAULTS.port);
    const emu = await startPaystackEmulator({
      port,
      adminPort: envInt("PAYSTACK_EMULATOR_ADMIN_PORT", port + 1),
      hostname: Deno.env.get("PAYSTACK_EMULATOR_HOST") || DEFAULTS.hostname,
      secretKey: Deno.env.get("PAYSTACK_SECRET_KEY") || DEFAULTS.secretKey,
      webhookUrl: Deno.env.get("PAYSTACK_WEBHOOK_URL") || DEFAULTS.webhookUrl,
      publicUrl: Deno.env.get("PAYSTACK_EMULATOR_PUBLIC_URL") || undefined,
      retryMs: parseRetryMs(Deno.env.get("PAYSTACK_WEBHOOK_RETRY_MS")),
      timeoutMs: envInt("PAYSTACK_WEBHOOK_TIMEOUT_MS", DEFAULTS.timeoutMs),
      refundDelayMs: envInt("PAYSTACK_REFUND_DELAY_MS", DEFAULTS.refundDelayMs),
      verbose: Deno.env.get("PAYSTACK_EMULATOR_VERBOSE") === "1",
    });
    const c = emu.context;
    console.log(
      `paystack emulator listening on ${emu.url} (admin ${emu.adminUrl}, domain ${c.domain}, webhooks -> ${c.config.webhookUrl})`,
    );
    let stopping = false;
    const stop = async () => {
      if (stopping) return;
      stopping = true;
      await emu.close();
      Deno.exit(0);
    };
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
  } catch (e) {
    console.error(
      `paystack emulator: failed to start: ${
        e instanceof Error ? e.message : e
      }`,
    );
    Deno.exit(1);
  }
}
