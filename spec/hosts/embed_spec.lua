-- examples/embed: the C host with Lua 5.4 and ravan.core linked in statically (`make embed`,
-- which `make test` runs first), against the local server.
local host = require "spec.support.host"
local mock = require "spec.support.mock"
local proc = require "spec.support.proc"

local HOST = proc.root .. "/build/embed/ravan-embed"
local ENV = mock.env()

host.describe("the embedding C host", "the host is Lua 5.4 whatever runs busted",
  { { file = HOST, by = "`make embed` (make test runs it)" } }, function(ctx)

  it("prints a phone's history from the local server", function()
    local out, status = proc.run(proc.quote(HOST) .. " examples/embed/history.lua +919876543210", ENV)
    assert.are.equal(0, status, out)
    assert.truthy(out:find("+919876543210: 3 calls in all, page 1", 1, true), out)
    assert.truthy(out:find("Support Agent", 1, true), out)
    assert.truthy(out:find("12.50", 1, true), out)
    local rows = {}
    for line in out:gmatch("\n([^\n]+)") do rows[#rows + 1] = line end
    assert.are.equal(3, #rows, out)
    assert.is_true(#rows[1] == #rows[2] and #rows[2] == #rows[3], "misaligned:\n" .. out)
  end)

  it("resolves ravan.core from package.preload, with no core.so mapped", function()
    local script = ctx.tmp .. "/maps.lua"
    local f = assert(io.open(script, "w"))
    f:write([[
      assert(package.preload["ravan.core"], "ravan.core is not preloaded")
      local ravan = require "ravan"
      local maps = assert(io.open("/proc/self/maps")):read("*a")
      assert(not maps:find("core%.so"), "a core.so is mapped:\n" .. maps)
      print("ravan " .. ravan.VERSION .. " on " .. _VERSION)
    ]])
    f:close()
    local out, status = proc.run(proc.quote(HOST) .. " " .. proc.quote(script), ENV)
    assert.are.equal(0, status, out)
    assert.truthy(out:find("on Lua 5.4", 1, true), out)
  end)

  it("reports an error from its script with a non-zero exit", function()
    local out, status = proc.run(proc.quote(HOST) .. " examples/embed/history.lua 12345", ENV)
    assert.are_not.equal(0, status)
    assert.truthy(out:find("invalid_argument", 1, true), out)
  end)

  it("runs a 60 Hz frame loop that polls once per frame and reports its frame times", function()
    mock.reset()
    mock.config { latency_ms = 100 }
    local out, status = proc.run(proc.quote(HOST) .. " --frames examples/embed/frames.lua 20", ENV)
    assert.are.equal(0, status, out)
    assert.truthy(out:find("requests=20 ok=20 failed=0", 1, true), out)
    local frames, finished = out:match("frames=(%d+) finished=(%a+)")
    assert.are.equal("yes", finished, out)
    -- The requests took 100 ms or more, so the loop kept turning meanwhile.
    assert.is_true(tonumber(frames) > 3, out)
    for _, key in ipairs({ "p50_ms", "p99_ms", "max_ms" }) do
      assert.truthy(tonumber(out:match(key .. "=([%d.]+)")), out)
    end
    assert.are.equal(20, #mock.requests())
    print("# embed frame loop: " .. out:match("frames=[^\n]*"))
  end)

  it("measures its footprint: require, the first client, and each client idle and used", function()
    local out, status = proc.run(proc.quote(HOST) .. " examples/embed/footprint.lua 50", ENV)
    assert.are.equal(0, status, out)
    local require_kb = tonumber(out:match("require_kb=(%d+)"))
    local first_kb = tonumber(out:match("first_client_kb=(%d+)"))
    local idle_kb = tonumber(out:match("client_idle_kb=([%d.]+)"))
    local used_kb = tonumber(out:match("client_used_kb=([%d.]+)"))
    assert.truthy(require_kb and first_kb and idle_kb and used_kb, out)
    -- Loose bounds: these catch a leak or a runaway buffer, not a few KiB of drift.
    assert.is_true(require_kb < 16 * 1024, out)
    assert.is_true(first_kb < 1024, out)
    assert.is_true(used_kb < 256, out)
    print(("# embed footprint: core.so %d bytes (lua5.4 build), require \"ravan\" +%d KiB RSS, first client"
      .. " +%d KiB, then per client %.1f KiB idle / %.1f KiB after one request"):format(
      proc.file_size(proc.root .. "/build/ravan/core.so") or -1, require_kb, first_kb, idle_kb, used_kb))
  end)
end)
