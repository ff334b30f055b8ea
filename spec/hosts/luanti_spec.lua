-- examples/luanti/ravan_history: the mod in a headless Luanti (Minetest) server with a throwaway
-- world, against the local server with 200 ms of latency and one 503 to retry. The mod's self
-- test runs /calls without a player client; the answer and the figures are read from the
-- server's log.
local host = require "spec.support.host"
local mock = require "spec.support.mock"
local proc = require "spec.support.proc"

local SERVER = "/usr/games/minetestserver"
local PHONE = mock.phones.p250

local CONF = [[
secure.trusted_mods = ravan_history
ravan_history.selftest = %s
server_announce = false
bind_address = 127.0.0.1
dedicated_server_step = 0.09
debug_log_level = action
]]

host.describe("the Luanti mod", "the server runs its own LuaJIT whatever runs busted",
  { { file = SERVER, by = ".ci/deps installs minetest-server" }, host.luajit_core }, function(ctx)
  it("answers /calls from a globalstep task, the server stepping on meanwhile", function()
    local tmp = ctx.tmp
    local world = tmp .. "/world"
    local out, status = proc.run(("mkdir -p %s/worldmods && cp -r examples/luanti/ravan_history %s/worldmods/")
      :format(proc.quote(world), proc.quote(world)))
    assert.are.equal(0, status, out)
    local f = assert(io.open(world .. "/world.mt", "w"))
    f:write("gameid = devtest\nbackend = dummy\nplayer_backend = dummy\nauth_backend = files\n")
    f:close()
    f = assert(io.open(tmp .. "/minetest.conf", "w"))
    f:write(CONF:format(PHONE))
    f:close()

    mock.reset()
    mock.config { latency_ms = 200 }
    mock.fault { kind = "status", status = 503, phone = PHONE }
    -- The server shuts itself down when the self test is done; timeout stops it if it does not.
    -- HOME keeps its user directory in the temp dir too.
    local port = 30000 + math.random(0, 9999)
    out, status = proc.run(("eval \"$(make -s env LUA=luajit)\"; HOME=%s timeout -k 5 120 %s --config %s"
      .. " --world %s --port %d --logfile %s --color never"):format(proc.quote(tmp), SERVER,
      proc.quote(tmp .. "/minetest.conf"), proc.quote(world), port, proc.quote(tmp .. "/debug.txt")),
      mock.env())
    local got = mock.requests()
    mock.reset()
    assert.are.equal(0, status, out)
    local log = proc.read_file(tmp .. "/debug.txt")

    -- The 503, then its retry: each a request for the latest 5 calls.
    assert.are.equal(2, #got, log)
    assert.are.same({ 503, 200 }, { got[1].status, got[2].status })
    for _, r in ipairs(got) do assert.truthy(r.query:find("page_size=5", 1, true), r.query) end

    -- The answer came, in chat, with the latest calls as the server has them.
    local latest = mock.client():phone_history { phone = PHONE, page_size = 5 }
    local answer = {}
    for line in log:gmatch("%[ravan_history%] to selftest: ([^\n]*)") do answer[#answer + 1] = line end
    assert.are.equal(("%s: %d calls, the latest 5:"):format(PHONE, latest.total_count), answer[1], log)
    assert.are.equal(6, #answer, log)
    for i, call in ipairs(latest.calls) do
      assert.truthy(answer[i + 1]:find(call.agent_name, 1, true), answer[i + 1])
      assert.truthy(answer[i + 1]:find(call.cost_total .. "$"), answer[i + 1])
    end
    assert.falsy(log:find("ERROR[^\n]*ravan"), log)

    -- The server stepped on while the answer was on its way (200 ms, a back-off, 200 ms), and no
    -- step spent anywhere near its budget in ravan.
    local figures = assert(log:match("selftest done: ([^\n]*)"), log)
    local steps = tonumber(figures:match("steps=(%d+)"))
    local p99 = tonumber(figures:match("ravan_p99_ms=([%d.]+)"))
    local max = tonumber(figures:match("ravan_max_ms=([%d.]+)"))
    local budget = tonumber(figures:match("step_budget_ms=(%d+)"))
    print("# Luanti: " .. figures)
    assert.are.equal(90, budget, figures)
    assert.is_true(steps >= 4, figures)
    assert.is_true(max < budget / 10 and p99 <= max, figures)
  end)
end)
