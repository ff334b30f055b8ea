-- `make bench-converge`: what convergence costs, and workers, against the local server (run by
-- bench/converge_run).
--
-- (m) 1,000 phones of 1 to 300 calls (15 minutes apart) synced in pages of 20 (4 calls an hour
--     in pages of 20 stand for a busy number's 20 an hour in pages of 100), with churn between
--     rounds (each phone: 0 to 2 arrivals, 0 to 3 changes among its newest 120 calls, seeded):
--     requests per sync round with lookback 0 (the paging rule of the sync before lookback:
--     page 1, then down to the last head), the default (1 h) and 24 h, and the changes each
--     leaves for a reconciliation; then the time a reconciliation of a 100,000-call phone takes against
--     its floor (pages x latency: a phone's pages are read one after another).
-- (n) 1, 2 and 4 workers (processes, `worker = true`) on 1,000 phones behind the server's
--     limit of 50 requests/s, 40 ms a request, rate_limit 50/1 shared: the aggregate share of
--     the limit and of 429s; then the time for the phones of a worker killed with kill -9 to be
--     taken over, against lease + 5 s.
-- RAVAN_BENCH_QUICK=1 uses 200 phones and a 20,000-call phone.
local core = require "ravan.core"
local mock = require "spec.support.mock"
local proc = require "spec.support.proc"
local postgres = require "spec.support.postgres"
local tmpdb = require "bench.tmpdb"

assert(os.getenv("RAVAN_MOCK_URL"), "run through bench/converge_run")
local QUICK = os.getenv("RAVAN_BENCH_QUICK") == "1"
local LUA = os.getenv("RAVAN_BENCH_LUA") or "lua5.4"
local PHONES = QUICK and 200 or 1000
local BIG = QUICK and 20000 or 100000
local LIMIT, LATENCY_MS, LEASE = 50, 40, 5
local PAGE = 20

local function fmt(p, ...) return string.format(p, ...) end

local function sync(opts)
  local c = mock.fast_client { max_concurrency = 8 }
  local t0 = core.now()
  local s = assert(c:sync(opts))
  c:close()
  assert(#s.errors == 0, "a phone failed")
  return s, core.now() - t0
end

-- (m) --------------------------------------------------------------------------------------
local function bench_m()
  local phones = {}
  for i = 1, PHONES do phones[i] = fmt("+1557%04d%03d", i, 1 + (i * 37) % 300) end
  print(fmt("### (m) Convergence cost: %d phones of 1 to 300 calls, pages of %d, churn between "
    .. "rounds\n", PHONES, PAGE))
  print("| lookback | requests per round | per phone | changes left for a reconciliation |")
  print("| --- | --- | --- | --- |")
  mock.reset()
  local path = tmpdb.path()
  local url = "sqlite:" .. path
  sync { phones = phones, db = url, page_size = PAGE }
  local full_pages = 0
  for i = 1, PHONES do full_pages = full_pages + math.floor((1 + (i * 37) % 300) / PAGE) + 1 end
  for round, lookback in ipairs { 0, 3600, 86400 } do
    local specs = {}
    for i, phone in ipairs(phones) do
      specs[i] = { phone = phone, seed = "m" .. round .. "/" .. i, arrivals = (i + round) % 3,
        changes = (i * 7 + round) % 4, depth = 120 }
    end
    local log = mock.mutate(specs)
    -- A change is left when its call is below page 1 and older than the window behind the
    -- head (calls are 15 minutes apart; positions count from 1 = newest).
    local left, changes = 0, 0
    for _, e in ipairs(log) do
      if e.op == "change" then
        changes = changes + 1
        if e.position > PAGE and (e.position - 1) * 900 > lookback then left = left + 1 end
      end
    end
    local s = sync { phones = phones, db = url, lookback = lookback, page_size = PAGE }
    print(fmt("| %s | %d | %.2f | %d of %d |", lookback == 0 and "0 (as before lookback)"
      or lookback == 3600 and "3600 (default)" or "86400 (24 h)", s.requests,
      s.requests / PHONES, left, changes))
  end
  print(fmt("\nA reconciliation of every phone reads %d pages (%.2f a phone); once a day it adds "
    .. "that to a day's rounds.\n", full_pages, full_pages / PHONES))
  tmpdb.remove(path)

  local big = fmt("+1555%07d", BIG)
  local pages = BIG / 100
  mock.reset()
  mock.config { latency_ms = 20 }
  path = tmpdb.path()
  url = "sqlite:" .. path
  sync { phone = big, db = url }
  local s, t = sync { phone = big, db = url, reconcile = true }
  assert(s.reconciled == 1, "the reconciliation did not complete")
  local floor = (pages + 1) * 0.020
  print(fmt("Reconciliation of a %d-call phone (SQLite, pages of 100, 20 ms a request): %d "
    .. "requests in %.1f s; floor %d pages x 20 ms = %.1f s: %.2fx the floor.\n", BIG, s.requests,
    t, pages + 1, floor, t / floor))
  tmpdb.remove(path)
end

-- (n) --------------------------------------------------------------------------------------
-- One worker process (its requests carry its name in User-Agent).
local WORKER = "spec/sync/worker.lua"

local function bench_n()
  local pg = postgres.start()
  local phones = {}
  for i = 1, PHONES do phones[i] = fmt("+1557%04d%03d", i, 3) end
  local list = os.tmpname()
  local f = assert(io.open(list, "w"))
  f:write(table.concat(phones, "\n"), "\n")
  f:close()
  local function worker(url, name)
    return fmt("%s %s %s %s %s %d %d", LUA, WORKER, proc.quote(list), proc.quote(url),
      name, LEASE, LIMIT)
  end
  local function api_records()
    local out = {}
    for _, r in ipairs(mock.requests()) do
      if r.uri:find("phone%-history") then out[#out + 1] = r end
    end
    return out
  end
  print(fmt("### (n) Workers: %d phones behind %d requests/s, %d ms a request, rate_limit %d/1 "
    .. "shared\n", PHONES, LIMIT, LATENCY_MS, LIMIT))
  print("| workers | requests | 429s | span | aggregate rate | share of the limit |")
  print("| --- | --- | --- | --- | --- | --- |")
  for _, n in ipairs { 1, 2, 4 } do
    mock.reset()
    mock.config { rate_limit = { requests = LIMIT, per = 1 }, latency_ms = LATENCY_MS }
    local url = pg.new_database()
    local cmds = {}
    for w = 1, n do cmds[w] = worker(url, "worker-" .. w) .. " &" end
    cmds[#cmds + 1] = "wait"
    local out = proc.run(table.concat(cmds, "\n"), mock.env())
    assert(select(2, out:gsub(" ok ", "")) == n, out)
    local recs = api_records()
    local first, last, limited = math.huge, 0, 0
    for _, r in ipairs(recs) do
      if r.time < first then first = r.time end
      if (r.done or r.time) > last then last = r.done or r.time end
      if r.status == 429 then limited = limited + 1 end
    end
    local rate = (#recs - limited) / (last - first)
    print(fmt("| %d | %d | %d (%.1f %%) | %.1f s | %.1f/s | %.0f %% |", n, #recs, limited,
      100 * limited / #recs, last - first, rate, 100 * rate / LIMIT))
  end

  -- Takeover: two workers, one killed 5 s in; its phones go to the other after the lease.
  mock.reset()
  mock.config { rate_limit = { requests = LIMIT, per = 1 }, latency_ms = LATENCY_MS }
  local url = pg.new_database()
  local out = proc.run(fmt([[
%s & w1=$!
%s &
sleep 5
kill -9 $w1; echo "killed $(date +%%s.%%N)"
wait]], worker(url, "worker-1"), worker(url, "worker-2")), mock.env())
  local killed_at = tonumber(out:match("killed (%d+%.%d+)"))
  local by_phone = {}
  for _, r in ipairs(api_records()) do
    local who = tostring(r.headers["user-agent"]):match("worker%-%d")
    local phone = r.query:match("phone=([^&]+)")
    by_phone[phone] = by_phone[phone] or {}
    table.insert(by_phone[phone], { who = who, t = r.time })
  end
  local worst, taken = 0, 0
  for _, reqs in pairs(by_phone) do
    local w1_last
    for _, q in ipairs(reqs) do
      if q.who == "worker-1" and q.t <= killed_at then w1_last = q.t end
    end
    if w1_last then
      for _, q in ipairs(reqs) do
        if q.who == "worker-2" and q.t > killed_at then
          taken = taken + 1
          if q.t - killed_at > worst then worst = q.t - killed_at end
          break
        end
      end
    end
  end
  print(fmt("\nTakeover (2 workers, lease %d s, one killed with kill -9 5 s in): %d phones it had "
    .. "begun were read by the other; the last %.1f s after the kill (target <= lease + 5 = %d s).\n",
    LEASE, taken, worst, LEASE + 5))
  os.remove(list)
  pg.stop()
end

print(fmt("## make bench-converge (%s, %s)\n", os.date("!%Y-%m-%d"), QUICK and "quick" or "full"))
-- RAVAN_BENCH_ONLY=m or n runs one of them.
local only = os.getenv("RAVAN_BENCH_ONLY")
if only ~= "n" then bench_m() end
if only ~= "m" then bench_n() end
