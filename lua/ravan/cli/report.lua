-- `ravan-history report`: what calls cost, from a synced database or the
-- API, as a table, CSV, JSON or a self-contained HTML page. `parse` and
-- the writers are pure, so specs can test them without a server.

-- ravan first: when ravan.core cannot be loaded, it says why on one line.
local ravan = require "ravan"
local args = require "ravan.cli.args"
local core = require "ravan.core"
local json = require "ravan.json"
local output = require "ravan.cli.output"
local report = require "ravan.report"

local M = {}

local PROGRAM = "ravan-history report"

M.USAGE = [=[
Usage: ravan-history report --db URL [PHONE...] [options]
       ravan-history report PHONE... [options]

What the calls cost: counts, minutes, cost_total, twilio_cost, model_cost
and each credit summed exactly, latency and duration percentiles. From a
database `ravan-history sync` wrote (only the PHONEs' calls when given),
or else straight from the API for the PHONEs.

Options:
  --db URL          sqlite:PATH or postgresql://user@host/dbname
  --by DIM[,DIM]    group by one or two of day, week, month (UTC), agent,
                    status, disconnect_reason, phone
  --since T         calls started at T or later (RFC 3339, or YYYY-MM-DD)
  --until T         calls started before T
  --format FORMAT   table (default), csv, json, or html (one self-contained
                    page with charts)
  -h, --help        show this help

Environment: RAVAN_API_KEY or RAVAN_TOKEN, RAVAN_BASE_URL (as for
ravan-history), for the API.

Exit status: 0 on success, 1 when the database, the API or writing the
output fails, 2 on a usage error.
]=]

local FORMATS = { table = true, csv = true, json = true, html = true }

-- The library names what it checks by its Lua field; the user typed a flag.
local WORDS = { phones = "PHONE", db = "--db", by = "--by", since = "--since", ["until"] = "--until" }

local function once(field)
  return function(o, value, name)
    if value == nil or value == "" then return name .. " needs a value" end
    if o[field] ~= nil then return name .. " is given twice" end
    o[field] = value
  end
end

local SPEC = {
  flags = { ["--help"] = "help", ["-h"] = "help" },
  valued = {
    ["--db"] = once "db", ["--by"] = once "by", ["--since"] = once "since",
    ["--until"] = once "until",
    ["--format"] = function(o, value)
      if not FORMATS[value] then return "--format needs one of table, csv, json, html" end
      o.format = value
    end,
  },
  positional = args.phone_word,
}

--- Returns the parsed options, or nil and a usage message.
function M.parse(argv)
  return args.parse(argv, SPEC)
end

local function right(s, w) return (" "):rep(w - #s) .. s end
local function left(s, w) return s .. (" "):rep(w - #s) end

--- The report as text lines: a header, a row per group, and the total.
function M.table_lines(rep)
  local cols = report.columns(rep)
  local rows = {}
  for _, g in ipairs(rep.groups) do rows[#rows + 1] = g end
  local widths, cells = {}, {}
  local function cell_row(g, total)
    local r = {}
    for i, c in ipairs(cols) do
      local v = c[2](g)
      if total and c.dimension then v = i == 1 and "total" or "" end
      r[i] = args.printable(v or "")
    end
    return r
  end
  local header = {}
  for i, c in ipairs(cols) do header[i] = c[1] end
  cells[1] = header
  if #rep.by > 0 then
    for _, g in ipairs(rows) do cells[#cells + 1] = cell_row(g) end
  end
  cells[#cells + 1] = cell_row(rep.total, true)
  for _, r in ipairs(cells) do
    for i, v in ipairs(r) do widths[i] = math.max(widths[i] or 0, #v) end
  end
  local lines = {}
  for n, r in ipairs(cells) do
    local parts = {}
    for i, v in ipairs(r) do parts[i] = cols[i].dimension and left(v, widths[i]) or right(v, widths[i]) end
    if n == #cells and #rep.by > 0 then
      local rule = {}
      for i = 1, #widths do rule[i] = ("-"):rep(widths[i]) end
      lines[#lines + 1] = table.concat(rule, "  ")
    end
    lines[#lines + 1] = (table.concat(parts, "  "):gsub("%s+$", ""))
  end
  return lines
end

--- The report as CSV lines: a header, a row per group, then the total
-- (its first column `row` says which).
function M.csv_lines(rep)
  local cols = report.columns(rep)
  local header = { "row" }
  for i, c in ipairs(cols) do header[i + 1] = c[1] end
  local lines = { table.concat(header, ",") }
  local function line(kind, g)
    local r = { kind }
    for i, c in ipairs(cols) do r[i + 1] = output.csv_field(not (kind == "total" and c.dimension) and c[2](g) or "") end
    lines[#lines + 1] = table.concat(r, ",")
  end
  for _, g in ipairs(rep.groups) do line("group", g) end
  line("total", rep.total)
  return lines
end

local GROUP = { keys = { "key", "calls", "seconds", "minutes", "cost_total", "twilio_cost",
  "model_cost", "credits", "latency_ms", "duration_sec", "invalid", "histogram",
  "disconnect_reasons", "sentiment" } }
-- Objects even when empty (the total's key, a group without latencies).
local OBJECT = { keys = {} }
GROUP.fields = { key = OBJECT, credits = OBJECT, latency_ms = OBJECT, duration_sec = OBJECT }
local REPORT = { keys = { "by", "since", "until", "credits", "total", "groups" },
  fields = { total = GROUP, groups = { items = GROUP } } }

--- The report as JSON text (money as exact decimal strings).
function M.json(rep, pretty)
  return json.encode(rep, { shape = REPORT, pretty = pretty })
end

-- Returns the exit code. `argv` are the words after "report".
function M.main(argv, stdout, stderr)
  local out = output.checked(stdout)
  local o, status = args.opening(M, PROGRAM, argv, out, stderr)
  if not o then return status end
  local phones = o.phones
  if not o.db and not phones then return args.usage_error(stderr, PROGRAM, "give --db URL or PHONEs") end
  local format = o.format or "table"
  local rep, err = ravan.report {
    db = o.db, phones = phones, by = o.by, since = o.since, ["until"] = o["until"],
    charts = format == "html",
  }
  if not rep then return args.fail(stderr, err, PROGRAM, WORDS) end
  if format == "json" then
    out:write(M.json(rep, stdout == io.stdout and core.isatty(1)), "\n")
  elseif format == "csv" then
    out:write(table.concat(M.csv_lines(rep), "\r\n"), "\r\n")
  elseif format == "html" then
    out:write(require("ravan.report.html").render(rep))
  else
    out:write(table.concat(M.table_lines(rep), "\n"), "\n")
  end
  return args.flushed(stderr, PROGRAM, out)
end

return M
