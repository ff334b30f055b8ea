-- `ravan-history sync`: keeps a database in step with phones' call
-- histories (client:sync), with a progress line on a terminal and a
-- summary at the end. `parse`, `read_phones` and the line formatters are
-- pure, so specs can test them without a server.

-- ravan first: when ravan.core cannot be loaded, it says why on one line.
local ravan = require "ravan"
local args = require "ravan.cli.args"
local core = require "ravan.core"
local defaults = require "ravan.defaults"
local output = require "ravan.cli.output"
local validate = require "ravan.validate"

local M = {}

M.USAGE = [=[
Usage: ravan-history sync PHONE... [--phones-file FILE] --db URL
                          [--transcripts] [--follow [--interval S]]
                          [--rate N/S] [--page-size N] [--lookback S]
                          [--reconcile [--purge]] [--worker [--lease S]]
                          [--recordings DIR]

Copies the call histories of the PHONEs (E.164) into a database, and on
later runs only what is new or changed. Safe to interrupt at any moment:
the next run goes on from where it stopped, and no call is stored twice.

Options:
  --phones-file FILE  more phones: one a line, or a CSV with a phone column
  --db URL            sqlite:PATH or postgresql://user@host/dbname
  --transcripts       also store each call's transcript
  --follow            keep syncing, every --interval seconds (default {interval})
  --interval S        seconds between syncs with --follow
  --rate N/S          at most N requests every S seconds (e.g. 50/1);
                      default: learnt from the server's 429s and headers
  --page-size N       calls per request, 1 to {max_page_size} (default {page_size})
  --lookback S        read again every call within S seconds of the newest
                      (default {lookback}; 0: the first page only)
  --reconcile         read every phone's whole history now and mark calls
                      gone from the server deleted (deleted_at); otherwise
                      each phone is reconciled once a day
  --purge             with a reconciliation, remove calls gone from the
                      server instead of marking them
  --worker            share the phones and the rate with the other workers
                      on the same PostgreSQL --db (each phone synced by one
                      worker at a time)
  --lease S           seconds a dead worker's phones wait before another
                      takes them over (default {lease})
  --recordings DIR    also download the calls' recordings into DIR (see
                      ravan-history recordings), noted in the database
  -h, --help          show this help

Environment: RAVAN_API_KEY or RAVAN_TOKEN, RAVAN_BASE_URL (as for
ravan-history).

Exit status: 0 when every phone synced, 1 when some failed (each is named
on stderr) or the database failed, 2 on a usage error, 130 when stopped by
SIGINT or SIGTERM (what was synced until then is kept).
]=]
M.USAGE = M.USAGE:gsub("{([%w_]+)}", {
  interval = defaults.sync.interval, page_size = defaults.sync.page_size,
  lookback = defaults.sync.lookback, lease = defaults.sync.lease,
  max_page_size = core.LIMITS.page_size,
})

local PROGRAM = "ravan-history sync"

-- The library names what it checks by its Lua field; the user typed a flag.
local WORDS = {
  phones = "PHONE", db = "--db", include_transcripts = "--transcripts",
  interval = "--interval", rate_limit = "--rate", page_size = "--page-size",
  lookback = "--lookback", reconcile = "--reconcile", purge = "--purge",
  worker = "--worker", lease = "--lease",
  recordings = "--recordings",
}

local nonempty = args.nonempty

local SPEC = {
  flags = {
    ["--transcripts"] = "transcripts", ["--follow"] = "follow",
    ["--reconcile"] = "reconcile", ["--purge"] = "purge", ["--worker"] = "worker",
    ["--help"] = "help", ["-h"] = "help",
  },
  valued = {
    ["--phones-file"] = nonempty "phones_file", ["--db"] = nonempty "db",
    ["--interval"] = nonempty "interval", ["--rate"] = nonempty "rate",
    ["--page-size"] = args.integer "page_size", ["--lookback"] = nonempty "lookback",
    ["--lease"] = nonempty "lease", ["--recordings"] = nonempty "recordings",
  },
  positional = args.phone_word,
}

-- `argv` are the words after "sync". Returns the options, or nil and a
-- usage message. Phone syntax is left to the library's validation.
function M.parse(argv)
  local o, msg = args.parse(argv, SPEC)
  if not o then return nil, msg end
  o.phones = o.phones or {}
  if o.help then return o end
  if o.interval then
    o.interval = tonumber(o.interval)
    if not o.interval or o.interval <= 0 then return nil, "--interval needs seconds > 0" end
    if not o.follow then return nil, "--interval needs --follow" end
  end
  if o.lookback then
    o.lookback = tonumber(o.lookback)
    if not o.lookback or o.lookback < 0 then return nil, "--lookback needs seconds >= 0" end
  end
  if o.purge and not o.reconcile then return nil, "--purge needs --reconcile" end
  if o.lease then
    o.lease = tonumber(o.lease)
    if not o.lease or o.lease <= 0 then return nil, "--lease needs seconds > 0" end
    if not o.worker then return nil, "--lease needs --worker" end
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

-- What a phones file may hold, so that a wrong path (/dev/zero, a log)
-- fails at once instead of filling the memory.
M.MAX_LINE = 4096
M.MAX_LINES = 100000

local CHUNK = 4096

-- Calls `each(line)` for each line `read(n)` gives, without its end of
-- line. Returns true, or nil and what is wrong, prefixed "NAME:LINE: ".
local function each_line(read, name, each)
  local pending, number, ended = "", 0, false
  while true do
    local nl = pending:find("\n", 1, true)
    if not nl and not ended then
      if #pending > M.MAX_LINE then
        return nil, name .. ":" .. number + 1 .. ": a line longer than " .. M.MAX_LINE .. " bytes"
      end
      local chunk, err = read(CHUNK)
      if err then return nil, name .. ": " .. tostring(err) end
      if chunk then pending = pending .. chunk else ended = true end
    elseif nl or pending ~= "" then
      nl = nl or #pending + 1
      number = number + 1
      if number > M.MAX_LINES then return nil, name .. ": more than " .. M.MAX_LINES .. " lines" end
      if nl > M.MAX_LINE + 1 then
        return nil, name .. ":" .. number .. ": a line longer than " .. M.MAX_LINE .. " bytes"
      end
      local msg = each(pending:sub(1, nl - 1))
      if msg then return nil, name .. ":" .. number .. ": " .. msg end
      pending = pending:sub(nl + 1)
    else
      return true
    end
  end
end

-- Phones through `read(n)`: one a line (blank lines and # comments
-- skipped), or a CSV whose header names a `phone` column. Each is checked
-- as it is read, so a bad one is named by its line.
local function phones_of(read, name)
  local out, col, plain = {}, nil, false
  local function add(v)
    local phone, why = validate.checks.phone("phone", trim(v))
    if not phone then return why end
    out[#out + 1] = phone
  end
  local ok, err = each_line(read, name, function(line)
    line = trim(line:gsub("\r$", ""))
    if line == "" or line:find("^#") then return nil end
    if plain then return add(line) end
    if col then
      local v = csv_fields(line)[col]
      if v and trim(v) ~= "" then return add(v) end
      return nil
    end
    local header = csv_fields(line)
    for i = 1, #header do
      if trim(header[i]):lower() == "phone" then col = i end
    end
    if col then return nil end
    if #header > 1 then return "a CSV phones file needs a 'phone' column" end
    plain = true
    return add(line)
  end)
  if not ok then return nil, err end
  return out
end

--- The phones of a phones file's `text`; `name` names it in errors.
function M.read_phones(text, name)
  local pos = 1
  return phones_of(function(n)
    if pos > #text then return nil end
    pos = pos + n
    return text:sub(pos - n, pos - 1)
  end, name or "phones file")
end

--- The phones of the file at `path`, read a piece at a time.
function M.read_phones_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, "--phones-file: " .. tostring(err) end
  local phones
  phones, err = phones_of(function(n) return f:read(n) end, path)
  f:close()
  return phones, err
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
  if (s.reconciled or 0) > 0 or (s.deleted or 0) > 0 then
    line = line .. string.format(", %d deleted, %d reconciled", s.deleted, s.reconciled)
  end
  if #s.errors > 0 then line = line .. string.format(", %d failed", #s.errors) end
  local r = s.recordings
  if r then
    line = line .. string.format("; recordings: %d downloaded, %d skipped, %d failed",
      r.downloaded, r.skipped, r.failed)
  end
  if s.stopped then line = line .. ", stopped" end
  return line
end

-- Returns the exit code. `argv` are the words after "sync".
function M.main(argv, stdout, stderr, tty)
  local o, status = args.opening(M, PROGRAM, argv, output.checked(stdout), stderr)
  if not o then return status end
  if o.phones_file then
    local more, err = M.read_phones_file(o.phones_file)
    if not more then
      stderr:write(PROGRAM, ": ", args.printable(err), "\n")
      return 2
    end
    for i = 1, #more do o.phones[#o.phones + 1] = more[i] end
  end
  local client, err = ravan.new()
  if not client then return args.fail(stderr, err, PROGRAM, WORDS) end
  if tty == nil then tty = stderr == io.stderr and core.isatty(2) end
  core.trap_signals()
  local summary
  summary, err = client:sync {
    phones = o.phones, db = o.db, include_transcripts = o.transcripts,
    follow = o.follow, interval = o.interval, rate_limit = o.rate,
    page_size = o.page_size, lookback = o.lookback, reconcile = o.reconcile, purge = o.purge,
    worker = o.worker, lease = o.lease, recordings = o.recordings,
    stop = function() return core.signalled() ~= nil end,
    progress = tty and function(s) stderr:write("\r\27[K", M.progress_line(s)) end or nil,
  }
  if tty then stderr:write("\r\27[K") end
  client:close()
  if not summary then return args.fail(stderr, err, PROGRAM, WORDS) end
  for _, e in ipairs(summary.errors) do
    stderr:write("ravan-history sync: ", e.phone, ": ", tostring(e.error), "\n")
  end
  for _, e in ipairs(summary.recording_errors or {}) do
    stderr:write("ravan-history sync: recording ", args.printable(e.id), ": ", tostring(e.error), "\n")
  end
  stdout:write(M.summary_line(summary), "\n")
  if core.signalled() then return 130 end
  local failed = #summary.errors + #(summary.recording_errors or {})
  return failed > 0 and 1 or 0
end

return M
