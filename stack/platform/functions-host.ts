// Edge-runtime stand-in at /functions/v1/<name>: every supabase/functions/<name>/index.ts is imported
// into this process with Deno.serve replaced by a shim that records the handler instead of binding a
// port. Requests reach it as on hosted Supabase: path /<name>/<rest>, same method, headers and body
// bytes (webhook signatures are computed over them), after verify_jwt from supabase/config.toml (which,
// as on hosted, only knows legacy HS256 JWTs: in the new key mode it lets nothing through).
// Deviation from hosted: functions share one isolate (module state, env and memory are shared).
import process from "node:process";
import { configToml, supabaseDir, verifyJwtFlags } from "./config-toml.ts";
import { bearer, json, log } from "./http.ts";
import { isServiceKey, platformVerifyJwt } from "./jwt.ts";

const SUPABASE_DIR = supabaseDir();
const FUNCTIONS_DIR = `${SUPABASE_DIR}/functions`;
const CONFIG_TOML = `${SUPABASE_DIR}/config.toml`;
// Hosted limits (guides/functions/limits): only reported here, never enforced.
const HOSTED_CPU_MS = 2000;
const HOSTED_MEMORY_MB = 256;
const IMPORT_TIMEOUT_MS = 15_000;

type Handler = (req: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>;
const handlers = new Map<string, Handler>();
const bootErrors = new Map<string, string>();
const loading = new Map<string, Promise<void>>();
let importing: string | undefined;
let chain = Promise.resolve();

interface Stats {
  invocations: number;
  errors: number;
  max_cpu_ms: number;
  max_rss_mb: number;
  total_wall_ms: number;
}
let stats: Record<string, Stats> = {};

/** Which function called Deno.serve: its folder in the call stack, else the module being imported. */
function caller(): string | undefined {
  const stack = new Error().stack ?? "";
  const frame = new RegExp(`${FUNCTIONS_DIR.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/([^/_][^/]*)/`);
  return frame.exec(stack)?.[1] ?? importing;
}

function installServeShim() {
  const serve = (a: unknown, b?: unknown) => {
    const handler =
      (typeof a === "function" ? a : typeof b === "function" ? b : (a as { handler?: unknown })?.handler) as Handler;
    const name = caller();
    if (name && typeof handler === "function") {
      handlers.set(name, handler);
      bootErrors.delete(name);
    } else log(`functions: Deno.serve called outside a function module (${name ?? "unknown caller"}), ignored`);
    // Enough of Deno.HttpServer for code that awaits or shuts down its server.
    return {
      finished: new Promise<void>(() => {}),
      shutdown: async () => {},
      ref() {},
      unref() {},
      addr: { transport: "tcp", hostname: "127.0.0.1", port: 0 },
      async [Symbol.asyncDispose]() {},
    };
  };
  Object.defineProperty(Deno, "serve", { value: serve, configurable: true, writable: true });
}

// verify_jwt per function from supabase/config.toml (undefined: hosted's default, true).
const verifyJwtFor = verifyJwtFlags(configToml(CONFIG_TOML));

function hasIndex(name: string): boolean {
  if (name.startsWith("_") || !/^[A-Za-z0-9_-]+$/.test(name)) return false;
  try {
    return Deno.statSync(`${FUNCTIONS_DIR}/${name}/index.ts`).isFile;
  } catch {
    return false;
  }
}

/** Imports run one after another, so a top-level Deno.serve can also be attributed by `importing`. */
function load(name: string): Promise<void> {
  const existing = loading.get(name);
  if (existing) return existing;
  const p = chain.then(async () => {
    importing = name;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`import did not finish within ${IMPORT_TIMEOUT_MS} ms`)),
          IMPORT_TIMEOUT_MS,
        );
      });
      await Promise.race([import(`file://${FUNCTIONS_DIR}/${name}/index.ts`), timeout]);
      if (!handlers.has(name)) bootErrors.set(name, "the module did not call Deno.serve");
    } catch (e) {
      bootErrors.set(name, (e as Error).message.split("\n")[0]);
    } finally {
      clearTimeout(timer);
      importing = undefined;
    }
    if (bootErrors.has(name)) log(`functions: ${name} failed to load: ${bootErrors.get(name)}`);
  });
  loading.set(name, p);
  chain = p;
  return p;
}

export function loadFunctions(): string[] {
  installServeShim();
  let names: string[] = [];
  try {
    names = [...Deno.readDirSync(FUNCTIONS_DIR)].filter((e) => e.isDirectory && hasIndex(e.name)).map((e) => e.name)
      .sort();
  } catch { /* no functions folder */ }
  names.forEach(load);
  return names;
}

function record(name: string, wallMs: number, cpuMs: number, failed: boolean) {
  const s = (stats[name] ??= { invocations: 0, errors: 0, max_cpu_ms: 0, max_rss_mb: 0, total_wall_ms: 0 });
  const rssMb = Deno.memoryUsage().rss / 1024 / 1024;
  s.invocations++;
  if (failed) s.errors++;
  s.max_cpu_ms = Math.max(s.max_cpu_ms, Math.round(cpuMs * 10) / 10);
  s.max_rss_mb = Math.max(s.max_rss_mb, Math.round(rssMb * 10) / 10);
  s.total_wall_ms = Math.round((s.total_wall_ms + wallMs) * 10) / 10;
  if (cpuMs > HOSTED_CPU_MS) {
    log(`functions: ${name} used ~${Math.round(cpuMs)} ms CPU: hosted stops a request at ${HOSTED_CPU_MS} ms`);
  }
  if (rssMb > HOSTED_MEMORY_MB) {
    log(
      `functions: gateway RSS ${Math.round(rssMb)} MB after ${name}: hosted allows ${HOSTED_MEMORY_MB} MB per function`,
    );
  }
}

/** /functions/v1/<name>/<rest>. The gateway's own answers are returned with `own: true` (they get CORS headers). */
export async function invokeFunction(
  req: Request,
  subpath: string,
  info: Deno.ServeHandlerInfo,
): Promise<{ res: Response; own: boolean }> {
  const [, name = "", rest = ""] = /^\/([^/]*)(\/.*)?$/.exec(subpath) ?? [];
  if (!loading.has(name) && hasIndex(name)) load(name); // a function added after start
  if (!loading.has(name)) {
    return { res: json({ code: "NOT_FOUND", message: "Requested function was not found" }, 404), own: true };
  }

  // Hosted lets CORS preflights through without a JWT: the function answers them itself.
  if (req.method !== "OPTIONS" && (verifyJwtFor.get(name) ?? true)) {
    if (!req.headers.get("authorization")) {
      return { res: json({ code: 401, message: "Missing authorization header" }, 401), own: true };
    }
    const token = bearer(req);
    if (!token || !(await platformVerifyJwt(token))) {
      return { res: json({ code: 401, message: "Invalid JWT" }, 401), own: true };
    }
  }

  await loading.get(name);
  const handler = handlers.get(name);
  if (!handler) {
    record(name, 0, 0, true);
    return {
      res: json({ code: "BOOT_ERROR", message: `Function failed to start: ${bootErrors.get(name) ?? "unknown"}` }, 500),
      own: true,
    };
  }
  const url = new URL(req.url);
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  const fnReq = new Request(`${url.origin}/${name}${rest}${url.search}`, {
    method: req.method,
    headers: req.headers,
    body: hasBody ? new Uint8Array(await req.arrayBuffer()) : undefined, // the exact bytes received
  });

  const wall0 = performance.now();
  const cpu0 = process.cpuUsage(); // process-wide: approximate when requests overlap
  let failed = false;
  try {
    const res = await handler(fnReq, info);
    if (!(res instanceof Response)) throw new Error("handler did not return a Response");
    failed = res.status >= 500;
    return { res, own: false };
  } catch (e) {
    failed = true;
    log(`functions: ${name} threw: ${(e as Error).stack ?? e}`);
    return {
      res: json({ code: "WORKER_ERROR", message: "Function exited due to an error (please check logs)" }, 500),
      own: true,
    };
  } finally {
    const cpu = process.cpuUsage(cpu0);
    record(name, performance.now() - wall0, (cpu.user + cpu.system) / 1000, failed);
  }
}

/** GET|POST /_stack/functions/stats[/reset], secret key (or legacy service role key) only. */
export function statsRoute(req: Request, path: string): Response {
  if (!isServiceKey(bearer(req)) && !isServiceKey(req.headers.get("apikey"))) {
    return json({ code: 401, message: "a secret API key is required" }, 401);
  }
  if (path === "/_stack/functions/stats" && req.method === "GET") return json(stats);
  if (path === "/_stack/functions/stats/reset" && req.method === "POST") {
    stats = {};
    return json({ ok: true });
  }
  return json({ code: 404, message: "not found" }, 404);
}
