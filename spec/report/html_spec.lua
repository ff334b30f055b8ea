-- The HTML report in headless Chromium: a report of the local server's calls, rendered by a real
-- browser, logs no console error and makes no request (Chromium's own net log, read for the
-- page's requests), and every chart adds up to the table under it, read back from the DOM
-- Chromium built. Screenshots are kept in build/report/ (docs/report.md shows one).
local ravan = require "ravan"
local cjson = require "cjson"
local decimal = require "ravan.report.decimal"
local html = require "ravan.report.html"
local mock = require "spec.support.mock"
local proc = require "spec.support.proc"

local OUT = proc.root .. "/build/report"
local PHONES = { "+15550001000", mock.phones.example, mock.phones.example_caller, mock.phones.nulls }

local chromium = (proc.run("command -v chromium") or ""):match("(%S+)")
local skip = proc.skip("Chromium renders the page the same whichever Lua wrote it")
  or not chromium and "chromium is not installed (Debian: chromium; make deps installs it)"

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  assert(f:write(text))
  f:close()
end

-- Chromium's background services (updates, sign-in) use the network whatever the flags say;
-- the page's own requests are those whose network isolation key is the file's.
local FLAGS = "--headless --no-sandbox --disable-gpu --no-first-run --disable-extensions "
  .. "--disable-background-networking --disable-component-update --disable-sync "
  .. "--hide-scrollbars --enable-logging=stderr --v=0"

-- Loads `path` in Chromium with `args`; returns what it wrote on stdout, the console lines it
-- logged, and the URLs the page asked for.
local function browse(dir, path, args)
  local netlog = dir .. "/net.json"
  local cmd = table.concat({ proc.quote(chromium), FLAGS, "--log-net-log=" .. proc.quote(netlog), args,
    proc.quote("file://" .. path), "2>" .. proc.quote(dir .. "/chromium.log") }, " ")
  local out, status = proc.run(cmd)
  assert(status == 0, out)
  local console = {}
  for line in proc.read_file(dir .. "/chromium.log"):gmatch("[^\n]+") do
    if line:find(":CONSOLE", 1, true) then console[#console + 1] = line end
  end
  local text = proc.read_file(netlog)
  local ok, log = pcall(cjson.decode, text)
  if not ok then log = cjson.decode((text:gsub(",?%s*$", "")) .. "]}") end
  local requests = {}
  for _, e in ipairs(log.events or {}) do
    local p = e.params
    if type(p) == "table" and type(p.url) == "string" and type(p.network_isolation_key) == "string"
      and p.network_isolation_key:find("file://", 1, true) then
      requests[#requests + 1] = p.url
    end
  end
  return out, console, requests
end

local ENTITIES = { amp = "&", lt = "<", gt = ">", quot = '"', ["#39"] = "'" }
local function unescape(s)
  return (s:gsub("&(#?%w+);", ENTITIES))
end

local function attrs_of(s)
  local a = {}
  for k, v in s:gmatch('([%w%-]+)="([^"]*)"') do a[k] = unescape(v) end
  return a
end

-- Each chart's marks: { series, key, value } from the data attributes.
local function charts_of(dom)
  local charts = {}
  for id, body in dom:gmatch('<figure class="chart" data%-chart="([^"]+)">(.-)</figure>') do
    local marks = {}
    for _, attrs in body:gmatch("<(%w+)(%s[^>]-)/?>") do
      local a = attrs_of(attrs)
      if a["data-value"] then
        marks[#marks + 1] = { series = a["data-series"], key = a["data-key"], value = a["data-value"] }
      end
    end
    charts[id] = marks
  end
  return charts
end

-- Each table's rows as column -> text, and its total row.
local function tables_of(dom)
  local tables = {}
  for id, body in dom:gmatch('<table data%-table="([^"]+)">(.-)</table>') do
    local t = { rows = {} }
    for tr, cells in body:gmatch("<tr([^>]*)>(.-)</tr>") do
      local row = {}
      for attrs, text in cells:gmatch("<td([^>]*)>(.-)</td>") do
        local col = attrs_of(attrs)["data-col"]
        if col then row[col] = unescape(text) end
      end
      if next(row) then
        if tr:find("data-total", 1, true) then t.total = row else t.rows[#t.rows + 1] = row end
      end
    end
    tables[id] = t
  end
  return tables
end

local function sum(marks, series)
  local s = decimal.sum()
  for _, m in ipairs(marks) do
    if series == nil or m.series == series then assert(s:add(m.value), m.value) end
  end
  return s:text()
end

describe("the HTML report in Chromium", function()
  local dir
  before_each(function() dir = proc.tmpdir() end)
  after_each(function() proc.rmdir(dir) end)

  local function report()
    local client = mock.client()
    local rep = assert(ravan.report { client = client, phones = PHONES, charts = true, by = "status" })
    client:close()
    return rep
  end

  it("has no console error, makes no request, and its charts add up to its tables", function()
    if skip then return pending(skip) end
    local rep = report()
    local path = dir .. "/report.html"
    write(path, html.render(rep))
    local dom, console, requests = browse(dir, path, "--dump-dom")
    assert.are.same({}, console)
    assert.are.same({}, requests)
    local charts, tables = charts_of(dom), tables_of(dom)
    local day, agent = tables.day, tables.agent
    local total = day.total
    -- The tables say what ravan.report said.
    assert.are.equal(tostring(rep.total.calls), total.calls)
    assert.are.equal(rep.total.cost_total, total.cost_total)
    -- Every table's total row says the same, its first cell aside.
    local function numbers(row, dim)
      local copy = {}
      for k, v in pairs(row) do copy[k] = v end
      assert.are.equal("Total", copy[dim])
      copy[dim] = nil
      return copy
    end
    assert.are.same(numbers(total, "day"), numbers(agent.total, "agent"))
    assert.are.same(numbers(total, "day"), numbers(tables.groups.total, "status"))
    assert.are.equal(#rep.charts.day, #day.rows)

    assert.are.equal(total.calls, sum(charts["calls-per-day"]))
    for i, m in ipairs(charts["calls-per-day"]) do
      assert.are.equal(day.rows[i].day, m.key)
      assert.are.equal(day.rows[i].calls, m.value)
    end
    assert.is_true(#rep.credits > 0)
    for _, credit in ipairs(rep.credits) do
      assert.are.equal(total[credit], sum(charts["credits-per-day"], credit), credit)
    end
    assert.are.equal(total.cost_total, sum(charts["cost-per-agent"]))
    assert.are.equal(#agent.rows, #charts["cost-per-agent"])
    assert.are.equal(total.calls, sum(charts["duration-histogram"]))
    assert.are.equal(total.calls, sum(charts["disconnect-reasons"]))
    local by_day = {}
    for _, r in ipairs(day.rows) do by_day[r.day] = r end
    local points = 0
    for _, m in ipairs(charts.latency) do
      assert.are.equal(by_day[m.key]["latency_" .. m.series .. "_ms"], m.value)
      points = points + 1
    end
    assert.are.equal(2 * #day.rows, points)
    assert.is_true(#charts.sentiment > 0)
    local tile = dom:match('data%-tile="cost_total"><b>([^<]*)</b>')
    assert.are.equal(total.cost_total, tile)

    -- Kept for docs/report.md: the page on a desktop and on a phone.
    assert(proc.run("mkdir -p " .. proc.quote(OUT)))
    write(OUT .. "/report.html", html.render(rep))
    for _, shot in ipairs { { "report.png", "1100,2400" }, { "report-phone.png", "412,3500" } } do
      browse(dir, path, "--screenshot=" .. proc.quote(OUT .. "/" .. shot[1]) .. " --window-size=" .. shot[2])
      assert.is_true((proc.file_size(OUT .. "/" .. shot[1]) or 0) > 10000, shot[1])
    end
  end)

  it("its checks see a request or a console error where a page makes one", function()
    if skip then return pending(skip) end
    local path = dir .. "/bad.html"
    write(path, '<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png"></body></html>')
    local _, _, requests = browse(dir, path, "--dump-dom")
    assert.are.same({ "http://127.0.0.1:9/x.png" }, { requests[1] })
    -- The report's own policy turns such a request into a console error.
    local page = html.render(report()):gsub("</main>", '<img src="http://127.0.0.1:9/x.png"></main>')
    write(path, page)
    local _, console
    _, console, requests = browse(dir, path, "--dump-dom")
    assert.are.same({}, requests)
    assert.are.equal(1, #console)
    assert.is_truthy(console[1]:find("Content Security Policy", 1, true))
  end)
end)
