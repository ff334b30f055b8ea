-- The rockspec: lint-clean, its license the LICENSE file's, and `luarocks make` for the Lua
-- running busted installs the Lua modules, the C module and the CLI into a temporary tree, from
-- which they work outside the checkout, leaving nothing behind in the checkout it ran in.
-- Debian's lua-cjson is not a rock, hence --deps-mode=none.
local mock = require "spec.support.mock"
local proc = require "spec.support.proc"

local ROCKSPEC = "ravan-0.1.0-1.rockspec"
-- LuaJIT takes the 5.1 modules: same ABI, same install directories.
local LUA_VERSION = proc.lua == "luajit" and "5.1" or proc.lua:match("%d+%.%d+")
local LUAROCKS = "luarocks --lua-version=" .. LUA_VERSION

-- The checkout's own paths (exported by spec/run) must not leak into what is checked; the
-- commands run with the tree's paths set them explicitly.
local CLEAN = "unset LUA_PATH LUA_CPATH LUA_CPATH_5_2 LUA_CPATH_5_3 LUA_CPATH_5_4; "

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

  local tmp, tree, env, files_before, files_after

  -- Every file under `dir`, one path a line, sorted.
  local function files(dir)
    return must("cd " .. proc.quote(dir) .. " && find . -type f | LC_ALL=C sort")
  end

  setup(function()
    tmp = proc.tmpdir()
    tree = tmp .. "/tree"
    -- A copy of what the rock is built from, so that what luarocks make leaves there shows.
    must(("mkdir %s/src && cp -R src lua bin Makefile LICENSE %s %s/src/"):format(
      proc.quote(tmp), ROCKSPEC, proc.quote(tmp)))
    files_before = files(tmp .. "/src")
    -- No CURL_DIR or CURL_INCDIR: on Debian the defaults must find libcurl by themselves.
    must(("cd %s/src && %s%s make --tree=%s --deps-mode=none %s"):format(
      proc.quote(tmp), CLEAN, LUAROCKS, proc.quote(tree), ROCKSPEC))
    files_after = files(tmp .. "/src")
    local lr_path = must(CLEAN .. LUAROCKS .. " path --lr-path --tree=" .. proc.quote(tree))
    local lr_cpath = must(CLEAN .. LUAROCKS .. " path --lr-cpath --tree=" .. proc.quote(tree))
    -- The tree first, then the Lua's defaults (where Debian's lua-cjson is).
    local cpath = lr_cpath:gsub("%s+$", "") .. ";;"
    env = {
      LUA_PATH = lr_path:gsub("%s+$", "") .. ";;",
      -- `make env` sets the versioned paths too, and 5.2+ read those first.
      LUA_CPATH = cpath, LUA_CPATH_5_2 = cpath, LUA_CPATH_5_3 = cpath, LUA_CPATH_5_4 = cpath,
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

  it("names the LICENSE file's license and the platforms it supports", function()
    local spec = {}
    local chunk = assert(loadfile(ROCKSPEC, "t", spec))
    if setfenv then setfenv(chunk, spec) end
    chunk()
    assert.are.equal("MIT", spec.description.license)
    assert.matches("^MIT License\n", proc.read_file("LICENSE"))
    assert.are.same({ "linux" }, spec.supported_platforms)
  end)

  it("leaves no build products in the checkout it was made in", function()
    assert.are.equal(files_before, files_after)
  end)

  it("installs every Lua module of lua/ravan and the C module", function()
    local modules = must("cd lua && find ravan -name '*.lua'")
    local count = 0
    for file in modules:gmatch("%S+") do
      count = count + 1
      local path = ("%s/share/lua/%s/%s"):format(tree, LUA_VERSION, file)
      assert.truthy(proc.file_size(path), path .. " is not installed")
    end
    assert.is_true(count > 20, modules)
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
