-- ravan.sync.rate, the budget client:sync spends: pure arithmetic on given times, no server.
local rate = require "ravan.sync.rate"

-- Sends as fast as the budget lets from t0 for `seconds`; returns how many went.
local function drain(b, t0, seconds)
  local t, n = t0, 0
  while t < t0 + seconds - 1e-9 do
    local d = b:delay(t)
    if d > 0 then
      t = t + d
    else
      b:spend(t)
      n = n + 1
    end
  end
  return n
end

describe("ravan.sync.rate", function()
  it("spaces a configured rate evenly: N per S", function()
    local b = rate.new({ requests = 10, per = 2 }, 0)
    assert.are.equal(50, drain(b, 0, 9.9))
  end)

  it("makes up for late requests by at most two slots, however long the idle spell", function()
    local b = rate.new({ requests = 10, per = 1 }, 0)
    local n = 0
    while b:delay(100) == 0 do
      b:spend(100)
      n = n + 1
    end
    assert.are.equal(1 + rate.CATCH_UP, n)
    assert.are.equal(20, drain(b, 100.1, 2))
  end)

  it("does not pace until the server objects, then pauses once and drops the rate", function()
    local b = rate.new(nil, 0)
    assert.is_nil(b.rate)
    for i = 1, 100 do b:observe(i * 0.01, { ok = true }) end
    b:observe(1.0, { limited = 1, retry_after = 0.5 })
    -- 100 answers in the last 2 s: 50/s, a little under it.
    assert.are.equal(50 * rate.DECREASE, b.rate)
    assert.are.equal(0.5, b:delay(1.0))
    -- The other requests of that burst: no second drop, the pause does not grow from them.
    b:observe(1.1, { limited = 3, retry_after = 0.5 })
    assert.are.equal(50 * rate.DECREASE, b.rate)
    assert.are.equal(4, b.limited)
    -- A 429 after the cooldown drops it again.
    b:observe(2.5, { limited = 1, retry_after = 0.1 })
    assert.is_true(b.rate < 50 * rate.DECREASE)
  end)

  it("grows the rate back slowly while no 429 comes", function()
    local b = rate.new(nil, 0)
    for i = 1, 20 do b:observe(i * 0.1, { ok = true }) end
    b:observe(2, { limited = 1, retry_after = 0 })
    local r = b.rate
    b:observe(12, { ok = true })
    assert.is_true(b.rate > r)
    assert.is_true(b.rate < r * 1.2)
  end)

  it("keeps to a configured rate whatever the 429s", function()
    local b = rate.new({ requests = 5, per = 1 }, 0)
    b:observe(0, { limited = 2, retry_after = 1 })
    assert.are.equal(5, b.rate)
    assert.are.equal(1, b:delay(0))
  end)

  it("takes a RateLimit-Policy as a ceiling and pauses while none remain", function()
    local b = rate.new(nil, 0)
    b:observe(0, { ok = true, headers = { limit = "20", remaining = "5", reset = "1", policy = "20;w=2" } })
    assert.are.equal(10, b.rate)
    b:observe(0.5, { ok = true, headers = { limit = "20", remaining = "0", reset = "3" } })
    assert.are.equal(3, b:delay(0.5))
    assert.are.equal(3.5, b:paused_until(0.5))
  end)
end)
