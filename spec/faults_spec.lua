-- One spec per fault the local server can inject: the kind the client reports, or
-- success after exactly the number of attempts the server counted.
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"

local PHONE = mock.phones.example

local client = mock.fast_client

local function call(extra)
  return client(extra):phone_history { phone = PHONE }
end

local function statuses(recs)
  return h.pluck(recs, "status")
end

-- Success after `n` requests, the last one answered normally.
local function assert_success_after(n, res, err)
  assert(res, tostring(err))
  assert.are.equal(3, res.total_count)
  local recs = mock.requests()
  assert.are.equal(n, #recs)
  assert.are.equal(200, recs[n].status)
  return recs
end

-- Failure of `kind` after `n` requests, as the server counted them and as err.attempts says.
local function assert_failure(kind, n, res, err)
  assert.is_nil(res)
  assert.are.equal(kind, err.kind, tostring(err))
  assert.are.equal(n, #mock.requests())
  assert.are.equal(n, err.attempts)
  return err
end

describe("faults", function()
  before_each(mock.reset)

  describe("429", function()
    it("with Retry-After in seconds: waits it out, then succeeds", function()
      mock.fault({ kind = "status", status = 429, retry_after = "1" })
      local recs = assert_success_after(2, call())
      assert.are.same({ 429, 200 }, statuses(recs))
      assert.truthy(recs[2].time - recs[1].time >= 1, "the server saw the retry too early")
    end)

    it("with Retry-After as an HTTP-date: waits until then, then succeeds", function()
      -- Three seconds ahead: whole-second dates leave at least one second of wait.
      local date = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 3)
      mock.fault({ kind = "status", status = 429, retry_after = date })
      local recs = assert_success_after(2, call())
      assert.truthy(recs[2].time - recs[1].time >= 1, "the HTTP-date was not honoured")
    end)

    it("with retry-after-ms: waits that many milliseconds, then succeeds", function()
      mock.fault({ kind = "status", status = 429, retry_after_ms = "300" })
      local recs = assert_success_after(2, call())
      assert.truthy(recs[2].time - recs[1].time >= 0.3, "retry-after-ms was not honoured")
    end)

    it("outlasting max_retries: kind rate_limited", function()
      mock.fault({ kind = "status", status = 429, retry_after = "0", count = 3 })
      local err = assert_failure("rate_limited", 3, call())
      assert.are.equal(429, err.status)
      assert.is_true(err.retryable)
    end)
  end)

  for _, case in ipairs({ { 500, "server" }, { 502, "server" }, { 503, "server" },
    { 504, "server" }, { 408, "timeout" } }) do
    local status, kind = case[1], case[2]
    describe(tostring(status), function()
      it("is retried, then succeeds on the third attempt", function()
        mock.fault({ kind = "status", status = status, count = 2 })
        local recs = assert_success_after(3, call())
        assert.are.same({ status, status, 200 }, statuses(recs))
      end)

      it("outlasting max_retries gives kind " .. kind .. " after max_retries + 1 attempts", function()
        mock.fault({ kind = "status", status = status, count = 5 })
        local err = assert_failure(kind, 4, call({ max_retries = 3 }))
        assert.are.equal(status, err.status)
        assert.is_true(err.retryable)
      end)
    end)
  end

  it("400, 401, 403, 404 and 422 are never retried", function()
    for _, case in ipairs({ { 400, "bad_request" }, { 401, "auth" }, { 403, "auth" },
      { 404, "bad_request" }, { 422, "bad_request" } }) do
      mock.reset()
      mock.fault({ kind = "status", status = case[1], count = 3 })
      local err = assert_failure(case[2], 1, call({ max_retries = 3 }))
      assert.are.equal(case[1], err.status)
      assert.is_false(err.retryable)
    end
  end)

  it("a delay before the headers longer than timeout: kind timeout", function()
    mock.fault({ kind = "delay", ms = 2000 })
    local err = assert_failure("timeout", 1, call({ timeout = 0.2, max_retries = 0 }))
    assert.are.equal(28, err.curl_code) -- CURLE_OPERATION_TIMEDOUT
    assert.is_true(err.retryable)
    assert.is_nil(err.status)
  end)

  it("a timeout is retried, and the retry succeeds", function()
    -- The retry must be answered within `timeout` too: a whole second, so that a loaded machine
    -- still answers it in time, against a delay four times as long.
    mock.fault({ kind = "delay", ms = 4000 })
    local recs = assert_success_after(2, call({ timeout = 1, max_retries = 1 }))
    -- The server saw the first attempt given up only once `timeout` had passed.
    assert.is_true(recs[2].time - recs[1].time >= 1, "retried before the timeout")
  end)

  it("a dribbled body: the low-speed abort gives kind timeout long before `timeout`", function()
    mock.fault({ kind = "dribble", bytes = 1, interval_ms = 1000 })
    local err = assert_failure("timeout", 1, call({
      timeout = 120, low_speed_limit = 100, low_speed_time = 1, max_retries = 0,
    }))
    assert.are.equal(28, err.curl_code)
    assert.matches("too slow", err.message)
  end)

  it("a connection reset: kind network", function()
    mock.fault({ kind = "reset" })
    local err = assert_failure("network", 1, call({ max_retries = 0 }))
    assert.are.equal(56, err.curl_code) -- CURLE_RECV_ERROR
    assert.is_true(err.retryable)
  end)

  it("a reset is retried on a new connection, and the retry succeeds", function()
    mock.fault({ kind = "reset" })
    local recs = assert_success_after(2, call())
    assert.are_not.equal(recs[1].connection, recs[2].connection)
  end)

  it("an empty reply: kind network", function()
    mock.fault({ kind = "empty" })
    local err = assert_failure("network", 1, call({ max_retries = 0 }))
    assert.are.equal(52, err.curl_code) -- CURLE_GOT_NOTHING
  end)

  it("a truncated body: kind network, and it is retried", function()
    mock.fault({ kind = "truncate" })
    local err = assert_failure("network", 1, call({ max_retries = 0 }))
    assert.are.equal(18, err.curl_code) -- CURLE_PARTIAL_FILE
    mock.reset()
    mock.fault({ kind = "truncate" })
    assert_success_after(2, call())
  end)

  it("malformed JSON: kind decode, not retried", function()
    mock.fault({ kind = "malformed_json", count = 3 })
    local err = assert_failure("decode", 1, call({ max_retries = 3 }))
    assert.are.equal(200, err.status)
    assert.is_false(err.retryable)
  end)

  it("an HTML error page: kind server or bad_request with a clear message, not decode", function()
    mock.fault({ kind = "html", status = 502 })
    local err = assert_failure("server", 1, call({ max_retries = 0 }))
    assert.are.equal(502, err.status)
    assert.matches("502 Bad Gateway", err.message)
    assert.matches("html", err.message)
    assert.matches("<html>", err.body)
    mock.reset()
    mock.fault({ kind = "html", status = 404 })
    err = assert_failure("bad_request", 1, call())
    assert.matches("404 Not Found", err.message)
    assert.matches("html", err.message)
  end)

  it("an HTML 502 is retried like any 502, and the retry succeeds", function()
    mock.fault({ kind = "html", status = 502 })
    assert_success_after(2, call())
  end)

  it("a redirect to the same origin is followed, with the credential", function()
    mock.fault({ kind = "redirect", status = 302, target = "same" })
    local recs = assert_success_after(2, call())
    assert.are.same({ 302, 200 }, statuses(recs))
    assert.are.equal("/v1-moved/api/v1/calling/phone-history", recs[2].uri)
    assert.are.equal(recs[1].query, recs[2].query)
    for _, rec in ipairs(recs) do
      assert.are.equal("main", rec.listener)
      assert.are.equal(mock.api_key, rec.headers["x-api-key"])
    end
  end)

  it("a redirect to another origin is refused; the other listener never gets the credential", function()
    for _, status in ipairs({ 301, 302, 303, 307, 308 }) do
      for _, auth in ipairs({ { api_key = mock.api_key }, { token = mock.token } }) do
        mock.reset()
        mock.fault({ kind = "redirect", status = status, target = "other" })
        local c = assert(require("ravan").new({
          base_url = mock.url, api_key = auth.api_key, token = auth.token,
          max_retries = 2, retry_base = 0.01,
        }))
        local res, err = c:phone_history { phone = PHONE }
        assert.is_nil(res)
        assert.are.equal(status, err.status)
        assert.matches("redirect", err.message)
        assert.matches(mock.other_url, err.message, 1, true)
        assert.is_false(err.retryable)
        assert.are.same({}, h.records("other"), "the other origin got a request")
        -- The one request the server saw is the first, on the main listener: the credential
        -- went nowhere else.
        local recs = mock.requests()
        assert.are.equal(1, #recs)
        assert.are.equal("main", recs[1].listener)
        assert.are.equal(status, recs[1].status)
      end
    end
  end)

  it("a JSON array body is a decode error, not an empty page", function()
    for _, body in ipairs({ "[]", " \n[]", "[{}]", "[null]" }) do
      mock.reset()
      mock.fault({ kind = "malformed_json", body = body })
      assert_failure("decode", 1, call())
    end
  end)

  it("Retry-After is delta-seconds in digits only: 0x2, 1e3, +2, 2.5 are not waits", function()
    -- With max_retry_after below 2 s, a Retry-After read as 2 s ends the call with
    -- err.retry_after = 2; one that is not read leaves the ordinary backoff, which succeeds.
    for _, value in ipairs({ "0x2", "0X2", "1e3", "+2", "-2", "2.5", "inf", "nan", "2s", "" }) do
      mock.reset()
      mock.fault({ kind = "status", status = 503, retry_after = value })
      assert_success_after(2, call({ max_retry_after = 1 }))
    end
    mock.reset()
    mock.fault({ kind = "status", status = 503, retry_after = "2" })
    local err = assert_failure("server", 1, call({ max_retry_after = 1 }))
    assert.are.equal(2, err.retry_after)
  end)

  it("a same-origin redirect loop: kind server, called a loop, not a refused origin", function()
    mock.fault({ kind = "redirect", count = 10,
      location = "/api/v1/calling/phone-history?phone=%2B919876543210" })
    local res, err = call()
    assert.is_nil(res)
    assert.are.equal("server", err.kind)
    assert.are.equal(302, err.status)
    assert.matches("redirect loop", err.message)
    assert.is_nil(err.message:find("another origin", 1, true))
    assert.is_false(err.retryable)
    -- The first request and five redirects followed, all on the main listener.
    assert.are.equal(6, #mock.requests())
    assert.are.same({}, h.records("other"))
  end)

  it("a 3xx without Location: kind server, saying so", function()
    for _, status in ipairs({ 301, 302, 303, 307, 308 }) do
      mock.reset()
      mock.fault({ kind = "status", status = status })
      local res, err = call()
      assert.is_nil(res)
      assert.are.equal("server", err.kind)
      assert.are.equal(status, err.status)
      assert.are.equal("HTTP " .. status .. " redirect without a Location header", err.message)
      assert.are.equal(1, #mock.requests())
    end
  end)

  it("a response header line over libcurl's limit: nil and kind too_large, not a raise", function()
    mock.fault({ kind = "status", status = 200, count = 3,
      headers = { ["X-Huge"] = ("h"):rep(200 * 1024) } })
    local ok, res, err = pcall(call)
    assert.is_true(ok, tostring(res))
    assert.is_nil(res)
    assert.are.equal("too_large", err.kind, tostring(err))
    assert.matches("header", err.message)
    assert.is_false(err.retryable)
    assert.are.equal(1, #mock.requests())
  end)

  it("a body larger than max_response_bytes: kind too_large, not retried", function()
    mock.fault({ kind = "large", bytes = 4 * 1024 * 1024, count = 3 })
    local err = assert_failure("too_large", 1, call({ max_response_bytes = 1024 * 1024 }))
    assert.is_false(err.retryable)
    assert.matches("max_response_bytes", err.message)
  end)

  it("a chunked body larger than max_response_bytes is aborted while it arrives", function()
    local size = 64 * 1024 * 1024
    mock.fault({ kind = "large", bytes = size, chunked = true })
    local err = assert_failure("too_large", 1, call({ max_response_bytes = 256 * 1024 }))
    assert.is_false(err.retryable)
    -- The server stops writing once the client hangs up: far less than the body went out.
    local sent = mock.requests()[1].bytes_sent
    assert.is_number(sent)
    assert.truthy(sent < size / 4, "the server sent " .. sent .. " of " .. size .. " bytes")
  end)

  it("a body within max_response_bytes is read in full", function()
    mock.fault({ kind = "large", bytes = 512 * 1024, chunked = true })
    local res, err = call({ max_response_bytes = 1024 * 1024 })
    assert(res, tostring(err))
    assert.truthy(#res.calls[1].summary > 500 * 1024)
  end)
end)
