// One function invocation in a process of its own, so its CPU and memory compare with a hosted isolate's
// per-request limits (2 s CPU, 256 MB; https://supabase.com/docs/guides/functions/limits). Locally the
// gateway runs every function in ONE Deno process, whose figures mix overlapping requests.
//
// Child (this file run as a script): deno run -A scripts/bench/isolate.ts <function> <json body>
//   imports supabase/functions/<function>/index.ts with Deno.serve replaced by a shim that keeps the handler,
//   calls it once as pg_cron does (cron secret), and prints one JSON line: status, body, the handler's CPU time
//   (process.cpuUsage delta: user + system of the whole process, so GC and I/O threads count too; booting is
//   not counted, as on hosted), peak RSS (VmHWM) and RSS before the call. The env is the stack's
//   (with-stack.sh exports it), as the gateway gives its functions.
// Parent: runIsolated(name, body) spawns the child and parses that line.
import process from "node:process";

export interface IsolatedRun {
  status: number;
  // deno-lint-ignore no-explicit-any
  body: any;
  cpu_ms: number; // the handler's CPU time (user + system)
  wall_ms: number;
  rss_before_mb: number; // after imports, before the call
  rss_peak_mb: number; // VmHWM: the process's peak resident set, boot included
}

const MARK = "isolate-result ";

function vm(field: "VmHWM" | "VmRSS"): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(Deno.readTextFileSync("/proc/self/status"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Runs one invocation of `name` in a fresh Deno process (see the top). */
export async function runIsolated(name: string, body: unknown): Promise<IsolatedRun> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", new URL(import.meta.url).pathname, name, JSON.stringify(body)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const line = text.split("\n").find((l) => l.startsWith(MARK));
  if (!line) {
    throw new Error(
      `isolated ${name}: no result (exit ${out.code}): ${new TextDecoder().decode(out.stderr).slice(-400)}`,
    );
  }
  return JSON.parse(line.slice(MARK.length));
}

async function child(name: string, bodyText: string) {
  type Handler = (req: Request, info: unknown) => Response | Promise<Response>;
  let handler: Handler | undefined;
  const shim = (a: unknown, b?: unknown) => {
    handler =
      (typeof a === "function" ? a : typeof b === "function" ? b : (a as { handler?: Handler }).handler) as Handler;
    return { finished: new Promise<void>(() => {}), shutdown: async () => {}, ref() {}, unref() {} };
  };
  Object.defineProperty(Deno, "serve", { value: shim, configurable: true, writable: true });
  await import(new URL(`../../supabase/functions/${name}/index.ts`, import.meta.url).href);
  if (!handler) throw new Error(`${name} did not call Deno.serve`);
  const req = new Request(`http://127.0.0.1/functions/v1/${name}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${Deno.env.get("CRON_SECRET")}`, "Content-Type": "application/json" },
    body: bodyText,
  });
  const rssBefore = vm("VmRSS");
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const res = await handler(req, { remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 0 } });
  const text = await res.text();
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch { /* not JSON */ }
  const result: IsolatedRun = {
    status: res.status,
    body,
    cpu_ms: (cpu.user + cpu.system) / 1000,
    wall_ms: wall,
    rss_before_mb: rssBefore,
    rss_peak_mb: vm("VmHWM"),
  };
  console.log(MARK + JSON.stringify(result));
  Deno.exit(0); // the function's pools would keep the process alive for their idle timeout
}

if (import.meta.main) await child(Deno.args[0], Deno.args[1] ?? "{}");
