-- `make bench`: the four benchmarks against the local server (run under
-- `mock/server run`), printed as markdown: (a) request overhead, (b) decode, (c) the pager
-- with prefetch under latency, (d) peak memory. Every figure is a median over several rounds,
-- and every ratio is taken within one round (both sides measured back to back) before its
-- median is taken, so a machine that slows down mid-run moves both sides together.
--
-- Environment: RAVAN_BENCH_RAW (the raw_libcurl binary), RAVAN_BENCH_LUA (the Lua that runs
-- the subprocess contenders, default lua5.4), RAVAN_BENCH_QUICK=1 (fewer rounds, to try it).
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

local function median(list)
  local t = {}
  for i, v in ipairs(list) do t[i] = v end
  table.sort(t)
  local m = #t
  if m % 2 == 1 then return t[(m + 1) / 2] end
  return (t[m / 2] + t[m / 2 + 1]) / 2
end

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
local A_N, A_CLI_N = 2000, 200

local function bench_overhead()
  local n = QUICK and 200 or A_N
  local cli_n = QUICK and 20 or A_CLI_N
  local url = URL .. "/api/v1/calling/phone-history?phone=" .. A_PHONE:gsub("%+", "%%2B")
    .. "&page_size=" .. A_PAGE_SIZE
  local args = table.concat({ quote(URL), quote(A_PHONE), A_PAGE_SIZE, quote(KEY), n }, " ")
  local contenders = {
    { "raw libcurl, one reused handle (C, the floor)", function()
      return seconds_of(table.concat({ quote(RAW), quote(url), quote(KEY), n }, " "))
    end, n },
    { "ravan `client:phone_history`", function()
      return seconds_of(LUA .. " bench/http_client.lua ravan " .. args)
    end, n },
    { "luasocket `socket.http` + cjson", function()
      return seconds_of(LUA .. " bench/http_client.lua luasocket " .. args)
    end, n },
    { "python3 `urllib.request` + json", function()
      return seconds_of("python3 bench/urllib_client.py " .. args)
    end, n },
    { "`curl` CLI, one process per request", function()
      return timed(function()
        assert(os.execute(fmt("for i in $(seq %d); do curl -sf -o /dev/null --compressed "
          .. "-H %s -H 'Accept: application/json' %s || exit 1; done",
          cli_n, quote("X-Api-Key: " .. KEY), quote(url))))
      end)
    end, cli_n },
  }
  local per_request, ratios = {}, {}
  for i = 1, #contenders do per_request[i], ratios[i] = {}, {} end
  for _ = 1, rounds(5) do
    local floor
    for i, c in ipairs(contenders) do
      local us = c[2]() / c[3] * 1e6
      floor = floor or us
      table.insert(per_request[i], us)
      table.insert(ratios[i], us / floor)
    end
  end
  print(fmt("### (a) Request overhead: %d sequential requests of a %d-call page (%s)\n",
    n, A_PAGE_SIZE, A_PHONE))
  print(fmt("Each contender runs in its own process on one connection where it can keep one;"
    .. " the first request is not timed. The curl CLI makes %d requests (one process each),"
    .. " scaled to %d. %d rounds.\n", cli_n, n, rounds(5)))
  local rows_ = {}
  for i, c in ipairs(contenders) do
    local us = median(per_request[i])
    local ratio = median(ratios[i])
    rows_[i] = { c[1], fmt("%.3f", us * n / 1e6), fmt("%.0f", us),
      i == 2 and verdict(ratio, 1.3) or fmt("%.2fx", ratio) }
  end
  md_table({ "client", fmt("seconds for %d", n), "µs per request", "vs raw libcurl" }, rows_)
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

print("## make bench\n")
machine()
mock.reset()
bench_overhead()
bench_decode()
bench_pager()
bench_memory()
