-- The event-loop adapters with their real libraries against the local server: callbacks and
-- tasks run from the loop with no polling code, detach lets the loop end, and a closed client
-- lets go of the loop. Each runs where Debian ships its library for the Lua running busted
-- (Copas: 5.1, 5.2 and LuaJIT).
local core = require "ravan.core"
local mock = require "spec.support.mock"
local proc = require "spec.support.proc"

local P250 = mock.phones.p250
local EXAMPLE = mock.phones.example

-- Each adapter: how to attach, and how to run its loop until it has nothing left (bounded:
-- `seconds` at most, so a loop that never ends fails the spec instead of hanging it).
local adapters = {
  luv = {
    attach = function(lib, c, opts) return lib.attach(c, opts) end,
    run = function(seconds)
      local uv = require "luv"
      local timed_out = false
      local timer = uv.new_timer()
      timer:start(seconds * 1000, 0, function()
        timed_out = true
        uv.stop()
      end)
      timer:unref()
      uv.run()
      timer:close()
      uv.run("nowait")
      return not timed_out
    end,
  },
  cqueues = {
    setup = function() return require("cqueues").new() end,
    attach = function(lib, c, opts, cq) return lib.attach(c, cq, opts) end,
    run = function(seconds, cq)
      local deadline = core.now() + seconds
      while not cq:empty() and core.now() < deadline do assert(cq:step(0.1)) end
      return cq:empty()
    end,
  },
  copas = {
    -- Copas 1.x's loop never ends by itself: the watcher's thread is what must end.
    setup = function() return {} end,
    attach = function(lib, c, opts, ctx)
      local copas = require "copas"
      local addthread = copas.addthread
      copas.addthread = function(...)
        ctx.thread = addthread(...)
        return ctx.thread
      end
      local watch, err = lib.attach(c, opts)
      copas.addthread = addthread
      return watch, err
    end,
    run = function(seconds, ctx, finished)
      local copas = require "copas"
      local deadline = core.now() + seconds
      local function ended()
        return finished() and coroutine.status(ctx.thread) == "dead"
      end
      while not ended() and core.now() < deadline do copas.step(0.1) end
      return ended()
    end,
  },
}

-- A program that attaches a client with the default on_error and runs the loop (at most 10 s):
-- the first callback starts a second request, then raises a value whose __tostring raises too;
-- the second callback lets the loop go. It prints what it saw after the loop.
local HOSTILE = [[
local name, phone = os.getenv("LOOP"), os.getenv("PHONE")
local ravan = require "ravan"
local c = assert(ravan.new())
local lib = require("ravan.loop." .. name)
local cq = name == "cqueues" and require("cqueues").new()
local watch = assert(cq and lib.attach(c, cq) or lib.attach(c))
local second = false
local hostile = setmetatable({}, { __tostring = function() error("no text for you") end })
assert(c:start({ phone = phone }, function()
  assert(c:start({ phone = phone }, function(page)
    second = page ~= nil
    watch.detach()
  end))
  error(hostile)
end))
local ok, err
if name == "luv" then
  local uv = require "luv"
  local timer = uv.new_timer()
  timer:start(10000, 0, function() uv.stop() end)
  timer:unref()
  ok, err = pcall(uv.run)
elseif name == "cqueues" then
  local deadline = os.time() + 10
  repeat ok, err = cq:step(0.1) until not ok or cq:empty() or os.time() > deadline
else
  local copas = require "copas"
  local deadline = os.time() + 10
  repeat ok, err = pcall(copas.step, 0.1) until not ok or second or os.time() > deadline
end
print("loop", tostring(ok), tostring(err), "second", tostring(second))
]]

-- Copas 1.1 refuses to load after socket.http (it patches socket.protect for its coroutines,
-- which socket.http captured when it loaded). The specs' server control loaded socket.http and
-- never runs inside Copas, so it is hidden while Copas loads.
local function require_adapter(name)
  local http = package.loaded["socket.http"]
  if name == "copas" then package.loaded["socket.http"] = nil end
  local ok, lib = pcall(require, "ravan.loop." .. name)
  package.loaded["socket.http"] = http
  return ok, lib
end

for _, name in ipairs({ "luv", "cqueues", "copas" }) do
  local adapter = adapters[name]
  local ok, lib = require_adapter(name)
  describe("ravan.loop." .. name, function()
    if not ok then
      pending("its library is not installed for " .. _VERSION .. ": " .. tostring(lib):match("[^\n]*"))
      return
    end
    before_each(mock.reset)

    -- `seconds` only bounds a hang: a run ends as soon as `finished` says so, and valgrind on a
    -- busy machine can take many seconds for what takes milliseconds.
    local function run(seconds, ctx, finished)
      return adapter.run(seconds, ctx, finished or function() return true end)
    end

    it("delivers callbacks from the loop, in completion order, with no polling code", function()
      -- Page 1 is answered a second after the others, which are answered at once.
      mock.config { page_delays = { ["1"] = 1000 } }
      local ctx = adapter.setup and adapter.setup()
      local c = mock.fast_client()
      local watch = assert(adapter.attach(lib, c, nil, ctx))
      local order = {}
      for p = 1, 3 do
        assert(c:start({ phone = P250, page = p, page_size = 10 }, function(page, err)
          assert(page, tostring(err))
          order[#order + 1] = page.page
          if #order == 3 then watch.detach() end
        end))
      end
      assert.is_true(run(60, ctx, function() return #order == 3 end))
      -- Page 1 was the slow one: it came last.
      assert.are.equal(1, order[3])
      table.sort(order)
      assert.are.same({ 1, 2, 3 }, order)
      assert.are.equal(0, c:pending())
    end)

    it("resumes a task from the loop until the pager is done", function()
      local ctx = adapter.setup and adapter.setup()
      local c = mock.fast_client()
      local watch = assert(adapter.attach(lib, c, nil, ctx))
      local n = 0
      local task = assert(c:spawn(function()
        local pager = c:calls { phone = P250, page_size = 100 }
        while true do
          local call, err = pager:next()
          assert(not err, tostring(err))
          if not call then break end
          n = n + 1
        end
        watch.detach()
        return n
      end))
      assert.is_true(run(60, ctx, function() return task:done() end))
      assert.are.same({ 250 }, { task:result() })
    end)

    it("hands what a callback raised to on_error and goes on", function()
      local ctx = adapter.setup and adapter.setup()
      local c = mock.fast_client()
      local raised = {}
      local ran = 0
      local watch
      watch = assert(adapter.attach(lib, c, { on_error = function(e) raised[#raised + 1] = e end }, ctx))
      for i = 1, 2 do
        assert(c:start({ phone = EXAMPLE }, function()
          ran = ran + 1
          if ran == 2 then watch.detach() end
          if i == 1 then error("first", 0) end
        end))
      end
      assert.is_true(run(60, ctx, function() return ran == 2 end))
      assert.are.same({ "first" }, raised)
    end)

    -- Under luv a raise there ends the process, so the loop runs in a child.
    local function default_on_error()
      local out, status = proc.run(proc.lua .. " -e " .. proc.quote(HOSTILE),
        mock.env { LOOP = name, PHONE = EXAMPLE })
      assert.are.equal(0, status, out)
      assert.matches("loop\ttrue\t[^\n]*\tsecond\ttrue\n", out)
      -- The one line on stderr names what was raised, as it can.
      assert.matches("ravan: (a table)", out, 1, true)
    end
    local why = proc.skip()
    if why then
      pending("its default on_error never raises: " .. why)
    else
      it("its default on_error never raises: the loop and the process go on", default_on_error)
    end

    it("lets go of the loop when the client is closed", function()
      mock.fault { kind = "delay", ms = 3000, phone = "+15550000401" }
      local ctx = adapter.setup and adapter.setup()
      local c = mock.fast_client()
      local ran = false
      assert(adapter.attach(lib, c, { on_error = error }, ctx))
      assert(c:start({ phone = "+15550000401" }, function() ran = true end))
      c:close()
      local done = false
      assert.is_true(run(60, ctx, function()
        done = done or c:pending() == 0
        return done
      end))
      assert.is_false(ran)
    end)

    it("refuses a closed client, a bad on_error and what is not a client, never raising", function()
      local ctx = adapter.setup and adapter.setup()
      local c = mock.fast_client()
      local hostile = setmetatable({}, { __index = function() error("no") end })
      for _, bad in ipairs({ "x", 1, {}, hostile }) do
        local w, err = adapter.attach(lib, bad, nil, ctx)
        assert.is_nil(w)
        assert.are.equal("invalid_argument", err.kind)
        w, err = adapter.attach(lib, c, bad, ctx)
        if type(bad) == "table" then
          assert(w).detach()
          -- libuv finishes closing a handle only when its loop runs again.
          run(1, ctx)
        else
          assert.is_nil(w)
          assert.are.equal("invalid_argument", err.kind)
        end
      end
      local w, err = adapter.attach(lib, c, { on_error = 1 }, ctx)
      assert.is_nil(w)
      assert.are.equal("invalid_argument", err.kind)
      c:close()
      w, err = adapter.attach(lib, c, nil, ctx)
      assert.is_nil(w)
      assert.are.equal("invalid_argument", err.kind)
    end)
  end)
end
