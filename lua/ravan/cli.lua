-- ravan-history: a phone number's call history as a table, JSON, NDJSON
-- or CSV; one page, or every call through the lazy pager (--all).
--
-- `parse`, `table_lines`, `json` and the writers are pure so specs can
-- test them without a server; `main` only glues them to the API and the
-- streams.

local cjson = require "cjson"

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
                    with --all, 100)
  --transcripts     include each call's transcript
  --all             every call of the history, page after page, printed
                    as it arrives (a progress line on stderr when it is a
                    terminal)
  --limit N         with --all: stop after N calls
  --format FORMAT   table (default), json, ndjson (one call per line) or
                    csv
  --json            the same as --format json
  -h, --help        show this help

Environment:
  RAVAN_API_KEY   org API key (sent as X-Api-Key), or
  RAVAN_TOKEN     a JWT (sent as Authorization: Bearer)
  RAVAN_BASE_URL  API base URL (default https://api.ravan.ai)

Exit status: 0 on success, 1 when the request fails, 2 on a usage error.
]=]

local FLAGS = {
  ["--transcripts"] = "transcripts", ["--all"] = "all",
  ["--help"] = "help", ["-h"] = "help",
}
local VALUED = {
  ["--page"] = "page", ["--page-size"] = "page_size", ["--limit"] = "limit",
}
local FORMATS = { table = true, json = true, ndjson = true, csv = true }

-- --json is kept from before --format existed; both may be given only if
-- they agree.
local function set_format(o, format)
  if o.format and o.format ~= format then
    return "--format " .. o.format .. " and --format " .. format .. " conflict"
  end
  o.format = format
end

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
      return nil, "unknown option '" .. a .. "'"
    elseif o.phone then
      return nil, "unexpected argument '" .. a .. "'"
    else
      o.phone = a
    end
    if conflict then return nil, conflict end
    i = i + 1
  end
  if not o.help and not o.phone then return nil, "PHONE is required" end
  if o.limit and not o.all then return nil, "--limit needs --all" end
  o.format = o.format or "table"
  return o
end

-- Server text goes to a terminal: control characters (escape sequences
-- included) are replaced so a record cannot drive the terminal.
local function clean(s)
  if s == nil or s == "" then return "-" end
  return (tostring(s):gsub("%c", "?"))
end

-- Display width in code points, so UTF-8 names keep columns aligned.
local function width(s)
  local _, continuation = s:gsub("[\128-\191]", "")
  return #s - continuation
end

local function duration(sec)
  if sec == nil then return "-" end
  return string.format("%d:%02d", math.floor(sec / 60), sec % 60)
end

-- Direction is relative to the phone asked about: it received the call
-- ("in") or placed it ("out").
local function direction(call, phone)
  if call.callee_number == phone then
    local other = clean(call.caller_number)
    if call.caller_name and call.caller_name ~= "" then
      other = other .. " (" .. clean(call.caller_name) .. ")"
    end
    return "in", other
  end
  if call.caller_number == phone then return "out", clean(call.callee_number) end
  return "?", clean(call.caller_number)
end

local HEADINGS = { "START", "DIR", "OTHER PARTY", "AGENT", "STATUS", "DURATION", "COST" }
local RIGHT = { [6] = true, [7] = true }

local function row_of(call, phone)
  local dir, other = direction(call, phone)
  local start = call.started_at and clean(call.started_at):gsub("T", " ", 1) or "-"
  return { start, dir, other, clean(call.agent_name), clean(call.status),
    duration(call.duration_sec), clean(call.cost_total) }
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
    lines[#lines + 1] = "    " .. clean(m.role) .. ": " .. clean(m.content)
  end
end

-- "+14155550100: 3 calls"
local function count_line(phone, total)
  return string.format("%s: %d call%s", clean(phone), total, total == 1 and "" or "s")
end

local function heading_widths()
  local widths = {}
  for c = 1, #HEADINGS do widths[c] = #HEADINGS[c] end
  return widths
end

-- The calls' rows, and `widths` widened to fit them.
local function rows_of(calls, phone, widths)
  local rows = {}
  for i = 1, #calls do
    local row = row_of(calls[i], phone)
    rows[i] = row
    for c = 1, #row do widths[c] = math.max(widths[c], width(row[c])) end
  end
  return rows, widths
end

-- Appends each row (and its transcript lines) to `lines`.
local function row_lines(calls, rows, widths, lines)
  for i = 1, #rows do
    lines[#lines + 1] = format_row(rows[i], widths)
    transcript_lines(calls[i], lines)
  end
  return lines
end

-- The page as text lines: a header, then one aligned row per call (with
-- its transcript lines under it, when the page has them).
function M.table_lines(res, phone)
  local total = res.total_count or #res.calls
  local size = res.page_size or 0
  local pages = size > 0 and math.max(1, math.ceil(total / size)) or 1
  local lines = {
    count_line(res.phone or phone, total)
      .. string.format(", page %d of %d", res.page or 1, pages),
  }
  if #res.calls == 0 then
    lines[2] = "(no calls on this page)"
    return lines
  end
  local rows, widths = rows_of(res.calls, phone, heading_widths())
  lines[2] = format_row(HEADINGS, widths)
  row_lines(res.calls, rows, widths, lines)
  return lines
end

-- lua-cjson 2.1 encodes an empty table as `{}`; the arrays we know of are
-- swapped for a marker no real string can hold (it has NULs) and patched
-- back to `[]` after encoding. Mutates `res`, which the CLI owns.
local EMPTY = "\0ravan:empty-array\0"
local EMPTY_JSON = '"\\u0000ravan:empty%-array\\u0000"'

local function mark_empty(t, key)
  if type(t[key]) == "table" and next(t[key]) == nil then t[key] = EMPTY end
end

-- lua-cjson 2.1 also escapes every "/" (allowed, never needed): URLs print as
-- written. A "\/" can only be such an escape, a backslash being "\\".
local function encode(v)
  return (cjson.encode(v):gsub(EMPTY_JSON, "[]"):gsub("\\/", "/"))
end

function M.json(res)
  for i = 1, #res.calls do mark_empty(res.calls[i], "transcripts") end
  mark_empty(res, "calls")
  return encode(res)
end

-- One call as JSON (mutates it like M.json).
local function call_json(call)
  mark_empty(call, "transcripts")
  return encode(call)
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
local STREAM_WIDTHS = { 20, 3, 30, 24, 9, 8, 6 }

function WRITERS.table(out, phone)
  local widths
  return {
    page = function(res)
      local lines = {}
      local first = not widths
      if first then
        widths = heading_widths()
        for c = 1, #widths do widths[c] = math.max(widths[c], STREAM_WIDTHS[c]) end
      end
      local rows = rows_of(res.calls, phone, widths)
      if first then
        lines[1] = count_line(res.phone or phone, res.total_count or #res.calls)
        lines[2] = format_row(HEADINGS, widths)
      end
      out:write(table.concat(row_lines(res.calls, rows, widths, lines), "\n"), "\n")
    end,
    finish = function(total)
      if not widths then
        out:write(count_line(phone, total or 0), "\n(no calls)\n")
      end
    end,
  }
end

function WRITERS.json(out, phone)
  local first = true
  out:write('{"phone":', cjson.encode(phone), ',"calls":[')
  return {
    page = function(res)
      for i = 1, #res.calls do
        out:write(first and "\n" or ",\n", call_json(res.calls[i]))
        first = false
      end
    end,
    finish = function(total)
      out:write(first and "]" or "\n]", total and ',"total_count":' .. total or "", "}\n")
    end,
  }
end

function WRITERS.ndjson(out)
  return {
    page = function(res)
      for i = 1, #res.calls do out:write(call_json(res.calls[i]), "\n") end
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
function M.writer(format, out, phone)
  return WRITERS[format](out, phone)
end

-- "12 pages, 1200 of 10000 calls, 850 calls/s"
function M.progress_line(stats, elapsed)
  local rate = elapsed > 0 and stats.calls / elapsed or 0
  local of = stats.total_count and (" of " .. stats.total_count) or ""
  return string.format("%d page%s, %d%s calls, %.0f calls/s", stats.pages,
    stats.pages == 1 and "" or "s", stats.calls, of, rate)
end

local function exit_code(err)
  return err.kind == "invalid_argument" and 2 or 1
end

local function fail(stderr, err)
  stderr:write("ravan-history: ", tostring(err), "\n")
  return exit_code(err)
end

-- Every page through the pager, each written as it comes. On a terminal
-- the progress line is redrawn after each page and cleared before the
-- next page's rows, so the two streams do not run into each other.
local function all_pages(ravan, o, stdout, stderr, tty)
  local pager = ravan.pages {
    phone = o.phone, page = o.page, page_size = o.page_size,
    include_transcripts = o.transcripts, limit = o.limit,
  }
  local core = require "ravan.core"
  local started = core.now()
  local w
  while true do
    local res, err = pager:next()
    if tty then stderr:write("\r\27[K") end
    if err then return fail(stderr, err) end
    if not res then break end
    w = w or M.writer(o.format, stdout, o.phone)
    w.page(res)
    if tty then
      stdout:flush()
      stderr:write(M.progress_line(pager:stats(), core.now() - started))
    end
  end
  local stats = pager:stats()
  w = w or M.writer(o.format, stdout, o.phone)
  w.finish(stats.total_count)
  if tty then
    stdout:flush()
    stderr:write(M.progress_line(stats, core.now() - started), ", done\n")
  end
  return 0
end

-- Returns the exit code; `stdout`/`stderr` default to the process's.
-- `tty` (whether to draw progress) defaults to stderr being a terminal.
function M.main(args, stdout, stderr, tty)
  stdout, stderr = stdout or io.stdout, stderr or io.stderr
  if args[1] == "sync" then
    local rest = {}
    for i = 2, #args do rest[i - 1] = args[i] end
    return require("ravan.cli_sync").main(rest, stdout, stderr, tty)
  end
  local o, msg = M.parse(args)
  if not o then
    stderr:write("ravan-history: ", msg, "\nTry 'ravan-history --help'.\n")
    return 2
  end
  if o.help then
    stdout:write(M.USAGE)
    return 0
  end
  -- Required here, not at the top, so the pure functions above load
  -- without the C module.
  local ravan = require "ravan"
  if o.all then
    if tty == nil then
      tty = stderr == io.stderr and require("ravan.core").isatty(2)
    end
    return all_pages(ravan, o, stdout, stderr, tty)
  end
  local res, err = ravan.phone_history{
    phone = o.phone, page = o.page, page_size = o.page_size,
    include_transcripts = o.transcripts,
  }
  if not res then return fail(stderr, err) end
  if o.format == "json" then
    stdout:write(M.json(res), "\n")
  elseif o.format == "table" then
    stdout:write(table.concat(M.table_lines(res, o.phone), "\n"), "\n")
  else
    local w = M.writer(o.format, stdout, o.phone)
    w.page(res)
    w.finish(res.total_count)
  end
  return 0
end

return M
