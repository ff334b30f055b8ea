-- `ravan-history sync`: keeps a database in step with phones' call
-- histories (client:sync), with a progress line on a terminal and a
-- summary at the end. `parse`, `read_phones` and the line formatters are
-- pure, so specs can test them without a server.

local cli = require "ravan.cli"

local M = {}

M.USAGE = [=[
Usage: ravan-history sync PHONE... [--phones-file FILE] --db URL
                          [--transcripts] [--follow [--interval S]]
                          [--rate N/S] [--page-size N]

Copies the call histories of the PHONEs (E.164) into a database, and on
later runs only what is new or changed. Safe to interrupt at any moment:
the next run goes on from where it stopped, and no call is stored twice.

Options:
  --phones-file FILE  more phones: one a line, or a CSV with a phone column
  --db URL            sqlite:PATH or postgresql://user@host/dbname
  --transcripts       also store each call's transcript
  --follow            keep syncing, every --interval seconds (default 60)
  --interval S        seconds between syncs with --follow
  --rate N/S          at most N requests every S seconds (e.g. 50/1);
                      default: learnt from the server's 429s and headers
  --page-size N       calls per request, 1 to 100 (default 100)
  -h, --help          show this help

Environment: RAVAN_API_KEY or RAVAN_TOKEN, RAVAN_BASE_URL (as for
ravan-history).

Exit status: 0 when every phone synced, 1 when some failed (each is named
on stderr) or the database failed, 2 on a usage error, 130 when stopped by
SIGINT or SIGTERM (what was synced until then is kept).
]=]

local VALUED = {
  ["--phones-file"] = "phones_file", ["--db"] = "db", ["--interval"] = "interval",
  ["--rate"] = "rate", ["--page-size"] = "page_size",
}
local FLAGS = {
  ["--transcripts"] = "transcripts", ["--follow"] = "follow",
  ["--help"] = "help", ["-h"] = "help",
}
local FLAG_NAMES = {}
for name in pairs(FLAGS) do FLAG_NAMES[#FLAG_NAMES + 1] = name end
for name in pairs(VALUED) do FLAG_NAMES[#FLAG_NAMES + 1] = name end
table.sort(FLAG_NAMES)

-- `args` are the words after "sync". Returns the options, or nil and a
-- usage message. Phone syntax is left to the library's validation.
function M.parse(args)
  local o = { phones = {} }
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
      if value == nil or value == "" then return nil, name .. " needs a value" end
      o[VALUED[name]] = value
    elseif a:find("^%-") then
      return nil, cli.unknown_option(a, FLAG_NAMES)
    else
      o.phones[#o.phones + 1] = a
    end
    i = i + 1
  end
  if o.help then return o end
  if o.interval then
    o.interval = tonumber(o.interval)
    if not o.interval or o.interval <= 0 then return nil, "--interval needs seconds > 0" end
    if not o.follow then return nil, "--interval needs --follow" end
  end
  if o.page_size then
    if not o.page_size:find("^%d+$") then return nil, "--page-size needs a whole number" end
    o.page_size = tonumber(o.page_size)
  end
  if o.rate then
    local n, per = o.rate:match("^(%d+)/(%d*%.?%d+)$")
    if not n then n, per = o.rate:match("^(%d+)$"), "1" end
    if not n or tonumber(n) < 1 or tonumber(per) <= 0 then
      return nil, "--rate needs N/S, e.g. 50/1 (50 requests a second)"
    end
    o.rate = { requests = tonumber(n), per = tonumber(per) }
  end
  if not o.db then return nil, "--db is required" end
  if #o.phones == 0 and not o.phones_file then return nil, "give PHONE... or --phones-file" end
  return o
end

-- The fields of one CSV line (RFC 4180 quoting; no newlines inside fields).
local function csv_fields(line)
  local out, pos = {}, 1
  while true do
    local field
    if line:sub(pos, pos) == '"' then
      local buf, j = {}, pos + 1
      while true do
        local q = line:find('"', j, true)
        if not q then
          buf[#buf + 1] = line:sub(j)
          pos = #line + 1
          break
        end
        buf[#buf + 1] = line:sub(j, q - 1)
        if line:sub(q + 1, q + 1) == '"' then
          buf[#buf + 1] = '"'
          j = q + 2
        else
          pos = q + 1
          break
        end
      end
      field = table.concat(buf)
      local comma = line:find(",", pos, true)
      pos = comma and comma + 1 or #line + 2
    else
      local comma = line:find(",", pos, true)
      field = line:sub(pos, (comma or #line + 1) - 1)
      pos = comma and comma + 1 or #line + 2
    end
    out[#out + 1] = field
    if pos > #line + 1 then break end
  end
  return out
end
M.csv_fields = csv_fields

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- Phones from a file's text: one a line (blank lines and # comments
-- skipped), or a CSV whose header names a `phone` column.
function M.read_phones(text)
  local lines = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    line = trim(line:gsub("\r$", ""))
    if line ~= "" and not line:find("^#") then lines[#lines + 1] = line end
  end
  local out = {}
  if #lines == 0 then return out end
  local header = csv_fields(lines[1])
  local col
  for i = 1, #header do
    if trim(header[i]):lower() == "phone" then col = i end
  end
  if not col then
    if #header > 1 then return nil, "a CSV phones file needs a 'phone' column" end
    for i = 1, #lines do out[i] = lines[i] end
    return out
  end
  for i = 2, #lines do
    local v = csv_fields(lines[i])[col]
    if v and trim(v) ~= "" then out[#out + 1] = trim(v) end
  end
  return out
end

-- "3/10 phones, 120 inserted, 4 updated, 37 requests, 0 429s"
function M.progress_line(s)
  return string.format("%d/%d phones, %d inserted, %d updated, %d requests, %d 429s",
    s.phones_done or 0, s.phones, s.inserted, s.updated, s.requests, s.rate_limited or 0)
end

function M.summary_line(s)
  local line = string.format(
    "%d phone%s: %d inserted, %d updated, %d unchanged, %d request%s, %d 429s, %d full pass%s",
    s.phones, s.phones == 1 and "" or "s", s.inserted, s.updated, s.unchanged,
    s.requests, s.requests == 1 and "" or "s", s.rate_limited or 0,
    s.full_passes, s.full_passes == 1 and "" or "es")
  if #s.errors > 0 then line = line .. string.format(", %d failed", #s.errors) end
  if s.stopped then line = line .. ", stopped" end
  return line
end

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text = f:read("*a")
  f:close()
  return text
end

-- Returns the exit code. `args` are the words after "sync".
function M.main(args, stdout, stderr, tty)
  local o, msg = M.parse(args)
  if not o then
    stderr:write("ravan-history sync: ", msg, "\nTry 'ravan-history sync --help'.\n")
    return 2
  end
  if o.help then
    stdout:write(M.USAGE)
    return 0
  end
  if o.phones_file then
    local text, err = read_file(o.phones_file)
    local more
    if text then more, err = M.read_phones(text) end
    if not more then
      stderr:write("ravan-history sync: --phones-file: ", tostring(err), "\n")
      return 2
    end
    for i = 1, #more do o.phones[#o.phones + 1] = more[i] end
  end
  local core = require "ravan.core"
  local ravan = require "ravan"
  local client, err = ravan.new()
  if not client then return cli.fail(stderr, err, "ravan-history sync") end
  if tty == nil then tty = stderr == io.stderr and core.isatty(2) end
  core.trap_signals()
  local summary
  summary, err = client:sync {
    phones = o.phones, db = o.db, include_transcripts = o.transcripts,
    follow = o.follow, interval = o.interval, rate_limit = o.rate,
    page_size = o.page_size,
    stop = function() return core.signalled() ~= nil end,
    progress = tty and function(s) stderr:write("\r\27[K", M.progress_line(s)) end or nil,
  }
  if tty then stderr:write("\r\27[K") end
  client:close()
  if not summary then return cli.fail(stderr, err, "ravan-history sync") end
  for _, e in ipairs(summary.errors) do
    stderr:write("ravan-history sync: ", e.phone, ": ", tostring(e.error), "\n")
  end
  stdout:write(M.summary_line(summary), "\n")
  if core.signalled() then return 130 end
  return #summary.errors > 0 and 1 or 0
end

return M
