-- The error model: kind, message, status, request_id, retryable, attempts, body, curl_code,
-- a one-line tostring and ravan.is_error, for errors from the server and from the transport.
local ravan = require "ravan"
local errors = require "ravan.errors"
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"

local PHONE = mock.phones.example

local function call(opts, q)
  return mock.client(opts):phone_history(q or { phone = PHONE })
end

-- The fields every error has, whatever its kind.
local function assert_error_shape(err)
  assert.is_true(ravan.is_error(err))
  assert.is_true(errors.KINDS[err.kind], tostring(err.kind))
  assert.are.equal("string", type(err.message))
  assert.truthy(#err.message > 0)
  assert.are.equal("boolean", type(err.retryable))
  local line = tostring(err)
  assert.are.equal("string", type(line))
  assert.is_nil(line:find("[\r\n]"), "tostring(err) is not one line: " .. line)
  assert.matches("^ravan: " .. err.kind, line)
end

describe("errors", function()
  before_each(mock.reset)

  it("401 from the server for a bad key: kind auth with the server's message and request id", function()
    local res, err = call({ api_key = "rk_wrong_key_123", max_retries = 2 })
    assert.is_nil(res)
    assert_error_shape(err)
    assert.are.equal("auth", err.kind)
    assert.are.equal(401, err.status)
    assert.matches("^authentication required", err.message)
    assert.is_false(err.retryable)
    assert.are.equal(1, err.attempts)
    assert.is_nil(err.curl_code)
    local recs = mock.requests()
    assert.are.equal(1, #recs)
    assert.are.equal(401, recs[1].status)
    assert.are.equal(recs[1].request_id, err.request_id)
    assert.matches("^%x+$", err.request_id)
    assert.matches('"success":%s*false', err.body)
    assert.matches("^ravan: auth %(HTTP 401%): authentication required", tostring(err))
    assert.matches("request_id=" .. err.request_id, tostring(err))
    assert.is_nil(tostring(err):find("rk_wrong_key_123", 1, true))
  end)

  it("401 from the server for a bad bearer token", function()
    local c = assert(ravan.new({ base_url = mock.url, token = "tok_wrong" }))
    local res, err = c:phone_history { phone = PHONE }
    assert.is_nil(res)
    assert.are.equal("auth", err.kind)
    assert.are.equal(401, err.status)
    assert.are.equal("Bearer tok_wrong", mock.requests()[1].headers.authorization)
  end)

  it("400 from the server's own checks: kind bad_request with its message", function()
    -- Validation stops a bad phone before it is sent, so a same-origin redirect carries one
    -- to the server: an unencoded '+' decodes to a space, which the server rejects.
    mock.fault({ kind = "redirect", location = "/api/v1/calling/phone-history?phone=+14155550100" })
    local res, err = call({ max_retries = 2 })
    assert.is_nil(res)
    assert_error_shape(err)
    assert.are.equal("bad_request", err.kind)
    assert.are.equal(400, err.status)
    assert.matches("E%.164", err.message)
    assert.is_false(err.retryable)
    local recs = mock.requests()
    assert.are.equal(2, #recs)
    assert.are.equal(400, recs[2].status)
    assert.are.equal(recs[2].request_id, err.request_id)
  end)

  it("maps each HTTP status to its kind and retryable flag", function()
    local cases = {
      { 400, "bad_request", false }, { 401, "auth", false }, { 403, "auth", false },
      { 404, "bad_request", false }, { 422, "bad_request", false },
      { 429, "rate_limited", true }, { 500, "server", true }, { 502, "server", true },
      { 503, "server", true }, { 504, "server", true }, { 501, "server", false },
    }
    for _, c in ipairs(cases) do
      mock.fault({ kind = "status", status = c[1] })
      local res, err = call({ max_retries = 0 })
      assert.is_nil(res)
      assert_error_shape(err)
      assert.are.equal(c[2], err.kind, "HTTP " .. c[1])
      assert.are.equal(c[1], err.status)
      assert.are.equal(c[3], err.retryable, "retryable for HTTP " .. c[1])
      assert.matches("^mock fault", err.message)
    end
  end)

  it("keeps at most 2 KiB of the body, and the message stays one line", function()
    local long = string.rep("x", 5000)
    mock.fault({ kind = "status", status = 400,
      body = '{"success":false,"message":"first line\\nsecond line","detail":"' .. long .. '"}' })
    local _, err = call()
    assert_error_shape(err)
    assert.are.equal(2048, #err.body)
    assert.are.equal("first line\nsecond line", err.message)
    assert.matches("first line second line", tostring(err))
  end)

  it("a transport error has curl_code, no status and no body", function()
    local res, err = call({ base_url = h.closed_url(), max_retries = 1, retry_base = 0.01 })
    assert.is_nil(res)
    assert_error_shape(err)
    assert.are.equal("network", err.kind)
    assert.are.equal(7, err.curl_code) -- CURLE_COULDNT_CONNECT
    assert.is_nil(err.status)
    assert.is_nil(err.body)
    assert.is_nil(err.request_id)
    assert.is_true(err.retryable)
    assert.are.equal(2, err.attempts)
    assert.matches("attempts=2", tostring(err))
  end)

  it("a decode error carries the status, request id and body", function()
    mock.fault({ kind = "malformed_json" })
    local _, err = call()
    assert_error_shape(err)
    assert.are.equal("decode", err.kind)
    assert.are.equal(200, err.status)
    assert.is_false(err.retryable)
    assert.are.equal(mock.requests()[1].request_id, err.request_id)
    assert.matches("^{\"success\"", err.body)
  end)

  it("a 200 whose body says success = false is an error with the server's message", function()
    mock.fault({ kind = "status", status = 200, body = '{"success":false,"message":"quota exhausted"}' })
    local res, err = call()
    assert.is_nil(res)
    assert_error_shape(err)
    assert.are.equal("quota exhausted", err.message)
    assert.are.equal(200, err.status)
  end)

  it("ravan.is_error tells errors from other values", function()
    local _, err = call({ api_key = "rk_wrong_key_123" })
    assert.is_true(ravan.is_error(err))
    local _, invalid = mock.client():phone_history { phone = "bad" }
    assert.is_true(ravan.is_error(invalid))
    for _, v in ipairs({ { kind = "auth", message = "x" }, "auth", 42, true, {} }) do
      assert.is_false(ravan.is_error(v))
    end
    assert.is_false(ravan.is_error(nil))
    assert.is_false(ravan.is_error(setmetatable({ kind = "auth" }, { __tostring = tostring })))
  end)
end)
