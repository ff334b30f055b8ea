-- The writers of ravan-history: a page as a table, JSON, NDJSON or CSV,
-- the totals under a table, the progress line of --all. Pure, so specs can
-- test them without a server: they write to anything with :write.

local args = require "ravan.cli.args"
local contract = require "ravan.contract"
local decimal = require "ravan.report.decimal"
local json = require "ravan.json"

local M = {}

local printable = args.printable

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

-- Sums of a table's calls: seconds, and costs as exact decimals
-- (`ravan.report.decimal`): adding "12.50"s as floats would print sums
-- such as 0.30000000000000004. A cost that is not a decimal makes the sum
-- unknown ("?").
local function new_totals()
  return { calls = 0, seconds = 0, cost = decimal.sum() }
end

local function add_call(t, call)
  t.calls = t.calls + 1
  if type(call.duration_sec) == "number" then t.seconds = t.seconds + call.duration_sec end
  if call.cost_total ~= nil then t.cost:add(call.cost_total) end
end

local function cost_sum(t)
  if t.cost.invalid > 0 then return "?" end
  return t.cost:text()
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

-- What `--all --format json` prints: the history, not one page of it.
local HISTORY = { keys = { "phone", "total_count", "calls" }, fields = contract.PAGE.fields }
local CALL = contract.CALL

--- The page as the API sent it, as JSON: on one line, or indented when
-- `pretty`. Keys in the contract's order (unknown ones after them, sorted).
function M.page_json(res, pretty)
  return json.encode(res, { shape = contract.PAGE, pretty = pretty })
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
M.csv_field = csv_field

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
    local text = json.encode(doc, { shape = HISTORY, pretty = pretty })
    -- The document without its closing brace, then the calls array opened.
    out:write(text:sub(1, -2 - (pretty and 1 or 0)), pretty and ',\n  "calls": [' or ',"calls":[')
  end
  return {
    page = function(res)
      if not started then head(res.total_count) end
      for i = 1, #res.calls do
        local call = json.encode(res.calls[i], { shape = CALL, pretty = pretty, indent = indent })
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
      for i = 1, #res.calls do out:write(json.encode(res.calls[i], { shape = CALL }), "\n") end
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

M.checked = checked

return M
