// docs/deploy.md and `npm run deploy:rehearse` describe the same deploy: the numbered steps of the CLI path
// (and of the dashboard path) are the steps the rehearsal declares (scripts/deploy-steps.ts), one for one,
// and what the steps name (secrets, functions, vault secrets) is what the code requires.
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { envNames, REQUIRED_VAULT_SECRETS } from "../../../scripts/deploy-check.ts";
import { DEPLOY_STEPS, envNamesIn, SECRETS_TEMPLATE } from "../../../scripts/deploy-steps.ts";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const doc = readFileSync(`${ROOT}docs/deploy.md`, "utf8");

/** The text of a "## <title>" section, up to the next "## " heading. */
function section(title: string): string {
  const start = doc.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`docs/deploy.md has no "## ${title}" section`);
  const end = doc.indexOf("\n## ", start + 1);
  return doc.slice(start, end < 0 ? undefined : end);
}

/** The "### <n>. <name>" headings of a section, in order. */
const numberedSteps = (text: string) => [...text.matchAll(/^### (\d+)\. (.+)$/gm)].map((m) => `${m[1]}. ${m[2]}`);
const expected = DEPLOY_STEPS.map((name, i) => `${i + 1}. ${name}`);

/** The text of step <n> in the CLI path. */
function cliStep(n: number): string {
  const cli = section("CLI path");
  const start = cli.indexOf(`\n### ${n}. `);
  const end = cli.indexOf("\n### ", start + 1);
  return cli.slice(start, end < 0 ? undefined : end);
}

describe("docs/deploy.md and npm run deploy:rehearse", () => {
  it("the CLI path's numbered steps are the rehearsal's steps, one for one", () => {
    expect(numberedSteps(section("CLI path"))).toEqual(expected);
  });

  it("the dashboard path has the same numbered steps", () => {
    expect(numberedSteps(section("Dashboard path"))).toEqual(expected);
  });

  it("the rehearsal's table has a row per step, in order", () => {
    const rows = [...section("The rehearsal (`npm run deploy:rehearse`)").matchAll(/^\| (\d+\. [^|]+?) \|/gm)].map((
      m,
    ) => m[1]);
    expect(rows).toEqual(expected);
  });

  it("step 4 lists exactly the secrets of .env.deploy.example: every secret the functions require, none that hosted injects", () => {
    const template = envNamesIn(readFileSync(`${ROOT}${SECRETS_TEMPLATE}`, "utf8"));
    const block = /```env\n([\s\S]*?)```/.exec(cliStep(4))?.[1] ?? "";
    expect(envNamesIn(block)).toEqual(template);
    const { required, optional } = envNames();
    expect(template).toEqual(expect.arrayContaining(required));
    expect(template.filter((n) => ![...required, ...optional].includes(n))).toEqual([]);
    expect(template.filter((n) => n.startsWith("SUPABASE_"))).toEqual([]);
  });

  it("step 5 names every function, and step 6 creates exactly the vault secrets deploy:check requires", () => {
    const functions = readdirSync(`${ROOT}supabase/functions`, { withFileTypes: true })
      .filter((d) => d.isDirectory() && !d.name.startsWith("_")).map((d) => d.name);
    expect(functions.filter((f) => !cliStep(5).includes(`\`${f}\``))).toEqual([]);
    const created = [...cliStep(6).matchAll(/vault\.create_secret\('[^']*', '([^']+)'\)/g)].map((m) => m[1]);
    expect(created).toEqual(REQUIRED_VAULT_SECRETS);
  });
});
