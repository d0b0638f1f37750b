// Issue 2: a missing package, a taken port or a missing env var each produce one clear line that says
// what to do, not a stack trace.
import { spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const DENO = `${ROOT}node_modules/.bin/deno`;

function runStack(env: Record<string, string>) {
  const r = spawnSync(DENO, ["run", "-A", "stack/main.ts"], {
    cwd: ROOT,
    env: {
      ...process.env,
      NO_COLOR: "1",
      STACK_LOCAL_DIR: join(tmpdir(), "litellm-credits-preflight"),
      // Ports nobody uses, so only the one a test takes is busy (the test stack holds its own).
      STACK_GATEWAY_PORT: "54921",
      STACK_DB_PORT: "54922",
      STACK_WEB_PORT: "54923",
      STACK_LITELLM_PORT: "4090",
      STACK_PAYSTACK_PORT: "54930",
      STACK_POOLER_PORT: "54929",
      ...env,
    },
    encoding: "utf8",
    timeout: 30_000,
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

describe("one clear line for start-up problems", () => {
  it("a missing Debian package", () => {
    const r = runStack({ STACK_PG_EXTENSION_DIR: "/nonexistent" });
    expect(r.code).toBe(1);
    expect(r.out.split("\n")).toHaveLength(1);
    expect(r.out).toMatch(/^\[stack\] error: Debian package postgresql-\d+-cron is missing: run `npm run setup`/);
  });

  it("PgBouncer missing", () => {
    const r = runStack({ STACK_PGBOUNCER: "/nonexistent/pgbouncer" });
    expect(r.code).toBe(1);
    expect(r.out.split("\n")).toHaveLength(1);
    expect(r.out).toBe("[stack] error: PgBouncer is missing: run `npm run setup` (or apt-get install pgbouncer)");
  });

  it("a port taken by another process", async () => {
    const server = createServer();
    await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
    const port = (server.address() as { port: number }).port;
    try {
      const r = runStack({ STACK_DB_PORT: String(port) });
      expect(r.code).toBe(1);
      expect(r.out.split("\n")).toHaveLength(1);
      expect(r.out).toContain(`port ${port} (db) is in use by another process: stop it`);
    } finally {
      server.close();
    }
  });

  it("a missing or malformed env var in a function names the variable and where to set it", () => {
    const script = `import { config } from "./supabase/functions/_shared/config.ts";
      try { config(); console.log("ok"); } catch (e) { console.error(e.message); Deno.exit(1); }`;
    const env = { ...process.env } as Record<string, string>;
    delete env.LITELLM_MASTER_KEY;
    env.PAYSTACK_SECRET_KEY = "pk_test_wrong_kind";
    const r = spawnSync(DENO, ["eval", script], { cwd: ROOT, env: { ...env, NO_COLOR: "1" }, encoding: "utf8" });
    expect(r.status).toBe(1);
    const line = r.stderr.trim();
    expect(line.split("\n")).toHaveLength(1);
    expect(line).toContain("LITELLM_MASTER_KEY");
    expect(line).toContain("PAYSTACK_SECRET_KEY: must be a Paystack secret key");
    expect(line).toContain("supabase secrets set");
  });
});
