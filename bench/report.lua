-- `make bench-report` (benchmark p): ravan.report over 1,000,000 calls in a database of the
-- sync's schema, in SQLite and in PostgreSQL (a throwaway cluster), against the same
-- aggregation written as one SQL query, in the same run; the two must agree. The calls are
-- written straight into the tables (syncing a million calls through the local server would
-- measure the sync), with the values the local server serves: four agents, costs in cents,
-- credits as JSON numbers, 90 days. RAVAN_BENCH_CALLS sets the count (default 1,000,000),
-- RAVAN_BENCH_RUNS the runs of each contender, the best kept (default 2).
local core = require "ravan.core"
local ravan = require "ravan"
local store = require "ravan.sync.store"
local tmpdb = require "bench.tmpdb"

local N = tonumber(os.getenv("RAVAN_BENCH_CALLS") or "") or 1000000
local RUNS = tonumber(os.getenv("RAVAN_BENCH_RUNS") or "") or 2
local fmt = string.format

local AGENTS = { "Support Agent", "Billing Assistant", "Sales Agent", "After-hours Receptionist" }
local STATUSES = { "completed", "completed", "busy", "failed", "no-answer" }
local REASONS = { "user_hangup", "agent_hangup", "error", "busy", "no_answer" }
local SENTIMENTS = { "positive", "neutral", "negative" }
local T0 = 1780000000 -- 2026-05-28
local DAYS = 90
local PHONES = { "+14155550100", "+919876543210" }

-- A deterministic stream (an LCG), so every run writes the same calls.
local seed = 20261206
local function rnd(n)
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed % n
end

local function call_row(i)
  local status = STATUSES[rnd(#STATUSES) + 1]
  local completed = status == "completed"
  local duration = completed and 30 + rnd(600) or 0
  local twilio = 10 + (completed and duration * 2 or 0)
  local model = completed and 20 + duration * 3 or 0
  local base = 1 + rnd(5)
  local started = T0 + rnd(DAYS * 86400)
  local agent = rnd(#AGENTS) + 1
  return {
    fmt("call-%07d", i), fmt("agent-%d", agent), AGENTS[agent], status,
    REASONS[rnd(#REASONS) + 1], duration, 400 + rnd(900),
    fmt("%.2f", (twilio + model) / 100 + base), twilio / 100, model / 100,
    fmt('{"model_credits":%s,"provider_credits":%s,"telephony_base_credits":%d}',
      require("ravan.json").number_string(model / 100), require("ravan.json").number_string(twilio / 100), base),
    fmt('{"sentiment":"%s"}', SENTIMENTS[rnd(#SENTIMENTS) + 1]),
    os.date("!%Y-%m-%dT%H:%M:%SZ", started),
  }
end

local COLS = { "id", "agent_id", "agent_name", "status", "disconnect_reason", "duration_sec",
  "call_latency_ms", "cost_total", "twilio_cost", "model_cost", "credit_breakdown",
  "post_call_analysis_result", "started_at" }

local function fill(db)
  local t0 = core.now()
  seed = 20261206
  local CHUNK = 2000
  assert(db:transaction(function()
    for first = 1, N, CHUNK do
      local values, links = {}, {}
      for i = first, math.min(first + CHUNK - 1, N) do
        local r = call_row(i)
        for j = 1, #r do r[j] = db:quote(r[j]) end
        values[#values + 1] = "(" .. table.concat(r, ",") .. ")"
        links[#links + 1] = fmt("(%s,%s)", db:quote(PHONES[i % 2 + 1]), r[1])
      end
      assert(db:exec("INSERT INTO calls (" .. table.concat(COLS, ",") .. ") VALUES " .. table.concat(values, ",")))
      assert(db:exec("INSERT INTO phone_calls (phone, call_id) VALUES " .. table.concat(links, ",")))
    end
    return true
  end))
  if db.kind == "postgresql" then assert(db:exec("ANALYZE")) end
  return core.now() - t0
end

-- The same aggregation as one query: per UTC day, calls, seconds, the three costs and the three
-- credits summed, nearest-rank percentiles of latency (p50, p95) and duration (p50, p90, p99),
-- and the longest call. PostgreSQL sums NUMERIC exactly and has percentile_disc. SQLite has
-- neither: costs are summed as integer cents (exact because these values have two places; a
-- REAL sum would not be), and percentiles come from row numbers over each day's sorted rows.
local SQL = {
  postgresql = [[
SELECT to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, count(*) AS calls,
  sum(duration_sec) AS seconds, sum(cost_total) AS cost_total,
  sum(twilio_cost::numeric) AS twilio_cost, sum(model_cost::numeric) AS model_cost,
  sum((credit_breakdown->>'model_credits')::numeric) AS model_credits,
  sum((credit_breakdown->>'provider_credits')::numeric) AS provider_credits,
  sum((credit_breakdown->>'telephony_base_credits')::numeric) AS telephony_base_credits,
  percentile_disc(0.5) WITHIN GROUP (ORDER BY call_latency_ms) AS latency_p50,
  percentile_disc(0.95) WITHIN GROUP (ORDER BY call_latency_ms) AS latency_p95,
  percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_sec) AS duration_p50,
  percentile_disc(0.9) WITHIN GROUP (ORDER BY duration_sec) AS duration_p90,
  percentile_disc(0.99) WITHIN GROUP (ORDER BY duration_sec) AS duration_p99,
  max(duration_sec) AS duration_max
FROM calls GROUP BY 1 ORDER BY 1]],
  sqlite = [[
WITH c AS (
  SELECT substr(started_at, 1, 10) AS day, duration_sec, call_latency_ms, cost_total, twilio_cost,
    model_cost, credit_breakdown,
    count(*) OVER (PARTITION BY substr(started_at, 1, 10)) AS n,
    row_number() OVER (PARTITION BY substr(started_at, 1, 10) ORDER BY call_latency_ms) AS lr,
    row_number() OVER (PARTITION BY substr(started_at, 1, 10) ORDER BY duration_sec) AS dr
  FROM calls)
SELECT day, count(*) AS calls, sum(duration_sec) AS seconds,
  sum(CAST(round(cost_total * 100) AS INTEGER)) AS cost_total_cents,
  sum(CAST(round(twilio_cost * 100) AS INTEGER)) AS twilio_cost_cents,
  sum(CAST(round(model_cost * 100) AS INTEGER)) AS model_cost_cents,
  sum(CAST(round(json_extract(credit_breakdown, '$.model_credits') * 100) AS INTEGER)) AS model_credits_cents,
  sum(CAST(round(json_extract(credit_breakdown, '$.provider_credits') * 100) AS INTEGER)) AS provider_credits_cents,
  sum(CAST(round(json_extract(credit_breakdown, '$.telephony_base_credits') * 100) AS INTEGER))
    AS telephony_base_credits_cents,
  min(CASE WHEN lr >= (n * 50 + 99) / 100 THEN call_latency_ms END) AS latency_p50,
  min(CASE WHEN lr >= (n * 95 + 99) / 100 THEN call_latency_ms END) AS latency_p95,
  min(CASE WHEN dr >= (n * 50 + 99) / 100 THEN duration_sec END) AS duration_p50,
  min(CASE WHEN dr >= (n * 90 + 99) / 100 THEN duration_sec END) AS duration_p90,
  min(CASE WHEN dr >= (n * 99 + 99) / 100 THEN duration_sec END) AS duration_p99,
  max(duration_sec) AS duration_max
FROM c GROUP BY day ORDER BY day]],
}

-- Cents as the decimal text the report writes, for the comparison.
local function cents_text(v)
  v = tonumber(v)
  return fmt("%d.%02d", v // 100, v % 100)
end

-- A decimal without trailing zeros after the point, so "12.50" and "12.5" compare equal.
local function plain(s)
  s = tostring(s)
  if s:find("%.") then s = s:gsub("0+$", ""):gsub("%.$", "") end
  return s
end

local MONEY = { "cost_total", "twilio_cost", "model_cost", "model_credits", "provider_credits",
  "telephony_base_credits" }

local function agree(kind, rep, rows)
  assert(#rep.groups == #rows, fmt("%d days in the report, %d from SQL", #rep.groups, #rows))
  for i, g in ipairs(rep.groups) do
    local r = rows[i]
    assert(g.key.day == r.day, g.key.day .. " vs " .. tostring(r.day))
    assert(g.calls == tonumber(r.calls) and g.seconds == tonumber(r.seconds), g.key.day)
    for _, f in ipairs(MONEY) do
      local mine = plain(g[f] or g.credits[f])
      local theirs = kind == "sqlite" and plain(cents_text(r[f .. "_cents"])) or plain(r[f])
      assert(mine == theirs, fmt("%s %s: report %s, SQL %s", g.key.day, f, mine, theirs))
    end
    assert(g.latency_ms.p50 == tonumber(r.latency_p50) and g.latency_ms.p95 == tonumber(r.latency_p95))
    assert(g.duration_sec.p50 == tonumber(r.duration_p50) and g.duration_sec.p90 == tonumber(r.duration_p90)
      and g.duration_sec.p99 == tonumber(r.duration_p99) and g.duration_sec.max == tonumber(r.duration_max))
  end
end

local function best_of(fn)
  local best, res
  for _ = 1, RUNS do
    collectgarbage("collect")
    local t0 = core.now()
    res = fn()
    local dt = core.now() - t0
    best = best and math.min(best, dt) or dt
  end
  return best, res
end

local function bench(kind, url)
  local db = assert(store.open(url))
  local fill_s = fill(db)
  local sql_s, rows = best_of(function() return assert(db:rows(SQL[kind])) end)
  db:close()
  local report_s, rep = best_of(function() return assert(ravan.report { db = url, by = "day" }) end)
  agree(kind, rep, rows)
  local by2_s = best_of(function() return assert(ravan.report { db = url, by = "day,agent" }) end)
  return { kind = kind, fill = fill_s, sql = sql_s, report = report_s, by2 = by2_s, days = #rows,
    cost = rep.total.cost_total }
end

local results = {}
local path = tmpdb.path()
results[1] = bench("sqlite", "sqlite:" .. path)
tmpdb.remove(path)
local pg = require("spec.support.postgres").start()
local ok, res = pcall(bench, "postgresql", pg.new_database())
pg.stop()
assert(ok, res)
results[2] = res

print(fmt("### (p) A report over %d calls, by day: ravan.report against one SQL query", N))
print()
print(fmt("Date: %s UTC  ", os.date("!%Y-%m-%d %H:%M")))
print(fmt("Lua: %s; best of %d runs each; the same %d days and totals from both (checked)", _VERSION, RUNS,
  results[1].days))
print()
print("| database | calls | written in (s) | one SQL query (s) | `ravan.report`, by day (s) | report / SQL "
  .. "| `ravan.report`, by day and agent (s) | cost_total |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for _, r in ipairs(results) do
  print(fmt("| %s | %d | %.1f | %.2f | %.2f | %.1fx | %.2f | %s |", r.kind == "sqlite" and "SQLite" or "PostgreSQL",
    N, r.fill, r.sql, r.report, r.report / r.sql, r.by2, r.cost))
end
