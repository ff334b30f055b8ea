-- The rockspec: lint-clean, its license the LICENSE file's, and the install commands the docs
-- give (README.md, docs/usage.md, docs/openresty.md), run as written for the Lua running busted,
-- offline: they install the Lua modules, the C module and the CLI into a temporary tree with no
-- warning, from which they work outside the checkout, leaving nothing behind in the checkout
-- they ran in. The installed `DIR/bin/ravan-history` needs no paths set.
local mock = require "spec.support.mock"
local proc = require "spec.support.proc"

-- The checkout's one rockspec, named for its version ("0.2.0-1"): the rock's version and, but for
-- the revision, the module's (ravan.VERSION), so a release changes no spec.
local ROCKSPEC = assert(proc.run("ls " .. proc.root .. " | grep -x 'ravan-.*\\.rockspec'"):match("^(%S+)\n$"),
  "not exactly one ravan-*.rockspec")
local ROCK_VERSION = ROCKSPEC:match("^ravan%-(.+)%.rockspec$")
local function literal(s) return (s:gsub("%p", "%%%0")) end

-- The rockspec's fields.
local function rockspec()
  local spec = {}
  local chunk = assert(loadfile(ROCKSPEC, "t", spec))
  if setfenv then setfenv(chunk, spec) end
  chunk()
  return spec
end
-- LuaJIT takes the 5.1 modules: same ABI, same install directories.
local LUA_VERSION = proc.lua == "luajit" and "5.1" or proc.lua:match("%d+%.%d+")

-- The checkout's own paths (exported by spec/run) must not leak into what is checked; the
-- commands run with the tree's paths set them explicitly.
local CLEAN = "unset LUA_PATH LUA_CPATH LUA_CPATH_5_2 LUA_CPATH_5_3 LUA_CPATH_5_4; "

local DOCS = { "README.md", "docs/usage.md", "docs/openresty.md" }

local function must(cmd, env)
  local out, status = proc.run(cmd, env)
  assert(status == 0, cmd .. "\n" .. out)
  return out
end

-- Every shell command of `text` that runs LuaRocks or something in its tree DIR: the inline code
-- spans and the lines of the code blocks, without a trailing comment.
local function luarocks_commands(text)
  local found = {}
  local function add(cmd)
    cmd = cmd:gsub("%s+#.*$", ""):gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
    if cmd:find("luarocks ", 1, true) or cmd:find("^DIR/") then found[#found + 1] = cmd end
  end
  local prose = text:gsub("```[^\n]*\n(.-)```", function(block)
    for line in block:gmatch("[^\n]+") do add(line) end
    return ""
  end)
  for span in prose:gsub("\n", " "):gmatch("`([^`]+)`") do add(span) end
  return found
end

-- The documented commands for this Lua, as { cmd, file }: its --lua-version, DIR (or, for an
-- install into the default tree, an added --tree) the temporary tree. The installs first, then
-- the rest; each once.
local function documented(tree)
  local installs, others, seen = {}, {}, {}
  for _, file in ipairs(DOCS) do
    local n = 0
    for _, cmd in ipairs(luarocks_commands(proc.read_file(file))) do
      local is_install = cmd:find("luarocks %-%-lua%-version=[%d.]+ make") ~= nil
      cmd = cmd:gsub("%-%-lua%-version=[%d.]+", "--lua-version=" .. LUA_VERSION)
      if is_install and not cmd:find("--tree=", 1, true) then cmd = cmd .. " --tree=DIR" end
      cmd = cmd:gsub("DIR", proc.quote(tree))
      if is_install then n = n + 1 end
      if not seen[cmd] then
        seen[cmd] = true
        local list = is_install and installs or others
        list[#list + 1] = { cmd = cmd, file = file }
      end
    end
    assert(n > 0, file .. " shows no luarocks make")
  end
  return installs, others
end

describe("the rockspec", function()
  local why = proc.skip()
  if why then
    pending(why)
    return
  end

  local tmp, tree, env, files_before, files_after, installs, others, outputs

  -- Every file under `dir`, one path a line, sorted.
  local function files(dir)
    return must("cd " .. proc.quote(dir) .. " && find . -type f | LC_ALL=C sort")
  end

  setup(function()
    tmp = proc.tmpdir()
    tree = tmp .. "/tree"
    installs, others = documented(tree)
    -- A copy of what the rock is built from, so that what luarocks make leaves there shows.
    must(("mkdir %s/src && cp -R src lua bin Makefile LICENSE luarocks-provided.lua %s %s/src/"):format(
      proc.quote(tmp), ROCKSPEC, proc.quote(tmp)))
    files_before = files(tmp .. "/src")
    -- No CURL_DIR or CURL_INCDIR: on Debian the defaults must find libcurl by themselves.
    outputs = {}
    for _, install in ipairs(installs) do
      outputs[#outputs + 1] = { file = install.file, cmd = install.cmd,
        out = must(("cd %s/src && %s%s"):format(proc.quote(tmp), CLEAN, install.cmd)) }
    end
    files_after = files(tmp .. "/src")
    env = { RAVAN_BASE_URL = mock.url, RAVAN_API_KEY = mock.api_key }
  end)

  teardown(function()
    if tmp then proc.rmdir(tmp) end
  end)

  it("passes luarocks lint", function()
    must("luarocks lint " .. ROCKSPEC)
  end)

  it("names the LICENSE file's license and the platforms it supports", function()
    local spec = rockspec()
    assert.are.equal("MIT", spec.description.license)
    assert.matches("^MIT License\n", proc.read_file("LICENSE"))
    assert.are.same({ "linux" }, spec.supported_platforms)
  end)

  it("is the module's version, tagged as such", function()
    local spec = rockspec()
    assert.are.equal(ROCK_VERSION, spec.version)
    assert.are.equal(require("ravan").VERSION, ROCK_VERSION:match("^(.+)%-%d+$"))
    assert.are.equal("v" .. require("ravan").VERSION, spec.source.tag)
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

  -- The documented command other than an install that contains `word`.
  local function other(word)
    for _, o in ipairs(others) do
      if o.cmd:find(word, 1, true) then return o.cmd end
    end
    error("no documented command with " .. word)
  end

  it("is installed by one command, the same in every doc, without a warning", function()
    assert.are.equal(1, #installs, "the docs disagree on how to install")
    for _, o in ipairs(outputs) do
      assert.truthy(o.out:find("ravan " .. ROCK_VERSION .. " is now installed in " .. tree, 1, true), o.out)
      for _, word in ipairs({ "Warning", "Missing", "not installed", "Error" }) do
        assert.is_nil(o.out:find(word, 1, true), o.file .. ": " .. o.cmd .. "\n" .. o.out)
      end
    end
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
    -- The documented `eval "$(luarocks path --tree=DIR)"`, then this Lua.
    local out = must(("cd %s && %s%s; %s -e %s"):format(proc.quote(tmp), CLEAN,
      other("luarocks --lua-version=" .. LUA_VERSION .. " path"), proc.lua, proc.quote(script)),
      env)
    assert.truthy(out:find("core " .. tree .. "/lib/lua/", 1, true), out)
    assert.truthy(out:find("lua @" .. tree .. "/share/lua/", 1, true), out)
    assert.truthy(out:find("calls 3", 1, true), out)
  end)

  it("installs the CLI, which runs from the tree with no paths set", function()
    -- As documented, from outside the checkout, with nothing on LUA_PATH or PATH.
    local version = must(("cd %s && %s%s"):format(proc.quote(tmp), CLEAN,
      other("/bin/ravan-history --version")))
    assert.matches("^ravan%-history " .. literal(ROCK_VERSION:match("^(.+)%-%d+$")) .. " %(libcurl [%d.]+, Lua "
      .. literal(LUA_VERSION) .. "%)", version)
    local out = must(("cd %s && %s%s/bin/ravan-history +919876543210"):format(proc.quote(tmp),
      CLEAN, proc.quote(tree)), env)
    assert.truthy(out:find("Support Agent", 1, true), out)
    assert.truthy(out:find("12.50", 1, true), out)
  end)

  it("has a launcher that finds its tree by itself, whatever LuaRocks' wrapper sets", function()
    -- With --deps-mode=none (or a tree outside LuaRocks' configuration) the wrapper sets no
    -- path: the launcher is then run as here, by the bare Lua.
    local launcher = ("%s/lib/luarocks/rocks-%s/ravan/%s/bin/ravan-history"):format(tree,
      LUA_VERSION, ROCK_VERSION)
    assert.truthy(proc.file_size(launcher), launcher)
    local out = must(("cd %s && %s%s %s +919876543210"):format(proc.quote(tmp), CLEAN, proc.lua,
      proc.quote(launcher)), env)
    assert.truthy(out:find("Support Agent", 1, true), out)
  end)
end)

describe("the release rock (`make dist`)", function()
  it("installs offline with luarocks into a fresh tree, and works from there", function()
    local why = proc.skip("the rock is built for Lua 5.4")
    if why then
      pending(why)
      return
    end
    local rock = must("make -s --no-print-directory dist"):match("(%S+%.rock)%s*$")
    assert.truthy(rock, "make dist named no rock")
    assert.matches("^build/dist/ravan%-" .. literal(ROCK_VERSION) .. "%.linux%-[%w_]+%.rock$", rock)
    local tmp = proc.tmpdir()
    local tree = tmp .. "/tree"
    local out = must(("cd %s && LUAROCKS_CONFIG=%s/luarocks-provided.lua luarocks --lua-version=5.4 install "
      .. "--tree=%s %s/%s"):format(proc.quote(tmp), proc.quote(proc.root), proc.quote(tree),
      proc.quote(proc.root), rock))
    assert.truthy(out:find("ravan " .. ROCK_VERSION .. " is now installed in " .. tree, 1, true), out)
    out = must(("cd %s && %s%s/bin/ravan-history +919876543210"):format(proc.quote(tmp), CLEAN,
      proc.quote(tree)), { RAVAN_BASE_URL = mock.url, RAVAN_API_KEY = mock.api_key })
    assert.truthy(out:find("Support Agent", 1, true), out)
    proc.rmdir(tmp)
  end)
end)
