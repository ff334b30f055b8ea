-- ravan-history PHONE: a phone number's call history as a table, JSON,
-- NDJSON or CSV; one page, or every call through the lazy pager (--all).
-- `parse` is pure so specs can test it without a server; `main` glues it
-- and the writers to the API and the streams.

-- ravan first: when ravan.core cannot be loaded, it says why on one line.
local ravan = require "ravan"
local args = require "ravan.cli.args"
local core = require "ravan.core"
local defaults = require "ravan.defaults"
local output = require "ravan.cli.output"

local M = {}

local PROGRAM = "ravan-history"

M.USAGE = [=[
Usage: ravan-history PHONE [--page N] [--page-size N] [--transcripts]
                           [--all [--limit N]] [--format FORMAT] [--json]
       ravan-history sync PHONE... --db URL ...  (see ravan-history sync --help)
       ravan-history report [PHONE...] [--db URL] ...  (see ravan-history report --help)

Shows the calls where PHONE (E.164, e.g. +14155550100) was caller or
callee, from the Ravan.ai API.

Options:
  --page N          page to show (default 1); with --all, the first page
  --page-size N     calls per page, 1 to {max_page_size} (default: the server's, 20;
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
M.USAGE = M.USAGE:gsub("{([%w_]+)}", {
  page_size = defaults.pager.page_size, base_url = defaults.client.base_url,
  max_page_size = core.LIMITS.page_size,
})
local FORMATS = { table = true, json = true, ndjson = true, csv = true }

-- The library names what it checks by its Lua field; the user typed a flag.
local WORDS = {
  phone = "PHONE", page = "--page", page_size = "--page-size", limit = "--limit",
  include_transcripts = "--transcripts",
}

-- --json is kept from before --format existed; both may be given only if
-- they agree.
local function set_format(o, format)
  if o.format and o.format ~= format then
    return "--format " .. o.format .. " and --format " .. format .. " conflict"
  end
  o.format = format
end

local SPEC = {
  flags = {
    ["--transcripts"] = "transcripts", ["--all"] = "all",
    ["--help"] = "help", ["-h"] = "help", ["--version"] = "version",
    ["--json"] = function(o) return set_format(o, "json") end,
  },
  valued = {
    ["--page"] = args.integer "page", ["--page-size"] = args.integer "page_size",
    ["--limit"] = args.integer "limit",
    ["--format"] = function(o, value)
      if not FORMATS[value] then return "--format needs one of table, json, ndjson, csv" end
      return set_format(o, value)
    end,
  },
  positional = function(o, a)
    if o.phone then return "unexpected argument " .. args.quoted(a) end
    o.phone = a
  end,
}

-- Returns the parsed options, or nil and a usage message. Ranges are left
-- to the library's validation so the CLI and the API cannot disagree.
function M.parse(argv)
  local o, msg = args.parse(argv, SPEC)
  if not o then return nil, msg end
  if not (o.help or o.version or o.phone) then return nil, "PHONE is required" end
  if o.limit and not o.all then return nil, "--limit needs --all" end
  o.format = o.format or "table"
  return o
end

local function fail(stderr, err)
  return args.fail(stderr, err, PROGRAM, WORDS)
end

local function write_failed(stderr, out)
  return args.write_failed(stderr, PROGRAM, out)
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
    w = w or output.writer(o.format, out, o.phone, pretty)
    w.page(res)
    if not out:flush() then
      pager:close()
      return write_failed(stderr, out)
    end
    if tty then stderr:write(output.progress_line(pager:stats(), core.now() - started)) end
  end
  local stats = pager:stats()
  w = w or output.writer(o.format, out, o.phone, pretty)
  w.finish(stats.total_count)
  if not out:flush() then return write_failed(stderr, out) end
  if tty then
    stderr:write(output.progress_line(stats, core.now() - started), ", done\n")
  end
  return 0
end

-- Returns the exit code. `tty` (whether to draw progress) defaults to stderr being a terminal;
-- JSON is indented when stdout is one.
function M.main(argv, stdout, stderr, tty)
  local out = output.checked(stdout)
  local o, status = args.opening(M, PROGRAM, argv, out, stderr)
  if not o then return status end
  if o.version then
    out:write("ravan-history ", ravan.VERSION, " (libcurl ", core.CURL_VERSION, ", ",
      rawget(_G, "jit") and jit.version or _VERSION, ")\n")
    return args.flushed(stderr, PROGRAM, out)
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
    out:write(output.page_json(res, pretty), "\n")
  elseif o.format == "table" then
    out:write(table.concat(output.table_lines(res, o.phone), "\n"), "\n")
  else
    local w = output.writer(o.format, out, o.phone)
    w.page(res)
    w.finish(res.total_count)
  end
  return args.flushed(stderr, PROGRAM, out)
end

return M
