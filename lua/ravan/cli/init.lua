-- ravan-history: dispatch to its commands (`ravan.cli.history`, the
-- default, `ravan.cli.sync`, `ravan.cli.report` and `ravan.cli.recordings`), and the process
-- around them.

-- The history command first: when ravan.core cannot be loaded, it says why on one line.
local history = require "ravan.cli.history"
local args = require "ravan.cli.args"
local core = require "ravan.core"
local report = require "ravan.cli.report"
local sync = require "ravan.cli.sync"
local recordings = require "ravan.cli.recordings"

local M = {}

--- Runs the command line `argv` and returns the exit status;
-- `stdout`/`stderr` default to the process's. `tty` (whether to draw
-- progress) defaults to stderr being a terminal.
function M.main(argv, stdout, stderr, tty)
  stdout, stderr = stdout or io.stdout, stderr or io.stderr
  local command = ({ sync = sync, report = report, recordings = recordings })[argv[1]]
  if command then
    local rest = {}
    for i = 2, #argv do rest[i - 1] = argv[i] end
    return command.main(rest, stdout, stderr, tty)
  end
  return history.main(argv, stdout, stderr, tty)
end

-- The process: Ctrl-C ends it at once with status 130 (the shell's code
-- for SIGINT), and a defect in the CLI is one line, not a traceback.
function M.run(argv)
  core.default_sigint()
  local ok, code = pcall(M.main, argv)
  if ok then return code end
  io.stderr:write("ravan-history: ", args.printable((tostring(code):gsub("%s+", " "))), "\n")
  return 1
end

return M
