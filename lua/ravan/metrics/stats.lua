--- What a client has done: counters and latency histograms, kept by every client (unless made
-- with `stats = false`) and read with `client:stats()`. `ravan.metrics` renders them for
-- Prometheus. See docs/observability.md.
--
--    local s = client:stats()
--    print(s.requests, s.attempts, s.retries.rate_limited, s.errors.timeout, s.bytes)
--    print(s.latency.request.sum / s.latency.request.count)
-- @module ravan.metrics.stats

-- Recording is a handful of additions per finished call, on the one result path
-- (ravan.result) that every transport's responses take. A snapshot copies; the live table is
-- never handed out, so no caller can corrupt the counts.

local errors = require "ravan.errors"

require("ravan.interpreted")()
local M = {}

-- The upper bounds (seconds) of the latency histograms' buckets (`ravan.metrics.stats.BUCKETS`), the
-- same for every histogram and every client, so histograms of many clients and workers add
-- up. A last bucket, `+Inf`, holds the rest. Prometheus' defaults, with 30 s and 60 s for slow
-- pages.
local BUCKETS = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 }
M.BUCKETS = BUCKETS
local N = #BUCKETS

-- The histograms, by name: `request` (a whole call: every attempt and the waits between
-- them) and `first_byte` (the last attempt's time to the first byte of the answer).
M.HISTOGRAMS = { "request", "first_byte" }

local function copy(t)
  local c = {}
  for k, v in next, t do c[k] = type(v) == "table" and copy(v) or v end
  return c
end

local function histogram()
  local counts = {}
  for i = 1, N + 1 do counts[i] = 0 end
  return { counts = counts, sum = 0 }
end

function M.new()
  return {
    requests = 0, attempts = 0, rate_limited = 0, bytes = 0,
    retries = {}, errors = {},
    latency = { request = histogram(), first_byte = histogram() },
  }
end

-- The attempts of a call that had several: 429s, and retries by the kind of what was retried.
local function count_attempts(s, events)
  local retries = s.retries
  for i = 1, #events do
    local e = events[i]
    if e.status == 429 then s.rate_limited = s.rate_limited + 1 end
    if e.wait_ms then
      local reason = errors.kind_for(e.status, e.error)
      retries[reason] = (retries[reason] or 0) + 1
    end
  end
end

-- One finished call: `res` the transport's response (ravan.result's shape), `err` its error
-- or nil. Retries and 429s are read from the attempts when there were several (the
-- transports list them then), else from the outcome. Written for the common case, one
-- attempt and no error: it runs on every call (bench l measures it), so the histograms are
-- inlined and their counts derived when a snapshot is taken.
function M.record(s, res, err)
  s.requests = s.requests + 1
  if err then
    local by_kind = s.errors
    by_kind[err.kind] = (by_kind[err.kind] or 0) + 1
  end
  local attempts = res.attempts
  if not attempts or attempts == 0 then return end
  s.attempts = s.attempts + attempts
  s.bytes = s.bytes + (res.bytes or 0)
  local events = res.events
  if events and events[2] then
    count_attempts(s, events)
  elseif res.status == 429 then
    s.rate_limited = s.rate_limited + 1
  end
  local latency = s.latency
  local v, i = res.elapsed or 0, 1
  while i <= N and v > BUCKETS[i] do i = i + 1 end
  local h = latency.request
  local counts = h.counts
  counts[i] = counts[i] + 1
  h.sum = h.sum + v
  local t = res.timings
  if t then
    v, i = t[4] or 0, 1
    while i <= N and v > BUCKETS[i] do i = i + 1 end
    h = latency.first_byte
    counts = h.counts
    counts[i] = counts[i] + 1
    h.sum = h.sum + v
  end
end

-- A histogram as a snapshot shows it: cumulative counts, as Prometheus' `le` buckets are.
local function cumulative(h)
  local counts, total = {}, 0
  for i = 1, N + 1 do
    total = total + h.counts[i]
    counts[i] = total
  end
  return { buckets = copy(BUCKETS), counts = counts, sum = h.sum, count = total }
end

--- A snapshot of a client's figures, as `client:stats()` returns it: a table of its own.
-- @table Stats
-- @tfield integer requests calls finished (each page of a pager is one), failed ones included
-- @tfield integer attempts HTTP requests made for them, retries and redirects included
-- @tfield table retries retries by reason: an error kind (`rate_limited`, `server`,
-- `timeout`, `network`, ...) -> count
-- @tfield table errors failed calls by error kind -> count
-- @tfield integer rate_limited 429 answers, retried ones included
-- @tfield number bytes response body bytes received, over every attempt
-- @tfield table latency `request` and `first_byte`, each `{ buckets, counts, sum, count }`:
-- `counts[i]` calls took at most `buckets[i]` seconds, `counts[#buckets + 1]` is every call
-- (`+Inf`), `sum` their seconds together
function M.snapshot(s)
  local snap = copy(s)
  for name, h in next, s.latency do snap.latency[name] = cumulative(h) end
  return snap
end

--- The sum of snapshots (of several clients, or several nginx workers), a snapshot itself.
-- @tparam {Stats,...} list
-- @treturn Stats
function M.merge(list)
  local total = M.snapshot(M.new())
  for _, s in ipairs(list) do
    for _, name in ipairs { "requests", "attempts", "rate_limited", "bytes" } do
      total[name] = total[name] + (s[name] or 0)
    end
    for _, name in ipairs { "retries", "errors" } do
      for k, v in next, s[name] or {} do total[name][k] = (total[name][k] or 0) + v end
    end
    for name, h in next, s.latency or {} do
      local into = total.latency[name]
      if into then
        for i = 1, N + 1 do into.counts[i] = into.counts[i] + (h.counts[i] or 0) end
        into.sum, into.count = into.sum + h.sum, into.count + h.count
      end
    end
  end
  return total
end

return M
