-- ravan-history: a phone number's call history as a table, JSON, NDJSON
-- or CSV; one page, or every call through the lazy pager (--all).
--
-- `parse`, `table_lines`, `json` and the writers are pure so specs can
-- test them without a server; `main` only glues them to the API and the
-- streams, and `run` to the process (signals, exit status).

-- ravan first: when ravan.core cannot be loaded, it says why on one line.
local ravan = require "ravan"
local core = require "ravan.core"
local decode = require "ravan.decode"
local defaults = require "ravan.defaults"
local validate = require "ravan.validate"

local M = {}

M.USAGE = [=[
Usage: ravan-history PHONE [--page N] [--page-size N] [--transcripts]
                           [--all [--limit N]] [--format FORMAT] [--json]
       ravan-history sync PHONE... --db URL ...  (see ravan-history sync --help)

Shows the calls where PHONE (E.164, e.g. +14155550100) was caller or
callee, from the Ravan.ai API.

Options:
  --page N          page to show (default 1); with --all, the first page
  --page-size N     calls per page, 1 to 100 (default: the server's, 20;
                    with --all, {page_size})
  --transcripts     include each call's transcript
  --all             every call of the history, page after page, printed
                    as it arrives (a progress line on stderr when it is a
                    terminal)
  --limit N         with --all: stop after N calls
  --format FORMAT   table (default), json, ndjson (one call per line) or
                    csv
  --json            the same as --format json
  --version         show the version
  -h, --help        show this help

Environment:
  RAVAN_API_KEY   org API key (sent as X-Api-Key), or
  RAVAN_TOKEN     a JWT (sent as Authorization: Bearer)
  RAVAN_BASE_URL  API base URL (default {base_url})

Exit status: 0 on success, 1 when the request or writing the output
fails, 2 on a usage error, 130 when interrupted (Ctrl-C).
]=]
M.USAGE = M.USAGE:gsub("{page_size}", defaults.pager.page_size)
  :gsub("{base_url}", defaults.client.base_url)

local FLAGS = {
  ["--transcripts"] = "transcripts", ["--all"] = "all",
  ["--help"] = "help", ["-h"] = "help", ["--version"] = "version",
}
local VALUED = {
  ["--page"] = "page", ["--page-size"] = "page_size", ["--limit"] = "limit",
}
local FORMATS = { table = true, json = true, ndjson = true, csv = true }

-- Every flag, for did-you-mean.
local FLAG_NAMES = { "--json", "--format" }
for name in pairs(FLAGS) do FLAG_NAMES[#FLAG_NAMES + 1] = name end
for name in pairs(VALUED) do FLAG_NAMES[#FLAG_NAMES + 1] = name end
table.sort(FLAG_NAMES)

-- The library names what it checks by its Lua field; the user typed a flag.
local FLAG_OF_FIELD = {
  phone = "PHONE", page = "--page", page_size = "--page-size", limit = "--limit",
  include_transcripts = "--transcripts",
}

-- Text from the command line or a server, made safe for a terminal:
-- control characters (escape sequences included) become visible `\27`s,
-- so neither a typo nor a record can drive the terminal.
local function printable(s)
  return (tostring(s):gsub("%c", function(c) return "\\" .. c:byte() end))
end

-- --json is kept from before --format existed; both may be given only if
-- they agree.
local function set_format(o, format)
  if o.format and o.format ~= format then
    return "--format " .. o.format .. " and --format " .. format .. " conflict"
  end
  o.format = format
end

-- `names`: the flags of the command (default this one's), for the did-you-mean.
local function unknown_option(a, names)
  local name = a:match("^(%-%-?[^=]*)")
  local shown = "unknown option '" .. printable(a:sub(1, 40)) .. "'"
  local best = validate.suggestion(name, names or FLAG_NAMES)
  return best and shown .. " (did you mean " .. best .. "?)" or shown
end
M.unknown_option = unknown_option

-- Returns the parsed options, or nil and a usage message. Ranges are left
-- to the library's validation so the CLI and the API cannot disagree.
function M.parse(args)
  local o = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, value = a:match("^(%-%-[%w-]+)=(.*)$")
    name = name or a
    local conflict
    if FLAGS[name] and value == nil then
      o[FLAGS[name]] = true
    elseif name == "--json" and value == nil then
      conflict = set_format(o, "json")
    elseif name == "--format" then
      if value == nil then
        i = i + 1
        value = args[i]
      end
      if not FORMATS[value] then
        return nil, "--format needs one of table, json, ndjson, csv"
      end
      conflict = set_format(o, value)
    elseif VALUED[name] then
      if value == nil then
        i = i + 1
        value = args[i]
      end
      if value == nil or not value:find("^%d+$") then
        return nil, name .. " needs a whole number"
      end
      o[VALUED[name]] = tonumber(value)
    elseif a:find("^%-") then
      return nil, unknown_option(a)
    elseif o.phone then
      return nil, "unexpected argument '" .. printable(a:sub(1, 40)) .. "'"
    else
      o.phone = a
    end
    if conflict then return nil, conflict end
    i = i + 1
  end
  if not (o.help or o.version or o.phone) then return nil, "PHONE is required" end
  if o.limit and not o.all then return nil, "--limit needs --all" end
  o.format = o.format or "table"
  return o
end

local function cell(s)
  if s == nil or s == "" then return "-" end
  return printable(s)
end

-- Display width in code points, so UTF-8 names keep columns aligned.
local function width(s)
  local _, continuation = s:gsub("[\128-\191]", "")
  return #s - continuation
end

-- "4:10", or "1:02:05" from an hour up.
local function duration(sec)
  if sec == nil then return "-" end
  local h, m, s = math.floor(sec / 3600), math.floor(sec % 3600 / 60), sec % 60
  if h > 0 then return string.format("%d:%02d:%02d", h, m, s) end
  return string.format("%d:%02d", m, s)
end

-- Direction is relative to the phone asked about: it received the call
-- ("in") or placed it ("out").
local function direction(call, phone)
  if call.callee_number == phone then
    local other = cell(call.caller_number)
    if call.caller_name and call.caller_name ~= "" then
      other = other .. " (" .. cell(call.caller_name) .. ")"
    end
    return "in", other
  end
  if call.caller_number == phone then return "out", cell(call.callee_number) end
  return "?", cell(call.caller_number)
end

-- Sums of a table's calls: seconds, and costs as exact decimals. Costs are
-- decimal strings ("12.50"); adding them as floats would print sums such
-- as 0.30000000000000004, so whole units and the fraction (in units of
-- 10^-places) are added as integers, the fraction carried into the units.
-- A cost that is not a plain decimal makes the sum unknown ("?").
local MAX_PLACES = 15 -- 10^15 and a carry stay exact in a double

local function new_totals()
  return { calls = 0, seconds = 0, units = 0, fraction = 0, places = 0 }
end

local function add_cost(t, cost)
  local units, digits = tostring(cost):match("^(%d+)%.?(%d*)$")
  if not units or #digits > MAX_PLACES then
    t.unknown = true
    return
  end
  if #digits > t.places then
    t.fraction = t.fraction * 10 ^ (#digits - t.places)
    t.places = #digits
  end
  local one = 10 ^ t.places
  t.units = t.units + tonumber(units)
  t.fraction = t.fraction + (#digits > 0 and tonumber(digits) * 10 ^ (t.places - #digits) or 0)
  if t.fraction >= one then
    t.units, t.fraction = t.units + 1, t.fraction - one
  end
end

local function add_call(t, call)
  t.calls = t.calls + 1
  if type(call.duration_sec) == "number" then t.seconds = t.seconds + call.duration_sec end
  if call.cost_total ~= nil then add_cost(t, call.cost_total) end
end

local function cost_sum(t)
  if t.unknown then return "?" end
  if t.places == 0 then return string.format("%.0f", t.units) end
  return string.format("%.0f.%0" .. t.places .. ".0f", t.units, t.fraction)
end

local HEADINGS = { "START", "DIR", "OTHER PARTY", "AGENT", "STATUS", "DURATION", "COST" }
local RIGHT = { [6] = true, [7] = true }

local function row_of(call, phone)
  local dir, other = direction(call, phone)
  local start = call.started_at and cell(call.started_at):gsub("T", " ", 1) or "-"
  return { start, dir, other, cell(call.agent_name), cell(call.status),
    duration(call.duration_sec), cell(call.cost_total) }
end

local function totals_row(t)
  return { "total of " .. t.calls .. " call" .. (t.calls == 1 and "" or "s"), "", "", "", "",
    duration(t.seconds), cost_sum(t) }
end

local function format_row(row, widths)
  local cells = {}
  for c = 1, #row do
    local pad = string.rep(" ", widths[c] - width(row[c]))
    cells[c] = RIGHT[c] and pad .. row[c] or row[c] .. pad
  end
  return (table.concat(cells, "  "):gsub("%s+$", ""))
end

local function transcript_lines(call, lines)
  local transcripts = call.transcripts or {}
  for i = 1, #transcripts do
    local m = transcripts[i].message or {}
    lines[#lines + 1] = "    " .. cell(m.role) .. ": " .. cell(m.content)
  end
end

-- "+14155550100: 3 calls"
local function count_line(phone, total)
  return string.format("%s: %d call%s", cell(phone), total, total == 1 and "" or "s")
end

local function heading_widths()
  local widths = {}
  for c = 1, #HEADINGS do widths[c] = #HEADINGS[c] end
  return widths
end

local function widen(widths, row)
  for c = 1, #row do widths[c] = math.max(widths[c], width(row[c])) end
end

-- The calls' rows, `widths` widened to fit them, and `totals` added to.
local function rows_of(calls, phone, widths, totals)
  local rows = {}
  for i = 1, #calls do
    local row = row_of(calls[i], phone)
    rows[i] = row
    widen(widths, row)
    add_call(totals, calls[i])
  end
  return rows
end

-- Appends each row (and its transcript lines) to `lines`.
local function row_lines(calls, rows, widths, lines)
  for i = 1, #rows do
    lines[#lines + 1] = format_row(rows[i], widths)
    transcript_lines(calls[i], lines)
  end
  return lines
end

-- "page 1 of 13 (--page 2, or --all)": where this page is, and how to see
-- the rest.
local function page_words(page, pages)
  if page < pages then
    return string.format("page %d of %d (--page %d, or --all)", page, pages, page + 1)
  end
  return string.format("page %d of %d", page, pages)
end

-- The page as text lines: a header, then one aligned row per call (with
-- its transcript lines under it, when the page has them), then the totals
-- of the page.
function M.table_lines(res, phone)
  local total = res.total_count or #res.calls
  local size = res.page_size or #res.calls
  local page = res.page or 1
  local pages = size > 0 and math.max(1, math.ceil(total / size)) or 1
  local head = count_line(res.phone or phone, total)
  if #res.calls == 0 then
    if page > pages then
      return { string.format("%s; page %d is past the end: %d page%s of %d", head, page, pages,
        pages == 1 and "" or "s", size) }
    end
    return { head, "(no calls)" }
  end
  local widths, totals = heading_widths(), new_totals()
  local rows = rows_of(res.calls, phone, widths, totals)
  local sums = totals_row(totals)
  widen(widths, sums)
  local lines = { head .. ", " .. page_words(page, pages), format_row(HEADINGS, widths) }
  row_lines(res.calls, rows, widths, lines)
  lines[#lines + 1] = format_row(sums, widths)
  return lines
end

-- JSON. lua-cjson writes strings (its own instance, so the settings touch
-- no one else's), but it cannot order keys or indent, and version 2.1.0
-- tells `[]` from `{}` only as the same empty table; so tables are walked
-- here: keys in the order of the contract's schema (then any others,
-- sorted), arrays with their nulls kept in place, an empty table as `[]`
-- unless the schema says it is an object. Numbers print exactly (cjson
-- rounds to 14 digits); the non-finite ones a server can send (1e400)
-- become null, as cjson's encode_invalid_numbers("null") writes them.
local cjson = require("cjson").new()
cjson.encode_invalid_numbers("null")

local OBJECT = { keys = {} }
local MESSAGE = { keys = { "role", "content" } }
local TRANSCRIPT = {
  keys = { "id", "call_session_id", "message", "timestamp_ms", "created_at" },
  fields = { message = MESSAGE },
}
local CALL = {
  keys = {
    "id", "agent_id", "agent_name", "organization_id", "caller_number", "callee_number",
    "caller_name", "caller_email", "channel", "status", "summary", "recording_url",
    "duration_sec", "cost_total", "twilio_cost", "model_cost", "credit_breakdown",
    "disconnect_reason", "call_latency_ms", "error_message", "post_call_analysis_result",
    "metadata", "started_at", "ended_at", "created_at", "transcripts",
  },
  fields = {
    credit_breakdown = { keys = { "model_credits", "provider_credits", "telephony_base_credits" } },
    post_call_analysis_result = OBJECT,
    metadata = OBJECT,
    transcripts = { items = TRANSCRIPT },
  },
}
local PAGE = {
  keys = { "success", "message", "phone", "total_count", "page", "page_size", "calls" },
  fields = { calls = { items = CALL } },
}
-- What `--all --format json` prints: the history, not one page of it.
local HISTORY = { keys = { "phone", "total_count", "calls" }, fields = PAGE.fields }

local huge = math.huge

local function number(v)
  if math.type and math.type(v) == "integer" then return string.format("%d", v) end
  if v ~= v or v == huge or v == -huge then return cjson.encode(v) end
  return decode.number_string(v)
end

-- A table from JSON has only integer keys (an array) or only string keys
-- (an object); the schema decides only for an empty one.
local function is_array(t, shape)
  local k = next(t)
  if k == nil then return not (shape and shape.keys) end
  return type(k) == "number"
end

local NONE = {}

-- Each shape's keys as a set, made once: with --all the same shapes are met
-- for every call written.
local known_sets = {}
local function known_of(shape)
  if not shape then return NONE end
  local known = known_sets[shape]
  if not known then
    known = {}
    for _, k in ipairs(shape.keys or NONE) do known[k] = true end
    known_sets[shape] = known
  end
  return known
end

-- Appends `v` as JSON to `buf`; `indent` is nil for one line, else the
-- current line's indentation.
local function encode(v, shape, indent, buf)
  local kind = type(v)
  if kind == "string" then
    -- lua-cjson 2.1 escapes every "/" (allowed, never needed): URLs print
    -- as written. A "\/" can only be such an escape, a backslash being "\\".
    buf[#buf + 1] = (cjson.encode(v):gsub("\\/", "/"))
  elseif kind == "number" then
    buf[#buf + 1] = number(v)
  elseif kind == "table" then
    local inner = indent and indent .. "  "
    local open, sep = "\n" .. (inner or ""), indent and ": " or ":"
    local first = true
    local function item()
      buf[#buf + 1] = first and (indent and open or "") or (indent and "," .. open or ",")
      first = false
    end
    if is_array(v, shape) then
      local n = 0
      for k in pairs(v) do
        if type(k) == "number" and k > n then n = k end
      end
      buf[#buf + 1] = "["
      for i = 1, n do
        item()
        encode(v[i], shape and shape.items, inner, buf)
      end
      buf[#buf + 1] = first and "]" or (indent and "\n" .. indent .. "]" or "]")
    else
      local keys, known = {}, known_of(shape)
      for _, k in ipairs(shape and shape.keys or NONE) do
        if v[k] ~= nil then keys[#keys + 1] = k end
      end
      local rest = {}
      for k in pairs(v) do
        if not known[k] then rest[#rest + 1] = tostring(k) end
      end
      table.sort(rest)
      for _, k in ipairs(rest) do keys[#keys + 1] = k end
      buf[#buf + 1] = "{"
      for _, k in ipairs(keys) do
        item()
        buf[#buf + 1] = cjson.encode(k) .. sep
        encode(v[k], shape and shape.fields and shape.fields[k], inner, buf)
      end
      buf[#buf + 1] = first and "}" or (indent and "\n" .. indent .. "}" or "}")
    end
  elseif v == nil then
    buf[#buf + 1] = "null"
  else
    buf[#buf + 1] = tostring(v)
  end
  return buf
end

-- `v` as JSON: on one line, or indented when `pretty`.
function M.json(v, shape, pretty)
  return table.concat(encode(v, shape, pretty and "" or nil, {}))
end

M.CSV_COLUMNS = {
  "id", "started_at", "ended_at", "direction", "caller_number", "caller_name",
  "callee_number", "agent_name", "status", "duration_sec", "cost_total",
  "disconnect_reason", "summary",
}

-- RFC 4180: a field is quoted only when it must be, inner quotes doubled.
-- Values go out as they came: CSV is data for another program, not text
-- for this terminal.
local function csv_field(v)
  if v == nil then return "" end
  v = tostring(v)
  if v:find('[,"\r\n]') then return '"' .. v:gsub('"', '""') .. '"' end
  return v
end

function M.csv_line(call, phone)
  local fields = {}
  for i, name in ipairs(M.CSV_COLUMNS) do
    local v = call[name]
    if name == "direction" then v = direction(call, phone) end
    fields[i] = csv_field(v)
  end
  return table.concat(fields, ",") .. "\r\n"
end

-- Writers print pages as they come: `page(res)` for each page, then
-- `finish(total_count)` once (total_count nil when unknown). Only JSON
-- waits for the end to close its document, and even it holds no calls.
local WRITERS = {}

-- A streamed table cannot size its columns from calls yet to come, so it
-- starts them wide enough for typical values; they only grow from there.
local STREAM_WIDTHS = { 20, 3, 30, 24, 9, 8, 10 }

function WRITERS.table(out, phone)
  local widths
  local totals = new_totals()
  return {
    page = function(res)
      local lines = {}
      local first = not widths
      if first then
        widths = heading_widths()
        for c = 1, #widths do widths[c] = math.max(widths[c], STREAM_WIDTHS[c]) end
      end
      local rows = rows_of(res.calls, phone, widths, totals)
      if first then
        lines[1] = count_line(res.phone or phone, res.total_count or #res.calls)
        lines[2] = format_row(HEADINGS, widths)
      end
      out:write(table.concat(row_lines(res.calls, rows, widths, lines), "\n"), "\n")
    end,
    finish = function(total)
      if not widths then
        out:write(count_line(phone, total or 0), "\n(no calls)\n")
        return
      end
      local sums = totals_row(totals)
      widen(widths, sums)
      out:write(format_row(sums, widths), "\n")
    end,
  }
end

-- One document, `{"phone":..., "total_count":..., "calls":[...]}`, written
-- call by call: its head goes out with the first page, which knows the
-- total.
function WRITERS.json(out, phone, pretty)
  local indent = pretty and "    " or nil
  local started, first = false, true
  local function head(total)
    started = true
    local doc = { phone = phone, total_count = total }
    local text = M.json(doc, HISTORY, pretty)
    -- The document without its closing brace, then the calls array opened.
    out:write(text:sub(1, -2 - (pretty and 1 or 0)), pretty and ',\n  "calls": [' or ',"calls":[')
  end
  return {
    page = function(res)
      if not started then head(res.total_count) end
      for i = 1, #res.calls do
        local call = table.concat(encode(res.calls[i], CALL, indent, {}))
        out:write(first and "" or ",", pretty and "\n" .. indent or "", call)
        first = false
      end
    end,
    finish = function(total)
      if not started then head(total or 0) end
      out:write(first and "]" or (pretty and "\n  ]" or "]"), pretty and "\n}\n" or "}\n")
    end,
  }
end

function WRITERS.ndjson(out)
  return {
    page = function(res)
      for i = 1, #res.calls do out:write(M.json(res.calls[i], CALL), "\n") end
    end,
    finish = function() end,
  }
end

function WRITERS.csv(out, phone)
  out:write(table.concat(M.CSV_COLUMNS, ","), "\r\n")
  return {
    page = function(res)
      for i = 1, #res.calls do out:write(M.csv_line(res.calls[i], phone)) end
    end,
    finish = function() end,
  }
end

-- `format`'s writer on `out` (a file or anything with :write).
function M.writer(format, out, phone, pretty)
  return WRITERS[format](out, phone, pretty)
end

-- "12 pages, 1200 of 10000 calls, 850 calls/s"
function M.progress_line(stats, elapsed)
  local rate = elapsed > 0 and stats.calls / elapsed or 0
  local of = stats.total_count and (" of " .. stats.total_count) or ""
  return string.format("%d page%s, %d%s calls, %.0f calls/s", stats.pages,
    stats.pages == 1 and "" or "s", stats.calls, of, rate)
end

-- A stream that keeps its first write error, so the writers need not check
-- every write; `flush` pushes what is buffered and reports that error.
local function checked(file)
  local s = {}
  function s.write(_, ...)
    if not s.err then
      local ok, err = file:write(...)
      if not ok then s.err = err end
    end
    return s
  end
  function s.flush()
    if not s.err and file.flush then
      local ok, err = file:flush()
      if not ok then s.err = err end
    end
    return s.err == nil
  end
  return s
end

-- The error line: the library's own words without its "ravan: " prefix
-- (this line has the program's), and a usage error in terms of the flags
-- the user typed rather than the Lua fields they became. `program` names
-- the command in the line (default "ravan-history").
local function fail(stderr, err, program)
  program = program or "ravan-history"
  if err.kind == "invalid_argument" then
    local field, rest = tostring(err.message):match("^([%w_]+)(.*)$")
    local message = FLAG_OF_FIELD[field] and FLAG_OF_FIELD[field] .. rest or err.message
    -- The command line has no api_key or token option: only the environment gives a credential.
    message = message:gsub("give api_key or token, or set ", "set ", 1)
    stderr:write(program, ": ", printable(message), "\n")
    return 2
  end
  stderr:write(program, ": ", (tostring(err):gsub("^ravan: ", "")), "\n")
  return 1
end
M.fail = fail

local function write_failed(stderr, out)
  stderr:write("ravan-history: cannot write the output: ", printable(out.err), "\n")
  return 1
end

-- Every page through the pager, each written as it comes; a write that
-- fails (a full disk, a reader gone with SIGPIPE ignored) stops it before
-- the next page is asked for. On a terminal the progress line is redrawn
-- after each page and cleared before the next page's rows, so the two
-- streams do not run into each other.
local function all_pages(o, out, stderr, tty, pretty)
  local pager = ravan.pages {
    phone = o.phone, page = o.page, page_size = o.page_size,
    include_transcripts = o.transcripts, limit = o.limit,
  }
  local started = core.now()
  local w
  while true do
    local res, err = pager:next()
    if tty then stderr:write("\r\27[K") end
    if err then return fail(stderr, err) end
    if not res then break end
    w = w or M.writer(o.format, out, o.phone, pretty)
    w.page(res)
    if not out:flush() then
      pager:close()
      return write_failed(stderr, out)
    end
    if tty then stderr:write(M.progress_line(pager:stats(), core.now() - started)) end
  end
  local stats = pager:stats()
  w = w or M.writer(o.format, out, o.phone, pretty)
  w.finish(stats.total_count)
  if not out:flush() then return write_failed(stderr, out) end
  if tty then
    stderr:write(M.progress_line(stats, core.now() - started), ", done\n")
  end
  return 0
end

-- Returns the exit code; `stdout`/`stderr` default to the process's.
-- `tty` (whether to draw progress) defaults to stderr being a terminal;
-- JSON is indented when stdout is one.
function M.main(args, stdout, stderr, tty)
  stdout, stderr = stdout or io.stdout, stderr or io.stderr
  if args[1] == "sync" then
    local rest = {}
    for i = 2, #args do rest[i - 1] = args[i] end
    return require("ravan.cli.sync").main(rest, stdout, stderr, tty)
  end
  local o, msg = M.parse(args)
  if not o then
    stderr:write("ravan-history: ", msg, "\nTry 'ravan-history --help'.\n")
    return 2
  end
  local out = checked(stdout)
  if o.help then
    out:write(M.USAGE)
    return out:flush() and 0 or write_failed(stderr, out)
  end
  if o.version then
    out:write("ravan-history ", ravan.VERSION, " (libcurl ", core.CURL_VERSION, ", ",
      rawget(_G, "jit") and jit.version or _VERSION, ")\n")
    return out:flush() and 0 or write_failed(stderr, out)
  end
  local pretty = stdout == io.stdout and core.isatty(1)
  if o.all then
    if tty == nil then tty = stderr == io.stderr and core.isatty(2) end
    return all_pages(o, out, stderr, tty, pretty)
  end
  local res, err = ravan.phone_history{
    phone = o.phone, page = o.page, page_size = o.page_size,
    include_transcripts = o.transcripts,
  }
  if not res then return fail(stderr, err) end
  if o.format == "json" then
    out:write(M.json(res, PAGE, pretty), "\n")
  elseif o.format == "table" then
    out:write(table.concat(M.table_lines(res, o.phone), "\n"), "\n")
  else
    local w = M.writer(o.format, out, o.phone)
    w.page(res)
    w.finish(res.total_count)
  end
  return out:flush() and 0 or write_failed(stderr, out)
end

-- The process: Ctrl-C ends it at once with status 130 (the shell's code
-- for SIGINT), and a defect in the CLI is one line, not a traceback.
function M.run(args)
  core.default_sigint()
  local ok, code = pcall(M.main, args)
  if ok then return code end
  io.stderr:write("ravan-history: ", printable((tostring(code):gsub("%s+", " "))), "\n")
  return 1
end

return M
