-- The rockspec: lint-clean, and `luarocks make` for the Lua running busted installs the Lua
-- modules, the C module and the CLI into a temporary tree, from which they work outside the
-- checkout. Debian's lua-cjson is not a rock, hence --deps-mode=none.
local mock = require "spec.support.mock"
local proc = require "spec.support.proc"

local ROCKSPEC = "ravan-0.1.0-1.rockspec"
-- LuaJIT takes the 5.1 modules: same ABI, same install directories.
local LUA_VERSION = proc.lua == "luajit" and "5.1" or proc.lua:match("%d+%.%d+")
local LUAROCKS = "luarocks --lua-version=" .. LUA_VERSION

-- The checkout's own paths (exported by spec/run) must not leak into what is checked; the
-- commands run with the tree's paths set them explicitly.
local CLEAN = "unset LUA_PATH LUA_CPATH; "

local function must(cmd, env)
  local out, status = proc.run(cmd, env)
  assert(status == 0, cmd .. "\n" .. out)
  return out
end

describe("the rockspec", function()
  local why = proc.skip()
  if why then
    pending(why)
    return
  end

  local tmp, tree, env

  setup(function()
    tmp = proc.tmpdir()
    tree = tmp .. "/tree"
    -- A copy of what the rock is built from: luarocks make writes objects into its sources.
    must(("mkdir %s/src && cp -R src lua bin %s %s/src/"):format(proc.quote(tmp), ROCKSPEC,
      proc.quote(tmp)))
    -- No CURL_DIR or CURL_INCDIR: on Debian the defaults must find libcurl by themselves.
    must(("cd %s/src && %s%s make --tree=%s --deps-mode=none %s"):format(
      proc.quote(tmp), CLEAN, LUAROCKS, proc.quote(tree), ROCKSPEC))
    local lr_path = must(CLEAN .. LUAROCKS .. " path --lr-path --tree=" .. proc.quote(tree))
    local lr_cpath = must(CLEAN .. LUAROCKS .. " path --lr-cpath --tree=" .. proc.quote(tree))
    -- The tree first, then the Lua's defaults (where Debian's lua-cjson is).
    env = {
      LUA_PATH = lr_path:gsub("%s+$", "") .. ";;",
      LUA_CPATH = lr_cpath:gsub("%s+$", "") .. ";;",
      RAVAN_BASE_URL = mock.url,
      RAVAN_API_KEY = mock.api_key,
    }
  end)

  teardown(function()
    if tmp then proc.rmdir(tmp) end
  end)

  it("passes luarocks lint", function()
    must("luarocks lint " .. ROCKSPEC)
  end)

  it("installs every Lua module of lua/ravan and the C module", function()
    local modules = must("ls lua/ravan")
    for file in modules:gmatch("(%S+)%.lua") do
      local path = ("%s/share/lua/%s/ravan/%s.lua"):format(tree, LUA_VERSION, file)
      assert.truthy(proc.file_size(path), path .. " is not installed")
    end
    assert.truthy(proc.file_size(("%s/lib/lua/%s/ravan/core.so"):format(tree, LUA_VERSION)))
  end)

  it("is what `require \"ravan\"` loads outside the checkout, and it works", function()
    local script = [[
      local ravan = require "ravan"
      local maps = assert(io.open("/proc/self/maps")):read("*a")
      print("core " .. (maps:match("(%S+/ravan/core%.so)") or "?"))
      print("lua " .. debug.getinfo(ravan.new, "S").source)
      local res = assert(ravan.phone_history { phone = "+919876543210" })
      print("calls " .. #res.calls)
    ]]
    local out = must(("cd %s && %s -e %s"):format(proc.quote(tmp), proc.lua, proc.quote(script)), env)
    assert.truthy(out:find("core " .. tree .. "/lib/lua/", 1, true), out)
    assert.truthy(out:find("lua @" .. tree .. "/share/lua/", 1, true), out)
    assert.truthy(out:find("calls 3", 1, true), out)
  end)

  it("installs the CLI, which runs from the tree", function()
    local out = must(("cd %s && %s/bin/ravan-history +919876543210"):format(proc.quote(tmp),
      proc.quote(tree)), env)
    assert.truthy(out:find("Support Agent", 1, true), out)
    assert.truthy(out:find("12.50", 1, true), out)
  end)
end)
