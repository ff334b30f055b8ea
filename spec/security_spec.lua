-- Security defaults: TLS verification, https only off loopback, no header injection, and the
-- credential never in an error, a client's string or a log event.
local ravan = require "ravan"
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"

local PHONE = mock.phones.example

local function tls_options(extra)
  local opts = { base_url = mock.tls_url, api_key = mock.api_key, max_retries = 0 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return opts
end

-- Asserts `secret` is in none of the strings reachable from `v`.
local function assert_no_secret(secret, v, what)
  for _, s in ipairs(h.strings(v)) do
    assert(not s:find(secret, 1, true), what .. " shows the credential: " .. s)
  end
end

describe("TLS", function()
  before_each(mock.reset)

  it("fails with kind tls against a self-signed certificate without its CA", function()
    local c = assert(ravan.new(tls_options({ max_retries = 2, retry_base = 0.01 })))
    local res, err = c:phone_history { phone = PHONE }
    assert.is_nil(res)
    assert.are.equal("tls", err.kind, tostring(err))
    assert.is_false(err.retryable)
    assert.are.equal(1, err.attempts)
    assert.is_number(err.curl_code)
    assert.are.same({}, h.records("tls"))
  end)

  it("succeeds with ca_file = the server's certificate, by IP and by name", function()
    local port = mock.tls_url:match(":(%d+)$")
    for _, url in ipairs({ mock.tls_url, "https://localhost:" .. port }) do
      mock.reset()
      local c = assert(ravan.new(tls_options({ base_url = url, ca_file = mock.ca_file })))
      local res, err = c:phone_history { phone = PHONE }
      assert(res, tostring(err))
      assert.are.equal(3, res.total_count)
      local recs = h.records("tls")
      assert.are.equal(1, #recs)
      assert.are.equal(mock.api_key, recs[1].headers["x-api-key"])
    end
  end)

  it("skips verification only with the explicit insecure option", function()
    local c = assert(ravan.new(tls_options({ insecure = true })))
    assert(c:phone_history { phone = PHONE })
  end)

  it("never reads insecure from the environment", function()
    -- Every variable says "insecure", "true" or "0" (whichever a library might look for).
    local env = function(name)
      if name == "RAVAN_API_KEY" then return mock.api_key end
      if name == "RAVAN_BASE_URL" then return mock.tls_url end
      if name == "RAVAN_TOKEN" then return nil end
      -- A proxy variable is read, and "1" would name a proxy host: not what this is about.
      if name:lower():find("proxy", 1, true) then return nil end
      return "1"
    end
    local c = assert(ravan.new({ max_retries = 0 }, env))
    local _, err = c:phone_history { phone = PHONE }
    assert.are.equal("tls", err.kind)
    -- And through the real environment, with the CLI.
    local status, _, stderr = h.run_cli({ PHONE }, {
      RAVAN_BASE_URL = mock.tls_url, RAVAN_API_KEY = mock.api_key, RAVAN_INSECURE = "1",
      RAVAN_TLS_INSECURE = "1", RAVAN_VERIFY = "0", CURL_INSECURE = "1", CURLOPT_SSL_VERIFYPEER = "0",
      PYTHONHTTPSVERIFY = "0", NODE_TLS_REJECT_UNAUTHORIZED = "0",
    })
    assert.are.equal(1, status)
    assert.matches("^ravan%-history: tls", stderr)
  end)
end)

describe("plain http", function()
  before_each(mock.reset)
  after_each(function() assert.are.same({}, mock.requests()) end)

  it("is refused to a host that is not loopback, unless allow_http is set", function()
    for _, url in ipairs({ "http://api.ravan.ai", "http://10.0.0.1:8080", "http://127.0.0.1.nip.io",
      "http://localhost.example.com", "http://[::2]", "HTTP://api.ravan.ai" }) do
      local c, err = ravan.new({ base_url = url, api_key = mock.api_key })
      assert.is_nil(c, url)
      assert.are.equal("invalid_argument", err.kind)
      assert.matches("https://", err.message)
      assert(ravan.new({ base_url = url, api_key = mock.api_key, allow_http = true }), url)
    end
  end)

  it("is allowed to localhost, 127.0.0.0/8 and [::1]", function()
    for _, url in ipairs({ "http://localhost:1", "http://127.0.0.1", "http://127.1.2.3:8080",
      "http://[::1]:1", "http://LOCALHOST" }) do
      assert(ravan.new({ base_url = url, api_key = mock.api_key }), url)
    end
  end)
end)

describe("credentials", function()
  before_each(mock.reset)
  after_each(function() assert.are.same({}, mock.requests()) end)

  it("with CR, LF or another control character are refused, and not quoted back", function()
    local bad = { "rk_abc\r\nX-Evil: 1", "rk_abc\n", "rk_\rabc", "rk_abc\0def", "rk\tabc", "rk\27[0m" }
    for _, secret in ipairs(bad) do
      for _, name in ipairs({ "api_key", "token" }) do
        local c, err = ravan.new({ base_url = mock.url, [name] = secret })
        assert.is_nil(c)
        assert.are.equal("invalid_argument", err.kind)
        assert.matches(name, err.message)
        assert_no_secret(secret, err, "err")
        assert_no_secret(secret, tostring(err), "tostring(err)")
      end
      -- From the environment too.
      local c, err = ravan.new({ base_url = mock.url }, function(n)
        return n == "RAVAN_API_KEY" and secret or nil
      end)
      assert.is_nil(c)
      assert.matches("RAVAN_API_KEY", err.message)
    end
  end)
end)

describe("a missing credential", function()
  before_each(mock.reset)

  it("is refused by ravan.new before any traffic, naming both variables", function()
    local nothing = function() return nil end
    for _, env in ipairs({ nothing, function(n) return n == "RAVAN_BASE_URL" and mock.url or "" end }) do
      local c, err = ravan.new({ base_url = mock.url }, env)
      assert.is_nil(c)
      assert.are.equal("invalid_argument", err.kind)
      assert.matches("RAVAN_API_KEY", err.message)
      assert.matches("RAVAN_TOKEN", err.message)
      assert.matches("api_key or token", err.message)
    end
    assert.are.same({}, mock.requests())
  end)

  it("is refused by the CLI and the default client too, and the server hears nothing", function()
    local status, _, stderr = h.run_cli({ PHONE }, { RAVAN_BASE_URL = mock.url })
    assert.are_not.equal(0, status)
    assert.matches("RAVAN_API_KEY", stderr)
    assert.matches("RAVAN_TOKEN", stderr)
    -- Options of the Lua API, which the command line does not have.
    assert.is_nil(stderr:find("api_key", 1, true), stderr)
    assert.are.same({}, mock.requests())
  end)

  it("is refused by `ravan-history sync` in the same words", function()
    local status, _, stderr = h.run_cli({ "sync", PHONE, "--db", "sqlite:/nonexistent/x.db" },
      { RAVAN_BASE_URL = mock.url })
    assert.are.equal(2, status)
    assert.matches("^ravan%-history sync: no credential", stderr)
    assert.matches("RAVAN_API_KEY", stderr)
    assert.is_nil(stderr:find("api_key", 1, true), stderr)
    assert.is_nil(stderr:find("ravan: ", 1, true), stderr)
    assert.are.same({}, mock.requests())
  end)
end)

describe("the credential", function()
  before_each(mock.reset)

  local SECRET = mock.api_key
  local events

  local function logged_client(extra)
    local opts = { max_retries = 1, retry_base = 0.01, log = function(ev) events[#events + 1] = ev end }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return mock.client(opts)
  end

  before_each(function() events = {} end)

  local function check(c, res, err, what)
    assert_no_secret(SECRET, tostring(c), what .. ": tostring(client)")
    assert_no_secret(SECRET, c, what .. ": the client table")
    assert_no_secret(SECRET, events, what .. ": log events")
    if err then
      assert_no_secret(SECRET, err, what .. ": err")
      assert_no_secret(SECRET, tostring(err), what .. ": tostring(err)")
    else
      assert(res, what)
    end
  end

  it("is in no error, client string or log event, on success, retry and failure", function()
    local scenarios = {
      { "success" },
      { "retry", { kind = "status", status = 503 } },
      { "401", { kind = "status", status = 401 } },
      { "server echoing the key", { kind = "status", status = 401,
        body = '{"success":false,"message":"invalid key ' .. SECRET .. '"}' } },
      { "server echoing it in a 200", { kind = "status", status = 200,
        body = '{"success":false,"message":"key ' .. SECRET .. ' is suspended"}' } },
      { "server echoing it in plain text", { kind = "status", status = 500, count = 2,
        content_type = "text/plain", body = "bad key " .. SECRET } },
      { "reset", { kind = "reset", count = 2 } },
      { "decode", { kind = "malformed_json", body = '{"key":"' .. SECRET .. '"' } },
      { "other-origin redirect", { kind = "redirect", target = "other" } },
      { "redirect with the key in its URL", { kind = "redirect",
        location = "http://" .. SECRET .. ":" .. SECRET .. "@127.0.0.2:1/x?key=" .. SECRET } },
      { "too large", { kind = "large", bytes = 4096 } },
      { "server echoing it in X-Request-Id", { kind = "status", status = 401,
        headers = { ["X-Request-Id"] = "req-" .. SECRET .. "-1" } } },
      { "echoing it in X-Request-Id of a 200", { kind = "status", status = 200,
        headers = { ["X-Request-Id"] = SECRET }, body = "not json" } },
      { "echoing it in X-Request-Id of a 503", { kind = "status", status = 503, count = 2,
        headers = { ["X-Request-Id"] = SECRET } } },
    }
    for _, s in ipairs(scenarios) do
      mock.reset()
      events = {}
      if s[2] then mock.fault(s[2]) end
      local c = logged_client({ max_response_bytes = 2048 + 1024 })
      local res, err = c:phone_history { phone = PHONE }
      check(c, res, err, s[1])
      assert.truthy(#events > 0, s[1] .. ": nothing logged")
    end
    -- The key did go out: scrubbing did not remove it from the wire.
    assert.truthy(#mock.requests() > 0)
  end)

  it("is in no error or log event on transport failures and TLS failures", function()
    for _, opts in ipairs({
      { base_url = h.closed_url() }, { base_url = mock.tls_url }, { timeout = 0.1 },
    } ) do
      events = {}
      mock.reset()
      mock.fault({ kind = "delay", ms = 1000, count = 2 })
      local c = logged_client(opts)
      local res, err = c:phone_history { phone = PHONE }
      assert.is_nil(res)
      check(c, res, err, err.kind)
    end
  end)

  it("an echoed X-Request-Id is kept, with the credential masked", function()
    mock.fault({ kind = "status", status = 401, headers = { ["X-Request-Id"] = "req-" .. SECRET } })
    local _, err = logged_client():phone_history { phone = PHONE }
    assert.are.equal("req-[REDACTED]", err.request_id)
    assert.matches("request_id=req%-%[REDACTED%]", tostring(err))
    assert.are.equal("req-[REDACTED]", events[#events].request_id)
  end)

  it("is not left in part in a body cut to 2 KiB, wherever the cut falls", function()
    local errors = require "ravan.errors"
    for cut = 1, #SECRET - 1 do
      mock.reset()
      -- The whole key across the cut, and (second case) its first `cut` bytes just before it.
      for _, tail in ipairs({ SECRET .. " trailing text", SECRET:sub(1, cut) .. "zzz" }) do
        local body = ("x"):rep(errors.MAX_BODY - cut) .. tail
        mock.fault({ kind = "status", status = 500, content_type = "text/plain", body = body })
        local _, err = logged_client({ max_retries = 0 }):phone_history { phone = PHONE }
        assert.truthy(#err.body <= errors.MAX_BODY)
        for n = 3, #SECRET do
          assert.is_nil(err.body:find(SECRET:sub(1, n), 1, true), cut .. ": " .. err.body:sub(-20))
        end
      end
    end
  end)

  it("a token is in no error, client string or log event either", function()
    local token = mock.token
    local c = assert(ravan.new({ base_url = mock.url, token = token, max_retries = 1,
      retry_base = 0.01, log = function(ev) events[#events + 1] = ev end }))
    mock.fault({ kind = "status", status = 401, body = '{"message":"bad token ' .. token .. '"}' })
    local _, err = c:phone_history { phone = PHONE }
    assert.are.equal("auth", err.kind)
    assert.matches("REDACTED", err.message)
    for _, v in ipairs({ err, tostring(err), tostring(c), c, events }) do
      assert_no_secret(token, v, "token")
    end
  end)

  it("logs request, retry, response and error events with method, URL, status and attempt", function()
    mock.fault({ kind = "status", status = 503 })
    local c = logged_client()
    assert(c:phone_history { phone = PHONE })
    mock.fault({ kind = "status", status = 401 })
    assert.is_nil(c:phone_history { phone = PHONE })
    local seen = {}
    for _, ev in ipairs(events) do
      seen[ev.event] = (seen[ev.event] or 0) + 1
      assert.are.equal("GET", ev.method)
      assert.matches("^" .. mock.url .. "/api/v1/calling/phone%-history%?phone=%%2B", ev.url)
      assert.is_number(ev.attempt)
      if ev.event ~= "request" then
        assert.is_number(ev.elapsed_ms)
      end
      if ev.event == "retry" or ev.event == "response" then
        assert.is_number(ev.status)
      end
    end
    assert.are.same({ request = 3, retry = 1, response = 2, error = 1 }, seen)
  end)

  it("a log function that raises does not break the call", function()
    local c = mock.client({ log = function() error("logger is broken") end })
    assert(c:phone_history { phone = PHONE })
  end)
end)

describe("the credential, echoed in another encoding", function()
  before_each(mock.reset)

  -- Credentials with characters that encoders escape: `/` (JSON's `\/`), `+` and `=`.
  local CREDENTIALS = {
    { "api_key", "rk/AbC+dEf/9xYz==" },
    { "token", "tok/AbC+dEf/9xYz==" },
  }

  local function hex(c, fmt) return fmt:format(c:byte()) end
  -- Each encoder writes the credential the way some server would echo it.
  local ENCODERS = {
    { "JSON \\/", function(s) return (s:gsub("/", "\\/")) end },
    { "JSON \\u00XX upper case", function(s)
      return (s:gsub("[^%w]", function(c) return hex(c, "\\u%04X") end)) end },
    { "JSON \\u00xx of every character", function(s)
      return (s:gsub(".", function(c) return hex(c, "\\u%04x") end)) end },
    { "percent, upper case", function(s)
      return (s:gsub("[^%w]", function(c) return hex(c, "%%%02X") end)) end },
    { "percent, lower case", function(s)
      return (s:gsub("[^%w]", function(c) return hex(c, "%%%02x") end)) end },
    { "percent, twice", function(s)
      return (s:gsub("[^%w]", function(c) return hex(c, "%%25%02X") end)) end },
    { "mixed within one occurrence", function(s)
      local forms = { "\\/", "%%%02X", "\\u%04x", "%%%02x", "%s" }
      local n = 0
      return (s:gsub("[^%w]", function(c)
        n = n % #forms + 1
        local f = forms[n]
        if f == "\\/" then return c == "/" and f or hex(c, "\\u%04X") end
        if f == "%s" then return c end
        return hex(c, f)
      end))
    end },
  }

  -- Every form of `secret` this block sends, the plain one included.
  local function forms_of(secret)
    local all = { secret }
    for _, e in ipairs(ENCODERS) do all[#all + 1] = e[2](secret) end
    return all
  end

  local function assert_clean(secret, v, what)
    for _, form in ipairs(forms_of(secret)) do assert_no_secret(form, v, what) end
  end

  -- The faults that echo `echoed`: in a JSON error message, in a plain-text body, in a 200
  -- that says success = false, in X-Request-Id.
  local function faults(echoed)
    return {
      { kind = "status", status = 401, body = '{"message":"bad key ' .. echoed .. '"}' },
      { kind = "status", status = 500, content_type = "text/plain", body = "key=" .. echoed },
      { kind = "status", status = 200, body = '{"success":false,"message":"' .. echoed .. '"}' },
      { kind = "status", status = 403, headers = { ["X-Request-Id"] = "req-" .. echoed } },
    }
  end

  -- Runs `call(client)` (which returns page, err) once per credential, encoder and fault.
  local function each_echo(call)
    local n = 0
    for _, cred in ipairs(CREDENTIALS) do
      local field, secret = cred[1], cred[2]
      for _, enc in ipairs(ENCODERS) do
        local echoed = enc[2](secret)
        assert.are_not.equal(secret, echoed, enc[1])
        for _, f in ipairs(faults(echoed)) do
          mock.reset()
          local events = {}
          local c = assert(ravan.new({ base_url = mock.url, [field] = secret, max_retries = 0,
            log = function(ev) events[#events + 1] = ev end }))
          mock.fault(f)
          local page, err = call(c)
          local what = field .. ", " .. enc[1] .. ", HTTP " .. f.status
          assert.is_nil(page, what)
          assert.truthy(ravan.is_error(err), what)
          -- The server was sent the credential as given, and answered with it encoded.
          local rec = mock.requests()
          assert.are.equal(1, #rec, what)
          local sent = field == "api_key" and rec[1].headers["x-api-key"]
            or rec[1].headers.authorization
          assert.truthy(sent:find(secret, 1, true), what)
          for _, v in ipairs({ err, tostring(err), events }) do assert_clean(secret, v, what) end
          -- Masked, not dropped: the error still shows where the server echoed it.
          local shown = tostring(err) .. (err.body or "") .. (err.request_id or "")
          assert.truthy(shown:find("[REDACTED]", 1, true), what .. ": " .. shown)
          c:close()
          n = n + 1
        end
      end
    end
    assert.are.equal(#CREDENTIALS * #ENCODERS * 4, n)
  end

  it("is masked in every field of the error and in the log, on the blocking path", function()
    each_echo(function(c) return c:phone_history { phone = PHONE } end)
  end)

  it("is masked the same when the request goes through start and poll", function()
    each_echo(function(c)
      local got
      assert(c:start({ phone = PHONE }, function(page, err) got = { page, err } end))
      while not got do assert(c:poll(1)) end
      return got[1], got[2]
    end)
  end)

  it("is masked in what the pager raises", function()
    each_echo(function(c)
      local ok, err = pcall(function()
        for _ in c:calls { phone = PHONE, prefetch = 0 } do end
      end)
      assert.is_false(ok)
      return nil, err
    end)
  end)
end)
