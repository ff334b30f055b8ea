-- The response headers the core reads (content type, request id, rate limits, Retry-After,
-- Location), as the local server sent them, through the blocking call and the engine alike;
-- and the record of attempts it adds when asked.
local core = require "ravan.core"
local validate = require "ravan.validate"
local mock = require "spec.support.mock"

local PHONE = mock.phones.p250

local function handle(extra)
  local opts = mock.options(extra)
  local cfg = assert(validate.options(opts))
  cfg.user_agent = "spec"
  return core.new(cfg)
end

-- The core's response to one request, made the blocking way or on the engine.
local PATHS = {
  blocking = function(h, q, detailed)
    return h:request(q, detailed)
  end,
  engine = function(h, q, detailed)
    assert(h:start(q))
    assert.is_true(h:wait(30))
    local id, res = h:take(detailed)
    assert.truthy(id)
    return res
  end,
}

local function answered(how, fault, detailed)
  mock.reset()
  if fault then mock.fault(fault) end
  local h = handle({ max_retries = 0 })
  local res = PATHS[how](h, { phone = PHONE, page_size = 1 }, detailed)
  h:close()
  return res
end

for how in pairs(PATHS) do
  describe("response headers, " .. how .. ":", function()
    it("takes the content type and the server's request id", function()
      local res = answered(how)
      assert.are.equal(200, res.status)
      assert.are.equal("application/json", res.content_type)
      assert.matches("^%x+$", res.request_id)
      assert.is_nil(res.ratelimit)
      assert.is_nil(res.retry_after)
    end)

    it("matches names in any case and takes the request id by preference", function()
      local res = answered(how, { kind = "status", status = 200, body = "{}", headers = {
        ["x-correlation-id"] = "corr-1", ["REQUEST-ID"] = "req-2", ["X-Request-Id"] = "",
        ["x-amzn-requestid"] = "amzn-3" } })
      assert.are.equal("req-2", res.request_id)
      res = answered(how, { kind = "status", status = 200, body = "{}", headers = {
        ["X-CORRELATION-ID"] = "corr-1", ["X-Request-Id"] = "" } })
      assert.are.equal("corr-1", res.request_id)
      res = answered(how, { kind = "status", status = 200, body = "{}", headers = {
        ["X-Request-Id"] = "" }, content_type = "application/json;  charset=utf-8" })
      assert.is_nil(res.request_id)
      assert.are.equal("application/json;  charset=utf-8", res.content_type)
    end)

    it("prefers RateLimit-* and falls back to X-RateLimit-* field by field", function()
      local res = answered(how, { kind = "status", status = 200, body = "{}", headers = {
        ["RateLimit-Limit"] = "50", ["X-RateLimit-Limit"] = "99",
        ["X-RateLimit-Remaining"] = "7", ["RateLimit-Policy"] = "50;w=1" } })
      assert.are.same({ limit = "50", remaining = "7", policy = "50;w=1" }, res.ratelimit)
    end)

    it("reads Retry-After-Ms ahead of Retry-After, as seconds", function()
      local res = answered(how, { kind = "status", status = 503, retry_after = "9",
        retry_after_ms = "1500" })
      assert.are.equal(503, res.status)
      assert.are.equal(1.5, res.retry_after)
      res = answered(how, { kind = "status", status = 429, retry_after = "  3  " })
      assert.are.equal(3, res.retry_after)
    end)

    it("keeps only the last attempt's headers", function()
      mock.reset()
      mock.fault({ kind = "status", status = 503, retry_after = "0", headers = {
        ["X-Request-Id"] = "first", ["X-Correlation-Id"] = "stale", ["RateLimit-Limit"] = "1" } })
      mock.fault({ kind = "status", status = 503, headers = { ["X-Request-Id"] = "" } })
      local h = handle({ max_retries = 1, retry_base = 0.01, retry_cap = 0.01 })
      local res = PATHS[how](h, { phone = PHONE, page_size = 1 })
      h:close()
      assert.are.equal(503, res.status)
      assert.are.equal(2, res.attempts)
      assert.is_nil(res.request_id)
      assert.is_nil(res.ratelimit)
      assert.is_nil(res.retry_after)
    end)

    it("follows a same-origin Location and reports the final answer's headers", function()
      local res = answered(how, { kind = "status", status = 302, body = "", headers = {
        Location = "/api/v1/calling/phone-history?phone=%2B15550000250&page_size=2",
        ["X-Request-Id"] = "the-redirect" } }, true)
      assert.are.equal(200, res.status)
      assert.are_not.equal("the-redirect", res.request_id)
      assert.matches("page_size=2$", res.url)
      assert.are.same({ 302, 200 }, { res.events[1].status, res.events[2].status })
    end)

    it("records the attempts only when asked to, and its duration and measures always", function()
      local res = answered(how)
      assert.is_nil(res.url)
      assert.is_nil(res.events)
      assert.truthy(res.elapsed > 0)
      assert.truthy(res.timings[5] > 0)
      assert.are.equal(1, res.attempts)
      res = answered(how, nil, true)
      assert.matches("phone=%%2B15550000250&page_size=1$", res.url)
      assert.are.equal(1, #res.events)
      assert.are.equal(200, res.events[1].status)
      assert.truthy(res.elapsed > 0)
    end)
  end)
end
