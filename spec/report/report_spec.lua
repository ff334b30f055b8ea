-- ravan.report and `ravan-history report` against the local server: sums, counts and
-- percentiles checked against the calls the server serves (added up here in integer cents),
-- the same report from a database `client:sync` wrote (SQLite and PostgreSQL), grouping,
-- time ranges, and what the CLI prints.
local ravan = require "ravan"
local h = require "spec.support.helpers"
local mock = require "spec.support.mock"
local postgres = require "spec.support.postgres"
local cli_report = require "ravan.cli.report"

local P300 = "+15550000300"

-- Every call the server holds for `phone`, read with a client of its own.
local function server_calls(phone)
  local c = mock.client()
  local list = {}
  for call in c:calls { phone = phone, page_size = 100 } do list[#list + 1] = call end
  c:close()
  return list
end

-- A money value in integer cents (the dataset's values have at most two places).
local function cents(v)
  local s = type(v) == "number" and string.format("%.2f", v) or v
  local int, frac = s:match("^(%d+)%.?(%d*)$")
  assert(int and #frac <= 2, "not cents: " .. tostring(v))
  return tonumber(int) * 100 + tonumber((frac .. "00"):sub(1, 2))
end

local function nearest_rank(values, p)
  table.sort(values)
  return values[math.max(1, math.ceil(p / 100 * #values))]
end

-- What a report of `calls` must say, computed independently of ravan.report.
local function expected(calls)
  local e = { calls = #calls, seconds = 0, cost_total = 0, twilio_cost = 0, model_cost = 0,
    credits = {}, latency = {}, duration = {} }
  for _, c in ipairs(calls) do
    e.seconds = e.seconds + c.duration_sec
    e.cost_total = e.cost_total + cents(c.cost_total)
    e.twilio_cost = e.twilio_cost + cents(c.twilio_cost)
    e.model_cost = e.model_cost + cents(c.model_cost)
    for k, v in pairs(c.credit_breakdown) do e.credits[k] = (e.credits[k] or 0) + cents(v) end
    e.latency[#e.latency + 1] = c.call_latency_ms
    e.duration[#e.duration + 1] = c.duration_sec
  end
  return e
end

local function assert_group(e, g)
  assert.are.equal(e.calls, g.calls)
  assert.are.equal(e.seconds, g.seconds)
  for _, f in ipairs { "cost_total", "twilio_cost", "model_cost" } do
    assert.are.equal(e[f], cents(g[f]), f)
  end
  for k, v in pairs(e.credits) do assert.are.equal(v, cents(g.credits[k]), k) end
  assert.are.equal(nearest_rank(e.latency, 50), g.latency_ms.p50)
  assert.are.equal(nearest_rank(e.latency, 95), g.latency_ms.p95)
  assert.are.equal(nearest_rank(e.duration, 90), g.duration_sec.p90)
  assert.are.equal(e.duration[#e.duration], g.duration_sec.max)
end

describe("ravan.report of a list of calls", function()
  it("sums the values floats get wrong exactly, strings and numbers alike", function()
    local calls = {}
    for i = 1, 10 do
      calls[i] = { id = "c" .. i, cost_total = i % 2 == 1 and "0.10" or "0.20", twilio_cost = 0.1,
        model_cost = i % 2 == 1 and 0.1 or 0.2, credit_breakdown = { model_credits = 0.7 } }
    end
    local floats = 0
    for _, c in ipairs(calls) do floats = floats + c.model_cost end
    assert.are_not.equal(1.5, floats)
    local rep = assert(ravan.report { calls = calls })
    assert.are.equal("1.50", rep.total.cost_total)
    assert.are.equal("1.0", rep.total.twilio_cost)
    assert.are.equal("1.5", rep.total.model_cost)
    assert.are.equal("7.0", rep.total.credits.model_credits)
    assert.are.equal(0, rep.total.invalid)
  end)
end)

describe("ravan.report from the API", function()
  local client
  before_each(function() client = mock.client() end)
  after_each(function() client:close() end)

  it("sums a phone's history exactly, with its percentiles", function()
    local rep = assert(ravan.report { client = client, phone = P300 })
    assert_group(expected(server_calls(P300)), rep.total)
    assert.are.same({}, rep.groups[1].key)
    -- In the places the server wrote: cents.
    assert.is_truthy(rep.total.cost_total:find("^%d+%.%d%d$"))
  end)

  it("groups by two dimensions, each group adding up to its calls", function()
    local rep = assert(ravan.report { client = client, phone = P300, by = "day,agent" })
    local calls = server_calls(P300)
    for _, g in ipairs(rep.groups) do
      local mine = {}
      for _, c in ipairs(calls) do
        if c.started_at:sub(1, 10) == g.key.day and c.agent_name == g.key.agent then mine[#mine + 1] = c end
      end
      assert_group(expected(mine), g)
    end
    local n = 0
    for _, g in ipairs(rep.groups) do n = n + g.calls end
    assert.are.equal(#calls, n)
  end)

  it("counts a call in two phones' histories once, and under each phone by phone", function()
    local phones = { mock.phones.example, mock.phones.example_caller }
    local rep = assert(ravan.report { client = client, phones = phones, by = "phone" })
    local ids = {}
    for _, p in ipairs(phones) do
      for _, c in ipairs(server_calls(p)) do ids[c.id] = true end
    end
    local distinct = 0
    for _ in pairs(ids) do distinct = distinct + 1 end
    assert.are.equal(distinct, rep.total.calls)
    assert.are.equal(#server_calls(phones[1]) + #server_calls(phones[2]), rep.groups[1].calls + rep.groups[2].calls)
    assert.is_true(rep.groups[1].calls + rep.groups[2].calls > distinct)
  end)

  it("takes calls started in [since, until)", function()
    local calls = server_calls(P300)
    local since, until_ = calls[200].started_at, calls[100].started_at
    local rep = assert(ravan.report { client = client, phone = P300, since = since, ["until"] = until_ })
    local mine = {}
    for i = 101, 200 do mine[#mine + 1] = calls[i] end
    assert_group(expected(mine), rep.total)
  end)

  it("reads null and missing fields and a number cost_total without failing", function()
    local rep = assert(ravan.report { client = client, phone = mock.phones.nulls, by = "status" })
    assert.are.equal(#server_calls(mock.phones.nulls), rep.total.calls)
    assert.are.equal(0, rep.total.invalid)
  end)

  it("returns the API's error when a page fails", function()
    mock.reset()
    mock.fault { kind = "status", status = 401, phone = P300, page = 2 }
    local rep, err = ravan.report { client = client, phone = P300 }
    assert.is_nil(rep)
    assert.are.equal("auth", err.kind)
  end)

  for _, case in ipairs {
    { {}, "give one of db, calls" },
    { { phone = P300, by = "day,agent,status" }, "at most two" },
    { { phone = P300, by = "hour" }, "unknown dimension 'hour'" },
    { { phone = P300, by = "day,day" }, "day twice" },
    { { phone = P300, since = "yesterday" }, "since must be" },
    { { phone = P300, colour = 1 }, "unknown option colour" },
    { { db = "sqlite:/nonexistent/x.db" }, "no database" },
    { { calls = {}, phone = P300 }, "calls takes no phone" },
  } do
    it("refuses " .. case[2], function()
      local res, err = ravan.report(case[1])
      assert.is_nil(res)
      assert.are.equal("invalid_argument", err.kind)
      assert.is_truthy(tostring(err):find(case[2], 1, true), tostring(err))
    end)
  end
end)

describe("ravan.report from a synced database", function()
  local pg
  local files = {}
  after_each(function()
    for _, f in ipairs(files) do os.remove(f) end
  end)
  teardown(function() if pg then pg.stop() end end)

  local function synced(url)
    local c = mock.client()
    assert(c:sync { phones = { P300, mock.phones.example, mock.phones.example_caller }, db = url })
    c:close()
    return url
  end

  local function sqlite()
    local path = os.tmpname()
    files[#files + 1] = path
    os.remove(path)
    return synced("sqlite:" .. path)
  end

  local function postgresql()
    pg = pg or postgres.start()
    return synced(pg.new_database())
  end

  for _, db in ipairs { { "SQLite", sqlite }, { "PostgreSQL", postgresql } } do
    it("in " .. db[1] .. " says what the API says", function()
      local url = db[2]()
      local client = mock.client()
      for _, case in ipairs {
        { by = "day,agent", phones = { P300 } },
        { by = "phone,status", phones = { P300, mock.phones.example, mock.phones.example_caller } },
        { by = "week", phones = { mock.phones.example, mock.phones.example_caller } },
      } do
        local from_api = assert(ravan.report { client = client, phones = case.phones, by = case.by })
        local from_db = assert(ravan.report { db = url, phones = case.phones, by = case.by })
        assert.are.same(from_api, from_db)
      end
      client:close()
      -- Without phones: every synced call once.
      local all = assert(ravan.report { db = url })
      assert.are.equal(#server_calls(P300) + 4, all.total.calls)
    end)
  end
end)

describe("ravan-history report", function()
  it("prints the table with a total row", function()
    local status, out, err = h.run_cli({ "report", P300, "--by", "status" }, mock.env())
    assert.are.equal(0, status, err)
    local rep = assert(ravan.report { client = mock.client(), phone = P300, by = "status" })
    local lines = h.lines(out)
    assert.is_truthy(lines[1]:find("^status%s+calls%s+minutes%s+cost_total"))
    assert.is_truthy(lines[#lines]:find("^total%s+" .. rep.total.calls .. "%s+" .. rep.total.minutes:gsub("%.", "%%.")
      .. "%s+" .. rep.total.cost_total:gsub("%.", "%%.")))
    assert.are.equal(#rep.groups + 3, #lines)
  end)

  it("writes CSV and JSON with the same numbers", function()
    local rep = assert(ravan.report { client = mock.client(), phone = P300, by = "agent" })
    local status, out = h.run_cli({ "report", P300, "--by=agent", "--format", "csv" }, mock.env())
    assert.are.equal(0, status)
    assert.are.same(cli_report.csv_lines(rep), h.lines((out:gsub("\r", ""))))
    status, out = h.run_cli({ "report", P300, "--by=agent", "--format", "json" }, mock.env())
    assert.are.equal(0, status)
    local decoded = require("cjson").decode(out)
    assert.are.equal(rep.total.cost_total, decoded.total.cost_total)
    assert.are.equal(#rep.groups, #decoded.groups)
  end)

  for _, case in ipairs {
    { {}, "give --db URL or PHONEs" },
    { { P300, "--by", "hour" }, "--by has an unknown dimension 'hour'" },
    { { P300, "--format", "pdf" }, "--format needs one of" },
    { { P300, "--since" }, "--since needs a value" },
    { { P300, "--by", "day", "--by", "agent" }, "--by is given twice" },
  } do
    it("says " .. case[2], function()
      local argv = { "report" }
      for _, a in ipairs(case[1]) do argv[#argv + 1] = a end
      local status, _, err = h.run_cli(argv, mock.env())
      assert.are.equal(2, status)
      assert.is_truthy(err:find(case[2], 1, true), err)
    end)
  end
end)
