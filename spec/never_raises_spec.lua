-- Nothing under ravan.* raises, whatever it is given: values of every type (NaN, huge numbers,
-- binary strings, cyclic tables, tables whose metamethods raise, functions, coroutines,
-- userdata) at every public function and option, dot calls included, and random bytes at the
-- decoder. Seeded and bounded, so a run is the same every time and takes seconds. The clients
-- point at a closed loopback port and never retry; only the live and finished pagers need pages
-- from the local server.
local ravan = require "ravan"
local errors = require "ravan.errors"
local decode = require "ravan.decode"
local helpers = require "spec.support.helpers"
local pager_mod = require "ravan.pager"

local CLOSED = "http://127.0.0.1:9"
local KEY = "rk_never_raises"

math.randomseed(20261125)

local function raising() error("a metamethod that raises") end

local cyclic = {}
cyclic.self = cyclic
cyclic[1] = cyclic

local hostile = setmetatable({}, {
  __index = raising, __newindex = raising, __len = raising, __tostring = raising,
  __eq = raising, __lt = raising, __le = raising, __concat = raising, __call = raising,
  __pairs = raising, __ipairs = raising, __unm = raising, __add = raising,
})
local guarded = setmetatable({}, { __metatable = hostile, __index = raising })
local hostile_keys = { [hostile] = 1, [guarded] = 2, [type] = 3, [true] = 4, [1.5] = 5 }

local binary = {}
for i = 0, 255 do binary[#binary + 1] = string.char(i) end
binary = table.concat(binary)

local VALUES = {
  true, false, 0, -0.0, 1, -1, 0.5, 3, 100, 101, 2 ^ 31, 2 ^ 53, 2 ^ 63, -2 ^ 63, 1e308, 1e16,
  math.huge, -math.huge, 0 / 0, math.maxinteger or 2 ^ 62, math.mininteger or -2 ^ 62,
  "", "x", "+14155550100", "+1", "https://[1:2:3]", "http://[.]", CLOSED, binary,
  ("a"):rep(100000), "%s%d%%", "\r\nX-Evil: 1", "\0", "true", "60",
  {}, { 1, 2, 3 }, { phone = "+14155550100" }, cyclic, hostile, guarded, hostile_keys,
  type, raising, function() return {} end, coroutine.create(function() end), io.stdout,
  errors.new("server", "an error"),
}
local N = #VALUES + 1    -- index N stands for nil

local function value(i) if i == N then return nil end return VALUES[i] end
local function any() return value(math.random(N)) end

local unpack = table.unpack or unpack

-- Calls fn with the arguments; it must not raise, and must answer `check`'s idea of a result.
local function never_raises(what, fn, ...)
  local out = { pcall(fn, ...) }
  assert(out[1], what .. " raised: " .. tostring(out[2]))
  return unpack(out, 2, 3)
end

-- nil and an Error, or something that is not nil with no error.
local function value_or_error(what, res, err)
  if res == nil then
    assert(ravan.is_error(err), what .. ": nil without an error")
    assert(errors.KINDS[err.kind], what .. ": kind " .. tostring(err.kind))
    assert.is_string(tostring(err))
  else
    assert.is_nil(err, what)
  end
end

local function client(extra)
  local opts = { base_url = CLOSED, api_key = KEY, max_retries = 0, connect_timeout = 1 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return assert(ravan.new(opts))
end

-- Steps a pager a few times, and uses every method it has.
local function drive(what, p)
  for step = 1, 3 do
    local item, err = never_raises(what .. " next " .. step, p.next, p)
    value_or_error(what, item, err)
    if item == nil then break end
  end
  never_raises(what .. " stats", p.stats, p)
  never_raises(what .. " close", p.close, p)
  never_raises(what .. " next after close", p.next, p)
end

-- The public methods of an object: what its metatable offers, minus hooks and metamethods.
local function methods(obj)
  local names = {}
  for name, fn in pairs(getmetatable(obj).__index) do
    if type(fn) == "function" and not name:find("^_") then names[#names + 1] = name end
  end
  table.sort(names)
  return names
end

describe("nothing raises", function()
  it("ravan.new, for every option and every value", function()
    local names = { "nonexistent_option", 1 }
    for _, name in ipairs(helpers.client_options()) do names[#names + 1] = name end
    for _, name in ipairs(names) do
      for i = 1, N do
        local opts = { base_url = CLOSED, api_key = KEY }
        if name == "api_key" then opts.api_key = nil end
        opts[name] = value(i)
        local c, err = never_raises("ravan.new " .. tostring(name), ravan.new, opts)
        value_or_error("ravan.new " .. tostring(name), c, err)
        if c then c:close() end
      end
    end
    for i = 1, N do
      value_or_error("ravan.new(value)", never_raises("ravan.new(value)", ravan.new, value(i)))
      -- The environment stand-in too, whatever it answers.
      local env = function() return value(i) end
      for _, getenv in ipairs({ env, value(i) }) do
        local c, err = never_raises("ravan.new(getenv)", ravan.new, nil, getenv)
        value_or_error("ravan.new(getenv)", c, err)
      end
    end
  end)

  it("ravan.metrics.render, with any value, a hand-made snapshot's fields included", function()
    local metrics = require "ravan.metrics"
    local good = client():stats()
    for i = 1, N do
      value_or_error("render(value)", never_raises("render", metrics.render, value(i)))
      value_or_error("render{value}", never_raises("render", metrics.render, { value(i) }))
      for _, key in ipairs { "requests", "retries", "errors", "latency", "bytes" } do
        local s = client():stats()
        s[key] = value(i)
        value_or_error("render " .. key, never_raises("render", metrics.render, s))
      end
    end
    assert.is_string(metrics.render(good))
  end)

  it("every function of ravan and ravan.errors, with any arguments", function()
    local modules = { ravan = ravan, ["ravan.errors"] = errors }
    -- The core-response plumbing takes what the core built, not user input.
    local internal = { kind_for = true, from_response = true, with_response = true }
    local called = 0
    for mod_name, mod in pairs(modules) do
      for name, fn in pairs(mod) do
        if type(fn) == "function" and not internal[name] then
          for _ = 1, 40 do
            local a, b, c = any(), any(), any()
            local what = mod_name .. "." .. name
            local r1 = never_raises(what, fn, a, b, c)
            if name == "pages" or name == "calls" then drive(what, r1)
            elseif name == "new" and mod == errors then assert.is_string(tostring(r1))
            end
            called = called + 1
          end
        end
      end
    end
    assert.truthy(called >= 40 * 9, called .. " calls")
  end)

  it("every client method, with any query and any query option, colon or dot", function()
    local is_pager = { pages = true, calls = true }
    local c = client()
    local names = methods(c)
    assert.are.same({ "calls", "close", "fd", "pages", "pending", "phone_history", "poll",
      "recording", "recordings", "spawn", "start", "stats", "sync" }, names)
    names = { "calls", "pages", "phone_history", "start" }
    local keys = { "phone", "page", "page_size", "include_transcripts", "deadline", "limit",
      "prefetch", "traceparent", "bogus", 1 }
    for _, name in ipairs(names) do
      do
        for _, key in ipairs(keys) do
          for i = 1, N do
            local q = { phone = "+14155550100", page_size = 10, prefetch = 0 }
            q[key] = value(i)
            local what = "client:" .. name .. " " .. tostring(key)
            local r, err = never_raises(what, c[name], c, q)
            if is_pager[name] then drive(what, r) else value_or_error(what, r, err) end
          end
        end
        for i = 1, N do
          local r, err = never_raises(name .. "(value)", c[name], c, value(i))
          if is_pager[name] then drive(name, r) else value_or_error(name, r, err) end
          r, err = never_raises(name .. " with a dot", c[name], value(i), value(i))
          if is_pager[name] then drive(name, r) else value_or_error(name, r, err) end
        end
      end
    end
    for i = 1, N do
      never_raises("close with a dot", c.close, value(i))
      value_or_error("stats with a dot", never_raises("stats with a dot", c.stats, value(i)))
    end
    never_raises("close", c.close, c)
    value_or_error("stats after close", never_raises("stats after close", c.stats, c))
    never_raises("phone_history after close", c.phone_history, c, { phone = "+14155550100" })
  end)

  it("client:recording and client:recordings, with any value for each option, colon or dot", function()
    local c = client()
    local dir = os.tmpname()
    os.remove(dir)
    for _, key in ipairs { "phone", "phones", "calls", "dir", "since", "until", "progress", "path",
      "bogus", 1 } do
      for i = 1, N do
        local o = { calls = { { id = "x1", recording_url = CLOSED .. "/r" } }, dir = dir }
        o[key] = value(i)
        value_or_error("client:recordings " .. tostring(key),
          never_raises("client:recordings", c.recordings, c, o))
        value_or_error("client:recording " .. tostring(key),
          never_raises("client:recording", c.recording, c, value(i), o))
      end
    end
    for i = 1, N do
      value_or_error("client.recordings", never_raises("client.recordings", c.recordings, value(i), value(i)))
      value_or_error("client.recording", never_raises("client.recording", c.recording, value(i), value(i)))
    end
    c:close()
  end)

  it("client:sync, with any value for each option, colon or dot", function()
    local c = client()
    local path = os.tmpname()
    -- stop() is true from the start, so no value can make it follow forever.
    local base = { phone = "+14155550100", db = "sqlite:" .. path, stop = function() return true end }
    local keys = { "phones", "phone", "db", "include_transcripts", "follow", "interval",
      "rate_limit", "page_size", "progress", "stop", "bogus", 1 }
    for _, key in ipairs(keys) do
      for i = 1, N do
        local o = {}
        for k, v in pairs(base) do o[k] = v end
        o[key] = value(i)
        if key ~= "stop" or type(o.stop) ~= "function" then
          value_or_error("client:sync " .. tostring(key), never_raises("client:sync", c.sync, c, o))
        end
      end
    end
    for i = 1, N do
      value_or_error("client:sync(value)", never_raises("client:sync(value)", c.sync, c, value(i)))
      value_or_error("client.sync", never_raises("client.sync", c.sync, value(i), value(i)))
    end
    c:close()
    for _, suffix in ipairs { "", "-wal", "-shm" } do os.remove(path .. suffix) end
  end)

  it("ravan.report and its HTML, with any value for each option and each field of a call", function()
    local html = require "ravan.report.html"
    local contract = require "ravan.contract"
    local c = client()
    local call = { id = "c1", cost_total = "1.50", twilio_cost = 0.5, started_at = "2026-11-01T10:00:00Z",
      credit_breakdown = { model_credits = 0.25 }, post_call_analysis_result = { sentiment = "positive" } }
    local function report(what, o)
      local rep, err = never_raises(what, ravan.report, o)
      value_or_error(what, rep, err)
      if rep then assert.is_string(never_raises(what .. " html", html.render, rep)) end
    end
    local keys = { "by", "since", "until", "db", "phones", "phone", "calls", "client", "charts",
      "page_size", "bogus", 1 }
    for _, key in ipairs(keys) do
      for i = 1, N do
        local o = { calls = { call }, charts = true, by = "day,agent" }
        o[key] = value(i)
        -- With a phone and no other source, the report reads the API on this closed port.
        if key == "phone" or key == "phones" then o.calls, o.client = nil, c end
        report("ravan.report " .. tostring(key), o)
      end
    end
    local fields = { "bogus" }
    for _, k in ipairs(contract.CALL.keys) do fields[#fields + 1] = k end
    for _, field in ipairs(fields) do
      for i = 1, N do
        local one = {}
        for k, v in pairs(call) do one[k] = v end
        one[field] = value(i)
        report("ravan.report call." .. field, { calls = { one, call }, charts = true, by = "week,status" })
      end
    end
    for i = 1, N do
      report("ravan.report(value)", value(i))
      report("ravan.report calls = value", { calls = { value(i) } })
    end
    c:close()
  end)

  it("every async method of clients, requests and tasks, with any arguments, colon or dot", function()
    local c = client()
    for _, name in ipairs({ "fd", "pending", "poll", "spawn", "start" }) do
      for i = 1, N do
        for j = 1, N, 7 do
          never_raises("client:" .. name, c[name], c, value(i), value(j))
          never_raises("client." .. name, c[name], value(i), value(j))
        end
      end
    end
    local objects = {
      request = { "cancel", "done", "result", "wait" },
      task = { "cancel", "done", "result", "wait" },
    }
    for kind, names in pairs(objects) do
      for _, name in ipairs(names) do
        for i = 1, N do
          local obj = kind == "request" and assert(c:start { phone = "+14155550100" })
            or assert(c:spawn(function() return c:phone_history { phone = "+14155550100" } end))
          assert.are.same(names, methods(obj))
          never_raises(kind .. "." .. name, obj[name], value(i))
          never_raises(kind .. ":" .. name, obj[name], obj, value(i))
          never_raises(kind .. ":wait", obj.wait, obj)
        end
      end
    end
    c:close()
    for _, name in ipairs({ "fd", "pending", "poll", "spawn", "start" }) do
      value_or_error(name .. " after close", never_raises(name .. " after close", c[name], c, function() end))
    end
  end)

  it("every pager method, with any arguments, on live, failed and finished pagers", function()
    -- The live and finished pagers need pages: these come from the local server.
    local mock = require "spec.support.mock"
    mock.reset()
    local c, served = client(), mock.client()
    -- Each kind of pager, made afresh for every call, so that each method meets that kind
    -- (closing one first would leave the others only closed pagers).
    local kinds = {
      live = function()
        local p = served:calls { phone = mock.phones.p250, page_size = 10, prefetch = 2 }
        assert(p:next())
        assert.are.equal(1, p:stats().pages)
        return p
      end,
      unstarted = function() return c:calls { phone = "+14155550100", prefetch = 0 } end,
      failed = function()
        local p = c:calls { phone = "+14155550100", prefetch = 0 }
        assert(ravan.is_error(select(2, p:next())))
        return p
      end,
      invalid = function() return c:pages { phone = "nope" } end,
      made_failed = function() return pager_mod.failed(errors.new("network", "x")) end,
      finished = function()
        local p = served:calls { phone = mock.phones.example }
        local n = 0
        while p:next() do n = n + 1 end
        assert.are.same({ 3, 3 }, { n, p:stats().calls })
        return p
      end,
    }
    local names = methods(kinds.made_failed())
    assert.are.same({ "close", "next", "stats" }, names)
    for kind, make in pairs(kinds) do
      for _, name in ipairs(names) do
        for i = 1, N do
          local p = make()
          never_raises(kind .. " pager:" .. name, p[name], p, value(i))
          never_raises(kind .. " pager." .. name, p[name], value(i))
          p:close()
        end
      end
    end
    served:close()
  end)

  it("the decoder, on random bytes and on random JSON of the page's shape", function()
    local function bytes(n)
      local t = {}
      for i = 1, n do t[i] = string.char(math.random(0, 255)) end
      return table.concat(t)
    end
    local atoms = { "null", "true", "false", "0", "-0", "1e400", "-1e400", "NaN", "Infinity",
      "1.5", "9007199254740993", "\"x\"", "\"\\u0000\"", "[]", "{}", "[null]", "\"12.50\"" }
    local fields = { "success", "message", "phone", "total_count", "page", "page_size", "calls",
      "id", "duration_sec", "call_latency_ms", "cost_total", "transcripts", "timestamp_ms" }
    local function json(depth)
      local r = math.random(depth > 3 and 1 or 3)
      if r == 1 then return atoms[math.random(#atoms)] end
      local parts = {}
      if r == 2 then
        for i = 1, math.random(0, 3) do parts[i] = json(depth + 1) end
        return "[" .. table.concat(parts, ",") .. "]"
      end
      for i = 1, math.random(0, 5) do
        parts[i] = "\"" .. fields[math.random(#fields)] .. "\":" .. json(depth + 1)
      end
      return "{" .. table.concat(parts, ",") .. "}"
    end
    local cts = { nil, "application/json", "text/html; charset=utf-8", "", binary }
    for i = 1, 3000 do
      local body = i % 3 == 0 and bytes(math.random(0, 64)) or json(0)
      local page, err = never_raises("decode " .. body, decode.page, body, cts[i % #cts + 1])
      value_or_error("decode " .. body, page, err)
      if page then assert.is_table(page.calls) end
    end
  end)
end)
