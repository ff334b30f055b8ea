-- The request budget `client:sync` spends across all its phones.
--
-- Configured (`rate_limit = { requests = N, per = S }`): requests are spaced
-- evenly, one every S/N seconds (a token bucket holding a couple of tokens,
-- so that a request sent late does not slow the pace), so a server's window
-- sees at most N, give or take those two.
--
-- Learned (no `rate_limit`): no pacing until the server objects. A 429
-- pauses everything for its Retry-After, once however many requests were in
-- flight, and the rate drops to what the server let through over the last
-- window; it then grows back by a small step per second without a 429
-- (additive increase, multiplicative decrease on the rate, not on
-- concurrency). RateLimit-* / X-RateLimit-* headers, when a server sends
-- them, act before any 429: a policy (`N;w=S`) caps the rate at N/S, and no
-- request goes while none remain, until the reset.

local M = {}

-- Seconds of history behind "what the server let through".
M.WINDOW = 2
-- Requests per second added back per second without a 429, as a fraction
-- of the current rate (at least MIN_STEP).
M.INCREASE = 0.0075
M.MIN_STEP = 0.1
-- After a 429 the rate is this share of what the server let through (or
-- of the rate, when that is lower): a little under, so the climb back
-- starts below the limit, and repeated 429s keep lowering it.
M.DECREASE = 0.95
-- 429s within this many seconds of a decrease do not decrease it again.
M.COOLDOWN = 1
-- A 429 without Retry-After pauses this long.
M.DEFAULT_PAUSE = 1
-- The longest pause a 429 or a header makes, in seconds: a server asking for
-- more fails the request instead (and follow mode waits it out between
-- rounds), so one answer cannot stall every phone for an hour.
M.MAX_PAUSE = 60
-- The learned rate never drops below this (requests per second).
M.FLOOR = 0.5
-- Slots a late request may make up for (see spend).
M.CATCH_UP = 2

local Budget = {}
Budget.__index = Budget

-- `cfg` is nil (learn) or { requests, per }; `now` the current time.
function M.new(cfg, now)
  local self = setmetatable({
    _next = now, _paused_until = now, _ok = {}, _grown_at = now, _cool_until = now,
    limited = 0,
  }, Budget)
  if cfg then
    self._fixed = cfg.requests / cfg.per
    self.rate = self._fixed
  end
  return self
end

-- Seconds to wait before the next request may start (0: now). A request
-- that starts must be announced with `spend`.
--- Keeps 1/n of the budget, for one of n workers sharing the API key: a configured rate is
-- divided by n, a learnt one (and a cap from headers) scaled by the old n over the new when
-- workers join or leave.
function Budget:share(n)
  local old = self._share or 1
  if n == old then return end
  self._share = n
  if self._fixed then
    self.rate = self._fixed / n
  elseif self.rate then
    self.rate = self.rate * old / n
  end
  if self._ceiling then self._ceiling = self._ceiling * old / n end
end

function Budget:delay(now)
  local at = self._paused_until
  if self.rate and self._next > at then at = self._next end
  if at <= now then return 0 end
  return at - now
end

function Budget:spend(now)
  if not self.rate then return end
  local interval = 1 / self.rate
  -- A request sent a little late leaves its slot to the next ones: up to
  -- CATCH_UP intervals, so waking late does not slow the pace for good,
  -- while a long idle spell earns no more than that.
  local earliest = now - M.CATCH_UP * interval
  if self._next < earliest then self._next = earliest end
  self._next = self._next + interval
end

-- The pause in force: when it ends (seconds), or nil.
function Budget:paused_until(now)
  if self._paused_until > now then return self._paused_until end
end

local function prune(list, now)
  local keep, n = now - M.WINDOW, 0
  for i = 1, #list do
    if list[i] >= keep then
      n = n + 1
      list[n] = list[i]
    end
  end
  for i = #list, n + 1, -1 do list[i] = nil end
end

local function grow(self, now)
  if self._fixed or not self.rate then return end
  local dt = now - self._grown_at
  if dt <= 0 then return end
  local step = self.rate * M.INCREASE
  if step < M.MIN_STEP then step = M.MIN_STEP end
  self.rate = self.rate + step * dt
  if self._ceiling and self.rate > self._ceiling then self.rate = self._ceiling end
  self._grown_at = now
end

local function pause(self, now, seconds)
  if seconds > M.MAX_PAUSE then seconds = M.MAX_PAUSE end
  local till = now + seconds
  if till > self._paused_until then self._paused_until = till end
  -- Requests paced for during the pause would all go at its end at once.
  if self._next < self._paused_until then self._next = self._paused_until end
end

-- A number from a header value ("50", "50;w=1", " 12 ").
local function num(v)
  if type(v) ~= "string" then return nil end
  return tonumber(v:match("^%s*(%d+%.?%d*)"))
end

-- `h` holds the rate-limit headers of a response (strings, any may be nil):
-- limit, remaining, reset (delta seconds, or epoch seconds when it is
-- large), policy (`N;w=S`).
local function from_headers(self, now, h)
  local remaining, reset = num(h.remaining), num(h.reset)
  if reset and reset > 1e9 then reset = reset - os.time() end
  local limit, window = num(h.limit), h.policy and num(h.policy:match("w=([%d.]+)"))
  if limit and window and window > 0 and not self._fixed then
    self._ceiling = limit / window / (self._share or 1)
    if not self.rate or self.rate > self._ceiling then self.rate = self._ceiling end
  end
  if remaining and remaining < 1 then
    pause(self, now, reset and reset > 0 and reset or M.DEFAULT_PAUSE)
  end
end

--- Tells the budget how one request went: `ok` (a 2xx arrived),
-- `limited` (how many of its attempts were answered 429), `retry_after`
-- (seconds the last 429 asked for), `headers` (rate-limit headers or nil).
function Budget:observe(now, outcome)
  prune(self._ok, now)
  if outcome.ok then self._ok[#self._ok + 1] = now end
  if outcome.headers then from_headers(self, now, outcome.headers) end
  if (outcome.limited or 0) > 0 then
    self.limited = self.limited + outcome.limited
    -- The 429s of requests that were in flight together are one signal:
    -- the rate drops once for them, not once each.
    if not self._fixed and now >= self._cool_until then
      local through = #self._ok / M.WINDOW
      local r = self.rate and self.rate < through and self.rate or through
      r = r * M.DECREASE
      if r < M.FLOOR then r = M.FLOOR end
      self.rate = r
      self._cool_until = now + M.COOLDOWN
    end
    pause(self, now, outcome.retry_after or M.DEFAULT_PAUSE)
    self._grown_at = self._paused_until
  elseif outcome.ok then
    grow(self, now)
  end
end

return M
