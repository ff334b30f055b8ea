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

db=$(mktemp -d)
trap 'rm -rf "$db"' EXIT
show "keep a database in step: three phones, concurrently" \
  sync +15550000250 +919876543210 +15550010000 --db "sqlite:$db/calls.db"
show "again: nothing new costs one request per phone" \
  sync +15550000250 +919876543210 +15550010000 --db "sqlite:$db/calls.db"
show "what the calls cost, by agent: summed exactly, from the database" \
  report --db "sqlite:$db/calls.db" --by agent

# The local server now answers every request 200 ms late; a 60 Hz game loop starts 50 requests
# and polls once per frame, and its frames stay short.
curl -sf -X POST -d '{"latency_ms":200}' "$RAVAN_MOCK_URL/__mock/config" >/dev/null
printf '\n%s$ build/embed/ravan-embed --frames examples/embed/frames.lua 50   # a game loop: 50 requests at 200 ms, never blocked%s\n' \
  "$bold" "$plain"
build/embed/ravan-embed --frames examples/embed/frames.lua 50 || true
curl -sf -X POST -d '{"latency_ms":0}' "$RAVAN_MOCK_URL/__mock/config" >/dev/null

show "no +: refused before any traffic" 4155550100
show "a typo" +919876543210 --pgae 2
