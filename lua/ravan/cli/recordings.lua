-- `ravan-history recordings`: downloads the recordings of phones' calls
-- into a directory (client:recordings), with a progress line on a terminal,
-- a line per call that has none or failed, and a summary at the end.

-- ravan first: when ravan.core cannot be loaded, it says why on one line.
local ravan = require "ravan"
local args = require "ravan.cli.args"
local core = require "ravan.core"
local output = require "ravan.cli.output"

local M = {}

M.USAGE = [[
Usage: ravan-history recordings PHONE... --dir DIR [--since T] [--until T]

Downloads the recordings of the PHONEs' calls (E.164) into DIR, as
<call id>.<extension>, several at once. A download cut short is resumed,
and a file already complete is skipped: running it again fetches only
what is new. The API key goes to the API's own origin only.

Options:
  --dir DIR    where the files go (it must exist)
  --since T    only calls started at or after T (2026-01-31, or
               2026-01-31T12:00:00Z; UTC)
  --until T    only calls started before T
  -h, --help   show this help

Environment: RAVAN_API_KEY or RAVAN_TOKEN, RAVAN_BASE_URL (as for
ravan-history).

Exit status: 0 when every recording there is was fetched (calls without
one, 404 and 410 are reported, not failures), 1 when some failed or the
directory could not be written, 2 on a usage error.
]]

local PROGRAM = "ravan-history recordings"

-- The library names what it checks by its Lua field; the user typed a flag.
local WORDS = { phones = "PHONE", dir = "--dir", since = "--since", ["until"] = "--until" }

local SPEC = {
  flags = { ["--help"] = "help", ["-h"] = "help" },
  valued = {
    ["--dir"] = args.nonempty "dir", ["--since"] = args.nonempty "since",
    ["--until"] = args.nonempty "until",
  },
  positional = args.phone_word,
}

-- `argv` are the words after "recordings". The options, or nil and a usage message.
function M.parse(argv)
  local o, msg = args.parse(argv, SPEC)
  if not o then return nil, msg end
  if o.help then return o end
  if not o.phones then return nil, "give PHONE..." end
  if not o.dir then return nil, "--dir is required" end
  return o
end

-- "120 recordings: 80 downloaded, 30 skipped, 10 without one, 0 failed, 412.5 MB"
function M.summary_line(s)
  return string.format("%d recordings: %d downloaded, %d skipped, %d without one, %d failed, %.1f MB",
    #s.recordings, s.downloaded, s.skipped, s.missing, s.failed, s.bytes / 1e6)
end

local WHY = { none = "no recording", missing = "not found (404)", gone = "gone (410)" }

function M.main(argv, stdout, stderr, tty)
  local o, status = args.opening(M, PROGRAM, argv, output.checked(stdout), stderr)
  if not o then return status end
  local client, err = ravan.new()
  if not client then return args.fail(stderr, err, PROGRAM, WORDS) end
  if tty == nil then tty = stderr == io.stderr and core.isatty(2) end
  local summary
  summary, err = client:recordings {
    phones = o.phones, dir = o.dir, since = o.since, ["until"] = o["until"],
    progress = tty and function(p)
      stderr:write("\r\27[K", string.format("%d/%d recordings", p.done, p.total))
    end or nil,
  }
  if tty then stderr:write("\r\27[K") end
  client:close()
  if not summary then return args.fail(stderr, err, PROGRAM, WORDS) end
  for _, r in ipairs(summary.recordings) do
    local why = WHY[r.outcome] or (r.error and tostring(r.error):gsub("^ravan: ", ""))
    if why then stderr:write(PROGRAM, ": ", args.printable(r.id), ": ", args.printable(why), "\n") end
  end
  stdout:write(M.summary_line(summary), "\n")
  return summary.failed > 0 and 1 or 0
end

return M
