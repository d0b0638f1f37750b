// The main port: routing, fault injection, error rendering and the listener lifecycle.
//
// The listener can be closed and reopened on the same port (/admin/down) so "LiteLLM is
// down" means connections are really refused, not answered with an error.

import { ApiError, errorResponse, jsonResponse } from "./errors.ts";
import { chatRoutes } from "./routes/chat.ts";
import { keyRoutes, matchKeyPattern } from "./routes/keys.ts";
import type { EmulatorState } from "./state.ts";

type Handler = (
  req: Request,
  url: URL,
  state: EmulatorState,
) => Promise<Response>;

const health: Record<string, Record<string, Handler>> = {
  // FastAPI returns the string JSON-encoded: "I'm alive!" with quotes.
  "/health/liveliness": {
    GET: () => Promise.resolve(jsonResponse(200, "I'm alive!")),
  },
  "/health/readiness": {
    GET: () =>
      Promise.resolve(
        jsonResponse(200, {
          status: "healthy",
          db: "connected",
          litellm_version: "emulator",
        }),
      ),
  },
};

const ROUTES: Record<string, Record<string, Handler>> = {
  ...health,
  ...keyRoutes,
  ...chatRoutes,
};

function findRoute(path: string): Record<string, Handler> | undefined {
  return ROUTES[path] ?? matchKeyPattern(path);
}

/**
 * The proxy runs Starlette's CORSMiddleware allowing every origin, method and header with
 * credentials, so browsers may call it directly: preflights are answered before routing
 * and every response echoes the caller's Origin.
 */
async function withCors(
  req: Request,
  next: () => Promise<Response>,
): Promise<Response> {
  const origin = req.headers.get("origin");
  if (origin === null) return next();
  if (
    req.method === "OPTIONS" && req.headers.has("access-control-request-method")
  ) {
    return new Response("OK", {
      status: 200,
      headers: {
        "access-control-allow-origin": origin,
        "access-control-allow-credentials": "true",
        "access-control-allow-methods":
          "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT",
        "access-control-allow-headers":
          req.headers.get("access-control-request-headers") ?? "*",
        "access-control-max-age": "600",
        "vary": "Origin",
      },
    });
  }
  const res = await next();
  const headers = new Headers(res.headers);
  headers.set("access-control-allow-origin", origin);
  headers.set("access-control-allow-credentials", "true");
  headers.append("vary", "Origin");
  return new Response(res.body, {
    status: res.status,
    statusText: res.statusText,
    headers,
  });
}

async function dispatch(req: Request, state: EmulatorState): Promise<Response> {
  const url = new URL(req.url);
  const path = url.pathname.length > 1
    ? url.pathname.replace(/\/+$/, "")
    : url.pathname;
  state.count(req.method, path);

  const methods = findRoute(path);
  if (!methods) return jsonResponse(404, { detail: "Not Found" });
  const handler = methods[req.method];
  if (!handler) return jsonResponse(405, { detail: "Method Not Allowed" });

  const fault = state.faults.take(req.method, path);
  if (fault?.mode === "500") {
    return errorResponse(
      new ApiError(500, {
        error: {
          message: "Internal Server Error (emulated fault)",
          type: "internal_server_error",
          param: "None",
          code: "500",
        },
      }),
    );
  }
  if (fault?.mode === "429") {
    return errorResponse(
      new ApiError(429, {
        error: {
          message: "Too Many Requests (emulated fault)",
          type: "throttling_error",
          param: "None",
          code: "429",
        },
      }, { "retry-after": "1" }),
    );
  }
  if (fault?.mode === "hang") {
    const why = await state.faults.hold(null, req.signal);
    return jsonResponse(503, {
      error: {
        message: `emulated hang ended (${why})`,
        type: "service_unavailable",
        param: "None",
        code: "503",
      },
    });
  }

  const response = await run(handler, req, url, state);
  if (fault?.mode === "bare" && response.ok) {
    await response.body?.cancel();
    return jsonResponse(200, {});
  }
  if (fault?.mode === "timeout") {
    // The work is done; only the answer is late.
    await state.faults.hold(fault.delay_ms, req.signal);
  }
  return response;
}

async function run(
  handler: Handler,
  req: Request,
  url: URL,
  state: EmulatorState,
): Promise<Response> {
  try {
    return await handler(req, url, state);
  } catch (e) {
    if (e instanceof ApiError) return errorResponse(e);
    console.error("[litellm-emulator] unhandled error:", e);
    return jsonResponse(500, {
      error: {
        message: `Internal Server Error, ${String(e)}`,
        type: "internal_server_error",
        param: "None",
        code: "500",
      },
    });
  }
}

/** The main listener, which /admin/down can close and reopen on the same port. */
export class MainListener {
  private server: Deno.HttpServer<Deno.NetAddr> | null = null;
  private closing: Promise<void>[] = [];
  port: number;

  constructor(
    private readonly state: EmulatorState,
    private readonly hostname: string,
    port: number,
    private readonly log: boolean,
  ) {
    this.port = port;
  }

  get isDown(): boolean {
    return this.server === null;
  }

  open(): void {
    if (this.server) return;
    this.server = Deno.serve({
      hostname: this.hostname,
      port: this.port,
      onListen: () => {},
    }, async (req) => {
      const t0 = performance.now();
      const res = await withCors(req, () => dispatch(req, this.state));
      if (this.log) {
        console.log(
          `[litellm-emulator] ${req.method} ${
            new URL(req.url).pathname
          } ${res.status} ${(performance.now() - t0).toFixed(1)}ms`,
        );
      }
      return res;
    });
    // Port 0 (tests) binds an ephemeral port; reopening must reuse the same one.
    this.port = this.server.addr.port;
  }

  /** Stop accepting connections at once; in-flight requests finish in the background. */
  close(): void {
    if (!this.server) return;
    const s = this.server;
    this.server = null;
    this.state.faults.releaseHeld();
    this.closing.push(s.shutdown().catch(() => {}));
  }

  async closeAndWait(): Promise<void> {
    this.close();
    await Promise.all(this.closing);
    this.closing = [];
  }
}
