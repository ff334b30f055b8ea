-- `make bench`: the benchmarks against the local server (run under `mock/server run`), printed
-- as markdown: (a) request overhead, (b) decode, (c) the pager with prefetch under latency,
-- (d) peak memory, (e) a 60 Hz frame loop with requests in flight, (f) throughput through
-- start/poll, (g) CPU while requests wait. Every figure is a median over several rounds,
-- and every ratio is taken within one round (both sides measured back to back) before its
-- median is taken, so a machine that slows down mid-run moves both sides together.
--
-- Environment: RAVAN_BENCH_RAW (the raw_libcurl binary), RAVAN_BENCH_LUA (the Lua that runs
-- the subprocess contenders, default lua5.4), RAVAN_BENCH_QUICK=1 (fewer rounds, to try it),
-- RAVAN_BENCH_ONLY (the letters of the benchmarks to run, e.g. "efg"; default all),
-- RAVAN_BENCH_CALLGRIND=1 ((a) also counts instructions per request under valgrind).
local core = require "ravan.core"
local cjson = require "cjson"
local decode = require "ravan.decode"
local mock = require "spec.support.mock"

local URL = mock.url
local KEY = mock.api_key
local RAW = assert(os.getenv("RAVAN_BENCH_RAW"), "RAVAN_BENCH_RAW: the raw_libcurl binary")
local LUA = os.getenv("RAVAN_BENCH_LUA") or "lua5.4"
local QUICK = os.getenv("RAVAN_BENCH_QUICK") == "1"

local function rounds(n)
  return QUICK and math.min(n, 2) or n
end

local median = require "bench.median"

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function capture(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  return out
end

-- A contender prints the seconds it took; anything else is a failure worth stopping for.
local function seconds_of(cmd)
  local out = capture(cmd)
  return assert(tonumber(out:match("^%s*([%d.]+)%s*$")), cmd .. " said: " .. out)
end

local function timed(fn)
  local t0 = core.now()
  fn()
  return core.now() - t0
end

local function row(cells)
  print("| " .. table.concat(cells, " | ") .. " |")
end

local function md_table(headings, rows_)
  row(headings)
  local rule = {}
  for i = 1, #headings do rule[i] = "---" end
  row(rule)
  for _, r in ipairs(rows_) do row(r) end
  print()
end

local function fmt(pattern, ...)
  return string.format(pattern, ...)
end

local function verdict(ratio, target)
  return ratio <= target and fmt("**%.2fx** (target <= %.2fx: met)", ratio, target)
    or fmt("**%.2fx** (target <= %.2fx: MISSED)", ratio, target)
end

local function machine()
  local cpu = capture("grep -m1 'model name' /proc/cpuinfo"):match(":%s*(.-)%s*$") or "?"
  print(fmt("Date: %s  ", os.date("!%Y-%m-%d %H:%M UTC")))
  print(fmt("Machine: %s CPUs (nproc), %s, Linux %s  ", capture("nproc"):gsub("%s", ""), cpu,
    (capture("uname -r"):gsub("%s", ""))))
  print(fmt("Software: %s, libcurl %s, lua-cjson %s, %s  ", LUA, core.CURL_VERSION,
    cjson._VERSION, (capture("python3 --version 2>&1"):gsub("%s+$", ""))))
  print("Server: the local nginx + Lua mock on loopback, one worker, gzip on")
  print()
end

-- (a) ------------------------------------------------------------------------------------------

local A_PHONE, A_PAGE_SIZE = mock.phones.p250, 1
local A_N, A_ROUNDS, A_TARGET = 2000, 7, 1.10

-- The lowest and highest of a list, as "a–b" with `pattern` for each.
local function spread(list, pattern)
  return fmt(pattern .. "–" .. pattern, math.min(table.unpack(list)), math.max(table.unpack(list)))
end

-- A contender of (a) in its own process: run(transport, n[, prefix]) -> the seconds n requests
-- took; `prefix` goes before the command (valgrind, for the instruction counts).
local function lua_client(mode)
  return function(t, n, prefix)
    return seconds_of(table.concat({ prefix or "", LUA, "bench/http_client.lua", mode, quote(t.url), quote(A_PHONE),
      A_PAGE_SIZE, quote(KEY), n, t.ca_file and quote(t.ca_file) or "" }, " "))
  end
end

local function api_url(t)
  return t.url .. "/api/v1/calling/phone-history?phone=" .. A_PHONE:gsub("%+", "%%2B")
    .. "&page_size=" .. A_PAGE_SIZE
end

-- Each contender runs over the transports it names: [transport] = { label, share }, share being
-- the fraction of the N requests it makes (those paying a process or a handshake per request
-- make fewer, and are scaled). The first is the floor every ratio of (a) is taken against.
local A_CONTENDERS = {
  { run = lua_client("floor+cjson"), counted = true,
    plain = { "Lua floor + `cjson.decode` (the least a Lua client does)" },
    tls = { "Lua floor + `cjson.decode` (the least a Lua client does), one connection" } },
  { run = lua_client("ravan"), target = A_TARGET, counted = true,
    plain = { "ravan `client:phone_history`" },
    tls = { "ravan `client:phone_history`, one connection" } },
  { run = function(t, n, prefix)
      return seconds_of(table.concat({ prefix or "", quote(RAW), quote(api_url(t)), quote(KEY), n,
        t.ca_file and quote(t.ca_file) or "" }, " "))
    end, reference = true, counted = true,
    plain = { "raw libcurl, one reused handle (C, the reference)" },
    tls = { "raw libcurl, one reused handle (C, the reference), one connection" } },
  { run = lua_client("floor"), counted = true,
    plain = { "Lua floor without decoding: a bare libcurl binding, the body as a string" },
    tls = { "Lua floor without decoding, one connection" } },
  { run = lua_client("luasocket"),
    plain = { "luasocket `socket.http` + cjson, a connection per request" },
    tls = { "luasocket + luasec (`ssl.https`) + cjson, a handshake per request", 1 / 50 } },
  { run = lua_client("luasocket+nodelay"),
    tls = { "the same with TCP_NODELAY (no wait for a delayed ACK)", 1 / 10 } },
  { run = function(t, n)
      return seconds_of(table.concat({ "python3 bench/urllib_client.py", quote(t.url), quote(A_PHONE),
        A_PAGE_SIZE, quote(KEY), n }, " "))
    end,
    plain = { "python3 `urllib.request` + json, a connection per request" } },
  { run = function(t, n)
      return timed(function()
        assert(os.execute(fmt("for i in $(seq %d); do curl -sf -o /dev/null --compressed "
          .. "-H %s -H 'Accept: application/json' %s || exit 1; done",
          n, quote("X-Api-Key: " .. KEY), quote(api_url(t)))))
      end)
    end, cli = true,
    plain = { "`curl` CLI, one process per request", 1 / 10 } },
}

-- The connections the server saw for one contender's run (its untimed first request included),
-- all on the transport's listener, and how many requests.
local function connections_seen(t)
  local conns, count, requests = {}, 0, 0
  for _, rec in ipairs(mock.requests()) do
    assert(rec.listener == t.listener, "a request reached the " .. rec.listener .. " listener")
    requests = requests + 1
    if not conns[rec.connection] then conns[rec.connection], count = true, count + 1 end
  end
  return count, requests
end

-- With RAVAN_BENCH_CALLGRIND=1, (a) also counts the instructions per request of the contenders
-- that keep their connection, under callgrind: the difference between a run of `short` and one
-- of `long` requests, so start-up and the first request cancel out. Unlike time, the count does
-- not move with what else the machine runs; it leaves out the kernel and the server.
local CALLGRIND = os.getenv("RAVAN_BENCH_CALLGRIND") == "1"

local function instructions_per_request(c, t, short, long)
  local counts = {}
  for i, n in ipairs({ short, long }) do
    local log = os.tmpname()
    c.run(t, n, "valgrind --tool=callgrind --callgrind-out-file=/dev/null --log-file=" .. quote(log) .. " ")
    local f = assert(io.open(log))
    local text = f:read("*a")
    f:close()
    os.remove(log)
    counts[i] = assert(tonumber(text:match("Collected : (%d+)")), "callgrind said: " .. text)
  end
  return (counts[2] - counts[1]) / (long - short)
end

local function bench_overhead()
  local n = QUICK and 200 or A_N
  local transports = {
    { key = "plain", name = "plain HTTP", url = URL, listener = "main" },
    { key = "tls", name = "TLS", url = mock.tls_url, ca_file = mock.ca_file, listener = "tls" },
  }
  -- Per transport, its contenders: label, requests, and per round µs per request, ratios to the
  -- floor and to raw libcurl, and the connections the server saw.
  for _, t in ipairs(transports) do
    t.rows = {}
    for _, c in ipairs(A_CONTENDERS) do
      if c[t.key] then
        local label, share = c[t.key][1], c[t.key][2] or 1
        t.rows[#t.rows + 1] = { c = c, label = label, n = math.max(2, math.floor(n * share + 0.5)),
          us = {}, over_floor = {}, over_raw = {}, conns = {} }
      end
    end
  end
  for r = 1, rounds(A_ROUNDS) do
    for _, t in ipairs(transports) do
      -- Every other round runs the contenders in reverse, so a drift within a round does not
      -- favour the ones that run first.
      local first, last, step = 1, #t.rows, 1
      if r % 2 == 0 then first, last, step = last, first, -1 end
      for i = first, last, step do
        local row_ = t.rows[i]
        mock.reset()
        row_.round = row_.c.run(t, row_.n) / row_.n * 1e6
        local conns, requests = connections_seen(t)
        local made = row_.n + (row_.c.cli and 0 or 1) -- the untimed first request
        assert(requests == made, fmt("%s: the server saw %d requests, not %d", row_.label, requests, made))
        table.insert(row_.conns, conns)
      end
      local floor_us, raw_us
      for _, row_ in ipairs(t.rows) do
        if row_.c == A_CONTENDERS[1] then floor_us = row_.round end
        if row_.c.reference then raw_us = row_.round end
      end
      for _, row_ in ipairs(t.rows) do
        table.insert(row_.us, row_.round)
        table.insert(row_.over_floor, row_.round / floor_us)
        table.insert(row_.over_raw, row_.round / raw_us)
      end
    end
  end
  local short, long = QUICK and 20 or 200, QUICK and 120 or 1200
  if CALLGRIND then
    for _, t in ipairs(transports) do
      for _, row_ in ipairs(t.rows) do
        if row_.c.counted then row_.ir = instructions_per_request(row_.c, t, short, long) end
      end
    end
  end
  print(fmt("### (a) Request overhead: sequential requests of a %d-call page (%s), over plain"
    .. " HTTP and over TLS\n", A_PAGE_SIZE, A_PHONE))
  print(fmt("Each contender runs in its own process; the first request (connection setup, and the"
    .. " handshake over TLS) is not timed. %d requests each, but for those making a connection or"
    .. " a process per request (the count is in the table). Ratios are taken within a round"
    .. " against the Lua floor + cjson, the least a Lua client does, and against raw libcurl; the"
    .. " median is shown, then the lowest and highest of the %d rounds. \"connections\" is what"
    .. " the server counted. Target: ravan within %.2fx the Lua floor + cjson.%s\n",
    n, rounds(A_ROUNDS), A_TARGET, CALLGRIND and fmt(" Instructions per request: the client's process under"
      .. " callgrind, a run of %d requests less one of %d, divided by %d (no kernel, no server).",
      long, short, long - short) or ""))
  for _, t in ipairs(transports) do
    print(fmt("#### (a) over %s (%s)\n", t.name, t.url))
    local rows_ = {}
    local floor_ir = t.rows[1].ir
    for i, row_ in ipairs(t.rows) do
      local ratio = median(row_.over_floor)
      rows_[i] = { row_.label, tostring(row_.n), fmt("%.0f", median(row_.us)),
        (row_.c.target and verdict(ratio, row_.c.target) or fmt("%.2fx", ratio))
          .. " (" .. spread(row_.over_floor, "%.2f") .. ")",
        fmt("%.2fx (%s)", median(row_.over_raw), spread(row_.over_raw, "%.2f")),
        math.min(table.unpack(row_.conns)) == math.max(table.unpack(row_.conns))
          and tostring(row_.conns[1]) or spread(row_.conns, "%d") }
      if CALLGRIND then
        rows_[i][#rows_[i] + 1] = row_.ir and fmt("%.0f k (%.2fx)", row_.ir / 1000, row_.ir / floor_ir) or ""
      end
    end
    local headings = { "client", "requests", "µs per request", "vs the Lua floor + cjson (rounds)",
      "vs raw libcurl (rounds)", "connections" }
    if CALLGRIND then headings[#headings + 1] = "instructions per request (vs the floor)" end
    md_table(headings, rows_)
  end
end

-- (b) ------------------------------------------------------------------------------------------

local function bench_decode()
  local client = mock.client()
  local res = client._handle:request {
    phone = mock.phones.long, page_size = 100, include_transcripts = true,
  }
  assert(res.status == 200, "the long page did not come")
  local body = res.body
  assert(#body >= 1024 * 1024, "the long page is under 1 MB")
  assert(decode.page(body, res.content_type))
  local ours, floor, ratios = {}, {}, {}
  for r = 1, rounds(21) do
    -- Alternating which goes first; each starts on a freshly collected heap.
    local a, b
    local function run_ours()
      collectgarbage()
      a = timed(function() assert(decode.page(body, res.content_type)) end)
    end
    local function run_floor()
      collectgarbage()
      b = timed(function() assert(cjson.decode(body)) end)
    end
    if r % 2 == 1 then run_ours() run_floor() else run_floor() run_ours() end
    ours[#ours + 1], floor[#floor + 1], ratios[#ratios + 1] = a, b, a / b
  end
  print(fmt("### (b) Decode: a 100-call page with transcripts (%s, %.2f MB of JSON)\n",
    mock.phones.long, #body / 1048576))
  print(fmt("From the body bytes to the finished result table (null stripping, integer and"
    .. " cost_total fixes), against `cjson.decode` of the same bytes. %d rounds.\n", rounds(21)))
  md_table({ "decoder", "ms", "vs cjson.decode" }, {
    { "`cjson.decode` (the floor)", fmt("%.2f", median(floor) * 1e3), "1.00x" },
    { "ravan `decode.page`", fmt("%.2f", median(ours) * 1e3), verdict(median(ratios), 1.25) },
  })
end

-- (c) ------------------------------------------------------------------------------------------

local C_PHONE, C_LATENCY_MS, C_PAGES = mock.phones.p10k, 50, 100

local function bench_pager()
  local client = mock.client()
  local function read_all(prefetch)
    local n = 0
    for _ in client:calls { phone = C_PHONE, page_size = 100, prefetch = prefetch } do n = n + 1 end
    assert(n == 10000, "read " .. n .. " calls")
  end
  read_all(8) -- the server generates and caches the history once, before any timing
  mock.config { latency_ms = C_LATENCY_MS }
  local rows_ = {}
  for _, prefetch in ipairs({ 0, 1, 2, 4, 8 }) do
    local concurrency = math.max(1, prefetch)
    local floor = C_PAGES * C_LATENCY_MS / 1000 / concurrency
    local times, ratios = {}, {}
    for _ = 1, rounds(3) do
      local t = timed(function() read_all(prefetch) end)
      times[#times + 1], ratios[#ratios + 1] = t, t / floor
    end
    local ratio = median(ratios)
    rows_[#rows_ + 1] = { tostring(prefetch), tostring(concurrency), fmt("%.3f", floor),
      fmt("%.3f", median(times)),
      prefetch == 8 and verdict(ratio, 1.5) or fmt("%.2fx", ratio) }
  end
  mock.config { latency_ms = 0 }
  print(fmt("### (c) Pager: 10,000 calls in %d pages (%s), the server adding %d ms to each"
    .. " request\n", C_PAGES, C_PHONE, C_LATENCY_MS))
  print(fmt("`for call in client:calls{ phone, page_size = 100, prefetch = N }`; floor ="
    .. " pages x latency / concurrency, where concurrency is N (N pages in flight while the"
    .. " loop works on the current one; 1 for N = 0). %d rounds.\n", rounds(3)))
  md_table({ "prefetch", "concurrency", "floor s", "measured s", "vs floor" }, rows_)
end

-- (d) ------------------------------------------------------------------------------------------

local D_PHONE = mock.phones.p100k

local function bench_memory()
  local cases = {
    { "iterate", 1000 }, { "iterate", 100000 }, { "collect", 100000 },
  }
  local hwm, secs = {}, {}
  for i = 1, #cases do hwm[i], secs[i] = {}, {} end
  -- Every measurement in a fresh process, the cases interleaved round by round.
  for _ = 1, rounds(3) do
    for i, c in ipairs(cases) do
      local out = capture(table.concat({ LUA, "bench/memory.lua", c[1], c[2], quote(URL),
        quote(KEY), quote(D_PHONE) }, " "))
      local kb, count, s = out:match("^(%d+) (%d+) ([%d.]+)")
      assert(kb and tonumber(count) == c[2], "bench/memory.lua said: " .. out)
      table.insert(hwm[i], tonumber(kb))
      table.insert(secs[i], tonumber(s))
    end
  end
  local base = median(hwm[1])
  print(fmt("### (d) Memory: peak RSS (VmHWM) reading a 100,000-call history (%s)\n", D_PHONE))
  print(fmt("Each in a fresh %s process: `client:calls{ limit = N }` keeping nothing, or every"
    .. " page of `client:pages` kept in one table. Default page_size 100, prefetch 2. %d"
    .. " rounds.\n", LUA, rounds(3)))
  local rows_ = {}
  for i, c in ipairs(cases) do
    local kb = median(hwm[i])
    local ratio = kb / base
    rows_[i] = { c[1] == "iterate" and "iterate, nothing kept" or "collect all pages",
      fmt("%d", c[2]), fmt("%.1f", kb / 1024), fmt("%.2f", median(secs[i])),
      (c[1] == "iterate" and c[2] == 100000) and verdict(ratio, 1.5) or fmt("%.2fx", ratio) }
  end
  md_table({ "how", "calls", "peak RSS MiB", "seconds", "vs iterating 1,000" }, rows_)
end

-- (e) ------------------------------------------------------------------------------------------

local E_N, E_LATENCY_MS, E_HZ = 50, 200, 60

-- Starts `n` requests of a 1-call page (page i for the i-th), each counted by `count` when its
-- page is there.
local function start_pages(client, n, count)
  local function done(page, err)
    assert(page, tostring(err))
    count()
  end
  for i = 1, n do assert(client:start({ phone = A_PHONE, page = i, page_size = 1 }, done)) end
end

local function percentile(sorted, p)
  return sorted[math.max(1, math.floor(p * (#sorted - 1) + 0.5) + 1)]
end

-- One run of the frame loop: E_N requests started in frame 1, one poll(0) per frame at E_HZ.
-- Returns the sorted per-frame times in ravan (ms) and the seconds until the last callback.
local function frame_loop(max_concurrency)
  local client = mock.client { max_concurrency = max_concurrency }
  local delivered = 0
  local spent = {}
  local t_start = core.now()
  local next_frame = t_start
  local last
  local frame = 0
  while delivered < E_N and frame < E_HZ * 60 do
    frame = frame + 1
    local t0 = core.now()
    if frame == 1 then start_pages(client, E_N, function() delivered = delivered + 1 end) end
    assert(client:poll(0))
    local t1 = core.now()
    spent[#spent + 1] = (t1 - t0) * 1000
    if delivered == E_N then last = t1 - t_start end
    next_frame = next_frame + 1 / E_HZ
    core.sleep(next_frame - core.now())
  end
  assert(last, "the frame loop did not finish")
  client:close()
  table.sort(spent)
  return spent, last
end

local function bench_frames()
  mock.config { latency_ms = E_LATENCY_MS }
  local rows_ = {}
  for _, mc in ipairs({ 8, 64 }) do
    local floor = E_LATENCY_MS / 1000 * math.ceil(E_N / mc)
    local p50, p99, max, last, ratios = {}, {}, {}, {}, {}
    for _ = 1, rounds(5) do
      local spent, t = frame_loop(mc)
      p50[#p50 + 1], p99[#p99 + 1] = percentile(spent, 0.5), percentile(spent, 0.99)
      max[#max + 1], last[#last + 1], ratios[#ratios + 1] = spent[#spent], t, t / floor
    end
    local worst_p99, worst_max = math.max(table.unpack(p99)), math.max(table.unpack(max))
    rows_[#rows_ + 1] = { tostring(mc), fmt("%.3f", median(p50)),
      fmt("%.3f (worst %.3f)", median(p99), worst_p99), fmt("%.3f (worst %.3f)", median(max), worst_max),
      fmt("%.3f", floor), fmt("%.3f", median(last)), verdict(median(ratios), 1.3) }
  end
  -- The same request made blocking, as a frame that makes it would stall.
  local client = mock.client()
  local stalls = {}
  for _ = 1, rounds(5) do
    stalls[#stalls + 1] = timed(function()
      assert(client:phone_history { phone = A_PHONE, page_size = 1 })
    end) * 1000
  end
  mock.config { latency_ms = 0 }
  print(fmt("### (e) Frame loop: %d requests of a 1-call page started at once, the server adding"
    .. " %d ms to each; %d Hz, one `poll(0)` per frame\n", E_N, E_LATENCY_MS, E_HZ))
  print(fmt("Time spent in ravan per frame (the starts in frame 1, then `poll`, decoding and"
    .. " callbacks included), and when the last callback ran; floor = latency x ceil(%d /"
    .. " max_concurrency). Median of %d rounds (worst round in brackets). Targets: p99 <= 1 ms,"
    .. " max <= 5 ms, last within 1.3x the floor.\n", E_N, rounds(5)))
  md_table({ "max_concurrency", "p50 ms", "p99 ms", "max ms", "floor s", "last s", "vs floor" }, rows_)
  print(fmt("For comparison, the blocking `client:phone_history` holds its frame for %.0f ms"
    .. " (median of %d).\n", median(stalls), rounds(5)))
end

-- (f) ------------------------------------------------------------------------------------------

local F_N = 2000

local function bench_throughput()
  local n = QUICK and 200 or F_N
  local client = mock.client()
  assert(client:phone_history { phone = A_PHONE, page_size = 1 })
  local function blocking()
    for _ = 1, n do assert(client:phone_history { phone = A_PHONE, page_size = 1 }) end
  end
  local function async(mc)
    local c = mock.client { max_concurrency = mc }
    assert(assert(c:start { phone = A_PHONE, page_size = 1 }):wait())
    return function()
      local delivered = 0
      local function done(page, err)
        assert(page, tostring(err))
        delivered = delivered + 1
      end
      for _ = 1, n do assert(c:start({ phone = A_PHONE, page_size = 1 }, done)) end
      while delivered < n do assert(c:poll(5)) end
    end
  end
  local contenders = { { "blocking `phone_history` loop", blocking } }
  for _, mc in ipairs({ 1, 8, 32 }) do
    contenders[#contenders + 1] = { fmt("`start` + `poll`, max_concurrency %d", mc), async(mc), mc }
  end
  local per, ratios = {}, {}
  for i = 1, #contenders do per[i], ratios[i] = {}, {} end
  for _ = 1, rounds(5) do
    local base
    for i, c in ipairs(contenders) do
      local us = timed(c[2]) / n * 1e6
      base = base or us
      table.insert(per[i], us)
      table.insert(ratios[i], us / base)
    end
  end
  print(fmt("### (f) Throughput: %d requests of a 1-call page (%s) through `start`/`poll`\n",
    n, A_PHONE))
  print(fmt("All started at once, then `poll(5)` until every callback ran, against the blocking"
    .. " loop in the same round; one client each, warmed by one request. %d rounds. Target: at"
    .. " max_concurrency 1, within 1.2x the blocking path per request.\n", rounds(5)))
  local rows_ = {}
  for i, c in ipairs(contenders) do
    local ratio = median(ratios[i])
    rows_[i] = { c[1], fmt("%.3f", median(per[i]) * n / 1e6), fmt("%.0f", median(per[i])),
      c[3] == 1 and verdict(ratio, 1.2) or fmt("%.2fx", ratio) }
  end
  md_table({ "how", fmt("seconds for %d", n), "µs per request", "vs blocking" }, rows_)
end

-- (g) ------------------------------------------------------------------------------------------

local G_N, G_LATENCY_MS = 50, 2000

-- Nanoseconds every thread of this process has run (the engine thread included).
local PID = io.open("/proc/self/stat"):read("*l"):match("^(%d+)")

local function cpu_ns()
  local total = 0
  for tid in capture("ls /proc/" .. PID .. "/task"):gmatch("%d+") do
    local f = io.open("/proc/" .. PID .. "/task/" .. tid .. "/schedstat")
    if f then
      total = total + tonumber(f:read("*l"):match("^(%d+)"))
      f:close()
    end
  end
  return total
end

local function bench_idle()
  mock.config { latency_ms = G_LATENCY_MS }
  local rows_ = {}
  for _, how in ipairs({ "poll(1) in a loop", "wait on the fd (luasocket select), then poll(0)" }) do
    local shares = {}
    for _ = 1, rounds(3) do
      local client = mock.client { max_concurrency = 64 }
      local delivered = 0
      start_pages(client, G_N, function() delivered = delivered + 1 end)
      -- Measured while all 50 wait on the server: from 0.3 s in to 1.7 s in.
      core.sleep(0.3)
      local c0, t0 = cpu_ns(), core.now()
      if how:find("select") then
        local socket = require "socket"
        local fd = client:fd()
        local watched = { getfd = function() return fd end, dirty = function() return false end }
        while core.now() - t0 < 1.4 do
          socket.select({ watched }, nil, 1.4 - (core.now() - t0))
          assert(client:poll(0))
        end
      else
        while core.now() - t0 < 1.4 do assert(client:poll(math.max(0, 1.4 - (core.now() - t0)))) end
      end
      local c1, t1 = cpu_ns(), core.now()
      shares[#shares + 1] = (c1 - c0) / 1e9 / (t1 - t0) * 100
      while delivered < G_N do assert(client:poll(5)) end
      client:close()
    end
    local share = median(shares)
    rows_[#rows_ + 1] = { how, fmt("%.2f", share),
      share < 2 and fmt("**%.2f %%** (target < 2 %%: met)", share)
        or fmt("**%.2f %%** (target < 2 %%: MISSED)", share) }
  end
  mock.config { latency_ms = 0 }
  print(fmt("### (g) Idle: %d requests waiting on a server that takes %d ms\n", G_N, G_LATENCY_MS))
  print(fmt("CPU time of every thread of the process (the engine's included, from"
    .. " /proc/PID/task/*/schedstat) over 1.4 s of the wait,"
    .. " as a share of one core; max_concurrency 64, so all %d are in flight. Median of %d"
    .. " rounds.\n", G_N, rounds(3)))
  md_table({ "the host waits by", "CPU %", "" }, rows_)
end

-- (l) ------------------------------------------------------------------------------------------

-- The cost of client:stats() (always on): (a)'s ravan contender made with stats on and with it
-- off, in alternating order within each round, plus instructions per request under callgrind,
-- which the other work on a shared machine does not move.
local L_TARGET = 1.02

local function bench_observability()
  local n = QUICK and 200 or A_N
  local t = { url = URL, listener = "main" }
  local modes = { { "ravan", "stats on (the default)" }, { "ravan-nostats", "stats = false" } }
  local us, ratios = { {}, {} }, {}
  for r = 1, rounds(A_ROUNDS) do
    local round = {}
    local first, last, step = 1, 2, 1
    if r % 2 == 0 then first, last, step = 2, 1, -1 end
    for i = first, last, step do
      mock.reset()
      round[i] = lua_client(modes[i][1])(t, n) / n * 1e6
      table.insert(us[i], round[i])
    end
    table.insert(ratios, round[1] / round[2])
  end
  local short, long = QUICK and 20 or 200, QUICK and 120 or 1200
  local ir = {}
  for i, m in ipairs(modes) do
    ir[i] = instructions_per_request({ run = lua_client(m[1]) }, t, short, long)
  end
  print("### (l) The cost of observability: (a)'s ravan with stats on and off\n")
  print(fmt("%d sequential requests of a %d-call page over plain HTTP per contender and round, %d"
    .. " rounds, the order alternating; timings, HTTP version, reuse and bytes are measured in"
    .. " both. Instructions per request: a run of %d requests less one of %d under callgrind."
    .. " Target: stats on within %.2fx of off.\n", n, A_PAGE_SIZE, rounds(A_ROUNDS), long, short,
    L_TARGET))
  md_table({ "client", "µs per request", "instructions per request" }, {
    { modes[1][2], fmt("%.0f (%s)", median(us[1]), spread(us[1], "%.0f")), fmt("%.1f k", ir[1] / 1000) },
    { modes[2][2], fmt("%.0f (%s)", median(us[2]), spread(us[2], "%.0f")), fmt("%.1f k", ir[2] / 1000) },
    { "on / off", verdict(median(ratios), L_TARGET) .. " (" .. spread(ratios, "%.3f") .. ")",
      verdict(ir[1] / ir[2], L_TARGET) },
  })
end

local ONLY = os.getenv("RAVAN_BENCH_ONLY")
local function want(letter)
  return not ONLY or ONLY:find(letter, 1, true) ~= nil
end

print("## make bench\n")
machine()
mock.reset()
if want("a") then bench_overhead() end
if want("b") then bench_decode() end
if want("c") then bench_pager() end
if want("d") then bench_memory() end
if want("e") then bench_frames() end
if want("f") then bench_throughput() end
if want("g") then bench_idle() end
if want("l") then bench_observability() end
