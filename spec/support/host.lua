-- For the specs of hosts that run ravan in a process of their own (the C host and its ARM builds,
-- LÖVE, Luanti): what each needs installed or built, checked in one place, and the frame of such
-- a spec. A host that cannot run here fails its spec, naming what provides the missing piece: on
-- this project's machines `make test` installs and builds them all, so a skip would only hide a
-- broken set-up.
local busted = require "busted"
local proc = require "spec.support.proc"

local M = {}

-- The LuaJIT build of ravan.core, which LÖVE and Luanti load into their own LuaJIT.
M.luajit_core = { file = proc.root .. "/build/luajit/ravan/core.so", by = "`make LUA=luajit` (make test runs it)" }

-- Asserts that each of `needs` is there: { command = NAME } (on PATH) or { file = PATH }, each
-- with `by`, what installs or builds it. Returns their paths, in order.
function M.need(needs)
  local paths = {}
  for i, need in ipairs(needs) do
    local path = need.file
    if need.command then
      local out, status = proc.run("command -v " .. proc.quote(need.command))
      path = status == 0 and out:gsub("%s+$", "") or nil
    elseif not proc.file_size(path) then
      path = nil
    end
    assert(path, ("%s is missing: %s"):format(need.command or need.file, need.by))
    paths[i] = path
  end
  return paths
end

-- busted's describe for a host's spec: pending where proc.skip(`once_because`) says the host does
-- not run under this Lua. Before its tests `needs` are checked and a temp dir is made, removed
-- after them: `body` is given a table that then holds `paths` (from M.need) and `tmp`.
function M.describe(name, once_because, needs, body)
  busted.describe(name, function()
    local why = proc.skip(once_because)
    if why then
      busted.pending(why)
      return
    end
    local ctx = {}
    busted.setup(function()
      ctx.paths = M.need(needs)
      ctx.tmp = proc.tmpdir()
    end)
    busted.teardown(function()
      if ctx.tmp then proc.rmdir(ctx.tmp) end
    end)
    body(ctx)
  end)
end

return M
