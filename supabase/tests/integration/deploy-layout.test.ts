// The functions deploy to hosted Supabase as they are: one folder each with index.ts and a deno.json
// whose npm pins match package.json (what the local stack runs), verify_jwt stated for each, and only
// npm imports (jsr:, deno.land and esm.sh cannot be fetched here and are not what we test).
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const FUNCTIONS = `${ROOT}supabase/functions`;
const names = readdirSync(FUNCTIONS, { withFileTypes: true }).filter((d) => d.isDirectory() && !d.name.startsWith("_"))
  .map((d) => d.name);
const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, "utf8"));
const config = readFileSync(`${ROOT}supabase/config.toml`, "utf8");

describe("function layout", () => {
  it("has the four product functions", () => {
    expect(names).toEqual(expect.arrayContaining(["checkout", "paystack-webhook", "provision-key", "reconcile-spend"]));
  });

  it.each(names)("%s: index.ts, deno.json pinned like package.json, verify_jwt stated", (name) => {
    const files = readdirSync(`${FUNCTIONS}/${name}`);
    expect(files).toContain("index.ts");
    expect(files).toContain("deno.json");
    const imports = JSON.parse(readFileSync(`${FUNCTIONS}/${name}/deno.json`, "utf8")).imports as Record<
      string,
      string
    >;
    for (const [bare, spec] of Object.entries(imports)) {
      expect(spec).toBe(`npm:${bare}@${pkg.dependencies[bare]}`);
    }
    expect(config).toMatch(new RegExp(`\\[functions\\.${name}\\]\\s*\\nverify_jwt = (true|false)`));
  });

  it("imports only npm packages and relative files", () => {
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = `${dir}/${e.name}`;
        if (e.isDirectory()) walk(p);
        else if (p.endsWith(".ts") && /from\s+["'](jsr:|https?:)/.test(readFileSync(p, "utf8"))) offenders.push(p);
      }
    };
    walk(FUNCTIONS);
    expect(offenders).toEqual([]);
  });
});
