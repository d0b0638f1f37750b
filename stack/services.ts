// Child processes of the stack: spawned with the stack env, output prefixed, stopped together.
import { LOCAL_DIR, ROOT } from "./local-env.ts";
import { fail, say } from "./log.ts";

export interface Service {
  name: string;
  entry: string; // path relative to the repo root, run with deno
  port: number;
  env?: Record<string, string>;
  onlyEnv?: Record<string, string>; // this environment and nothing else (no stack env, nothing inherited)
  readyPath?: string; // GET this path until it answers
}

const running: { name: string; child: Deno.ChildProcess }[] = [];
const deno = `${ROOT}/node_modules/.bin/deno`;

async function pipe(stream: ReadableStream<Uint8Array>, prefix: string, logFile: Deno.FsFile) {
  const dec = new TextDecoder();
  let buf = "";
  for await (const chunk of stream) {
    await logFile.write(chunk);
    if (Deno.env.get("STACK_QUIET") === "1") continue;
    buf += dec.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      console.log(`${prefix} ${buf.slice(0, i)}`);
      buf = buf.slice(i + 1);
    }
  }
}

export function portFree(port: number): boolean {
  try {
    const l = Deno.listen({ hostname: "127.0.0.1", port });
    l.close();
    return true;
  } catch {
    return false;
  }
}

export async function startService(s: Service, env: Record<string, string>): Promise<void> {
  if (!(await portFree(s.port))) {
    fail(
      `port ${s.port} (${s.name}) is in use by another process: stop it (ss -ltnp 'sport = :${s.port}') and start again`,
    );
  }
  Deno.mkdirSync(`${LOCAL_DIR}/logs`, { recursive: true });
  const logFile = await Deno.open(`${LOCAL_DIR}/logs/${s.name}.log`, { create: true, write: true, truncate: true });
  const child = new Deno.Command(deno, {
    args: ["run", "-A", `${ROOT}/${s.entry}`],
    cwd: ROOT,
    env: s.onlyEnv ?? { ...env, ...s.env },
    clearEnv: s.onlyEnv !== undefined,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  running.push({ name: s.name, child });
  pipe(child.stdout, `[${s.name}]`, logFile);
  pipe(child.stderr, `[${s.name}]`, logFile);
  const url = `http://127.0.0.1:${s.port}${s.readyPath ?? "/"}`;
  const deadline = Date.now() + 30_000;
  let exited = false;
  child.status.then(() => (exited = true));
  while (Date.now() < deadline) {
    if (exited) fail(`${s.name} exited during start-up: see .local/logs/${s.name}.log`);
    try {
      const r = await fetch(url);
      await r.body?.cancel();
      say(`${s.name} up on 127.0.0.1:${s.port}`);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  fail(`${s.name} did not answer on ${url} within 30 s: see .local/logs/${s.name}.log`);
}

export function pids(): Record<string, number> {
  return Object.fromEntries(running.map((r) => [r.name, r.child.pid]));
}

export async function stopServices(): Promise<void> {
  for (const r of running.reverse()) {
    try {
      r.child.kill("SIGTERM");
    } catch { /* already gone */ }
  }
  await Promise.race([
    Promise.all(running.map((r) => r.child.status)),
    new Promise((r) => setTimeout(r, 5000)),
  ]);
  for (const r of running) {
    try {
      r.child.kill("SIGKILL");
    } catch { /* already gone */ }
  }
  running.length = 0;
}
