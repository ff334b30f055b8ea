-- Timings, stats, metrics and traceparent of the libcurl client, on every path a request takes
-- (blocking, start, the pager's prefetch, sync), against the local server.
local mock = require "spec.support.mock"
local ravan = require "ravan"
local metrics = require "ravan.metrics"
local cjson = require "cjson"

local PHONE = mock.phones.example_caller

local function assert_ordered(t, where)
  assert.is_table(t, where)
  for _, phase in ipairs { "dns", "connect", "tls", "first_byte", "total" } do
    assert.is_number(t[phase], where .. " " .. phase)
  end
  assert.is_true(t.dns >= 0 and t.dns <= t.connect and t.connect <= t.tls
    and t.tls <= t.first_byte and t.first_byte <= t.total and t.total > 0,
    where .. ": " .. cjson.encode(t))
end

-- A client whose log keeps every event.
local function logged(extra)
  local events = {}
  local opts = { log = function(e) events[#events + 1] = e end }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return mock.fast_client(opts), events
end

local function responses(events)
  local out = {}
  for _, e in ipairs(events) do
    if e.event == "response" or e.event == "retry" or e.event == "error" then out[#out + 1] = e end
  end
  return out
end

describe("timings", function()
  before_each(mock.reset)

  it("come ordered with every response of a blocking call, a start, a pager and a sync", function()
    local c, events = logged()
    assert(c:phone_history { phone = PHONE })
    assert(c:start { phone = PHONE }):wait()
    local n = 0
    for _ in c:pages { phone = mock.phones.p250, prefetch = 2 } do n = n + 1 end
    assert.equal(3, n)
    local path = os.tmpname()
    assert(c:sync { phone = PHONE, db = "sqlite:" .. path })
    os.remove(path)
    local seen = responses(events)
    -- blocking 1, start 1, pager 3, sync at least 1
    assert.is_true(#seen >= 6)
    for i, e in ipairs(seen) do
      assert_ordered(e.timings, "event " .. i)
      assert.equal("1.1", e.http_version)
      assert.is_boolean(e.reused)
      assert.is_true(e.bytes > 0)
    end
    -- keep-alive: the blocking handle's second call reuses its connection
    assert.is_false(seen[1].reused)
  end)

  it("come over TLS with a handshake after the connect, and none on a reused connection", function()
    local c, events = logged { base_url = mock.tls_url, ca_file = mock.ca_file }
    assert(c:phone_history { phone = PHONE })
    assert(c:phone_history { phone = PHONE })
    local seen = responses(events)
    assert_ordered(seen[1].timings, "first")
    assert.is_true(seen[1].timings.tls > seen[1].timings.connect)
    assert.is_false(seen[1].reused)
    assert.is_true(seen[2].reused)
    assert.equal(seen[2].timings.connect, seen[2].timings.tls)
  end)

  it("ride on errors, HTTP and transport ones alike, with the server's request id", function()
    local c = mock.fast_client { max_retries = 0 }
    mock.fault { kind = "status", status = 500 }
    local _, err = c:phone_history { phone = PHONE }
    assert.equal("server", err.kind)
    assert_ordered(err.timings, "500")
    assert.is_string(err.request_id)
    -- on a new connection: libcurl sends again by itself when a kept-alive one is reset
    mock.fault { kind = "reset" }
    _, err = mock.fast_client({ max_retries = 0 }):phone_history { phone = PHONE }
    assert.equal("network", err.kind)
    assert_ordered(err.timings, "reset")
    -- a decode failure carries the answer's timings too
    mock.fault { kind = "malformed_json" }
    _, err = c:phone_history { phone = PHONE }
    assert.equal("decode", err.kind)
    assert_ordered(err.timings, "decode")
  end)
end)

describe("client:stats()", function()
  before_each(mock.reset)

  it("counts calls, attempts, retries by reason, 429s, errors by kind and bytes", function()
    local c = mock.fast_client()
    mock.fault { kind = "status", status = 503, count = 1 }
    assert(c:phone_history { phone = PHONE })
    mock.fault { kind = "status", status = 429, retry_after = "0", count = 1 }
    assert(c:phone_history { phone = PHONE })
    mock.fault { kind = "status", status = 404, count = 1 }
    assert.is_nil(c:phone_history { phone = PHONE })
    mock.fault { kind = "status", status = 429, retry_after = "0", count = 3 }
    assert.is_nil(c:phone_history { phone = PHONE })
    local s = c:stats()
    local sent = #mock.requests()
    assert.equal(4, s.requests)
    assert.equal(sent, s.attempts)
    assert.equal(2 + 2 + 1 + 3, s.attempts)
    assert.same({ server = 1, rate_limited = 3 }, s.retries)
    assert.same({ bad_request = 1, rate_limited = 1 }, s.errors)
    assert.equal(4, s.rate_limited)
    assert.is_true(s.bytes > 0)
    for _, name in ipairs { "request", "first_byte" } do
      local h = s.latency[name]
      assert.equal(4, h.count)
      assert.equal(4, h.counts[#h.buckets + 1])
      for i = 2, #h.counts do assert.is_true(h.counts[i] >= h.counts[i - 1]) end
    end
  end)

  it("counts the engine's and the pager's requests too, each page once", function()
    local c = mock.client()
    for _ in c:pages { phone = mock.phones.p250, prefetch = 2 } do end
    local r = assert(c:start { phone = PHONE })
    r:wait()
    local s = c:stats()
    assert.equal(4, s.requests)
    assert.equal(4, s.attempts)
  end)

  it("hands out copies, and is refused to a client made with stats = false", function()
    local c = mock.client()
    c:stats().requests = 99
    assert.equal(0, c:stats().requests)
    local off = mock.client { stats = false }
    assert(off:phone_history { phone = PHONE })
    local s, err = off:stats()
    assert.is_nil(s)
    assert.equal("invalid_argument", err.kind)
  end)
end)

describe("ravan.metrics", function()
  before_each(mock.reset)

  it("renders the stats as Prometheus text, with no credential or phone number in it", function()
    local c = assert(ravan.new { base_url = mock.url, token = mock.token, retry_base = 0.01 })
    mock.fault { kind = "status", status = 503, count = 1 }
    assert(c:phone_history { phone = PHONE })
    local text = assert(metrics.render(c))
    assert.matches("\nravan_requests_total 1\n", text, 1, true)
    assert.matches('\nravan_retries_total{reason="server"} 1\n', text, 1, true)
    assert.matches('\nravan_request_duration_seconds_bucket{le="+Inf"} 1\n', text, 1, true)
    assert.matches("# TYPE ravan_request_duration_seconds histogram", text, 1, true)
    assert.is_nil(text:find(mock.token, 1, true))
    assert.is_nil(text:find(PHONE:sub(2), 1, true))
    for line in text:gmatch("[^\n]+") do
      if not line:find("^#") then
        assert.matches('^ravan_[a-z_]+[{%w_="+.}]* [%d.e+-]+$', line)
      end
    end
  end)

  it("adds up several clients, and refuses what is not one", function()
    local a, b = mock.client(), mock.client()
    assert(a:phone_history { phone = PHONE })
    assert(b:phone_history { phone = PHONE })
    assert.matches("\nravan_requests_total 2\n", metrics.render { a, b:stats() }, 1, true)
    local text, err = metrics.render("nope")
    assert.is_nil(text)
    assert.equal("invalid_argument", err.kind)
  end)
end)

describe("the traceparent option", function()
  before_each(mock.reset)

  local function sent()
    local out = {}
    for i, r in ipairs(mock.requests()) do out[i] = r.headers.traceparent end
    return out
  end

  it("sends a given traceparent on every attempt of the call, and only there", function()
    local c = mock.fast_client()
    local tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    mock.fault { kind = "status", status = 503, count = 2 }
    assert(c:phone_history { phone = PHONE, traceparent = tp })
    assert(c:phone_history { phone = PHONE })
    local got = sent()
    assert.equal(4, #mock.requests())
    assert.same({ tp, tp, tp }, { got[1], got[2], got[3] })
    assert.is_nil(got[4])
  end)

  it("makes a new one per call when asked, the same for each attempt, on start too", function()
    local c = mock.fast_client { traceparent = true }
    mock.fault { kind = "status", status = 503, count = 1 }
    assert(c:phone_history { phone = PHONE })
    assert(c:start { phone = PHONE }):wait()
    local got = sent()
    assert.equal(3, #got)
    for _, v in ipairs(got) do
      assert.matches("^00%-%x+%-%x+%-01$", v)
      assert.equal(55, #v)
    end
    assert.equal(got[1], got[2])
    assert.not_equal(got[2], got[3])
  end)

  it("frees the header list of requests cancelled or closed before they ran (make memcheck)", function()
    local c = mock.client { traceparent = true, max_concurrency = 1 }
    mock.config { latency_ms = 200 }
    local first = assert(c:start { phone = PHONE })
    local queued = assert(c:start { phone = PHONE })
    assert(c:start { phone = PHONE })
    queued:cancel()
    c:close()
    assert.equal("cancelled", select(2, first:result()).kind)
  end)

  it("refuses a malformed one by name", function()
    local c = mock.client()
    for _, bad in ipairs { "00-abc", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nX-Evil: 1", 7 } do
      local res, err = c:phone_history { phone = PHONE, traceparent = bad }
      assert.is_nil(res)
      assert.equal("invalid_argument", err.kind)
      assert.matches("traceparent", err.message, 1, true)
    end
    assert.equal(0, #mock.requests())
  end)
end)

describe("the credential", function()
  before_each(mock.reset)

  it("appears in no log event, error, stats or metrics text, retries and timings included", function()
    local c, events = logged()
    mock.fault { kind = "status", status = 500, count = 3,
      body = '{"message":"key ' .. mock.api_key .. '"}' }
    local _, err = c:phone_history { phone = PHONE }
    assert.equal("server", err.kind)
    local all = cjson.encode(events) .. tostring(err) .. cjson.encode(err.timings)
      .. cjson.encode(c:stats()) .. metrics.render(c)
    assert.is_nil(all:find(mock.api_key, 1, true))
  end)
end)
