-- bin/ravan-history and `require "ravan"` whatever `lua` is: run from a copy of the checkout
-- that has only the Lua 5.4 build (what `make` makes), with `lua` pointing at Lua 5.2 as
-- update-alternatives may set it, from another directory.
local mock = require "spec.support.mock"
local proc = require "spec.support.proc"

local ONE_PAGE = "^%+919876543210: page 1, 3 of 3 calls\n"

describe("the CLI launcher", function()
  local why = proc.skip("it runs Lua 5.2 and 5.4 whichever Lua runs busted")
  if why then
    pending(why)
    return
  end

  local tmp, checkout

  -- Runs `cmd` in a shell at / with none of the checkout's paths, the copy's bin/ and a `lua`
  -- that is Lua 5.2 first on PATH, and the local server's URL and key.
  local function run(cmd)
    local line = table.concat({
      "unset LUA_PATH LUA_CPATH LUA_CPATH_5_2 LUA_CPATH_5_3 LUA_CPATH_5_4",
      "export PATH=" .. proc.quote(tmp .. "/alt:" .. checkout .. "/bin:") .. "\"$PATH\"",
      "cd /",
      cmd,
    }, "; ")
    return proc.run(line, mock.env())
  end

  setup(function()
    tmp = proc.tmpdir()
    checkout = tmp .. "/ravan"
    local out, status = proc.run(table.concat({
      ("mkdir -p %s/build/ravan %s/alt"):format(proc.quote(checkout), proc.quote(tmp)),
      ("cp -R Makefile bin lua examples %s/"):format(proc.quote(checkout)),
      ("cp build/ravan/core.so %s/build/ravan/"):format(proc.quote(checkout)),
      ("ln -s \"$(command -v lua5.2)\" %s/alt/lua"):format(proc.quote(tmp)),
    }, " && "))
    assert(status == 0, out)
  end)

  teardown(function()
    if tmp then proc.rmdir(tmp) end
  end)

  before_each(mock.reset)

  it("runs from PATH when `lua` is another Lua than the build's", function()
    local out, status = run("lua -v 2>&1; ravan-history +919876543210")
    assert.are.equal(0, status, out)
    assert.matches("^Lua 5%.2", out)
    assert.matches("\n%+919876543210: 3 calls, page 1 of 1\n", out)
    assert.matches("Support Agent", out)
  end)

  it("finds its checkout without `make env`, run by Lua 5.4 from elsewhere", function()
    local out, status = run("lua5.4 " .. proc.quote(checkout .. "/bin/ravan-history")
      .. " +919876543210 --format ndjson")
    assert.are.equal(0, status, out)
    assert.matches('^{"id":"550e8400%-e29b%-41d4%-a716%-446655440000"', out)
  end)

  it("runs through a symlink on PATH, which leads back to its checkout", function()
    local out, status = run(("mkdir -p %s/links && ln -sf %s %s/links/ && PATH=%s:\"$PATH\" "
      .. "ravan-history +919876543210 --page-size 1"):format(proc.quote(tmp),
      proc.quote(checkout .. "/bin/ravan-history"), proc.quote(tmp), proc.quote(tmp .. "/links")))
    assert.are.equal(0, status, out)
    assert.matches("^%+919876543210: 3 calls, page 1 of 3", out)
  end)

  it("says in one line that it cannot find its modules, away from any checkout", function()
    local out, status = run(("cp %s %s/ && lua5.4 %s/ravan-history --version"):format(
      proc.quote(checkout .. "/bin/ravan-history"), proc.quote(tmp), proc.quote(tmp)))
    assert.are.equal(1, status, out)
    assert.are.equal("ravan-history: cannot find ravan.cli: run bin/ravan-history from a "
      .. "checkout (or a link to it), or install the rock\n", out)
  end)

  it("run by a Lua that has no build, runs the CLI on the Lua that has one", function()
    local out, status = run("lua5.2 " .. proc.quote(checkout .. "/bin/ravan-history")
      .. " +919876543210 --page-size 1")
    assert.are.equal(0, status, out)
    assert.matches("3 calls, page 1 of 3", out)
    out, status = run("lua5.2 " .. proc.quote(checkout .. "/bin/ravan-history") .. " --page-size 0")
    assert.are.equal(2, status, out)
  end)

  it("after `make env`, a script run by `lua` works or says in one line what to build", function()
    local env = "eval \"$(make -s -C " .. proc.quote(checkout) .. " env)\"; "
    local script = proc.quote(checkout .. "/examples/one_page.lua") .. " +919876543210"
    local out, status = run(env .. "lua " .. script)
    assert.are.equal(1, status, out)
    assert.are.equal("lua: ravan.core is not built for lua5.2: run `make LUA=lua5.2` in the "
      .. "checkout\n", out)
    out, status = run(env .. "lua5.4 " .. script)
    assert.are.equal(0, status, out)
    assert.matches(ONE_PAGE, out)
  end)

  it("says in one line that a ravan.core was built for another Lua", function()
    local out, status = run("LUA_CPATH_5_2=" .. proc.quote(checkout .. "/build/?.so")
      .. " LUA_PATH=" .. proc.quote(checkout .. "/lua/?.lua;" .. checkout .. "/lua/?/init.lua;;")
      .. " lua " .. proc.quote(checkout .. "/examples/one_page.lua"))
    assert.are.equal(1, status, out)
    -- The symbol named is the first of 5.4's that 5.2 lacks in the module's link order.
    assert.matches(("^lua: ravan%%.core %%(%s/build/ravan/core%%.so%%) is built for another Lua, not "
      .. "lua5%%.2 %%(undefined symbol lua_[%%w_]+%%): run `make LUA=lua5%%.2`\n$"):format(
      checkout:gsub("%p", "%%%0")), out)
  end)
end)
