-- `make bench-wire`: benchmark (k), the wire the real API speaks. A sync of 1,000 phones into
-- SQLite and a 100-page pager, each on a fresh client, over plain HTTP and over TLS (HTTP/2 as
-- the server offers it, and HTTP/1.1 with `http2 = false`), alternated within every round so a
-- machine that slows down moves all three together. Connections, full handshakes and
-- resumptions are counted from the server's records of that run (its $connection and
-- $ssl_session_reused), never from the client's word. RAVAN_BENCH_QUICK=1: 200 phones, 1 round;
-- RAVAN_BENCH_ROUNDS=N: N rounds (default 3).
local core = require "ravan.core"
local ravan = require "ravan"
local mock = require "spec.support.mock"

assert(os.getenv("RAVAN_MOCK_URL"), "run through bench/wire_run")
local QUICK = os.getenv("RAVAN_BENCH_QUICK") == "1"
local PHONES = QUICK and 200 or 1000
local ROUNDS = tonumber(os.getenv("RAVAN_BENCH_ROUNDS")) or (QUICK and 1 or 3)
local PAGES = 100
local MAX_CONCURRENCY = 8

local function fmt(p, ...) return string.format(p, ...) end
local function row(cells) print("| " .. table.concat(cells, " | ") .. " |") end

local median = require "bench.median"
local tmpdb = require "bench.tmpdb"

-- Phone i has 1 to 3 pages of 100 calls, as in benchmark (i).
local function phones(n)
  local out = {}
  for i = 1, n do out[i] = fmt("+1557%04d%03d", i, 1 + (i * 37) % 300) end
  return out
end

local TRANSPORTS = {
  { key = "http", name = "plain HTTP/1.1", opts = { base_url = mock.url } },
  { key = "h2", name = "TLS, HTTP/2", opts = { base_url = mock.tls_url, ca_file = mock.ca_file } },
  { key = "h1", name = "TLS, HTTP/1.1 (`http2 = false`)",
    opts = { base_url = mock.tls_url, ca_file = mock.ca_file, http2 = false } },
}

local function client(t)
  local opts = { api_key = mock.api_key, proxy = false, max_concurrency = MAX_CONCURRENCY }
  for k, v in pairs(t.opts) do opts[k] = v end
  return assert(ravan.new(opts))
end

-- What the server saw since the last reset: requests, connections, full handshakes, resumed.
local function wire_figures()
  local seen, n, full, resumed, requests = {}, 0, 0, 0, 0
  for _, rec in ipairs(mock.requests()) do
    requests = requests + 1
    if not seen[rec.connection] then
      seen[rec.connection] = true
      n = n + 1
      if rec.ssl_session_reused == "r" then resumed = resumed + 1
      elseif rec.ssl_session_reused == "." then full = full + 1 end
    end
  end
  return { requests = requests, connections = n, full = full, resumed = resumed }
end

local WORKLOADS = {
  { key = "sync", name = fmt("sync of %d phones (1 to 3 pages each) into SQLite", PHONES),
    run = function(c)
      local path = tmpdb.path()
      local s = assert(c:sync { phones = phones(PHONES), db = "sqlite:" .. path })
      tmpdb.remove(path)
      assert(#s.errors == 0, "the sync reported errors")
    end },
  { key = "pager", name = fmt("pager, %d pages of 100 calls (+15550010000, prefetch 2)", PAGES),
    run = function(c)
      local n = 0
      for _ in c:pages { phone = mock.phones.p10k, page_size = 100 } do n = n + 1 end
      assert(n == PAGES, "pages: " .. n)
    end },
}

local results = {}
for _, w in ipairs(WORKLOADS) do
  results[w.key] = {}
  for _, t in ipairs(TRANSPORTS) do results[w.key][t.key] = { times = {}, ratios = {} } end
end

-- The server caches the JSON it generates: a first, untimed pass fills that cache for everyone.
for _, w in ipairs(WORKLOADS) do
  mock.reset()
  local c = client(TRANSPORTS[1])
  w.run(c)
  c:close()
end

for _ = 1, ROUNDS do
  for _, w in ipairs(WORKLOADS) do
    local plain
    for _, t in ipairs(TRANSPORTS) do
      mock.reset()
      local c = client(t)
      local t0 = core.now()
      w.run(c)
      local dt = core.now() - t0
      c:close()
      local r = results[w.key][t.key]
      r.times[#r.times + 1] = dt
      plain = plain or dt
      r.ratios[#r.ratios + 1] = dt / plain
      -- The worst round's figures: the targets are bounds.
      local f = wire_figures()
      if not r.wire or f.connections > r.wire.connections or f.full > r.wire.full then r.wire = f end
    end
  end
end

print(fmt("### (k) The wire: TLS, HTTP/2 and session resumption against plain HTTP (%d round%s, max_concurrency %d)\n",
  ROUNDS, ROUNDS == 1 and "" or "s", MAX_CONCURRENCY))
row { "workload", "transport", "requests", "connections", "full handshakes", "resumed",
  "seconds (median)", "× plain HTTP (median of per-round ratios)" }
row { "---", "---", "---", "---", "---", "---", "---", "---" }
for _, w in ipairs(WORKLOADS) do
  for _, t in ipairs(TRANSPORTS) do
    local r = results[w.key][t.key]
    local tls = t.key ~= "http"
    row { w.name, t.name, tostring(r.wire.requests), tostring(r.wire.connections),
      tls and tostring(r.wire.full) or "–", tls and tostring(r.wire.resumed) or "–",
      fmt("%.2f", median(r.times)), t.key == "http" and "1" or fmt("%.3f", median(r.ratios)) }
  end
end
