#!/usr/bin/env bash
# `npm test`: installs what it needs, starts its own local stack (on test ports, so a running `npm start`
# is not disturbed), runs every test (pgTAP with pg_prove, supabase db lint, vitest), stops what it
# started, and exits non-zero on any failure. pgTAP also runs on PostgreSQL 17 (PGlite, scripts/pg17).
# Everything runs with the new API keys (STACK_KEYS=new);
# then a second stack with the legacy keys (STACK_KEYS=legacy) runs the tests of what depends on them;
# then `npm run deploy:rehearse` plays docs/deploy.md on a bare stack of its own (about 20 s).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

[ -n "${STACK_READY_FOR_TESTS:-}" ] || bash scripts/setup.sh || exit 1

# Tests want spend visible at once and a circuit breaker that recovers within a test.
export LITELLM_BATCH_WRITE_MS=0 LITELLM_BREAKER_COOLDOWN_MS=1500 LITELLM_TIMEOUT_MS=2000
export PAYSTACK_WEBHOOK_RETRY_MS=${PAYSTACK_WEBHOOK_RETRY_MS:-300,600,1200}
mkdir -p test-results
if [ -z "${STACK_READY_FOR_TESTS:-}" ]; then
  # Re-run this script inside a private stack (scripts/with-stack.sh starts and stops it).
  # ---- BEGIN key modes (stack/local-env.ts): each run leaves its counts in test-results/totals-<mode> ----
  rm -f test-results/totals-* test-results/skipped.txt
  STACK_PROFILE=test STACK_KEYS=new STACK_READY_FOR_TESTS=all bash scripts/with-stack.sh bash scripts/test.sh
  STACK_PROFILE=test STACK_KEYS=legacy STACK_READY_FOR_TESTS=legacy bash scripts/with-stack.sh bash scripts/test.sh
  # ---- BEGIN deploy rehearsal (docs/deploy.md, scripts/deploy-rehearse.ts): its own bare stack, ports +200; one test ----
  echo "== deploy rehearsal (npm run deploy:rehearse)"
  STACK_GATEWAY_PORT=$((${STACK_GATEWAY_PORT:-54421} + 200)) STACK_DB_PORT=$((${STACK_DB_PORT:-54422} + 200)) \
    STACK_WEB_PORT=$((${STACK_WEB_PORT:-54423} + 200)) STACK_LITELLM_PORT=$((${STACK_LITELLM_PORT:-4010} + 200)) \
    STACK_PAYSTACK_PORT=$((${STACK_PAYSTACK_PORT:-54430} + 200)) STACK_POOLER_PORT=$((${STACK_POOLER_PORT:-54429} + 200)) \
    node_modules/.bin/deno run -A scripts/deploy-rehearse.ts 2>&1 | tee test-results/deploy-rehearsal.txt
  if [ "${PIPESTATUS[0]}" -eq 0 ]; then echo "1 0 0" >test-results/totals-rehearsal; else echo "0 1 0" >test-results/totals-rehearsal; fi
  # ---- END deploy rehearsal ----
  runs=$(cat test-results/totals-new test-results/totals-legacy test-results/totals-rehearsal 2>/dev/null | wc -l)
  read -r p f k < <(cat test-results/totals-* 2>/dev/null | awk '{p += $1; f += $2; k += $3} END {print p + 0, f + 0, k + 0}')
  [ "$runs" -eq 3 ] || f=$((f + 1)) # a run that did not get to count (its stack did not start) is a failure
  # The LiteLLM contract suite ran against the emulator; its run against a real proxy needs one (no internet here).
  if [ -z "${LITELLM_CONTRACT_URL:-}" ]; then
    echo "contract: the LiteLLM client contract run against a real proxy (LITELLM_CONTRACT_URL is not set; it ran against the emulator)" >>test-results/skipped.txt
    k=$((k + 1))
  fi
  echo
  echo "Runs: new API keys (everything), legacy API keys (the key-dependent tests), the deploy rehearsal."
  if [ -s test-results/skipped.txt ]; then echo "Skipped ($k):"; sed 's/^/  - /' test-results/skipped.txt; fi
  echo "tests: $p passed, $f failed, $k skipped"
  [ "$f" -eq 0 ]
  exit
  # ---- END key modes ----
fi
db_url="postgresql://postgres:postgres@127.0.0.1:$STACK_DB_PORT/postgres"

failed=0
passed_total=0
failed_total=0
skipped_total=0

# vitest over the given files (all when none), JSON report to $1; adds to the totals. Skipped tests are
# counted and named in test-results/skipped.txt, except in a run filtered by -t (the rest is not skipped,
# only not selected: set COUNT_SKIPPED=0).
run_vitest() {
  local report=$1
  shift
  node_modules/.bin/vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
  [ $? -eq 0 ] || failed=1
  if [ -f "$report" ]; then
    read -r vp vf vs < <(node -e '
      const r = require(process.argv[1]);
      const broken = r.testResults.filter((f) => f.status === "failed" && !f.assertionResults.some((a) => a.status === "failed")).length;
      const skipped = r.testResults.flatMap((f) => f.assertionResults.filter((a) => ["skipped", "pending", "todo"].includes(a.status))
        .map((a) => `${process.argv[2]}: ${f.name.replace(process.cwd() + "/", "")} › ${a.fullName}`));
      if (process.argv[3] === "1") require("fs").appendFileSync("test-results/skipped.txt", skipped.map((s) => s + "\n").join(""));
      console.log(r.numPassedTests, r.numFailedTests + broken, process.argv[3] === "1" ? skipped.length : 0);
    ' "$PWD/$report" "${STACK_KEYS:-new} keys" "${COUNT_SKIPPED:-1}")
    passed_total=$((passed_total + vp)); failed_total=$((failed_total + vf)); skipped_total=$((skipped_total + vs))
  else
    failed_total=$((failed_total + 1))
  fi
}

# After the tests: no log the stack wrote ($STACK_LOCAL_DIR: service logs, stack output, Postgres log) and
# no test result holds a full LiteLLM key, the master key or a Paystack or Supabase secret. One test.
check_logs() {
  echo "== log hygiene"
  if node scripts/check-logs.mjs "$STACK_LOCAL_DIR" test-results; then
    passed_total=$((passed_total + 1))
  else
    failed=1; failed_total=$((failed_total + 1))
  fi
}

# ---- BEGIN legacy key mode run ----
# The tests of what depends on the key mode, against a stack with anon/service_role keys and HS256 user
# tokens: user and operator auth, the platform stand-ins, rotation from the dashboard, then (by name) the
# admin CLI, deploy:check and checkout. About 1.5 minutes with the stack's start.
if [ "$STACK_READY_FOR_TESTS" = legacy ]; then
  echo "== vitest (legacy API keys)"
  rm -f test-results/vitest-legacy*.json
  run_vitest test-results/vitest-legacy.json supabase/tests/integration/user-auth.test.ts supabase/tests/integration/function-auth.test.ts \
    supabase/tests/integration/platform.test.ts web/tests/rotation.test.ts
  COUNT_SKIPPED=0 run_vitest test-results/vitest-legacy-named.json supabase/tests/integration/ops.test.ts supabase/tests/integration/paystack-webhook.test.ts \
    -t "^(admin command line|deploy:check|checkout) "
  check_logs
  echo "legacy API keys: $passed_total passed, $failed_total failed, $skipped_total skipped"
  echo "$passed_total $failed_total $skipped_total" >test-results/totals-legacy
  [ "$failed" -eq 0 ] && [ "$failed_total" -eq 0 ]
  exit
fi
# ---- END legacy key mode run ----

# Adds one pg_prove run to the totals: $1 its output file, $2 its exit code.
count_prove() {
  local tests bad
  tests=$(grep -oE 'Tests=[0-9]+' "$1" | grep -oE '[0-9]+' || echo 0)
  if [ "$2" -ne 0 ]; then
    failed=1
    bad=$(grep -oE 'Failed [0-9]+/[0-9]+ subtests' "$1" | awk -F'[ /]' '{s+=$2} END {print s+0}')
    failed_total=$((failed_total + (bad > 0 ? bad : 1)))
    passed_total=$((passed_total + tests - bad))
  else
    passed_total=$((passed_total + tests))
  fi
}

echo "== pgTAP (pg_prove, as supabase test db runs it)"
psql -X -q "$db_url" -c 'create extension if not exists pgtap with schema extensions' >/dev/null || failed=1
prove_out="$STACK_LOCAL_DIR/pg_prove.out"
pg_prove -d "$db_url" --ext .sql -r supabase/tests/database 2>&1 | tee "$prove_out"
count_prove "$prove_out" "${PIPESTATUS[0]}"

# ---- BEGIN legacy grants (hosted roles; stack/platform/legacy-default-grants.sql) ----
# The same suite on a second, database-only stack whose public schema has the default privileges of
# projects created before May 30, 2026 (everything granted to the API roles): the allow-lists must still hold.
# Its ports are ours + 100; the URLs of this stack are unset so that it derives its own.
echo "== pgTAP again, with the legacy default grants (STACK_GRANTS=legacy)"
legacy_out="$STACK_LOCAL_DIR/pg_prove-legacy.out"
env -u SUPABASE_URL -u SUPABASE_DB_URL -u LITELLM_BASE_URL -u LITELLM_PUBLIC_URL -u PAYSTACK_BASE_URL -u PAYSTACK_CALLBACK_URL -u PAYSTACK_WEBHOOK_URL \
  STACK_GRANTS=legacy STACK_SERVICES=none STACK_LOCAL_DIR="$STACK_LOCAL_DIR/legacy-grants" \
  STACK_GATEWAY_PORT=$((STACK_GATEWAY_PORT + 100)) STACK_DB_PORT=$((STACK_DB_PORT + 100)) STACK_WEB_PORT=$((STACK_WEB_PORT + 100)) \
  STACK_LITELLM_PORT=$((STACK_LITELLM_PORT + 100)) STACK_PAYSTACK_PORT=$((STACK_PAYSTACK_PORT + 100)) \
  bash scripts/with-stack.sh bash -c '
    [ "$SUPABASE_DB_URL" = "postgresql://postgres:postgres@127.0.0.1:$STACK_DB_PORT/postgres" ] || { echo "not the legacy database: $SUPABASE_DB_URL"; exit 1; }
    n=$(psql -XAt "$SUPABASE_DB_URL" -c "select count(*) from pg_default_acl where defaclnamespace = '"'public'::regnamespace"'")
    [ "$n" = 3 ] || { echo "the legacy default privileges are not in place ($n of 3)"; exit 1; }
    pg_prove -d "$SUPABASE_DB_URL" --ext .sql -r supabase/tests/database' >"$legacy_out" 2>&1
legacy_rc=$?
grep -vE '^supabase/tests/database/.* ok$' "$legacy_out"
count_prove "$legacy_out" "$legacy_rc"
# ---- END legacy grants ----

# ---- BEGIN pgTAP on PostgreSQL 17 (PGlite, in process; scripts/pg17/run.mjs, needs no stack) ----
echo "== pgTAP on PostgreSQL 17 (PGlite)"
pg17_out="$STACK_LOCAL_DIR/pg17.out"
node scripts/pg17/run.mjs 2>&1 | tee "$pg17_out"
[ "${PIPESTATUS[0]}" -eq 0 ] || failed=1
read -r pg17_passed pg17_failed < <(sed -n 's/^# pg17: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$pg17_out")
passed_total=$((passed_total + ${pg17_passed:-0})); failed_total=$((failed_total + ${pg17_failed:-1}))
# ---- END pgTAP on PostgreSQL 17 ----

echo "== deno fmt --check (deno.json: the code of functions, stack, scripts, web, tests; 120 columns)"
if node_modules/.bin/deno fmt --check; then
  passed_total=$((passed_total + 1))
else
  echo "deno fmt: files above are not formatted; run: node_modules/.bin/deno fmt"
  failed=1; failed_total=$((failed_total + 1))
fi

echo "== deno check and deno lint (functions, stack, scripts)"
if node_modules/.bin/deno check supabase/functions/*/index.ts stack/main.ts stack/platform/gateway.ts scripts/admin.ts scripts/deploy-check.ts scripts/deploy-rehearse.ts \
   && node_modules/.bin/deno lint supabase/functions stack scripts; then
  passed_total=$((passed_total + 1))
else
  failed=1; failed_total=$((failed_total + 1))
fi

echo "== supabase db lint"
if node_modules/.bin/supabase db lint --db-url "$db_url?sslmode=disable" --schema public,private --fail-on error --level warning; then
  passed_total=$((passed_total + 1))
else
  failed=1; failed_total=$((failed_total + 1))
fi

echo "== vitest"
run_vitest test-results/vitest.json

# ---- BEGIN log hygiene (operations; scripts/check-logs.mjs) ----
check_logs
# ---- END log hygiene ----

echo
echo "new API keys: $passed_total passed, $failed_total failed, $skipped_total skipped"
echo "$passed_total $failed_total $skipped_total" >test-results/totals-new
[ "$failed" -eq 0 ] && [ "$failed_total" -eq 0 ]
