#!/usr/bin/env node
// `npm run test:pg17`: the migrations and the pgTAP suite on PostgreSQL 17 (PGlite, in process, no stack).
// Boots a hosted-like cluster (cluster.mjs), applies every file of supabase/migrations in order, each in its
// own transaction as `supabase db push` does, then runs every pgTAP file of supabase/tests/database in name
// order, each in a fresh session as pg_prove runs it, and prints a TAP summary per file and in total.
// Usage: node scripts/pg17/run.mjs [-v] [test files...]   (-v prints every TAP line)
// Exit status: 0 when every file passed, 1 otherwise. The last line is "# pg17: N passed, M failed".
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { bootCluster, freshSession, ROOT, runOrThrow, runSql, sqlFiles } from "./cluster.mjs";
import { judgeTap } from "./tap.mjs";

const args = process.argv.slice(2);
const verbose = args.includes("-v");
const only = args.filter((a) => a !== "-v").map((a) => relative(ROOT, join(process.cwd(), a)));

const walk = (dir) =>
  readdirSync(dir).sort().flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : path.endsWith(".sql") ? [path] : [];
  });

const started = performance.now();
const seconds = (from) => ((performance.now() - from) / 1000).toFixed(1);

const pg = await bootCluster();
const { rows: [version] } = await runOrThrow(pg, `select current_setting('server_version')`, "version");
console.log(`# PostgreSQL ${version} (PGlite), cluster ready in ${seconds(started)} s`);

const migrationsStarted = performance.now();
await freshSession(pg, "postgres");
// Hosted parity: migrations and tests run as postgres, which is no superuser there.
const { rows: [identity] } = await runOrThrow(
  pg,
  `select session_user || '|' || current_setting('is_superuser')`,
  "identity",
);
if (identity !== "postgres|off") throw new Error(`expected to run as postgres without superuser, got ${identity}`);
const migrations = sqlFiles(join(ROOT, "supabase/migrations"));
for (const file of migrations) {
  await runOrThrow(pg, "begin", "begin");
  const { error } = await runSql(pg, readFileSync(file, "utf8"));
  if (error) {
    console.log(`not ok - migration ${relative(ROOT, file)}: ${error.text}`);
    console.log("# pg17: 0 passed, 1 failed");
    process.exit(1);
  }
  await runOrThrow(pg, "commit", relative(ROOT, file));
}
// As scripts/test.sh does before pg_prove (supabase test db does the same).
await runOrThrow(pg, "create extension if not exists pgtap with schema extensions", "pgtap");
console.log(`# ${migrations.length} migrations applied as postgres (no superuser) in ${seconds(migrationsStarted)} s`);

const files = walk(join(ROOT, "supabase/tests/database")).filter((f) =>
  !only.length || only.includes(relative(ROOT, f))
);
let passed = 0;
let failed = 0;
let failedFiles = 0;
const testsStarted = performance.now();
for (const file of files) {
  await freshSession(pg, "postgres");
  const { rows, error } = await runSql(pg, readFileSync(file, "utf8"));
  const lines = rows.flatMap((row) => row.split("\n"));
  const verdict = judgeTap(lines, error);
  passed += verdict.passed;
  failed += verdict.failed;
  const name = relative(ROOT, file);
  if (verdict.failed === 0) {
    console.log(`${name} .. ok (${verdict.run} tests)`);
    if (verbose) lines.forEach((l) => console.log(`    ${l}`));
    continue;
  }
  failedFiles += 1;
  console.log(`${name} .. Failed ${verdict.failed}/${verdict.planned ?? verdict.run} subtests`);
  for (const line of lines) {
    if (verbose || line.startsWith("not ok") || line.startsWith("#")) console.log(`    ${line}`);
  }
  for (const problem of verdict.problems) console.log(`    # ${problem}`);
}
await pg.close();

console.log(
  `Files=${files.length}, Tests=${passed + failed}, ${seconds(testsStarted)} s tests, ${seconds(started)} s in all`,
);
console.log(`Result: ${failed === 0 && files.length > 0 ? "PASS" : `FAIL (${failedFiles} files)`}`);
console.log(`# pg17: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && files.length > 0 ? 0 : 1);
