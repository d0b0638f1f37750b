#!/usr/bin/env bash
# Runs a command against a private local stack: starts the stack in the background (fresh cluster, its
# own ports and .local dir), exports the stack's env (SUPABASE_URL, SUPABASE_DB_URL, LITELLM_*, ...) to
# the command, and stops the stack afterwards whatever happens. Used by `npm test` and the benchmarks.
#   STACK_PROFILE=test|bench (default test) picks the ports and directory.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
profile=${STACK_PROFILE:-test}
case "$profile" in
  test) base=4; llm=4010 ;;   # 54421 gateway, 54422 db, 54423 web, 4010 litellm, 54430 paystack, 54429 pooler
  # Benchmarks measure reconcile, payments and provisioning, not email delivery: no email provider (an empty
  # EMAIL_API_KEY), so a fleet crossing its low-balance levels queues notifications but sends no emails.
  # Postgres gets shared_buffers as a hosted 2-core, 8 GB instance would (25 % of its RAM: docs/benchmarks.md,
  # "Postgres memory"), not the 128 MB default a million keys' indexes do not fit in.
  bench) base=5; llm=4020; export STACK_DEMO_ACTIVITY=${STACK_DEMO_ACTIVITY:-0} EMAIL_API_KEY=${EMAIL_API_KEY-} STACK_PG_SHARED_BUFFERS=${STACK_PG_SHARED_BUFFERS:-2GB} ;;  # 54521, 54522, 54523, 4020, 54530, 54529
  *) echo "with-stack: unknown STACK_PROFILE $profile"; exit 2 ;;
esac
export STACK_LOCAL_DIR=${STACK_LOCAL_DIR:-"$ROOT/.local/$profile"}
export STACK_GATEWAY_PORT=${STACK_GATEWAY_PORT:-54${base}21} STACK_DB_PORT=${STACK_DB_PORT:-54${base}22} STACK_WEB_PORT=${STACK_WEB_PORT:-54${base}23}
export STACK_LITELLM_PORT=${STACK_LITELLM_PORT:-$llm} STACK_PAYSTACK_PORT=${STACK_PAYSTACK_PORT:-54${base}30}
export STACK_POOLER_PORT=${STACK_POOLER_PORT:-54${base}29}
export STACK_QUIET=1
# A benchmark on a fresh clone installs what it needs too (a no-op once installed).
bash scripts/setup.sh >&2 || { echo "with-stack: setup failed"; exit 1; }
mkdir -p "$STACK_LOCAL_DIR"
log="$STACK_LOCAL_DIR/stack-output.log"
rm -f "$STACK_LOCAL_DIR/stack.ready"

node_modules/.bin/deno run -A stack/main.ts >"$log" 2>&1 &
stack_pid=$!
stop_stack() { kill -INT "$stack_pid" 2>/dev/null && wait "$stack_pid" 2>/dev/null; }
trap stop_stack EXIT
trap 'exit 130' INT TERM

for _ in $(seq 1 360); do
  [ -f "$STACK_LOCAL_DIR/stack.ready" ] && break
  if ! kill -0 "$stack_pid" 2>/dev/null; then echo "with-stack: the local stack did not start:"; tail -n 20 "$log"; exit 1; fi
  sleep 0.5
done
[ -f "$STACK_LOCAL_DIR/stack.ready" ] || { echo "with-stack: the local stack did not come up within 180 s:"; tail -n 20 "$log"; exit 1; }
grep -m1 "stack is up" "$log"
set -a; . "$STACK_LOCAL_DIR/stack.env"; set +a
"$@"
