#!/usr/bin/env bash
# `make demo`: the ravan-history CLI against the local Ravan server (started by mock/server run,
# which exports RAVAN_MOCK_URL). Point RAVAN_BASE_URL elsewhere and the same commands talk to the
# real API. Headings are bold on a terminal only, so the output can be piped or saved as text.
set -euo pipefail
cd "$(dirname "$0")/.."
lua=${LUA:-lua5.4}
eval "$(make -s env LUA="$lua")"
export RAVAN_BASE_URL=$RAVAN_MOCK_URL RAVAN_API_KEY=rk_test_local

bold='' plain=''
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; fi

# Prints `$ ravan-history ARGS   # NOTE`, then runs it on $lua.
show() {
  local note=$1
  shift
  printf '\n%s$ ravan-history %s%s%s\n' "$bold" "$*" "${note:+   # $note}" "$plain"
  "$lua" bin/ravan-history "$@" || true
}

echo "ravan demo on $("$lua" -v 2>&1 | cut -d' ' -f1-2): the local Ravan server is at $RAVAN_MOCK_URL"
show "one page, with its totals" +919876543210
show "a long history, a page at a time" +15550000250 --page 3 --page-size 8
show "JSON in the contract's key order (indented on a terminal)" +919876543210 --page-size 1 --json
show "every call through the lazy pager, as CSV" +15550010000 --all --limit 5 --format csv

printf '\n%s$ ravan-history +15550010000 --all --format ndjson | wc -l   # 10,000 calls, pages prefetched%s\n' \
  "$bold" "$plain"
start=$EPOCHREALTIME
count=$("$lua" bin/ravan-history +15550010000 --all --format ndjson | wc -l)
awk -v n="$count" -v t0="$start" -v t1="$EPOCHREALTIME" 'BEGIN { printf "%d calls in %.2f s\n", n, t1 - t0 }'

show "no +: refused before any traffic" 4155550100
show "a typo" +919876543210 --pgae 2
