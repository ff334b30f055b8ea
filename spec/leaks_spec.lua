-- No leaks on failure paths: thousands of failing calls of mixed kinds, on
-- long-lived clients and on fresh ones, leave the Lua heap, the RSS and the open fds where a
-- warm-up left them. (`make memcheck` runs this under valgrind too.)
local ravan = require "ravan"
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"

local CALLS = 2000
local WARMUP = 200
local BATCH = 100
-- Faults carry a phone filter, so calls for any other phone (the bad-key ones) never take one.
local FAULT_PHONE = mock.phones.example
local OTHER_PHONE = mock.phones.example_caller

-- Growth allowed after the warm-up. Under valgrind the RSS is valgrind's own (freed blocks
-- sit in its quarantine), so only the fd and Lua heap bounds stay tight there.
local MEMCHECK = os.getenv("MEMCHECK") == "1"
local MAX_HEAP_KB = 200
local MAX_RSS_KB = MEMCHECK and 128 * 1024 or 4 * 1024
local MAX_FDS = 2

-- One entry per kind of failure; `client` names the client that produces it.
local FAST = {
  { client = "main", fault = { kind = "status", status = 401 } },
  { client = "main", fault = { kind = "status", status = 400 } },
  { client = "main", fault = { kind = "status", status = 503 } },
  { client = "main", fault = { kind = "malformed_json" } },
  { client = "main", fault = { kind = "html", status = 502 } },
  { client = "main", fault = { kind = "empty" } },
  { client = "main", fault = { kind = "reset" } },
  { client = "main", fault = { kind = "truncate" } },
  { client = "main", fault = { kind = "large", bytes = 256 * 1024 } },
  { client = "main", fault = { kind = "large", bytes = 256 * 1024, chunked = true } },
  { client = "bad_key" },
  { client = "refused" },
}
-- Every TIMEOUT_EVERY-th call times out instead (they cost `timeout` each).
local TIMEOUT_EVERY = 100
local SLOW = { client = "main", fault = { kind = "delay", ms = 500 } }

-- Every client has a key the server refuses, so a call fails even when it takes no fault
-- (libcurl resends a request once by itself when a kept-alive connection dies before any
-- answer, and the resent request takes the next call's fault). "bad_key" calls take none.
local function options(name, closed_url)
  local opts = { max_retries = 0, timeout = 0.05, max_response_bytes = 64 * 1024 }
  opts.api_key = "rk_not_a_key"
  if name == "refused" then opts.base_url = closed_url end
  return mock.options(opts)
end

local function entry(i)
  if i % TIMEOUT_EVERY == 0 then return SLOW end
  return FAST[(i - 1) % #FAST + 1]
end

local function copy_fault(f)
  local out = { phone = FAULT_PHONE }
  for k, v in pairs(f) do out[k] = v end
  return out
end

-- Makes calls `first`..`last` of the plan with client_for(name); every one must fail.
-- Returns the set of error kinds seen.
local function failing_calls(first, last, client_for)
  local kinds = {}
  for start = first, last, BATCH do
    local stop = math.min(last, start + BATCH - 1)
    local faults = {}
    for i = start, stop do
      local e = entry(i)
      if e.fault then faults[#faults + 1] = copy_fault(e.fault) end
    end
    mock.reset()
    if #faults > 0 then mock.fault(faults) end
    -- The GC sees a client's Lua side only, not the ~40 KB of curl state behind it, so it
    -- lets hundreds of dead fresh clients pile up; collecting here keeps that peak (and the
    -- RSS it leaves behind) in the warm-up, so what grows after it can only be a leak.
    collectgarbage("collect")
    for i = start, stop do
      local e = entry(i)
      local res, err = client_for(e.client):phone_history {
        phone = e.fault and FAULT_PHONE or OTHER_PHONE,
      }
      assert(res == nil and ravan.is_error(err), "call " .. i .. " did not fail")
      kinds[err.kind] = (kinds[err.kind] or 0) + 1
    end
  end
  return kinds
end

local function snapshot()
  h.full_gc()
  return { heap = collectgarbage("count"), rss = h.rss_kb(), fds = h.open_fds() }
end

local function assert_no_growth(what, before, after)
  print(("# leaks (%s): after %d failing calls, Lua heap %+.0f KB, RSS %+d KB, fds %d -> %d")
    :format(what, CALLS, after.heap - before.heap, after.rss - before.rss, before.fds, after.fds))
  local heap = after.heap - before.heap
  local rss = after.rss - before.rss
  assert(heap < MAX_HEAP_KB, ("Lua heap grew by %.0f KB"):format(heap))
  assert(rss < MAX_RSS_KB, ("RSS grew by %d KB"):format(rss))
  assert(after.fds - before.fds <= MAX_FDS, ("open fds grew from %d to %d"):format(before.fds, after.fds))
end

local function assert_mixed(kinds)
  for _, k in ipairs({ "auth", "bad_request", "server", "decode", "network", "too_large", "timeout" }) do
    assert(kinds[k], "no " .. k .. " error among the calls")
  end
end

describe("failing calls", function()
  local closed_url

  before_each(function()
    mock.reset()
    closed_url = h.closed_url()
  end)

  -- Warm up, then CALLS more failing calls; memory and fds must end where the warm-up left them.
  local function assert_no_leak(label, client_for)
    failing_calls(1, WARMUP, client_for)
    local before = snapshot()
    local kinds = failing_calls(WARMUP + 1, WARMUP + CALLS, client_for)
    local after = snapshot()
    assert_mixed(kinds)
    assert_no_growth(label, before, after)
  end

  it(CALLS .. " of mixed kinds on long-lived clients leak no memory and no fds", function()
    local clients = {}
    assert_no_leak("long-lived clients", function(name)
      clients[name] = clients[name] or assert(ravan.new(options(name, closed_url)))
      return clients[name]
    end)
    for _, c in pairs(clients) do c:close() end
  end)

  it(CALLS .. " of mixed kinds on fresh clients leak no memory and no fds", function()
    assert_no_leak("fresh clients", function(name)
      return assert(ravan.new(options(name, closed_url)))
    end)
  end)
end)
