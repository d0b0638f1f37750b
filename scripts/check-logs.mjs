#!/usr/bin/env node
// Log hygiene: fails when any log holds a secret in the clear. Run by scripts/test.sh after the tests
// over everything the stack and the tests wrote:
//   node scripts/check-logs.mjs <file or dir>...
// Looks for
//   - full LiteLLM virtual keys: "sk-" followed by 20 or more key characters (the masked form
//     "sk-...abcd" never matches: "." is not a key character);
//   - Paystack authorization codes ("AUTH_" and its characters: a saved card's charge code; the masked form
//     "AUTH_***" never matches);
//   - the LiteLLM master key, the Paystack secret key, the Supabase secret key and the email API key
//     (values from LITELLM_MASTER_KEY, PAYSTACK_SECRET_KEY, SUPABASE_SECRET_KEY, else the legacy
//     SUPABASE_SERVICE_ROLE_KEY, and EMAIL_API_KEY, in the environment), anywhere, even inside a longer string.
// Skips stack.env and platform-keys.json (they hold secrets on purpose), the Postgres data directory
// and binary files.
// Prints file:line and a masked excerpt of each finding (never the secret itself); exit 1 if any.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";

const KEY = /sk-[A-Za-z0-9_-]{20,}/g;
const AUTH_CODE = /\bAUTH_[A-Za-z0-9]{5,}/g;
const SKIP_NAMES = new Set(["stack.env", "stack.json", "stack.ready", "platform-keys.json"]);
const SKIP_DIRS = new Set(["data", "run", "node_modules", ".git"]);
const MAX_BYTES = 200 * 1024 * 1024;

const secrets = [
  ["LiteLLM master key", process.env.LITELLM_MASTER_KEY],
  ["Paystack secret key", process.env.PAYSTACK_SECRET_KEY],
  ["Supabase secret key", process.env.SUPABASE_SECRET_KEY ?? process.env.SUPABASE_SERVICE_ROLE_KEY],
  ["email API key", process.env.EMAIL_API_KEY],
].filter(([, v]) => v && v.length >= 8);

const maskAll = (line) => {
  let s = line.replace(KEY, (k) => `sk-...${k.slice(-4)}`).replace(AUTH_CODE, "AUTH_***");
  for (const [name, v] of secrets) s = s.split(v).join(`<${name}>`);
  return s.length > 200 ? `${s.slice(0, 200)}...` : s;
};

function files(paths) {
  const out = [];
  const walk = (p) => {
    let st;
    try {
      st = statSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      if (SKIP_DIRS.has(basename(p))) return;
      for (const e of readdirSync(p)) walk(join(p, e));
    } else if (st.isFile() && !SKIP_NAMES.has(basename(p)) && st.size <= MAX_BYTES) out.push(p);
  };
  paths.forEach(walk);
  return out;
}

export function scan(paths) {
  const findings = [];
  let scanned = 0;
  for (const f of files(paths)) {
    const buf = readFileSync(f);
    if (buf.subarray(0, 8000).includes(0)) continue; // binary (screenshots, pg files)
    scanned++;
    const lines = buf.toString("utf8").split("\n");
    lines.forEach((line, i) => {
      const what = [];
      const keys = line.match(KEY);
      if (keys) what.push(`${keys.length} full LiteLLM key${keys.length > 1 ? "s" : ""}`);
      const codes = line.match(AUTH_CODE);
      if (codes) what.push(`${codes.length} Paystack authorization code${codes.length > 1 ? "s" : ""}`);
      for (const [name, v] of secrets) if (line.includes(v)) what.push(`the ${name}`);
      if (what.length) findings.push({ file: f, line: i + 1, what: what.join(", "), excerpt: maskAll(line.trim()) });
    });
  }
  return { scanned, findings };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const paths = process.argv.slice(2);
  if (paths.length === 0) {
    console.error("usage: node scripts/check-logs.mjs <file or dir>...");
    process.exit(2);
  }
  const { scanned, findings } = scan(paths);
  for (const f of findings) console.log(`${f.file}:${f.line}: ${f.what}: ${f.excerpt}`);
  console.log(
    `log hygiene: ${scanned} file(s) scanned, ${findings.length} line(s) with a secret in the clear` +
      (secrets.length < 3
        ? " (LITELLM_MASTER_KEY / PAYSTACK_SECRET_KEY / SUPABASE_SECRET_KEY not all set: only checked what was)"
        : ""),
  );
  process.exit(findings.length ? 1 : 0);
}
