// The main port: routing, injected faults, error rendering, and a listener that /admin/down can close
// and reopen on the same port (so "LiteLLM is down" means connections are refused, not an error answer).
import { activityRoutes } from "./activity.ts";
import { chatRoutes } from "./chat.ts";
import { ApiError, type Handler, json, proxyError, render, sleep } from "./http.ts";
import { keyRoutes } from "./keys.ts";
import type { EmulatorState } from "./state.ts";

function routes(state: EmulatorState): Record<string, Handler> {
  return {
    // FastAPI sends the string JSON-encoded: "I'm alive!" with its quotes.
    "GET /health/liveliness": () => Promise.resolve(json(200, "I'm alive!")),
    "GET /health/readiness": () =>
      Promise.resolve(json(200, { status: "healthy", db: "connected", litellm_version: "emulator" })),
    ...keyRoutes(state),
    ...chatRoutes(state),
    ...activityRoutes(state),
  };
}

async function run(handler: Handler, req: Request, url: URL): Promise<Response> {
  try {
    return await handler(req, url);
  } catch (e) {
    if (!(e instanceof ApiError)) console.error("[litellm-emulator] unhandled error:", e);
    return render(e instanceof ApiError ? e : proxyError(500, `Internal Server Error, ${e}`, "internal_server_error"));
  }
}

const RETRY = { "retry-after": "1" };

function dispatcher(state: EmulatorState) {
  const table = routes(state);
  return async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, "") : url.pathname;
    state.count(req.method, path);
    const handler = table[`${req.method} ${path}`];
    if (!handler) return json(404, { detail: "Not Found" });
    const fault = state.takeFault(path);
    // 500 and 429 answer at once and change nothing.
    if (fault?.mode === "500") return render(proxyError(500, "emulated fault", "internal_server_error"));
    if (fault?.mode === "429") return render(proxyError(429, "emulated fault", "throttling_error", "None", RETRY));
    const res = await run(handler, req, url);
    // timeout: the work is done, only the answer is late; bare: done, but the answer confirms nothing.
    if (fault?.mode === "timeout") await sleep(fault.delay_ms, req.signal);
    if (fault?.mode === "bare" && res.ok) return (await res.body?.cancel(), json(200, {}));
    return res;
  };
}

export class MainListener {
  private server: Deno.HttpServer<Deno.NetAddr> | null = null;
  private closing: Promise<void>[] = [];
  private readonly handler: (req: Request) => Promise<Response>;

  constructor(state: EmulatorState, private readonly hostname: string, public port: number) {
    this.handler = dispatcher(state);
  }

  get isDown(): boolean {
    return this.server === null;
  }

  open(): void {
    if (this.server) return;
    this.server = Deno.serve({ hostname: this.hostname, port: this.port, onListen: () => {} }, this.handler);
    this.port = this.server.addr.port; // port 0 picked a free one: reopening must reuse it
  }

  /** Stops accepting connections at once; requests in flight finish in the background. */
  close(): void {
    if (!this.server) return;
    this.closing.push(this.server.shutdown().catch(() => {}));
    this.server = null;
  }

  async closeAndWait(): Promise<void> {
    this.close();
    await Promise.all(this.closing);
  }
}
