-- Error kinds, in process: one list in the C core, the same set in ravan.errors, and
-- errors.new, which must never raise whatever it is given.
local core = require "ravan.core"
local errors = require "ravan.errors"
local proc = require "spec.support.proc"

describe("error kinds", function()
  it("ravan.errors.KINDS is exactly the core's list, which names every kind once", function()
    assert.are.equal("table", type(core.KINDS))
    local seen = {}
    for i, kind in ipairs(core.KINDS) do
      assert.matches("^[a-z_]+$", kind)
      assert.is_nil(seen[kind], kind .. " twice")
      seen[kind] = i
      assert.is_true(errors.KINDS[kind], kind)
    end
    for kind in pairs(errors.KINDS) do assert.truthy(seen[kind], kind) end
    for _, kind in ipairs({ "invalid_argument", "auth", "bad_request", "rate_limited", "server",
        "timeout", "network", "tls", "decode", "too_large", "cancelled", "internal" }) do
      assert.truthy(seen[kind], kind .. " is missing")
    end
  end)

  it("every kind is documented in docs/errors.md, and no other", function()
    local text = proc.read_file("docs/errors.md")
    local rows = {}
    local section = assert(text:match("\n## Kinds\n(.-)\n## "))
    for kind in section:gmatch("\n| `([a-z_]+)` |") do rows[#rows + 1] = kind end
    assert.are.same(core.KINDS, rows)
  end)

  it("the core's kind for an attempt is used as it is", function()
    for _, kind in ipairs(core.KINDS) do
      assert.are.equal(kind, errors.kind_for(nil, kind))
    end
  end)

  it("maps each HTTP status to its kind", function()
    local cases = {
      { 200, nil }, { 204, nil }, { 301, "server" }, { 400, "bad_request" }, { 401, "auth" },
      { 403, "auth" }, { 404, "bad_request" }, { 408, "timeout" }, { 422, "bad_request" },
      { 429, "rate_limited" }, { 500, "server" }, { 503, "server" }, { 599, "server" },
    }
    for _, c in ipairs(cases) do
      assert.are.equal(c[2], errors.kind_for(c[1], nil), tostring(c[1]))
    end
  end)

  it("errors.new never raises: an unknown kind becomes internal, naming what it was given", function()
    local weird = setmetatable({}, { __tostring = function() error("boom") end,
      __index = function() error("boom") end, __metatable = false })
    local kinds = { "internal_error", "", 42, 0 / 0, true, {}, weird, print,
      coroutine.create(function() end), io.stdout, ("x"):rep(10000) }
    for _, kind in ipairs(kinds) do
      local ok, err = pcall(errors.new, kind, "what happened")
      assert.is_true(ok, tostring(err))
      assert.are.equal("internal", err.kind)
      assert.matches("^unknown error kind .*: what happened$", err.message)
      assert.is_true(#err.message < 200)
      assert.is_string(tostring(err))
    end
    local ok, err = pcall(errors.new, nil, weird, weird)
    assert.is_true(ok, tostring(err))
    assert.are.equal("internal", err.kind)
  end)

  it("errors.new keeps documented fields of the right type only, so tostring always works", function()
    local err = errors.new("server", { "not a string" }, {
      status = "five hundred", request_id = {}, attempts = 3, body = 12, retryable = "yes",
      retry_after = 1.5, curl_code = false, kind = "auth", message = "overridden?", extra = 1,
    })
    assert.are.equal("server", err.kind)
    assert.are.equal("(a table)", err.message)
    assert.is_nil(err.status)
    assert.is_nil(err.request_id)
    assert.is_nil(err.body)
    assert.is_nil(err.curl_code)
    assert.is_nil(err.extra)
    assert.are.equal(3, err.attempts)
    assert.are.equal(1.5, err.retry_after)
    assert.is_false(err.retryable)
    assert.are.equal("ravan: server: (a table) [attempts=3, retry_after=1.5s]", tostring(err))
    local status = errors.new("server", "m", { status = 0 / 0, attempts = 1 / 0 })
    assert.is_string(tostring(status))
  end)

  it("every core failure becomes an error with a message of its own", function()
    for _, kind in ipairs(core.KINDS) do
      local err = errors.from_response({ error = kind, curl_message = "", attempts = 1 })
      assert.are.equal(kind, err.kind)
      assert.truthy(#err.message > 0, kind)
    end
  end)
end)
