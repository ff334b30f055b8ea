-- For the specs that run programs (the examples, the C host, nginx, luarocks): which Lua busted
-- runs on, shell quoting, and running a command for its output and exit status.
local M = {}

-- The interpreter running this spec, by its Debian command name.
M.lua = rawget(_G, "jit") and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))

-- Specs of things that do not depend on the Lua running busted (nginx's own LuaJIT, the Lua 5.4
-- C host) run once per `make test`: under the first Lua of $LUAS, and are pending under the rest.
M.primary = (os.getenv("LUAS") or M.lua):match("%S+")
M.is_primary = M.primary == M.lua

-- Under `make memcheck` busted runs in valgrind without tracing children, so specs whose subject
-- is another process (nginx, the C host, luarocks, example scripts) would check nothing there.
M.memcheck = os.getenv("MEMCHECK") == "1"

-- Why a spec of other processes is pending here, or nil when it runs. `once_because`, when
-- given, says why it runs under the primary Lua only.
function M.skip(once_because)
  if M.memcheck then
    return "its subject is another process, which valgrind does not trace here"
  end
  if once_because and not M.is_primary then
    return once_because .. ": checked once, under " .. M.primary
  end
end

M.root = assert(os.getenv("PWD"), "no PWD"):gsub("/$", "")

function M.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- `env` is a table of variables exported to the command (which may be a whole shell line).
function M.command(cmd, env)
  local exports = {}
  for k, v in pairs(env or {}) do
    exports[#exports + 1] = k .. "=" .. M.quote(v)
  end
  if #exports == 0 then return cmd end
  table.sort(exports)
  return "export " .. table.concat(exports, " ") .. "; " .. cmd
end

-- Runs `cmd` through the shell and returns its stdout and stderr together, and its exit status.
-- The status is echoed by the shell itself: io.popen's close gives no status on 5.1 and LuaJIT.
function M.run(cmd, env)
  local p = assert(io.popen("{ " .. M.command(cmd, env) .. "; } 2>&1; echo \"__exit=$?\""))
  local out = p:read("*a")
  p:close()
  local text, status = out:match("^(.-)__exit=(%d+)%s*$")
  return text, tonumber(status)
end

-- M.run for a command that must succeed: its output, or an error with the output.
function M.sh(cmd)
  local out, status = M.run(cmd)
  assert(status == 0, cmd .. ": " .. tostring(out))
  return out
end

function M.file_size(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local size = f:seek("end")
  f:close()
  return size
end

function M.read_file(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

-- A fresh directory under $TMPDIR, removed by `M.rmdir`.
function M.tmpdir()
  local out, status = M.run("mktemp -d \"${TMPDIR:-/tmp}/ravan-spec.XXXXXX\"")
  assert(status == 0, out)
  return (out:gsub("%s+$", ""))
end

function M.rmdir(dir)
  assert(dir:find("/ravan%-spec%.%w+$"), "not a spec temp dir: " .. dir)
  M.run("rm -rf " .. M.quote(dir))
end

return M
