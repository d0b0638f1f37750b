#!/usr/bin/env bash
# Installs what the local stack and the tests need, idempotently: Debian packages (PostgreSQL extensions,
# pg_prove, PgBouncer, Chromium), npm packages, and the stand-in extensions (stack/platform/extensions).
# Every failure ends in one line that says what to do.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "setup: $*" >&2; exit 1; }
need_root_or_sudo() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "cannot run '$*' without root: install the listed packages by hand, then rerun"; fi
}

# --- PostgreSQL major version (Debian ships one per release: 15 on 12, 17 on 13) ---
if [ -d /usr/lib/postgresql ] && [ -n "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
  PG_MAJOR=$(ls /usr/lib/postgresql | sort -n | tail -1)
else
  PG_MAJOR=""
fi

pkgs=()
if [ -z "$PG_MAJOR" ]; then
  pkgs+=(postgresql postgresql-contrib)
fi
missing_for_major() {
  local m=$1
  [ -f "/usr/share/postgresql/$m/extension/pg_cron.control" ] || echo "postgresql-$m-cron"
  [ -f "/usr/share/postgresql/$m/extension/pgtap.control" ] || echo "postgresql-$m-pgtap"
  [ -f "/usr/share/postgresql/$m/extension/plpgsql_check.control" ] || echo "postgresql-$m-plpgsql-check"
}
if [ -n "$PG_MAJOR" ]; then mapfile -t extra < <(missing_for_major "$PG_MAJOR"); pkgs+=("${extra[@]}"); fi
command -v pg_prove >/dev/null || pkgs+=(libtap-parser-sourcehandler-pgtap-perl)
command -v psql >/dev/null || pkgs+=(postgresql-client)
[ -x /usr/sbin/pgbouncer ] || pkgs+=(pgbouncer)   # the local transaction pooler (stack/pooler.ts)
if [ "${SETUP_SKIP_BROWSER:-}" != "1" ]; then command -v chromium >/dev/null || pkgs+=(chromium); fi

if [ ${#pkgs[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${pkgs[*]}"
  need_root_or_sudo apt-get update -qq >/dev/null || die "apt-get update failed: check that Debian's package mirror is reachable"
  DEBIAN_FRONTEND=noninteractive need_root_or_sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null \
    || die "apt-get install ${pkgs[*]} failed: run it by hand to see why"
  if [ -z "$PG_MAJOR" ]; then
    PG_MAJOR=$(ls /usr/lib/postgresql | sort -n | tail -1)
    mapfile -t extra < <(missing_for_major "$PG_MAJOR")
    if [ ${#extra[@]} -gt 0 ]; then
      DEBIAN_FRONTEND=noninteractive need_root_or_sudo apt-get install -y -qq --no-install-recommends "${extra[@]}" >/dev/null \
        || die "apt-get install ${extra[*]} failed"
    fi
  fi
fi

# --- Stand-in extensions (pg_net, supabase_vault) where hosted Supabase has the real ones ---
extdir="/usr/share/postgresql/$PG_MAJOR/extension"
for f in stack/platform/extensions/*; do
  target="$extdir/$(basename "$f")"
  if ! cmp -s "$f" "$target" 2>/dev/null; then
    need_root_or_sudo install -m 0644 "$f" "$target" || die "cannot write $target: run npm run setup as root"
  fi
done

# --- npm packages (Deno and the Supabase CLI come from npm too) ---
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null || die "npm ci failed: check that the npm registry is reachable"
fi
[ -x node_modules/.bin/deno ] || die "deno is missing from node_modules: rm -rf node_modules && npm run setup"
