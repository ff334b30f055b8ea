-- What a newcomer meets first: `make help`, `make demo`, `make embed`, and a tree that speaks of
-- the project rather than of its issue tracker.
local mock = require "spec.support.mock"
local proc = require "spec.support.proc"

describe("the project's first hour", function()
  local why = proc.skip("it checks files and make targets, not the Lua running busted")
  if why then
    pending(why)
    return
  end

  it("names no issue numbers in code, specs, docs or the Makefile", function()
    -- The pattern is split so that this file does not match it.
    local out, status = proc.run("git grep -n -i -E " .. proc.quote("issue" .. "[s]? #?[0-9]+"))
    if status == 128 then return pending("not a git checkout: " .. out) end
    assert.are.equal("", out)
  end)

  it("`make help` lists the targets", function()
    local out, status = proc.run("make -s help")
    assert.are.equal(0, status, out)
    for _, target in ipairs({ "make demo", "make test", "make embed", "make docs", "make bench" }) do
      assert.truthy(out:find(target, 1, true), target .. " missing:\n" .. out)
    end
  end)

  it("`make embed` says how to run the host", function()
    local out, status = proc.run("make -s embed")
    assert.are.equal(0, status, out)
    assert.matches("build/embed/ravan%-embed examples/embed/history%.lua %+%d+", out)
  end)

  it("the demo writes no terminal escapes when its output is not a terminal", function()
    local out, status = proc.run("examples/demo.sh | cat", {
      RAVAN_MOCK_URL = mock.url, LUA = proc.lua,
    })
    assert.are.equal(0, status, out)
    assert.is_nil(out:find("\27", 1, true), "an escape sequence in:\n" .. out)
    assert.matches("%$ ravan%-history %+919876543210", out)
    assert.matches("total of 3 calls", out)
    assert.matches("10000 calls in", out)
    assert.matches("3 phones: 0 inserted, 0 updated, 203 unchanged, 3 requests", out)
    assert.matches("requests=50 ok=50 failed=0", out)
    assert.matches("frames=%d+ finished=yes", out)
  end)
end)
