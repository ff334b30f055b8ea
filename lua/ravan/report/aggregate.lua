-- The report's arithmetic: calls read once, added to every view asked for
-- (a view is a list of dimensions: {} the total, {"day", "agent"} one group
-- per day and agent), then each group's numbers: counts, exact money sums
-- (`ravan.report.decimal`), nearest-rank percentiles and a duration
-- histogram. Latencies and durations are kept as a count per distinct
-- value, so a million calls take as much memory as their distinct values.
--
-- A row is a call made flat by `M.row`: the fields the report reads, with
-- its time as seconds since the epoch (UTC days, weeks and months are cut
-- from it).

local contract = require "ravan.contract"
local decimal = require "ravan.report.decimal"
local epoch = require("ravan.sync.store").epoch

local M = {}

local floor, format, concat, sort = math.floor, string.format, table.concat, table.sort
local type, pairs, tonumber = type, pairs, tonumber

--- The key of a call without a value for a dimension.
M.NONE = "(none)"
local NONE = M.NONE

--- The dimensions a report can be grouped by.
M.DIMENSIONS = { "day", "week", "month", "agent", "status", "disconnect_reason", "phone" }

--- The money fields, summed exactly.
M.MONEY = { "cost_total", "twilio_cost", "model_cost" }

-- Duration histogram bins: upper bounds in seconds (inclusive), and labels.
M.BINS = {
  { 0, "0s" }, { 30, "1-30s" }, { 60, "31-60s" }, { 120, "1-2m" }, { 300, "2-5m" },
  { 600, "5-10m" }, { 1200, "10-20m" }, { math.huge, ">20m" },
}

-- Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
local function civil(days)
  local z = days + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local d = doy - floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return y, m, d
end

local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local doy = floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
  return era * 146097 + yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy - 719468
end

-- ISO 8601 week: the week's Thursday decides its year.
local function iso_week(days)
  local weekday = (days + 3) % 7 -- Monday 0; 1970-01-01 was a Thursday
  local thursday = days - weekday + 3
  local y = civil(thursday)
  return format("%04d-W%02d", y, floor((thursday - days_from_civil(y, 1, 1)) / 7) + 1)
end

-- Day, week and month keys, made once per day met.
local day_keys = {}
local function keys_of_day(days)
  local k = day_keys[days]
  if not k then
    local y, m, d = civil(days)
    k = { day = format("%04d-%02d-%02d", y, m, d), week = iso_week(days), month = format("%04d-%02d", y, m) }
    day_keys[days] = k
  end
  return k
end

--- Seconds since the epoch of an RFC 3339 time or a date (YYYY-MM-DD, the
-- day's start in UTC); nil when neither.
function M.time(s)
  if type(s) ~= "string" then return nil end
  local y, m, d = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
  if y then return days_from_civil(tonumber(y), tonumber(m), tonumber(d)) * 86400 end
  return epoch(s)
end

local function text(v)
  if type(v) == "string" and v ~= "" then return v end
  return nil
end

local function number(v)
  v = tonumber(v)
  if v and v == v and v > -math.huge and v < math.huge then return v end
  return nil
end

-- A money value as the sums take it: nil when absent (nil, JSON null).
local function money(v)
  if v == nil or type(v) == "userdata" then return nil end
  return v
end

local decode_json = require("cjson.safe").new().decode

-- A JSON object stored as text (the sync's columns), or the table itself.
local function object(v)
  if type(v) == "string" then v = decode_json(v) end
  return type(v) == "table" and v or nil
end

--- The fields a report reads from `call` (a call of the API, or a row of
-- the sync's `calls` table, where objects are JSON text and PostgreSQL
-- gives every value as a string), and `phone` (the history it came from).
function M.row(call, phone)
  local t = M.time(call.started_at) or M.time(call.created_at)
  local credits = object(call.credit_breakdown)
  local analysis = object(call.post_call_analysis_result)
  local sentiment = analysis and analysis.sentiment
  return {
    time = t,
    agent = text(call.agent_name) or text(call.agent_id),
    status = text(call.status),
    disconnect_reason = text(call.disconnect_reason),
    phone = text(phone),
    seconds = number(call.duration_sec),
    latency = number(call.call_latency_ms),
    cost_total = money(call.cost_total),
    twilio_cost = money(call.twilio_cost),
    model_cost = money(call.model_cost),
    credits = credits,
    sentiment = type(sentiment) == "string" and sentiment ~= "" and sentiment or nil,
  }
end

local function key_of(row, dim)
  if dim == "day" or dim == "week" or dim == "month" then
    if not row.time then return NONE end
    return keys_of_day(floor(row.time / 86400))[dim]
  end
  return row[dim] or NONE
end

local function new_group(key)
  local g = { key = key, calls = 0, seconds = 0, no_duration = 0, credits = {}, latency = {}, duration = {},
    sentiment = {}, disconnect = {} }
  for _, f in ipairs(M.MONEY) do g[f] = decimal.sum() end
  return g
end

local function count(map, k)
  map[k] = (map[k] or 0) + 1
end

local function add_to(g, row, credit_names)
  g.calls = g.calls + 1
  local s = row.seconds
  if s then
    g.seconds = g.seconds + s
    count(g.duration, s)
  else
    g.no_duration = g.no_duration + 1
  end
  if row.latency then count(g.latency, row.latency) end
  if row.cost_total ~= nil then g.cost_total:add(row.cost_total) end
  if row.twilio_cost ~= nil then g.twilio_cost:add(row.twilio_cost) end
  if row.model_cost ~= nil then g.model_cost:add(row.model_cost) end
  local credits = row.credits
  if credits then
    for name, v in pairs(credits) do
      v = money(v)
      if type(name) == "string" and v ~= nil then
        local sum = g.credits[name]
        if not sum then
          sum = decimal.sum()
          g.credits[name] = sum
          credit_names[name] = true
        end
        sum:add(v)
      end
    end
  end
  if row.sentiment then count(g.sentiment, row.sentiment) end
  count(g.disconnect, row.disconnect_reason or NONE)
end

local Agg = {}
Agg.__index = Agg

--- An accumulator for `views` (lists of dimensions); the total is always kept.
function M.new(views)
  local self = setmetatable({ total = new_group({}), views = {}, credit_names = {} }, Agg)
  for i, dims in ipairs(views) do
    local has_phone = false
    for _, d in ipairs(dims) do has_phone = has_phone or d == "phone" end
    self.views[i] = { dims = dims, groups = {}, has_phone = has_phone }
  end
  return self
end

--- Adds a row. `again`: the call was added before under another phone, so
-- only views grouped by phone take it (the total and the rest count each
-- call once).
function Agg:add(row, again)
  if not again then add_to(self.total, row, self.credit_names) end
  for _, view in ipairs(self.views) do
    if view.has_phone or not again then
      local dims, parts = view.dims, {}
      for i = 1, #dims do parts[i] = key_of(row, dims[i]) end
      local id = concat(parts, "\0")
      local g = view.groups[id]
      if not g then
        local key = {}
        for i = 1, #dims do key[dims[i]] = parts[i] end
        g = new_group(key)
        g.parts = parts
        view.groups[id] = g
      end
      add_to(g, row, self.credit_names)
    end
  end
end

-- The nearest-rank percentile `p` (0-100) of a count map, from its sorted
-- distinct values: the smallest value with at least ceil(p% of n) values
-- at or below it; nil with no values.
local function percentiles(counts, ps)
  local values, n = {}, 0
  for v, c in pairs(counts) do
    values[#values + 1] = v
    n = n + c
  end
  local out = {}
  if n == 0 then return out end
  sort(values)
  local i, seen = 0, 0
  for _, p in ipairs(ps) do
    local rank = math.max(1, math.ceil(p[2] / 100 * n))
    while seen < rank do
      i = i + 1
      seen = seen + counts[values[i]]
    end
    out[p[1]] = values[i]
  end
  out.max = values[#values]
  return out
end

local LATENCY_PS = { { "p50", 50 }, { "p95", 95 } }
local DURATION_PS = { { "p50", 50 }, { "p90", 90 }, { "p99", 99 } }

-- Every call is in one bin: those without a duration in a last one, when any.
local function histogram(counts, unknown)
  local bins = {}
  for i, b in ipairs(M.BINS) do bins[i] = { label = b[2], calls = 0 } end
  if unknown > 0 then bins[#bins + 1] = { label = NONE, calls = unknown } end
  for v, c in pairs(counts) do
    for i, b in ipairs(M.BINS) do
      if v <= b[1] then
        bins[i].calls = bins[i].calls + c
        break
      end
    end
  end
  return bins
end

-- A count map as a list of { name, calls }, most first (then by name).
local function ranked(map)
  local list = {}
  for k, c in pairs(map) do list[#list + 1] = { name = k, calls = c } end
  sort(list, function(a, b)
    if a.calls ~= b.calls then return a.calls > b.calls end
    return a.name < b.name
  end)
  return list
end

-- Minutes to two places, rounded half up, from whole or fractional seconds:
-- hundredths of a minute are integers, so the text is exact.
local function minutes(seconds)
  -- Beyond a double's exact integers (no real history), the nearest float will do.
  if not (seconds > -2 ^ 46 and seconds < 2 ^ 46) then return format("%.2f", seconds / 60) end
  local hundredths = floor(seconds * 100 / 60 + 0.5)
  local whole = floor(hundredths / 100)
  return format("%d.%02d", whole, hundredths - whole * 100)
end

local function result_of(g, names)
  local credits, invalid = {}, 0
  for _, name in ipairs(names) do
    local sum = g.credits[name]
    credits[name] = sum and sum:text() or "0"
    invalid = invalid + (sum and sum.invalid or 0)
  end
  local out = {
    key = g.key, calls = g.calls, seconds = g.seconds, minutes = minutes(g.seconds),
    credits = credits,
    latency_ms = percentiles(g.latency, LATENCY_PS),
    duration_sec = percentiles(g.duration, DURATION_PS),
    histogram = histogram(g.duration, g.no_duration),
    sentiment = ranked(g.sentiment),
    disconnect_reasons = ranked(g.disconnect),
  }
  for _, f in ipairs(M.MONEY) do
    out[f] = g[f]:text()
    invalid = invalid + g[f].invalid
  end
  out.invalid = invalid
  return out
end

-- Credit names: the contract's first, in its order, then any other sorted.
local function credit_order(set)
  local names, known = {}, {}
  for _, k in ipairs(contract.CREDIT_BREAKDOWN.keys) do
    known[k] = true
    if set[k] then names[#names + 1] = k end
  end
  local rest = {}
  for k in pairs(set) do
    if not known[k] then rest[#rest + 1] = k end
  end
  sort(rest)
  for _, k in ipairs(rest) do names[#names + 1] = k end
  return names
end

local function before(a, b)
  for i = 1, #a.parts do
    if a.parts[i] ~= b.parts[i] then return a.parts[i] < b.parts[i] end
  end
  return false
end

--- The aggregate: `total` (a group), `views[i]` (groups sorted by key) and
-- `credits` (the credit names, in column order). A group: `key` (dimension
-- to value), `calls`, `seconds`, `minutes`, `cost_total`, `twilio_cost`,
-- `model_cost` (exact decimal strings), `credits` (name to decimal string),
-- `latency_ms` and `duration_sec` (percentiles and `max`), `histogram`,
-- `sentiment` and `disconnect_reasons` (counts), `invalid` (money values
-- that were not decimals, left out of the sums).
function Agg:result()
  local names = credit_order(self.credit_names)
  local out = { total = result_of(self.total, names), views = {}, credits = names }
  for i, view in ipairs(self.views) do
    local list = {}
    for _, g in pairs(view.groups) do list[#list + 1] = g end
    sort(list, before)
    for j, g in ipairs(list) do list[j] = result_of(g, names) end
    out.views[i] = list
  end
  return out
end

return M
