-- The wire the real API speaks, against the local server's TLS listeners: HTTP/2 multiplexing,
-- TLS session resumption across every connection of a client, HTTP proxies (a real tinyproxy on
-- loopback: open, refusing, wanting credentials, and NO_PROXY), and client certificates. Every
-- claim is checked in what the server (and the proxy) recorded.
local ravan = require "ravan"
local mock = require "spec.support.mock"
local proxy = require "spec.support.proxy"

local EXAMPLE, P250 = mock.phones.example, mock.phones.p250

local function tls_client(extra)
  local opts = { base_url = mock.tls_url, ca_file = mock.ca_file, api_key = mock.api_key,
    proxy = false }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return assert(ravan.new(opts))
end

-- Per connection the server saw: how many requests, its protocol and whether its handshake
-- resumed a session; with the number of connections and of full handshakes.
local function connections()
  local by, n, full = {}, 0, 0
  for _, rec in ipairs(mock.requests()) do
    local c = by[rec.connection]
    if not c then
      c = { requests = 0, protocol = rec.protocol, reused = rec.ssl_session_reused }
      by[rec.connection] = c
      n = n + 1
      if rec.ssl_session_reused ~= "r" then full = full + 1 end
    end
    c.requests = c.requests + 1
  end
  return by, n, full
end

-- 40 starts, a 25-page pager, then 3 blocking calls: everything a client does at once.
local function workload(c)
  local done = 0
  for _ = 1, 40 do
    c:start({ phone = EXAMPLE }, function(_, err)
      assert.is_nil(err)
      done = done + 1
    end)
  end
  local pages = 0
  for _ in c:pages { phone = P250, page_size = 10 } do pages = pages + 1 end
  while done < 40 do assert(c:poll(0.05)) end
  for _ = 1, 3 do assert(c:phone_history { phone = EXAMPLE }) end
  return pages
end

-- Every value a log event or an error holds, as text, to search for secrets.
local function dump(v, out)
  out = out or {}
  if type(v) == "table" then
    for k, x in pairs(v) do
      dump(k, out)
      dump(x, out)
    end
  elseif v ~= nil then
    out[#out + 1] = tostring(v)
  end
  return out
end

local function leak_free(secret, events, err)
  local text = table.concat(dump(events), "\n") .. "\n" .. table.concat(dump(err or {}), "\n")
    .. "\n" .. tostring(err)
  assert.is_nil(text:find(secret, 1, true), "leaked: " .. text)
end

describe("the wire over TLS", function()
  before_each(mock.reset)

  it("multiplexes the engine's requests as HTTP/2 streams of one connection", function()
    local c = tls_client()
    assert.are.equal(25, workload(c))
    c:close()
    local by, n = connections()
    local engine
    for _, conn in pairs(by) do
      assert.are.equal("HTTP/2.0", conn.protocol)
      if conn.requests >= 40 + 24 then engine = conn end
    end
    -- One connection carries the starts and the pager's prefetch, one the blocking calls.
    assert.truthy(engine, "no connection carried the engine's requests")
    assert.are.equal(2, n)
  end)

  it("hands over each HTTP/2 stream's answer when it is complete, not at the engine's next idle wakeup", function()
    -- libcurl 7.88 can leave a stream's answer read and buffered with nothing more to come on
    -- the socket: the engine then slept its idle second before handing it over, a few pages in
    -- a thousand. 3,000 pages: the server sees the pager's requests come about 1.5 ms apart;
    -- one that waits for an idle wakeup leaves a gap of a second.
    local biggest = 0
    for _ = 1, 30 do
      mock.reset()
      local c = tls_client { max_concurrency = 8 }
      for _ in c:pages { phone = mock.phones.p10k, page_size = 100 } do end
      c:close()
      local recs = mock.requests()
      assert.are.equal(100, #recs)
      assert.are.equal("HTTP/2.0", recs[#recs].protocol)
      for i = 2, #recs do biggest = math.max(biggest, recs[i].time - recs[i - 1].time) end
    end
    assert.is_true(biggest < 0.5, ("a request came %.3f s after the one before"):format(biggest))
  end)

  it("resumes the session on every connection after the client's first handshake", function()
    local c = tls_client()
    workload(c)
    c:close()
    local _, n, full = connections()
    assert.are.equal(2, n)
    assert.are.equal(1, full)
  end)

  it("without HTTP/2, keeps to max_concurrency + 1 connections, one full handshake", function()
    local c = tls_client { http2 = false, max_concurrency = 4 }
    workload(c)
    c:close()
    -- A sync's first burst: max_concurrency requests at once on a client with no session yet.
    c = tls_client { http2 = false, max_concurrency = 4 }
    local path = os.tmpname()
    os.remove(path)
    assert(c:sync { phones = { EXAMPLE, P250, mock.phones.nulls, mock.phones.example_caller },
      db = "sqlite:" .. path })
    c:close()
    for _, suffix in ipairs { "", "-wal", "-shm" } do os.remove(path .. suffix) end
    local by, n, full = connections()
    for _, conn in pairs(by) do assert.are.equal("HTTP/1.1", conn.protocol) end
    -- Two clients: each keeps to its bound and makes one full handshake.
    assert.is_true(n <= 2 * (4 + 1), n .. " connections")
    assert.are.equal(2, full)
  end)

  it("makes a sync's requests streams of the client's one engine connection", function()
    local c = tls_client()
    local path = os.tmpname()
    os.remove(path)
    local s = assert(c:sync { phones = { EXAMPLE, P250, mock.phones.nulls }, db = "sqlite:" .. path })
    c:close()
    for _, suffix in ipairs { "", "-wal", "-shm" } do os.remove(path .. suffix) end
    assert.truthy(s)
    local by, n, full = connections()
    for _, conn in pairs(by) do assert.are.equal("HTTP/2.0", conn.protocol) end
    assert.is_true(n <= 2, n .. " connections")
    assert.are.equal(1, full)
  end)

  it("gives two clients two sessions: nothing is shared between clients", function()
    local a, b = tls_client(), tls_client()
    assert(a:phone_history { phone = EXAMPLE })
    assert(b:phone_history { phone = EXAMPLE })
    local _, n, full = connections()
    assert.are.equal(2, n)
    assert.are.equal(2, full)
  end)
end)

describe("client certificates", function()
  before_each(mock.reset)

  local function mtls(extra)
    local opts = { base_url = mock.mtls_url, max_retries = 0 }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return tls_client(opts)
  end

  it("are presented to a server that requires one", function()
    local res = mtls({ client_cert = mock.dir .. "/client.pem", client_key = mock.dir .. "/client.key" })
      :phone_history { phone = EXAMPLE }
    assert.are.equal(3, #res.calls)
    local rec = mock.requests()[1]
    assert.are.equal("mtls", rec.listener)
    assert.matches("CN=ravan client", rec.client_subject)
  end)

  it("open a key under its passphrase, which no log event or error shows", function()
    local events = {}
    local c = mtls({ client_cert = mock.dir .. "/client.pem",
      client_key = mock.dir .. "/client-enc.key", key_password = "ravan-key-pass",
      log = function(ev) events[#events + 1] = ev end })
    assert(c:phone_history { phone = EXAMPLE })
    assert.matches("CN=ravan client", mock.requests()[1].client_subject)
    leak_free("ravan-key-pass", events)
    local bad = mtls({ client_cert = mock.dir .. "/client.pem",
      client_key = mock.dir .. "/client-enc.key", key_password = "wrong-pass-phrase",
      log = function(ev) events[#events + 1] = ev end })
    local res, err = bad:phone_history { phone = EXAMPLE }
    assert.is_nil(res)
    assert.are.equal("tls", err.kind)
    leak_free("wrong-pass-phrase", events, err)
  end)

  it("are refused when missing or signed by an unknown CA, and nothing reaches the API", function()
    for _, extra in ipairs {
      {},
      { client_cert = mock.dir .. "/other.pem", client_key = mock.dir .. "/other.key" },
    } do
      local res, err = mtls(extra):phone_history { phone = EXAMPLE }
      assert.is_nil(res)
      assert.truthy(err.kind == "invalid_request" or err.status == 400 or err.kind == "tls"
        or err.kind == "network", tostring(err))
    end
    assert.are.equal(0, #mock.requests())
  end)

  it("are checked when the client is made", function()
    local c, err = ravan.new { base_url = mock.mtls_url, api_key = mock.api_key,
      client_cert = mock.dir .. "/no-such.pem" }
    assert.is_nil(c)
    assert.are.equal("invalid_argument", err.kind)
    assert.matches("client_cert", err.message)
  end)
end)

describe("through an HTTP proxy", function()
  local proxies = proxy.each_kind(setup, teardown)
  before_each(mock.reset)

  local function with_creds(p, password)
    return ("http://%s:%s@127.0.0.1:%d"):format(proxy.user, password, p.port)
  end

  it("tunnels HTTPS with CONNECT, HTTP/2 inside, the proxy option's proxy", function()
    local before = proxies.open.requests()
    local c = tls_client { proxy = proxies.open.url }
    workload(c)
    c:close()
    assert.truthy(proxies.open.log():find("CONNECT 127.0.0.1:" .. mock.tls_url:match(":(%d+)$"), 1, true))
    -- A tunnel per connection: the engine's and the blocking path's.
    assert.are.equal(2, proxies.open.requests() - before)
    local _, n, full = connections()
    assert.are.equal(2, n)
    assert.are.equal(1, full)
  end)

  it("takes the proxy from HTTPS_PROXY, or HTTP_PROXY for http://", function()
    local env = { HTTPS_PROXY = proxies.open.url, HTTP_PROXY = proxies.open.url }
    local getenv = function(name) return env[name] end
    local before = proxies.open.requests()
    local c = assert(ravan.new({ base_url = mock.tls_url, ca_file = mock.ca_file,
      api_key = mock.api_key }, getenv))
    assert(c:phone_history { phone = EXAMPLE })
    local plain = assert(ravan.new({ base_url = mock.url, api_key = mock.api_key }, getenv))
    assert(plain:phone_history { phone = EXAMPLE })
    assert.are.equal(2, proxies.open.requests() - before)
    assert.truthy(proxies.open.log():find("GET http://127.0.0.1:" .. mock.url:match(":(%d+)$"), 1, true))
    assert.are.equal(2, #mock.requests())
  end)

  it("goes direct for a host in NO_PROXY, or with proxy = false", function()
    local env = { HTTPS_PROXY = proxies.open.url, NO_PROXY = "example.com,127.0.0.1" }
    local getenv = function(name) return env[name] end
    local before = proxies.open.requests()
    assert(assert(ravan.new({ base_url = mock.tls_url, ca_file = mock.ca_file,
      api_key = mock.api_key }, getenv)):phone_history { phone = EXAMPLE })
    env.NO_PROXY = nil
    assert(assert(ravan.new({ base_url = mock.tls_url, ca_file = mock.ca_file,
      api_key = mock.api_key, proxy = false }, getenv)):phone_history { phone = EXAMPLE })
    assert(assert(ravan.new({ base_url = mock.tls_url, ca_file = mock.ca_file,
      api_key = mock.api_key, proxy = proxies.open.url, no_proxy = "127.0.0.1" }))
      :phone_history { phone = EXAMPLE })
    assert.are.equal(0, proxies.open.requests() - before)
    assert.are.equal(3, #mock.requests())
  end)

  it("fails as network when the proxy refuses the tunnel, and nothing reaches the API", function()
    local res, err = tls_client({ proxy = proxies.refuse.url, max_retries = 0 })
      :phone_history { phone = EXAMPLE }
    assert.is_nil(res)
    assert.are.equal("network", err.kind)
    assert.matches("403", err.message)
    assert.are.equal(0, #mock.requests())
  end)

  it("sends the proxy's credentials, which no log event or error shows", function()
    local events = {}
    local log = function(ev) events[#events + 1] = ev end
    local res = tls_client({ proxy = with_creds(proxies.auth, proxy.password), log = log })
      :phone_history { phone = EXAMPLE }
    assert.are.equal(3, #res.calls)
    assert.are.equal(1, #mock.requests())
    local err
    res, err = tls_client({ proxy = with_creds(proxies.auth, "wrong-" .. proxy.password), log = log,
      max_retries = 0 }):phone_history { phone = EXAMPLE }
    assert.is_nil(res)
    assert.are.equal("network", err.kind)
    -- tinyproxy 1.11 answers a CONNECT without valid credentials with 401, not 407.
    assert.matches("40[17]", err.message)
    leak_free(proxy.password, events, err)
    res, err = tls_client({ proxy = proxies.auth.url, max_retries = 0 }):phone_history { phone = EXAMPLE }
    assert.is_nil(res)
    assert.matches("40[17]", err.message)
    assert.are.equal(1, #mock.requests())
  end)

  it("refuses a proxy URL that is not http:// without repeating it", function()
    local c, err = ravan.new { base_url = mock.tls_url, api_key = mock.api_key,
      proxy = "socks5://u:hunter2secret@127.0.0.1:1" }
    assert.is_nil(c)
    assert.are.equal("invalid_argument", err.kind)
    assert.is_nil(tostring(err):find("hunter2secret", 1, true))
  end)
end)
