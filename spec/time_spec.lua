-- Time: Retry-After honoured and bounded by max_retry_after, exponential backoff, the deadline
-- over all attempts and sleeps, and no "wait forever".
local core = require "ravan.core"
local ravan = require "ravan"
local validate = require "ravan.validate"
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"

local PHONE = mock.phones.example

local client = mock.fast_client

local function timed_call(c, q)
  return h.timed(c.phone_history, c, q or { phone = PHONE })
end

describe("time", function()
  before_each(mock.reset)

  it("honours Retry-After: 1 with a measured wait of at least 1 s", function()
    mock.fault({ kind = "status", status = 429, retry_after = "1" })
    local events = {}
    local c = client({ log = function(ev) events[#events + 1] = ev end })
    local elapsed, res, err = timed_call(c)
    assert(res, tostring(err))
    assert.truthy(elapsed >= 1, "waited only " .. elapsed .. " s")
    assert.are.equal(2, #mock.requests())
    local retry
    for _, ev in ipairs(events) do
      if ev.event == "retry" then retry = ev end
    end
    assert.is_table(retry, "no retry event")
    assert.are.equal(1, retry.retry_after)
    assert.truthy(retry.wait_ms >= 1000)
  end)

  it("does not sleep a Retry-After longer than max_retry_after: the error says how long", function()
    mock.fault({ kind = "status", status = 429, retry_after = "30", count = 3 })
    local elapsed, res, err = timed_call(client({ max_retry_after = 5 }))
    assert.is_nil(res)
    assert.are.equal("rate_limited", err.kind)
    assert.are.equal(30, err.retry_after)
    assert.are.equal(1, err.attempts)
    assert.are.equal(1, #mock.requests())
    assert.matches("retry_after=30s", tostring(err))
    -- Had it slept the 30 s, it could not be back before them.
    assert.truthy(elapsed < 30)
  end)

  it("does not sleep a Retry-After that ends past the deadline", function()
    mock.fault({ kind = "status", status = 503, retry_after = "5", count = 3 })
    local elapsed, res, err = timed_call(client({ deadline = 2 }))
    assert.is_nil(res)
    assert.are.equal("server", err.kind)
    assert.are.equal(5, err.retry_after)
    assert.are.equal(1, #mock.requests())
    assert.truthy(elapsed < 5)
  end)

  it("backs off exponentially between retries", function()
    mock.fault({ kind = "status", status = 503, count = 2 })
    local waits = {}
    local c = client({ retry_base = 0.5, retry_cap = 8, log = function(ev)
      if ev.event == "retry" then waits[#waits + 1] = ev.wait_ms / 1000 end
    end })
    local res, err = c:phone_history { phone = PHONE }
    assert(res, tostring(err))
    local recs = mock.requests()
    assert.are.equal(3, #recs)
    assert.are.equal(2, #waits)
    for n = 1, 2 do
      -- base * 2^(n-1), less at most a quarter of jitter: what the client planned to sleep.
      local full = 0.5 * 2 ^ (n - 1)
      assert.is_true(waits[n] >= 0.75 * full - 1e-9 and waits[n] <= full + 1e-9,
        "backoff " .. n .. ": " .. waits[n] .. " s")
      -- And what the server saw: at least that sleep between the attempts (its clock has
      -- milliseconds), and not the sleep of a later retry (twice as long) on top of it.
      local gap = recs[n + 1].time - recs[n].time
      assert.is_true(gap >= waits[n] - 0.002, "attempt " .. n + 1 .. " came after " .. gap .. " s")
      assert.is_true(gap < waits[n] + full, "attempt " .. n + 1 .. " came after " .. gap .. " s")
    end
  end)

  it("bounds all attempts and sleeps together by the client's deadline", function()
    -- Without the deadline this would be 6 attempts of 1 s each.
    mock.fault({ kind = "delay", ms = 3000, count = 10 })
    local elapsed, res, err = timed_call(client({ timeout = 1, max_retries = 5, deadline = 1.5 }))
    assert.is_nil(res)
    assert.are.equal("timeout", err.kind)
    assert.truthy(err.attempts <= 2, "attempts: " .. err.attempts)
    assert.truthy(#mock.requests() <= 2)
    assert.truthy(elapsed >= 1.4, "gave up after " .. elapsed .. " s")
    assert.truthy(elapsed < 6)
  end)

  it("bounds a call by a per-call deadline too", function()
    mock.fault({ kind = "delay", ms = 3000, count = 10 })
    local c = client({ timeout = 10, max_retries = 5 })
    local elapsed, res, err = timed_call(c, { phone = PHONE, deadline = 0.5 })
    assert.is_nil(res)
    assert.are.equal("timeout", err.kind)
    assert.are.equal(1, #mock.requests())
    assert.truthy(elapsed >= 0.45)
    -- The server holds the answer 3 s: back before that, the deadline cut the attempt.
    assert.truthy(elapsed < 3)
  end)

  it("does not start a backoff sleep that would end past the deadline", function()
    mock.fault({ kind = "status", status = 503, count = 10 })
    local c = client({ retry_base = 10, retry_cap = 10, max_retries = 10, deadline = 2 })
    local elapsed, res, err = timed_call(c)
    assert.is_nil(res)
    assert.are.equal("server", err.kind)
    assert.are.equal(1, #mock.requests())
    -- A backoff of 10 s (7.5 s at least, with jitter) was not slept.
    assert.truthy(elapsed < 7.5)
  end)

  it("never means 'wait forever': 0 is refused and the defaults are 60 s and 10 s", function()
    for _, name in ipairs({ "timeout", "connect_timeout", "deadline" }) do
      local c, err = ravan.new(mock.options({ [name] = 0 }))
      assert.is_nil(c)
      assert.are.equal("invalid_argument", err.kind)
      assert.matches(name, err.message)
    end
    local cfg = assert(validate.options(mock.options()))
    assert.are.equal(60, cfg.timeout)
    assert.are.equal(10, cfg.connect_timeout)
    cfg = assert(validate.options(mock.options({ timeout = nil })))
    assert.are.equal(60, cfg.timeout)
    -- A slow answer within the default timeout arrives.
    mock.fault({ kind = "delay", ms = 300 })
    assert(mock.client():phone_history { phone = PHONE })
  end)

  it("core.now is monotonic seconds", function()
    local a = core.now()
    core.sleep(0.05)
    local b = core.now()
    assert.truthy(b - a >= 0.05)
  end)
end)
