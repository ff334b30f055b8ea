#!/usr/bin/env bash
# Self-check of the mock with the curl CLI: every endpoint, the dataset's
# special phones, TLS, gzip, the control API and each fault kind.
# Usage: mock/test-mock.sh   (starts and stops its own instance via `server run`)
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -z ${RAVAN_MOCK_URL:-} ]]; then
    exec "$HERE/server" run "$0" "$@"
fi

LUA=$(command -v luajit || command -v lua5.1) || { echo "needs luajit or lua5.1 with lua-cjson" >&2; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
KEY='X-Api-Key: rk_test_local'
BEARER='Authorization: Bearer tok_test_local'
API=/api/v1/calling/phone-history
CTL=$RAVAN_MOCK_URL/__mock
TLS_PORT=${RAVAN_MOCK_TLS_URL##*:}
pass=0 fail=0

check() { # name actual expected
    if [[ $2 == "$3" ]]; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL: $1: got [$2], want [$3]" >&2
    fi
}

# req URL [curl args...]: body in $T/body, headers in $T/headers; prints
# "<http code> <curl exit code>".
req() {
    local url=$1 code rc=0
    shift
    code=$(curl -sS -o "$T/body" -D "$T/headers" -w '%{http_code}' --max-time 20 "$@" "$url" 2>"$T/stderr") || rc=$?
    echo "$code $rc"
}

api() { # QUERY [curl args...]
    local q=$1
    shift
    req "$RAVAN_MOCK_URL$API?$q" -H "$KEY" "$@"
}

# j EXPR [FILE]: evaluates a Lua expression over the decoded JSON `d`
# (null = cjson.null).
cat >"$T/j.lua" <<'EOF'
local cjson = require "cjson"
local f = assert(io.open(arg[2], "rb"))
d, null = cjson.decode(f:read("*a")), cjson.null
f:close()
-- $T/before, when a check saved a response there to compare with (`b`).
local before = io.open((arg[2]:match("^(.*/)") or "./") .. "before", "rb")
if before then b = cjson.decode(before:read("*a")) before:close() end
print(tostring(assert(loadstring("return " .. arg[1]))()))
EOF
j() {
    "$LUA" "$T/j.lua" "$1" "${2:-$T/body}"
}

header() { # NAME: value of a response header in $T/headers
    tr -d '\r' <"$T/headers" | awk -v n="${1,,}" -F': ' 'tolower($1) == n { print $2 }' | tail -1
}

post() { # PATH JSON
    curl -sS -o "$T/post" -w '%{http_code}' -X POST "$CTL/$1" -d "$2"
}

fault() { check "queue fault $1" "$(post faults "$1")" 200; }

last_seq() {
    curl -sS -o "$T/records" "$CTL/requests"
    j '#d == 0 and 0 or d[#d].seq' "$T/records"
}

record() { # EXPR over the records since $since, e.g. 'd[1].fault'
    curl -sS -o "$T/records" "$CTL/requests?since=$since"
    j "$1" "$T/records"
}

# --- control basics ---------------------------------------------------------
check "health" "$(curl -sS "$CTL/health")" ok
check "reset" "$(post reset '{}')" 200

# --- the contract example ---------------------------------------------------
check "example status" "$(api 'phone=%2B919876543210&include_transcripts=true')" "200 0"
check "example content type" "$(header content-type)" application/json
check "example request id" "$(header x-request-id | grep -cE '^[0-9a-f]{32}$')" 1
check "example total" "$(j 'd.total_count .. "/" .. #d.calls .. "/" .. d.page .. "/" .. d.page_size')" "3/3/1/20"
# The newest call is the contract's call byte for byte (4.0 stays 4.0).
# (compacting the pretty-printed example: indentation and the space after each key)
sed -E 's/^ +//; s/^("[a-z_]+"): /\1:/' "$HERE/ravan_mock/example-200.json" | tr -d '\n' |
    sed -E 's/.*"calls":\[(.*)\]}$/\1/' >"$T/example-call"
check "example call verbatim" "$(grep -cF "$(cat "$T/example-call")" "$T/body")" 1
check "transcripts included" "$(j '#d.calls[2].transcripts >= 2 and #d.calls[3].transcripts >= 2')" true
check "timestamp_ms is an integer" "$(grep -c '"timestamp_ms":1765437000123,' "$T/body")" 1
api 'phone=%2B919876543210' >/dev/null
check "transcripts omitted" "$(j 'd.calls[1].transcripts == nil and d.calls[2].transcripts == nil')" true
check "integers on the wire" "$(grep -c '"duration_sec":250,' "$T/body")" 1
check "urls unescaped" "$(grep -c 'https://api.example.com/' "$T/body")" 1
check "newest first" "$(j 'd.calls[1].started_at > d.calls[2].started_at and d.calls[2].started_at > d.calls[3].started_at')" true
api 'phone=%2B14155550100' -H "$BEARER" >/dev/null
check "caller finds the example (bearer)" "$(j 'd.calls[1].id')" 550e8400-e29b-41d4-a716-446655440000
api 'phone=%2B919876543210' >/dev/null
cp "$T/body" "$T/first"
api 'phone=%2B919876543210' >/dev/null
check "deterministic" "$(cmp -s "$T/first" "$T/body" && echo same)" same

# --- counted phones and paging ----------------------------------------------
api 'phone=%2B15550000000' >/dev/null
check "empty history is []" "$(grep -c '"total_count":0,"page":1,"page_size":20,"calls":\[\]}' "$T/body")" 1
api 'phone=%2B15550000250&page=3&page_size=100' >/dev/null
check "last partial page" "$(j 'd.total_count .. "/" .. #d.calls')" "250/50"
api 'phone=%2B15550000250&page=4&page_size=100' >/dev/null
check "page past the end" "$(grep -c '"total_count":250,"page":4,"page_size":100,"calls":\[\]' "$T/body")" 1
ids=""
for p in 1 2 3; do
    api "phone=%2B15550000250&page=$p&page_size=100" >/dev/null
    ids+=$(j 'table.concat((function() local t = {} for i, c in ipairs(d.calls) do t[i] = c.id end return t end)(), "\n")')$'\n'
done
check "250 unique ids across pages" "$(grep -c . <<<"$ids")/$(sort -u <<<"$ids" | grep -c .)" "250/250"
check "uuid shaped" "$(grep -cvE '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' <<<"$ids")" 1
api 'phone=%2B15550100000&page=1000&page_size=100' >/dev/null
check "100000 calls" "$(j 'd.total_count .. "/" .. #d.calls')" "100000/100"
api 'phone=%2B15550010000&page=100&page_size=100&include_transcripts=true' >/dev/null
check "10000 calls, last page" "$(j 'd.total_count .. "/" .. #d.calls .. "/" .. tostring(#d.calls[100].transcripts >= 2)')" "10000/100/true"
check "phone is caller or callee" "$(j '(function() for _, c in ipairs(d.calls) do if c.caller_number ~= d.phone and c.callee_number ~= d.phone then return false end end return true end)()')" true
check "cost_total is a 2-decimal string" "$(j 'type(d.calls[1].cost_total) == "string" and d.calls[1].cost_total:match("^%d+%.%d%d$") ~= nil')" true

# --- special phones -----------------------------------------------------------
api 'phone=%2B15558880001&page_size=100&include_transcripts=true' >/dev/null
check "long transcripts >= 1 MB" "$(($(stat -c %s "$T/body") >= 1048576))" 1
api 'phone=%2B15556660001&include_transcripts=true' >/dev/null
check "sparse: nulls" "$(j 'd.calls[1].caller_name == null and d.calls[1].ended_at == null and d.calls[1].metadata == null and d.calls[1].credit_breakdown == null')" true
check "sparse: absent" "$(j 'd.calls[2].caller_name == nil and d.calls[2].summary == nil and d.calls[2].ended_at == nil')" true
check "sparse: numeric cost_total" "$(grep -c '"cost_total":7.25,' "$T/body")" 1
check "sparse: unknown fields" "$(j 'd.calls[4].sentiment_score .. "/" .. d.calls[4].tags[1]')" "0.93/vip"
check "sparse: empty transcripts" "$(grep -c '"transcripts":\[\]}' "$T/body")" 1

# --- validation and auth ----------------------------------------------------
check "missing phone" "$(api 'page=1')" "400 0"
check "error body" "$(j 'd.success == false and type(d.message) == "string"')" true
check "error request id" "$(header x-request-id | grep -c .)" 1
check "unencoded + is a space" "$(api 'phone=+14155550100')" "400 0"
check "not E.164" "$(api 'phone=%2B0123')" "400 0"
check "page 0" "$(api 'phone=%2B14155550100&page=0')" "400 0"
check "page not a number" "$(api 'phone=%2B14155550100&page=two')" "400 0"
check "page_size 101" "$(api 'phone=%2B14155550100&page_size=101')" "400 0"
check "page_size 0" "$(api 'phone=%2B14155550100&page_size=0')" "400 0"
check "no credential" "$(req "$RAVAN_MOCK_URL$API?phone=%2B14155550100")" "401 0"
check "401 body" "$(j 'd.success')" false
check "wrong key" "$(req "$RAVAN_MOCK_URL$API?phone=%2B14155550100" -H 'X-Api-Key: rk_live_nope')" "401 0"
check "wrong token" "$(req "$RAVAN_MOCK_URL$API?phone=%2B14155550100" -H 'Authorization: Bearer nope')" "401 0"
check "unknown path" "$(api '' | cut -d' ' -f1; req "$RAVAN_MOCK_URL/api/v1/nope" -H "$KEY")" $'400\n404 0'

# --- gzip and TLS -----------------------------------------------------------
check "gzip" "$(api 'phone=%2B15550000250&page_size=100' --compressed)" "200 0"
check "gzip encoding" "$(header content-encoding)" gzip
check "gzip body decodes" "$(j '#d.calls')" 100
check "no gzip unless asked" "$(api 'phone=%2B15550000250' >/dev/null; header content-encoding)" ""
check "https (localhost)" "$(req "https://localhost:$TLS_PORT$API?phone=%2B14155550100" -H "$KEY" --cacert "$RAVAN_MOCK_CA" -v)" "200 0"
check "tls verified" "$(grep -c 'SSL certificate verify ok' "$T/stderr")" 1
check "https (127.0.0.1)" "$(req "$RAVAN_MOCK_TLS_URL$API?phone=%2B14155550100" -H "$KEY" --cacert "$RAVAN_MOCK_CA")" "200 0"
check "https untrusted without CA" "$(req "$RAVAN_MOCK_TLS_URL$API?phone=%2B14155550100" -H "$KEY" | cut -d' ' -f2)" 60

# --- recording --------------------------------------------------------------
check "reset" "$(post reset '{}')" 200
check "records cleared" "$(curl -sS "$CTL/requests")" "[]"
since=0
curl -sS -o /dev/null -o /dev/null -H "$KEY" -H 'X-Trace: a' "$RAVAN_MOCK_URL$API?phone=%2B14155550100&page=2" "$RAVAN_MOCK_URL$API?phone=%2B14155550100"
check "record fields" "$(record 'd[1].listener .. " " .. d[1].method .. " " .. d[1].uri .. " " .. d[1].query .. " " .. d[1].status .. " " .. tostring(d[1].fault == null) .. " " .. d[1].headers["x-trace"] .. " " .. d[1].headers["x-api-key"]')" \
    "main GET $API phone=%2B14155550100&page=2 200 true a rk_test_local"
check "connection reuse visible" "$(record 'd[1].connection == d[2].connection and d[2].connection_requests == 2')" true
since=$(last_seq)
curl -sS -o /dev/null "$RAVAN_MOCK_OTHER_URL$API?phone=%2B14155550100"
check "since + other listener" "$(record '#d .. " " .. d[1].listener .. " " .. d[1].status')" "1 other 401"

# --- config -----------------------------------------------------------------
check "config latency" "$(post config '{"latency_ms":300}')" 200
t=$(curl -sS -o /dev/null -w '%{time_total}' -H "$KEY" "$RAVAN_MOCK_URL$API?phone=%2B14155550100")
check "latency applied" "$(awk -v t="$t" 'BEGIN { print (t >= 0.3) }')" 1
post reset '{}' >/dev/null
check "config page_delays" "$(post config '{"page_delays":{"2":400}}')" 200
t1=$(curl -sS -o /dev/null -w '%{time_total}' -H "$KEY" "$RAVAN_MOCK_URL$API?phone=%2B15550000250&page=1")
t2=$(curl -sS -o /dev/null -w '%{time_total}' -H "$KEY" "$RAVAN_MOCK_URL$API?phone=%2B15550000250&page=2")
check "page 2 delayed only" "$(awk -v a="$t1" -v b="$t2" 'BEGIN { print (a < 0.3 && b >= 0.4) }')" 1
api 'phone=%2B15550000250&page_size=10' >/dev/null
before=$(j 'd.calls[1].id')
check "shift via fault API" "$(post faults '{"kind":"shift","phone":"+15550000250","add":3}')" 200
api 'phone=%2B15550000250&page_size=10' >/dev/null
check "shift inserts at the head" "$(j 'd.total_count .. "/" .. tostring(d.calls[4].id == "'"$before"'") .. "/" .. tostring(d.calls[1].started_at > d.calls[4].started_at)')" "253/true/true"
check "total_count lie" "$(post config '{"total_count":{"phone":"+15550000250","value":1000}}')" 200
api 'phone=%2B15550000250&page=26&page_size=10' >/dev/null
check "lied total, real pages" "$(j 'd.total_count .. "/" .. #d.calls')" "1000/3"
check "config read back" "$(curl -sS "$CTL/config" -o "$T/cfg"; j 'd.shift["+15550000250"] .. "/" .. d.total_count["+15550000250"]' "$T/cfg")" "3/1000"
check "bad config rejected" "$(post config '{"latency_ms":-1}')" 400
post reset '{}' >/dev/null
api 'phone=%2B15550000250' >/dev/null
check "reset clears config" "$(j 'd.total_count')" 250

# --- faults -----------------------------------------------------------------
Q='phone=%2B14155550100'
fault '{"kind":"status","status":429,"retry_after":"1","retry_after_ms":"1500"}'
check "status 429" "$(api "$Q")" "429 0"
check "Retry-After" "$(header retry-after)/$(header retry-after-ms)" "1/1500"
check "status body" "$(j 'd.success')" false
check "fault consumed" "$(api "$Q")" "200 0"
fault '{"kind":"status","status":503,"body":"upstream down","content_type":"text/plain","count":2}'
check "status custom body" "$(api "$Q"; cat "$T/body"; echo; header content-type)" $'503 0\nupstream down\ntext/plain'
check "count 2" "$(api "$Q"; api "$Q")" $'503 0\n200 0'
fault '{"kind":"status","status":500,"phone":"+15550000250","page":2}'
check "filter: other phone untouched" "$(api "$Q")" "200 0"
check "filter: page 1 untouched" "$(api 'phone=%2B15550000250&page=1')" "200 0"
check "filter: match" "$(api 'phone=%2B15550000250&page=2')" "500 0"
fault '{"kind":"status","status":502}'
fault '{"kind":"status","status":504}'
check "FIFO" "$(api "$Q"; api "$Q")" $'502 0\n504 0'
fault '{"kind":"delay","ms":500}'
check "delay" "$(curl -sS -o /dev/null -w '%{http_code} %{time_total}' -H "$KEY" "$RAVAN_MOCK_URL$API?$Q" | awk '{ print $1, ($2 >= 0.5) }')" "200 1"
fault '{"kind":"dribble","bytes":100,"interval_ms":20}'
since=$(last_seq)
check "dribble" "$(curl -sS --compressed -o "$T/body" -w '%{http_code} %{time_total}' -H "$KEY" "$RAVAN_MOCK_URL$API?$Q" | awk '{ print $1, ($2 >= 0.2) }')" "200 1"
check "dribble body intact" "$(j 'd.total_count')" 2
check "dribble recorded" "$(record 'd[1].fault')" dribble
fault '{"kind":"truncate"}'
check "truncate: curl error 18" "$(api "$Q" | cut -d' ' -f2)" 18
check "truncate message" "$(grep -c 'transfer closed with [0-9]* bytes remaining' "$T/stderr")" 1
fault '{"kind":"reset"}'
check "reset: RST, curl error 56" "$(api "$Q" | cut -d' ' -f2)" 56
check "reset message" "$(grep -c 'Connection reset by peer' "$T/stderr")" 1
fault '{"kind":"empty"}'
check "empty: curl error 52" "$(api "$Q" | cut -d' ' -f2)" 52
fault '{"kind":"malformed_json"}'
check "malformed_json" "$(api "$Q"; header content-type)" $'200 0\napplication/json'
check "malformed body" "$("$LUA" -e 'print((require("cjson.safe").decode(io.read("*a"))))' <"$T/body")" nil
fault '{"kind":"html"}'
check "html" "$(api "$Q"; header content-type; grep -c '<h1>502 Bad Gateway</h1>' "$T/body")" $'502 0\ntext/html\n1'
fault '{"kind":"redirect","target":"same"}'
check "redirect same" "$(api "$Q"; header location)" "302 0
$RAVAN_MOCK_URL/v1-moved$API?$Q"
check "moved path serves the API" "$(req "$(header location)" -H "$KEY")" "200 0"
fault '{"kind":"redirect","target":"other","status":307}'
check "redirect other" "$(api "$Q"; header location)" "307 0
$RAVAN_MOCK_OTHER_URL$API?$Q"
since=$(last_seq)
other=$(header location)
since=$(last_seq)
req "$other" >/dev/null
req "$other" -H "$BEARER" >/dev/null
check "other origin records credentials" "$(record 'd[1].listener .. " " .. tostring(d[1].headers.authorization) .. " " .. d[2].headers.authorization')" \
    "other nil Bearer tok_test_local"
fault '{"kind":"large","bytes":3000000}'
check "large" "$(api "$Q" --compressed; header content-length)" $'200 0\n3000000'
check "large not gzipped" "$(header content-encoding)" ""
check "large is JSON" "$(j 'd.success and #d.calls[1].summary > 2900000')" true
fault '{"kind":"large","bytes":2000000,"chunked":true}'
check "large chunked" "$(api "$Q"; header transfer-encoding)" $'200 0\nchunked'
check "large chunked has no length" "$(header content-length)" ""
check "large chunked size" "$(($(stat -c %s "$T/body") >= 2000000))" 1
since=$(last_seq)
fault '{"kind":"raw","bytes":"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nas sent"}'
check "raw: the bytes as given, to the close" "$(api "$Q"; header content-type; cat "$T/body")" $'200 0\ntext/plain\nas sent'
check "raw recorded" "$(record 'd[1].fault .. " " .. d[1].status')" "raw 200"
check "raw needs bytes" "$(post faults '{"kind":"raw"}')" 400
check "bad fault rejected" "$(post faults '{"kind":"nope"}')" 400
fault '{"kind":"status","status":500,"phone":"+19999999999"}'
check "pending faults listed" "$(curl -sS -o "$T/pending" "$CTL/faults"; j '#d .. " " .. d[1].kind' "$T/pending")" "1 status"
post reset '{}' >/dev/null
check "reset clears faults" "$(curl -sS "$CTL/faults")" "[]"
fault '{"kind":"status","status":503}'
check "faults on TLS" "$(req "$RAVAN_MOCK_TLS_URL$API?$Q" -H "$KEY" --cacert "$RAVAN_MOCK_CA")" "503 0"
fault '{"kind":"truncate"}'
check "truncate on TLS" "$(req "$RAVAN_MOCK_TLS_URL$API?$Q" -H "$KEY" --cacert "$RAVAN_MOCK_CA" | cut -d' ' -f2)" 18
fault '{"kind":"reset"}'
check "reset on TLS" "$(req "$RAVAN_MOCK_TLS_URL$API?$Q" -H "$KEY" --cacert "$RAVAN_MOCK_CA" | cut -d' ' -f2)" 56

# --- what a syncing client meets: rate limit, arrivals, changes, order --------
post reset '{}' >/dev/null
check "rate_limit config" "$(post config '{"rate_limit":{"requests":2,"per":60,"headers":true}}')" 200
api 'phone=%2B15550000003' >/dev/null
check "rate limit headers" "$(header ratelimit-limit) $(header ratelimit-remaining) $(header ratelimit-policy)" "2 1 2;w=60"
api 'phone=%2B15550000003' >/dev/null
check "rate limited" "$(api 'phone=%2B15550000003' | cut -d' ' -f1) $(header retry-after)" "429 30"
check "rate limit is per credential" "$(req "$RAVAN_MOCK_URL$API?phone=%2B15550000003" -H "$BEARER" | cut -d' ' -f1)" 200
post config '{"rate_limit":null}' >/dev/null
check "rate limit undone" "$(api 'phone=%2B15550000003' | cut -d' ' -f1)" 200
post config '{"arrivals":{"phone":"+15550000003","every_requests":2}}' >/dev/null
api 'phone=%2B15550000003' >/dev/null
api 'phone=%2B15550000003' >/dev/null
check "arrivals land at the head" "$(j 'd.total_count .. " " .. d.calls[1].started_at')" "4 2026-06-11T09:45:00Z"
post config '{"arrivals":{"phone":"+15550000003","every_requests":0},"shift":{"phone":"+15550000003","add":0}}' >/dev/null
api 'phone=%2B15550000003' >/dev/null
cp "$T/body" "$T/before"
post config '{"changes":{"phone":"+15550000003","newest":1,"version":3}}' >/dev/null
api 'phone=%2B15550000003' >/dev/null
check "changed call" "$(j 'd.calls[1].status .. " " .. d.calls[1].summary:match("%(update 3%)$")')" "completed (update 3)"
check "changed cost" "$(j 'string.format("%.2f", tonumber(d.calls[1].cost_total) - tonumber(b.calls[1].cost_total))')" 0.03
check "older calls unchanged" "$(j 'd.calls[2].summary == b.calls[2].summary')" true
post config '{"unordered":["+15550000003"]}' >/dev/null
api 'phone=%2B15550000003' >/dev/null
check "unordered page" "$(j 'd.calls[1].started_at < d.calls[3].started_at')" true

# --- mutations at any depth, and the dataset endpoint ---------------------------
post reset '{}' >/dev/null
M='{"phone":"+15550000250","seed":5,"changes":10,"deletions":4,"insertions":6,"arrivals":2}'
check "mutate" "$(post mutate "$M")" 200
check "mutation log" "$(j '#d.mutations .. " " .. d.mutations[1].op' "$T/post")" "22 arrive"
curl -sS -o "$T/data1" "$CTL/dataset?phone=%2B15550000250&include_transcripts=true"
check "dataset count" "$(j 'd.total_count .. " " .. d.count .. " " .. #d.calls' "$T/data1")" "254 254 254"
post reset '{}' >/dev/null
post mutate "$M" >/dev/null
curl -sS -o "$T/data2" "$CTL/dataset?phone=%2B15550000250&include_transcripts=true"
check "mutations reproducible by seed" "$(cmp -s "$T/data1" "$T/data2" && echo same)" same
for p in 1 2 3; do
    api "phone=%2B15550000250&page=$p&page_size=100&include_transcripts=true" >/dev/null
    cp "$T/body" "$T/page$p"
done
cat >"$T/same.lua" <<'EOF2'
local cjson = require "cjson"
local function read(name) local f = assert(io.open(name, "rb")) local d = cjson.decode(f:read("*a")) f:close() return d end
local data, calls = read(arg[1]), {}
for i = 2, #arg do for _, c in ipairs(read(arg[i]).calls) do calls[#calls + 1] = cjson.encode(c) end end
local same = #calls == #data.calls
for i, c in ipairs(data.calls) do same = same and cjson.encode(c) == calls[i] end
print(same)
EOF2
check "dataset = the pages" "$("$LUA" "$T/same.lua" "$T/data2" "$T/page1" "$T/page2" "$T/page3")" true
check "bad mutation rejected" "$(post mutate '{"phone":"+15550000250"}')" 400
check "mutations in config" "$(curl -sS -o "$T/cfg" "$CTL/config"; j 'd.mutations["+15550000250"].deleted .. " " .. d.shift["+15550000250"]' "$T/cfg")" "4 2"

# --- recordings ------------------------------------------------------------------
post reset '{}' >/dev/null
curl -sS -o "$T/data" "$CTL/dataset?phone=%2B15550000250"
ID=$(j '(function() for _, c in ipairs(d.calls) do if c.duration_sec > 0 then return c.id end end end)()' "$T/data")
LEN=$(j '(function() for _, c in ipairs(d.calls) do if c.duration_sec > 0 then return 44 + c.duration_sec * 16000 end end end)()' "$T/data")
REC=/api/v1/calling/sessions/$ID/recording
check "recording" "$(req "$RAVAN_MOCK_URL$REC" -H "$KEY"; header content-type; header content-length; stat -c %s "$T/body")" "200 0
audio/wav
$LEN
$LEN"
check "recording is a WAV" "$(head -c 4 "$T/body"; dd if="$T/body" bs=1 skip=8 count=8 2>/dev/null)" "RIFFWAVEfmt "
etag=$(header etag)
check "recording ETag stable" "$(req "$RAVAN_MOCK_OTHER_URL$REC" >/dev/null; header etag)" "$etag"
check "recording needs the key on the API's origin" "$(req "$RAVAN_MOCK_URL$REC")" "401 0"
check "recording range" "$(req "$RAVAN_MOCK_URL$REC" -H "$KEY" -r 100-199; header content-range; stat -c %s "$T/body")" "206 0
bytes 100-199/$LEN
100"
check "recording 416" "$(req "$RAVAN_MOCK_URL$REC" -H "$KEY" -r "$LEN-"; header content-range)" "416 0
bytes */$LEN"
since=$(last_seq)
req "$RAVAN_MOCK_OTHER_URL$REC" -r 0-9 >/dev/null
check "recording records" "$(record 'd[1].listener .. " " .. tostring(d[1].credential) .. " " .. d[1].range .. " " .. d[1].body_bytes_sent .. " " .. d[1].recording')" \
    "other false bytes=0-9 10 $ID"
check "unknown recording" "$(req "$RAVAN_MOCK_URL/api/v1/calling/sessions/nope/recording" -H "$KEY")" "404 0"
fault '{"kind":"truncate","endpoint":"recording","at":1000}'
check "recording cut" "$(req "$RAVAN_MOCK_URL$REC" -H "$KEY" | cut -d' ' -f2; stat -c %s "$T/body")" $'18\n1000'
fault '{"kind":"wrong_length","endpoint":"recording","delta":50}'
check "recording wrong length" "$(req "$RAVAN_MOCK_URL$REC" -H "$KEY" | cut -d' ' -f2; header content-length)" "18
$((LEN + 50))"
fault '{"kind":"redirect","endpoint":"recording","target":"other"}'
check "recording redirect" "$(req "$RAVAN_MOCK_URL$REC" -H "$KEY"; header location)" "302 0
$RAVAN_MOCK_OTHER_URL$REC"
fault '{"kind":"status","status":410,"endpoint":"recording","call":"'"$ID"'"}'
check "recording fault leaves the API alone" "$(api 'phone=%2B15550000250' | cut -d' ' -f1)" 200
check "recording 410" "$(req "$RAVAN_MOCK_URL$REC" -H "$KEY" | cut -d' ' -f1)" 410
check "call filter on API faults rejected" "$(post faults '{"kind":"status","call":"x"}')" 400
post config '{"recordings":{"other":0.5,"empty":0.25}}' >/dev/null
curl -sS -o "$T/data" "$CTL/dataset?phone=%2B15550000250"
check "recording_url on both origins and empty" "$(j '(function() local s = {} for _, c in ipairs(d.calls) do local u = c.recording_url s[u == "" and "" or u:match("^http://[^/]+")] = true end return tostring(s[""]) .. tostring(s["'"$RAVAN_MOCK_URL"'"]) .. tostring(s["'"$RAVAN_MOCK_OTHER_URL"'"]) end)()' "$T/data")" truetruetrue

echo "mock self-check: $pass passed, $fail failed"
((fail == 0))
