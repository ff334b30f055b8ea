--- Cost reports: calls, minutes and exact money sums, grouped by day, week,
-- month, agent, status, disconnect reason or phone, over a synced database,
-- the API, or calls in hand.
--
--    local report, err = ravan.report{ db = "sqlite:calls.db", by = "day,agent",
--                                      since = "2026-11-01", ["until"] = "2026-12-01" }
--    for _, g in ipairs(report.groups) do print(g.key.day, g.key.agent, g.cost_total) end
--
-- @module ravan.report

local aggregate = require "ravan.report.aggregate"
local errors = require "ravan.errors"
local number_string = require("ravan.json").number_string

local M = {}

local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring

local OPTIONS = {
  by = true, since = true, ["until"] = true, db = true, phones = true, phone = true,
  calls = true, client = true, charts = true, page_size = true,
}

local DIMENSION = {}
for _, d in ipairs(aggregate.DIMENSIONS) do DIMENSION[d] = true end

--- The views the HTML report draws, besides the groups asked for.
M.CHARTS = { day = { "day" }, agent = { "agent" }, disconnect_reason = { "disconnect_reason" } }
local CHART_NAMES = { "day", "agent", "disconnect_reason" }

local function invalid(fmt, ...)
  return nil, errors.invalid_argument(fmt:format(...))
end

-- `by` as a list of at most two dimensions: "day,agent" or { "day", "agent" }.
local function dimensions(by)
  if by == nil then return {} end
  local list = {}
  if type(by) == "string" then
    for word in (by .. ","):gmatch("([^,]*),") do list[#list + 1] = word end
  elseif type(by) == "table" then
    for i = 1, 3 do
      if by[i] == nil then break end
      list[i] = by[i]
    end
  else
    return invalid("by must be a string or a list of dimensions")
  end
  if #list > 2 then return invalid("by takes at most two dimensions") end
  local seen = {}
  for _, d in ipairs(list) do
    if type(d) ~= "string" or not DIMENSION[d] then
      return invalid("by has %s: give one or two of %s",
        type(d) == "string" and "an unknown dimension '" .. d:sub(1, 40) .. "'" or "a " .. type(d),
        table.concat(aggregate.DIMENSIONS, ", "))
    end
    if seen[d] then return invalid("by names %s twice", d) end
    seen[d] = true
  end
  return list
end

local function time_option(o, name)
  local v = o[name]
  if v == nil then return true end
  local t = aggregate.time(v)
  if not t then
    return invalid("%s must be an RFC 3339 time or a date (YYYY-MM-DD)", name)
  end
  return t
end

local function phone_list(o)
  if o.phone ~= nil and o.phones ~= nil then return invalid("give phone or phones, not both") end
  if o.phone ~= nil then
    if type(o.phone) ~= "string" then return invalid("phone must be a string") end
    return { o.phone }
  end
  if o.phones == nil then return nil end
  if type(o.phones) ~= "table" then return invalid("phones must be a list of strings") end
  local list = {}
  for i = 1, #o.phones do
    local p = o.phones[i]
    if type(p) ~= "string" then return invalid("phones[%d] must be a string", i) end
    list[i] = p
  end
  if #list == 0 then return invalid("phones is empty") end
  return list
end

local COLUMNS = "c.id, c.agent_name, c.agent_id, c.status, c.disconnect_reason, c.duration_sec, "
  .. "c.call_latency_ms, c.cost_total, c.twilio_cost, c.model_cost, c.credit_breakdown, "
  .. "c.post_call_analysis_result, c.started_at, c.created_at"

-- The sync's database: every call once, or once per phone it was synced
-- under when a view is grouped by phone.
local function from_db(url, phones, by_phone, add)
  local path = type(url) == "string" and url:match("^sqlite:(.+)$")
  if path then
    local f = io.open((path:gsub("^//", "")), "rb")
    if not f then return invalid("db: no database at %s", path) end
    f:close()
  end
  local db, err = require("ravan.sync.db").open(url)
  if not db then return nil, err end
  local where = ""
  if phones then
    local lits = {}
    for i, p in ipairs(phones) do lits[i] = db:quote(p) end
    where = " WHERE pc.phone IN (" .. table.concat(lits, ",") .. ")"
  end
  local sql
  if by_phone then
    sql = "SELECT pc.phone AS report_phone, " .. COLUMNS
      .. " FROM phone_calls pc JOIN calls c ON c.id = pc.call_id" .. where
  elseif phones then
    sql = "SELECT " .. COLUMNS .. " FROM calls c WHERE c.id IN (SELECT pc.call_id FROM phone_calls pc"
      .. where .. ")"
  else
    sql = "SELECT " .. COLUMNS .. " FROM calls c"
  end
  local ok
  ok, err = db:each(sql, function(row) add(row, row.report_phone, row.id) end)
  db:close()
  if not ok then return nil, err end
  return true
end

-- The API: each phone's history through the pager.
local function from_api(o, phones, add)
  local client = o.client
  if client == nil then
    local err
    client, err = require("ravan").new()
    if not client then return nil, err end
  end
  if type(client) ~= "table" or type(client.calls) ~= "function" then
    return invalid("client must be a ravan client")
  end
  local ok, err = true, nil
  for _, phone in ipairs(phones) do
    local pager = client:calls { phone = phone, page_size = o.page_size or 100 }
    while ok do
      local call
      call, err = pager:next()
      if err then ok = false elseif call == nil then break else add(call, phone, call.id) end
    end
    pager:close()
    if not ok then break end
  end
  -- A client made here is closed here, whatever happened.
  if o.client == nil then client:close() end
  if not ok then return nil, err end
  return true
end

local function from_list(calls, add)
  if type(calls) ~= "table" then return invalid("calls must be a list of calls") end
  for i = 1, #calls do
    local call = calls[i]
    if type(call) ~= "table" then return invalid("calls[%d] must be a table", i) end
    add(call, nil, call.id)
  end
  return true
end

local function run(o)
  if type(o) ~= "table" then return invalid("ravan.report takes a table of options") end
  for k in pairs(o) do
    if not OPTIONS[k] then return invalid("unknown option %s", tostring(k)) end
  end
  local by, err = dimensions(o.by)
  if not by then return nil, err end
  local since, until_
  since, err = time_option(o, "since")
  if not since then return nil, err end
  until_, err = time_option(o, "until")
  if not until_ then return nil, err end
  since = o.since ~= nil and since or nil
  until_ = o["until"] ~= nil and until_ or nil
  local phones
  phones, err = phone_list(o)
  if err then return nil, err end
  local sources = (o.db ~= nil and 1 or 0) + (o.calls ~= nil and 1 or 0)
  if sources > 1 or sources == 0 and not phones then
    return invalid("give one of db, calls, or phone(s) for the API")
  end
  if o.calls ~= nil and phones then return invalid("calls takes no phone or phones") end
  if o.page_size ~= nil and (o.db ~= nil or o.calls ~= nil) then
    return invalid("page_size is for the API only")
  end

  local views = { by }
  if o.charts then
    for _, name in ipairs(CHART_NAMES) do views[#views + 1] = M.CHARTS[name] end
  end
  local by_phone = false
  for _, v in ipairs(views) do
    for _, d in ipairs(v) do by_phone = by_phone or d == "phone" end
  end
  local agg = aggregate.new(views)
  -- Only a call met under several phones can come twice: the ids are kept
  -- (a million of them are a hundred MB) only then.
  local seen = (o.db ~= nil and by_phone or o.db == nil and o.calls == nil and #phones > 1) and {} or nil
  local function add(call, phone, id)
    local row = aggregate.row(call, phone)
    if since or until_ then
      local t = row.time
      if not t or since and t < since or until_ and t >= until_ then return end
    end
    local again = false
    if seen and id ~= nil then
      again = seen[id] or false
      seen[id] = true
    end
    agg:add(row, again)
  end

  local ok
  if o.db ~= nil then
    ok, err = from_db(o.db, phones, by_phone, add)
  elseif o.calls ~= nil then
    ok, err = from_list(o.calls, add)
  else
    ok, err = from_api(o, phones, add)
  end
  if not ok then return nil, err end

  local res = agg:result()
  local out = {
    by = by, since = o.since, ["until"] = o["until"], credits = res.credits,
    total = res.total, groups = res.views[1],
  }
  if o.charts then
    out.charts = {}
    for i, name in ipairs(CHART_NAMES) do out.charts[name] = res.views[i + 1] end
  end
  return out
end

-- The table's columns for a report: its dimensions, then the numbers, each
-- { title, function(group) -> text }. The CLI's table and CSV and the HTML
-- report's tables all print these, so they cannot disagree.
function M.columns(rep)
  local cols = {}
  for _, d in ipairs(rep.by) do
    cols[#cols + 1] = { d, function(g) return g.key[d] end, dimension = true }
  end
  local function field(name, get)
    cols[#cols + 1] = { name, get }
  end
  field("calls", function(g) return string.format("%d", g.calls) end)
  field("minutes", function(g) return g.minutes end)
  for _, f in ipairs(aggregate.MONEY) do field(f, function(g) return g[f] end) end
  for _, c in ipairs(rep.credits) do field(c, function(g) return g.credits[c] end) end
  local function pct(name, where, p)
    field(name, function(g)
      local v = g[where][p]
      return v and number_string(v) or ""
    end)
  end
  pct("latency_p50_ms", "latency_ms", "p50")
  pct("latency_p95_ms", "latency_ms", "p95")
  pct("duration_p50_s", "duration_sec", "p50")
  pct("duration_p90_s", "duration_sec", "p90")
  pct("duration_p99_s", "duration_sec", "p99")
  pct("duration_max_s", "duration_sec", "max")
  return cols
end

--- A cost report. Options (one source):
-- `db` (a database `client:sync` wrote: "sqlite:PATH" or a postgresql:// URL),
-- `phone`/`phones` (with `db`: only those phones' calls; alone: fetched from
-- the API, on `client` or one made from the environment), or `calls` (a
-- list of calls); `by` ("day,agent" or { "day", "agent" }: at most two of
-- day, week, month, agent, status, disconnect_reason, phone; days in UTC);
-- `since` (inclusive), `until` (exclusive): RFC 3339 times or dates,
-- compared with each call's `started_at`; `charts` (also the views the HTML
-- report draws, in `charts.day`, `charts.agent`, `charts.disconnect_reason`).
-- @tparam table o the options
-- @treturn[1] table `{ by, since, until, credits, total, groups[, charts] }`
-- (see docs/report.md for a group's fields)
-- @treturn[2] nil
-- @treturn[2] ravan.errors.Error
function M.report(o)
  local ok, res, err = pcall(run, o)
  if not ok then
    return nil, errors.invalid_argument("ravan.report: "
      .. (type(res) == "string" and res or "an option raised an error"))
  end
  return res, err
end

return M
