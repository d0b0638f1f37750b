// Docs stand alone (issue 17): a reader of a fresh clone has everything the project relies on. No file
// points at a path on a developer's machine, at private notes or a reference folder, or at a Markdown file
// the repository does not hold; facts are stated in the repo's own docs with their public source (a URL).
// Needs no stack.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const SCANNED_DIRS = ["docs", "stack", "supabase", "scripts", "web", ".ci"];
const SCANNED_FILES = [
  "README.md",
  ".env.example",
  ".env.deploy.example",
  "package.json",
  "deno.json",
  "vitest.config.ts",
];
const SELF = "supabase/tests/integration/docs-standalone.test.ts"; // holds the patterns themselves

// What a run or a build leaves behind is not part of the repository (.gitignore).
const skipDir = (name: string) =>
  ["node_modules", "test-results", "dist", ".temp"].includes(name) || name.startsWith(".local") ||
  name.startsWith(".dist-");

// A path starts a token: not inside a URL or a longer path (so a path inside a URL, or after other path characters, does not count).
const START = String.raw`(?<![\w.:/@~-])`;

type Rule = { kind: string; re: RegExp; markdownOnly?: boolean };
const RULES: Rule[] = [
  {
    kind: "machine path",
    re: new RegExp(String.raw`${START}(?:/(?:work|home|root|Users|mnt|srv)/|[A-Za-z]:\\Users\\)`),
  },
  // Code may use a temporary directory on purpose (stack/pg.ts); a doc that names one points at a machine.
  { kind: "temporary path in a doc", re: new RegExp(String.raw`${START}/tmp/`), markdownOnly: true },
  {
    kind: "pointer to notes outside the repository",
    re: /\breference (?:notes?|folder)\b|\bprivate (?:document|notes?)\b|\bshared\/(?:reference|seed)\b/i,
  },
  { kind: "pointer to the seed document", re: /\bthe seed\b|\bseed, request\b/i, markdownOnly: true },
  // A section of a private note cited by name (paystack "Delivery", rules inv. 6) instead of the fact and its URL.
  { kind: "citation of private notes", re: /\b(?:seed|paystack|litellm|platform|rules)\s+"[A-Z]|\binv\. ?\d/ },
];

// A Markdown file named in a doc or a comment: `docs/deploy.md`, README.md (not the tail of a URL).
const MD_NAME = new RegExp(String.raw`${START}((?:[\w.-]+/)*[\w.-]+\.md)\b`, "g");

type Hit = { file: string; line: number; kind: string; text: string };

/** The pointers outside the repository in one file's text. `mdExists` says whether a named .md is ours. */
function findPointers(file: string, text: string, mdExists: (name: string, from: string) => boolean): Hit[] {
  const hits: Hit[] = [];
  const markdown = file.endsWith(".md");
  text.split("\n").forEach((line, i) => {
    const hit = (kind: string) => hits.push({ file, line: i + 1, kind, text: line.trim().slice(0, 160) });
    for (const rule of RULES) if ((markdown || !rule.markdownOnly) && rule.re.test(line)) hit(rule.kind);
    for (const m of line.matchAll(MD_NAME)) if (!mdExists(m[1], file)) hit(`${m[1]} is not in the repository`);
  });
  return hits;
}

function walk(dir: string, out: string[]) {
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) {
      if (!skipDir(e.name)) walk(rel, out);
    } else if (e.isFile()) out.push(rel);
  }
}

function repoFiles(): string[] {
  const files = SCANNED_FILES.filter((f) => existsSync(join(ROOT, f)));
  for (const d of SCANNED_DIRS) if (existsSync(join(ROOT, d))) walk(d, files);
  return files;
}

const files = repoFiles();
const mdBasenames = new Set(files.filter((f) => f.endsWith(".md")).map((f) => f.split("/").pop()));
// A bare name (README.md) may be any of ours; a path is read from the root or from the naming file's folder.
const mdExists = (name: string, from: string) =>
  name.includes("/")
    ? existsSync(join(ROOT, name)) || existsSync(join(ROOT, dirname(from), name))
    : mdBasenames.has(name);

describe("docs stand alone", () => {
  it("the scanner finds each kind of pointer and lets public URLs and repo files through", () => {
    // The sample paths are assembled here, so this file itself names no machine path.
    const home = `/${"home"}/dev`;
    const sample = [
      "see /work/shared/reference/product-rules.md", // a machine path and a notes folder
      `cd ${home}/litellm-credits && npm test`,
      "C:\\Users\\dev\\notes.txt",
      "logs land in /tmp/run.log",
      "each fact is in the project's reference notes (private)",
      'Source: *seed, request*: "..."',
      "Facts it must match: litellm.md",
      '- Source: rules inv. 6; paystack "Delivery".',
      `https://github.com/supabase/postgres/blob/develop/README.md and https://example.com${home}`,
      "as `docs/deploy.md` and README.md say; stack/emulators/litellm/README.md",
    ].join("\n");
    const hits = findPointers("docs/x.md", sample, mdExists);
    expect(hits.map((h) => `${h.line} ${h.kind}`)).toEqual([
      "1 machine path",
      "1 pointer to notes outside the repository",
      "2 machine path",
      "3 machine path",
      "4 temporary path in a doc",
      "5 pointer to notes outside the repository",
      "6 pointer to the seed document",
      "7 litellm.md is not in the repository",
      "8 citation of private notes",
    ]);
    // In code a temporary directory is allowed; a machine path is not.
    expect(findPointers("stack/pg.ts", `const dir = \`/tmp/x\`; // was ${home}/x`, mdExists).map((h) => h.kind))
      .toEqual(["machine path"]);
  });

  it("no doc, comment or script points at a machine path, private notes or a file outside the repository", () => {
    expect(files.length).toBeGreaterThan(100); // the walk really saw the tree
    expect(files).toContain("docs/requirements.md");
    const hits = files
      .filter((f) => f !== SELF)
      .flatMap((f) => {
        const text = readFileSync(join(ROOT, f), "utf8");
        return text.includes("\0") ? [] : findPointers(f, text, mdExists);
      });
    expect(hits.map((h) => `${h.file}:${h.line}: ${h.kind}: ${h.text}`)).toEqual([]);
  });
});
