-- A client's life: one kept-alive TCP connection for its calls, and its curl handle (with that
-- connection) freed by close(), by __gc, and by __close on 5.4.
local core = require "ravan.core"
local ravan = require "ravan"
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"

local PHONE = mock.phones.example

-- Each client below makes one call, so it holds one open connection until it is freed.
local function busy_client()
  local c = mock.client()
  assert(c:phone_history { phone = PHONE })
  return c
end

describe("connections", function()
  before_each(mock.reset)

  it("several calls on one client use one TCP connection", function()
    local c = mock.client()
    for page = 1, 5 do
      assert(c:phone_history { phone = mock.phones.p250, page = page })
    end
    local recs = mock.requests()
    assert.are.equal(5, #recs)
    for i, rec in ipairs(recs) do
      assert.are.equal(recs[1].connection, rec.connection)
      assert.are.equal(i, rec.connection_requests)
    end
  end)

  it("the connection survives HTTP errors", function()
    local c = mock.client({ max_retries = 0 })
    mock.fault({ kind = "status", status = 503 })
    assert.is_nil(c:phone_history { phone = PHONE })
    mock.fault({ kind = "status", status = 401 })
    assert.is_nil(c:phone_history { phone = PHONE })
    assert(c:phone_history { phone = PHONE })
    local recs = mock.requests()
    assert.are.equal(3, #recs)
    assert.are.equal(recs[1].connection, recs[3].connection)
  end)

  it("two clients use two connections", function()
    local a, b = busy_client(), busy_client()
    local recs = mock.requests()
    assert.are_not.equal(recs[1].connection, recs[2].connection)
    a:close()
    b:close()
  end)
end)

describe("freeing a client", function()
  before_each(mock.reset)

  it("close() frees the connection, is idempotent, and later calls give an error", function()
    -- Compared by identity (fd and socket inode): other specs' threads may open or close
    -- fds of their own meanwhile.
    local before = h.fds()
    local c = busy_client()
    local held = h.new_fds(before, h.fds())
    assert.truthy(#held > 0, "the client holds no connection")
    c:close()
    assert.are.same({}, h.still_open(held))
    c:close()
    local res, err = c:phone_history { phone = PHONE }
    assert.is_nil(res)
    assert.are.equal("invalid_argument", err.kind)
    assert.matches("closed", err.message)
    assert.are.equal("ravan.client (closed)", tostring(c))
    assert.are.equal(1, #mock.requests())
  end)

  it("__gc frees the curl handle and its connection: 50 collected clients leave no fd", function()
    h.full_gc()
    local before = h.fds()
    local clients = {} -- luacheck: ignore 241 (held only to keep the clients alive)
    for i = 1, 50 do clients[i] = busy_client() end
    local held = h.new_fds(before, h.fds())
    -- At least its connection each (libcurl may keep a wakeup fd per handle too).
    assert.truthy(#held >= 50, #held .. " new fds for 50 clients")
    clients = nil -- luacheck: ignore 311 (the last reference, dropped for the collector)
    h.full_gc()
    assert.are.same({}, h.still_open(held))
  end)

  it("a core handle can be closed twice, and refuses requests after", function()
    local cfg = assert(require("ravan.validate").options(mock.options()))
    cfg.user_agent = "spec"
    local handle = core.new(cfg)
    handle:close()
    handle:close()
    assert.are.equal("ravan.core.client (closed)", tostring(handle))
    local ok, msg = pcall(handle.request, handle, { phone = PHONE })
    assert.is_false(ok)
    assert.matches("closed", msg)
  end)

  local close_chunk = [[
    local ravan, opts, phone = ...
    local kept
    do
      local c <close> = assert(ravan.new(opts))
      assert(c:phone_history { phone = phone })
      kept = c
    end
    return kept
  ]]
  -- `load` keeps this file parseable on Lua 5.1 to 5.3.
  local compiled = _VERSION == "Lua 5.4" and not rawget(_G, "jit") and load(close_chunk)
  if compiled then
    it("__close frees the client at the end of its block (Lua 5.4)", function()
      h.full_gc()
      local before = h.fds()
      local c = compiled(ravan, mock.options(), PHONE)
      -- Nothing it opened is left, though `c` is still referenced: only __close freed it.
      assert.are.same({}, h.new_fds(before, h.fds()))
      assert.are.equal("ravan.client (closed)", tostring(c))
      local res, err = c:phone_history { phone = PHONE }
      assert.is_nil(res)
      assert.are.equal("invalid_argument", err.kind)
      c:close()
    end)
  end
end)

describe("a method called with a dot", function()
  local unpack = table.unpack or unpack
  before_each(mock.reset)

  it("answers nil and an error saying to use a colon, and sends nothing", function()
    local c = mock.client()
    local q = { phone = PHONE }
    for _, name in ipairs({ "phone_history", "pages", "calls", "close" }) do
      for _, args in ipairs({ { q }, {}, { 42 }, { "x" }, { c } }) do
        local ok, res, err = pcall(function()
          local r, e = c[name](unpack(args))
          if name == "pages" or name == "calls" then return r:next() end
          return r, e
        end)
        assert.is_true(ok, name .. ": " .. tostring(res))
        if args[1] ~= c then
          assert.is_nil(res, name)
          assert.are.equal("invalid_argument", err.kind)
          assert.are.equal("use client:" .. name .. "(...), with a colon", err.message)
        end
      end
      c = mock.client()
    end
    assert.are.same({}, mock.requests())
  end)

  it("on a pager answers the same way", function()
    local p = mock.client():pages { phone = PHONE }
    for _, name in ipairs({ "next", "close", "stats" }) do
      local ok, res, err = pcall(p[name])
      assert.is_true(ok, name .. ": " .. tostring(res))
      assert.is_nil(res)
      assert.are.equal("use pager:" .. name .. "(), with a colon", err.message)
    end
    assert.are.same({}, mock.requests())
  end)
end)
