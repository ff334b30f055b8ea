-- The client-flavour interface is written down once, in lua/ravan/surface.lua's header: every
-- flavour implements all of it, and the pager and the surface call nothing that is not in it.
local proc = require "spec.support.proc"
local ravan = require "ravan"
local openresty = require "ravan.openresty"

local header = proc.read_file("lua/ravan/surface.lua"):match("^(.-)\nlocal ")

local function listed(prefix)
  local names, n = {}, 0
  for name in header:gmatch("\n%-%-%s+" .. prefix .. ":([%w_]+)%(") do
    names[name], n = true, n + 1
  end
  return names, n
end

local HOOKS, hook_count = listed("client")
local PREFETCHER, prefetcher_count = listed("pf")

describe("the client-flavour interface", function()
  it("lists the hooks and the prefetcher's methods", function()
    assert.are.equal(5, hook_count)
    assert.are.equal(4, prefetcher_count)
  end)

  it("is implemented whole by the plain client and its prefetcher", function()
    local c = assert(ravan.new { api_key = "rk_spec" })
    for name in pairs(HOOKS) do assert.is_function(c[name], name) end
    local pf = assert(c:_prefetcher({ phone = "+14155550100" }, 2))
    for name in pairs(PREFETCHER) do assert.is_function(pf[name], name) end
    pf:close()
    c:close()
  end)

  it("is implemented whole by the OpenResty client", function()
    local c = assert(openresty.new { api_key = "rk_spec" })
    for name in pairs(HOOKS) do assert.is_function(c[name], name) end
  end)

  it("is all that the pager and the surface call", function()
    local called = 0
    for _, file in ipairs { "lua/ravan/pager/init.lua", "lua/ravan/surface.lua" } do
      local code = proc.read_file(file):gsub("%-%-[^\n]*", "")
      for name in code:gmatch("client:(_[%w_]+)%(") do
        called = called + 1
        assert.is_true(HOOKS[name], file .. " calls client:" .. name .. ", which is not listed")
      end
      for name in code:gmatch("[^%w_]self:(_[%w_]+)%(") do
        called = called + 1
        assert.is_true(HOOKS[name], file .. " calls self:" .. name .. ", which is not listed")
      end
      for name in code:gmatch("pf:([%w_]+)%(") do
        called = called + 1
        assert.is_true(PREFETCHER[name], file .. " calls pf:" .. name .. ", which is not listed")
      end
    end
    assert.is_true(called >= 8, called .. " calls found")
  end)
end)
