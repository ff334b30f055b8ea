-- `make bench-sync`: client:sync measured against the local server (run by bench/sync_run).
--
-- (i) 1,000 phones of 1 to 3 pages behind the server's limit of 50 requests/s, 40 ms a
--     request: the rate of answered requests and the share of 429s, for client:sync (learning
--     the limit, and with rate_limit given) against a sequential loop and unbounded concurrency
--     in the same run; then a re-sync, which must cost one request per phone.
-- (j) 100,000 calls of one phone into SQLite and into PostgreSQL: calls/s, and peak RSS against
--     the same sync of 1,000 calls, each in a fresh process.
-- RAVAN_BENCH_QUICK=1 uses 200 phones and 20,000 calls.
local core = require "ravan.core"
local mock = require "spec.support.mock"
local tmpdb = require "bench.tmpdb"

assert(os.getenv("RAVAN_MOCK_URL"), "run through bench/sync_run")
local QUICK = os.getenv("RAVAN_BENCH_QUICK") == "1"
local LUA = os.getenv("RAVAN_BENCH_LUA") or "lua5.4"

local LIMIT, LATENCY_MS = 50, 40
local PHONES = QUICK and 200 or 1000
-- The baselines are run on a share of the phones: their rates need no more, and the sequential
-- loop would otherwise take minutes.
local BASELINE_PHONES = QUICK and 100 or 200
local BIG = QUICK and 20000 or 100000
local SMALL = 1000

local function reset(cfg)
  mock.reset()
  if cfg then mock.config(cfg) end
end

-- Answered requests and 429s the server recorded since the last reset.
local function tally()
  local ok, limited, total = 0, 0, 0
  for _, r in ipairs(mock.requests()) do
    total = total + 1
    if r.status == 200 then ok = ok + 1 elseif r.status == 429 then limited = limited + 1 end
  end
  return ok, limited, total
end

-- Phone i has 1 to 3 pages of 100: between 1 and 300 calls, spread evenly.
local function phones(n, offset)
  local out = {}
  for i = 1, n do
    out[i] = string.format("+1557%04d%03d", i + (offset or 0), 1 + (i * 37) % 300)
  end
  return out
end

local function fmt(p, ...) return string.format(p, ...) end

local function row(cells) print("| " .. table.concat(cells, " | ") .. " |") end

local function measure(name, fn)
  local t0 = core.now()
  fn()
  local dt = core.now() - t0
  local ok, limited, total = tally()
  return { name = name, seconds = dt, ok = ok, limited = limited, total = total,
    rate = ok / dt, share = total > 0 and limited / total or 0 }
end

local function print_i(rows_)
  row { "contender", "phones", "requests", "seconds", "answered/s", "% of limit", "429s", "429 share" }
  row { "---", "---", "---", "---", "---", "---", "---", "---" }
  for _, r in ipairs(rows_) do
    row { r.name, tostring(r.phones), tostring(r.total), fmt("%.1f", r.seconds),
      fmt("%.1f", r.rate), fmt("%.0f %%", 100 * r.rate / LIMIT), tostring(r.limited),
      fmt("%.1f %%", 100 * r.share) }
  end
end

local function bench_i()
  print(fmt("### (i) %d phones of 1 to 3 pages, server limit %d requests/s, %d ms a request\n",
    PHONES, LIMIT, LATENCY_MS))
  local cfg = { latency_ms = LATENCY_MS, rate_limit = { requests = LIMIT, per = 1 } }
  local results = {}

  reset(cfg)
  local base = phones(BASELINE_PHONES, 5000)
  local r = measure("sequential loop (`client:pages`, one phone after another)", function()
    local c = mock.client()
    for _, p in ipairs(base) do
      for _ in c:pages { phone = p, prefetch = 0 } do end
    end
    c:close()
  end)
  r.phones = #base
  results[#results + 1] = r

  reset(cfg)
  base = phones(BASELINE_PHONES, 6000)
  r = measure("unbounded concurrency (`client:start` for every page at once, 64 in flight)", function()
    local c = mock.client { max_concurrency = 64 }
    local left = 0
    local function fetch(p, page)
      left = left + 1
      c:start({ phone = p, page = page, page_size = 100 }, function(res)
        left = left - 1
        if res and #res.calls == 100 and page * 100 < (res.total_count or 0) then fetch(p, page + 1) end
      end)
    end
    for _, p in ipairs(base) do fetch(p, 1) end
    while left > 0 do c:poll(1) end
    c:close()
  end)
  r.phones = #base
  results[#results + 1] = r

  local all = phones(PHONES)
  for _, variant in ipairs {
    { "`client:sync`, limit learnt (429s, no headers)", nil, false },
    { "`client:sync`, limit learnt from RateLimit-* headers", nil, true },
    { "`client:sync`, `rate_limit = { requests = 50, per = 1 }`", { requests = LIMIT, per = 1 }, false },
  } do
    reset { latency_ms = LATENCY_MS, rate_limit = { requests = LIMIT, per = 1, headers = variant[3] } }
    local path = tmpdb.path()
    local summary
    r = measure(variant[1], function()
      local c = mock.client()
      summary = assert(c:sync { phones = all, db = "sqlite:" .. path, rate_limit = variant[2] })
      c:close()
    end)
    r.phones = #all
    assert(#summary.errors == 0, "sync reported errors")
    results[#results + 1] = r
    if not variant[2] and not variant[3] then
      -- The re-sync of the learning run: nothing new, one request per phone (at the known
      -- rate, so that no 429 adds requests of its own).
      reset(cfg)
      local c = mock.client()
      local again = assert(c:sync { phones = all, db = "sqlite:" .. path,
        rate_limit = { requests = LIMIT, per = 1 } })
      c:close()
      local _, limited, total = tally()
      results.resync = { requests = total, limited = limited, summary = again }
    end
    tmpdb.remove(path)
  end
  print_i(results)
  print(fmt("\nRe-sync with nothing new: %d requests for %d phones (%d answered 429, retried), "
    .. "%d inserted, %d updated.\n", results.resync.requests, PHONES, results.resync.limited,
    results.resync.summary.inserted, results.resync.summary.updated))
  return results
end

-- One sync in a fresh process; returns seconds and peak RSS (KiB).
local function one_process(phone, db)
  local cmd = fmt("%s bench/sync_one.lua %s %q", LUA, phone, db)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  local secs, hwm, inserted = out:match("seconds=(%S+) hwm=(%d+) inserted=(%d+)")
  assert(secs, "bench/sync_one.lua: " .. out)
  return tonumber(secs), tonumber(hwm), tonumber(inserted)
end

local function bench_j()
  print(fmt("### (j) %d calls of one phone into each database, pages of 100, each in a fresh process\n", BIG))
  reset()
  local big = fmt("+1555%07d", BIG)
  local small = fmt("+1555%07d", SMALL)
  local sqlite_files = {}
  local targets = { { "SQLite", function(tag)
    sqlite_files[#sqlite_files + 1] = tmpdb.path() .. tag
    return "sqlite:" .. sqlite_files[#sqlite_files]
  end } }
  local pg = require("spec.support.postgres").start()
  targets[2] = { "PostgreSQL", function() return pg.new_database() end }
  row { "database", "calls", "seconds", "calls/s", "peak RSS (KiB)", "RSS vs 1,000 calls" }
  row { "---", "---", "---", "---", "---", "---" }
  local out = {}
  for _, t in ipairs(targets) do
    local s_secs, s_hwm, s_n = one_process(small, t[2]("-small"))
    local b_secs, b_hwm, b_n = one_process(big, t[2]("-big"))
    assert(s_n == SMALL and b_n == BIG, "not every call was inserted")
    row { t[1], tostring(s_n), fmt("%.2f", s_secs), fmt("%.0f", s_n / s_secs), tostring(s_hwm), "1.00x" }
    row { t[1], tostring(b_n), fmt("%.2f", b_secs), fmt("%.0f", b_n / b_secs), tostring(b_hwm),
      fmt("**%.2fx** (target <= 1.50x: %s)", b_hwm / s_hwm, b_hwm / s_hwm <= 1.5 and "met" or "NOT met") }
    out[#out + 1] = { t[1], b_n / b_secs, b_hwm / s_hwm }
  end
  pg.stop()
  for _, path in ipairs(sqlite_files) do tmpdb.remove(path) end
  print()
  return out
end

print("## make bench-sync\n")
print("Date: " .. os.date("!%Y-%m-%d %H:%M UTC") .. "  ")
print("Lua: " .. LUA .. ", libcurl " .. core.CURL_VERSION .. "\n")
local results = bench_i()
local j = bench_j()
print("### Summary\n")
row { "benchmark", "target", "measured", "" }
row { "---", "---", "---", "---" }
for i = 3, 5 do
  local r = results[i]
  local met = r.rate >= 0.9 * LIMIT and r.share <= 0.02
  row { "(i) " .. r.name, ">= 90 % of the limit, <= 2 % 429s",
    fmt("%.0f %%, %.1f %%", 100 * r.rate / LIMIT, 100 * r.share), met and "met" or "NOT met" }
end
row { "(i) re-sync with nothing new", "1 request per phone",
  fmt("%d requests, %d phones", results.resync.requests, PHONES),
  results.resync.requests == PHONES and "met" or "NOT met" }
for _, t in ipairs(j) do
  row { "(j) " .. t[1] .. ": peak RSS at " .. BIG .. " calls vs 1,000", "<= 1.50x",
    fmt("%.2fx (%.0f calls/s)", t[3], t[2]), t[3] <= 1.5 and "met" or "NOT met" }
end
