#!/usr/bin/env bash
# `make demo`: the ravan-history CLI against the local Ravan server (started by mock/server run,
# which exports RAVAN_MOCK_URL). Point RAVAN_BASE_URL elsewhere and the same commands talk to the
# real API.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(make -s env LUA="${LUA:-lua5.4}")"
export RAVAN_BASE_URL=$RAVAN_MOCK_URL RAVAN_API_KEY=rk_test_local
lua=${LUA:-lua5.4}

show() {
  printf '\n\033[1m$ %s\033[0m\n' "$*"
  "$lua" bin/"$@"
}

echo "ravan demo: the local Ravan server is at $RAVAN_MOCK_URL"
show ravan-history +919876543210
show ravan-history +15550000250 --page 3 --page-size 8
show ravan-history +919876543210 --page-size 1 --json
show ravan-history +15550010000 --all --limit 5 --format csv

printf '\n\033[1m$ ravan-history +15550010000 --all --format ndjson | wc -l   # every call, pages prefetched\033[0m\n'
start=$EPOCHREALTIME
count=$("$lua" bin/ravan-history +15550010000 --all --format ndjson | wc -l)
awk -v n="$count" -v t0="$start" -v t1="$EPOCHREALTIME" 'BEGIN { printf "%d calls in %.2f s\n", n, t1 - t0 }'
printf '\n\033[1m$ ravan-history 4155550100   # no +: refused before any traffic\033[0m\n'
"$lua" bin/ravan-history 4155550100 || true
