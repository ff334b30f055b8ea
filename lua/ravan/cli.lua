-- ravan-history: a phone number's call history as a table or as JSON.
--
-- `parse`, `table_lines` and `json` are pure so specs can test them
-- without a server; `main` only glues them to the API and the streams.

local cjson = require "cjson"

local M = {}

M.USAGE = [[
Usage: ravan-history PHONE [--page N] [--page-size N] [--transcripts] [--json]

Shows the calls where PHONE (E.164, e.g. +14155550100) was caller or
callee, from the Ravan.ai API.

Options:
  --page N        page to show (default 1)
  --page-size N   calls per page, 1 to 100 (default: the server's, 20)
  --transcripts   include each call's transcript
  --json          print the result as JSON instead of a table
  -h, --help      show this help

Environment:
  RAVAN_API_KEY   org API key (sent as X-Api-Key), or
  RAVAN_TOKEN     a JWT (sent as Authorization: Bearer)
  RAVAN_BASE_URL  API base URL (default https://api.ravan.ai)

Exit status: 0 on success, 1 when the request fails, 2 on a usage error.
]]

local FLAGS = {
  ["--transcripts"] = "transcripts", ["--json"] = "json",
  ["--help"] = "help", ["-h"] = "help",
}
local VALUED = { ["--page"] = "page", ["--page-size"] = "page_size" }

-- Returns the parsed options, or nil and a usage message. Ranges are left
-- to the library's validation so the CLI and the API cannot disagree.
function M.parse(args)
  local o = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, value = a:match("^(%-%-[%w-]+)=(.*)$")
    name = name or a
    if FLAGS[name] and value == nil then
      o[FLAGS[name]] = true
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
    i = i + 1
  end
  if not o.help and not o.phone then return nil, "PHONE is required" end
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

-- The page as text lines: a header, then one aligned row per call (with
-- its transcript lines under it, when the page has them).
function M.table_lines(res, phone)
  local total = res.total_count or #res.calls
  local size = res.page_size or 0
  local pages = size > 0 and math.max(1, math.ceil(total / size)) or 1
  local lines = {
    string.format("%s: %d call%s, page %d of %d", clean(res.phone or phone),
      total, total == 1 and "" or "s", res.page or 1, pages),
  }
  if #res.calls == 0 then
    lines[2] = "(no calls on this page)"
    return lines
  end
  local rows, widths = {}, {}
  for c = 1, #HEADINGS do widths[c] = #HEADINGS[c] end
  for i = 1, #res.calls do
    local row = row_of(res.calls[i], phone)
    rows[i] = row
    for c = 1, #row do widths[c] = math.max(widths[c], width(row[c])) end
  end
  lines[2] = format_row(HEADINGS, widths)
  for i = 1, #rows do
    lines[#lines + 1] = format_row(rows[i], widths)
    transcript_lines(res.calls[i], lines)
  end
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

function M.json(res)
  for i = 1, #res.calls do mark_empty(res.calls[i], "transcripts") end
  mark_empty(res, "calls")
  return (cjson.encode(res):gsub(EMPTY_JSON, "[]"))
end

-- Returns the exit code; `stdout`/`stderr` default to the process's.
function M.main(args, stdout, stderr)
  stdout, stderr = stdout or io.stdout, stderr or io.stderr
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
  local res, err = ravan.phone_history{
    phone = o.phone, page = o.page, page_size = o.page_size,
    include_transcripts = o.transcripts,
  }
  if not res then
    stderr:write("ravan-history: ", tostring(err), "\n")
    return err.kind == "invalid_argument" and 2 or 1
  end
  if o.json then
    stdout:write(M.json(res), "\n")
  else
    stdout:write(table.concat(M.table_lines(res, o.phone), "\n"), "\n")
  end
  return 0
end

return M
