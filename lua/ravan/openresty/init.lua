--- Ravan from OpenResty / nginx, on nginx's own sockets.
--
-- Requests go out on cosockets (`ngx.socket.tcp`): the request handler yields while the API
-- answers and the worker serves everyone else, so one worker keeps thousands of calls in flight.
-- Connections are kept alive in nginx's per-worker pool, one pool per origin and credential.
-- Everything else is the plain API's: the same options, validation, query encoding, retry
-- decisions (taken by the C core's policy), results, errors and log events.
--
--    # nginx.conf
--    env RAVAN_API_KEY;
--    http {
--        resolver 127.0.0.53;   # cosockets resolve names through nginx only
--        lua_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;
--        lua_ssl_verify_depth 5;
--    }
--
--    -- in a content_by_lua_block (also rewrite, access, and ngx.timer.at callbacks)
--    local ravan = require "ravan.openresty"
--    local res, err = ravan.phone_history { phone = ngx.req.get_uri_args().phone }
--
-- (`ngx.var.arg_phone` would be the raw `%2B...`; a phone's `+` must travel as `%2B` in a
-- query string, where a bare `+` means a space.)
--
-- Where nginx has no cosockets (init, init_worker, set, header and body filters, log,
-- balancer), and outside nginx, a call returns an `invalid_argument` error saying so.
-- Keep-alive follows nginx's `lua_socket_pool_size` and `lua_socket_keepalive_timeout`.
-- See docs/openresty.md for the whole setup.
-- @module ravan.openresty

local core = require "ravan.core"
local client = require "ravan.client"
local errors = require "ravan.errors"
local result = require "ravan.result"
local stats = require "ravan.metrics.stats"
local surface = require "ravan.surface"
local validate = require "ravan.validate"
local wire = require "ravan.openresty.wire"
local net = require "ravan.openresty.net"

local M = {}

local ngx = rawget(_G, "ngx")
local now, decide, parse_retry_after = core.now, core.decide, core.parse_retry_after
local arm = wire.arm
local max, floor = math.max, math.floor
local type, pairs, setmetatable = type, pairs, setmetatable

local REQUEST_ID = core.REQUEST_ID_HEADERS

-- The phases whose handlers may use cosockets.
local COSOCKET_PHASES = {
  rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true, preread = true,
}

-- Credentials (and the request head that carries one) live here, keyed weakly by client, not in
-- the client table: a debug dump of the client must not show them.
local secrets = setmetatable({}, { __mode = "k" })

-- The stats of this worker's clients, for ravan.openresty.metrics: live ones by client (the
-- entry goes with a client that is collected), closed ones added up in `retired`.
local live = setmetatable({}, { __mode = "k" })
local retired = stats.snapshot(stats.new())

-- One snapshot of every client of this worker (ravan.openresty.metrics flushes it).
function M.worker_stats()
  local list = { retired }
  for _, s in pairs(live) do list[#list + 1] = stats.snapshot(s) end
  return stats.merge(list)
end

-- nil when this call may use cosockets, else why not.
local function no_cosocket()
  if not ngx then
    return "ravan.openresty runs inside nginx (lua-nginx-module); elsewhere use require \"ravan\""
  end
  local phase = ngx.get_phase()
  if COSOCKET_PHASES[phase] then return nil end
  return "ravan.openresty: nginx has no cosockets in the " .. phase .. " phase; call from a"
    .. " rewrite, access or content handler, or from ngx.timer.at"
end

local function lua_nginx_token()
  local v = ngx and ngx.config and ngx.config.ngx_lua_version
  if not v then return "ngx_lua" end
  return ("ngx_lua/%d.%d.%d"):format(floor(v / 1000000), floor(v / 1000) % 1000, v % 1000)
end

-- Options of this flavour only, checked here and removed before validate.options sees the rest.
local RATE_LIMIT = {
  { "dict", function(name, v)
    if type(v) == "string" and v ~= "" then return v end
    return nil, "rate_limit." .. name .. " must name a lua_shared_dict"
  end },
  { "per_second", validate.integer_in(1, 1000000) },
}

local function rate_limit_option(v)
  if type(v) ~= "table" then
    return nil, errors.invalid_argument("rate_limit must be a table { dict = ..., per_second = ... }")
  end
  local ok, err = validate.keys(v, RATE_LIMIT, "rate_limit option")
  if not ok then return nil, err end
  local rate
  rate, err = validate.fields(v, RATE_LIMIT, {})
  if not rate then return nil, errors.invalid_argument("rate_limit." .. err.message) end
  if not (rate.dict and rate.per_second) then
    return nil, errors.invalid_argument("rate_limit needs both dict and per_second")
  end
  return rate
end

local Client = {}
Client.__index = Client

--- Makes a client.
-- @tparam[opt] table opts the options of `ravan.new`, except `ca_file` and `ca_path` (nginx
-- verifies against its `lua_ssl_trusted_certificate`), plus `rate_limit = { dict = NAME,
-- per_second = N }`: at most N requests (retries included) per second, counted in one-second
-- windows in the `lua_shared_dict` NAME, so all workers together keep to one API rate limit.
-- A call waits for room in the budget as long as its `deadline` (else its `timeout`) allows,
-- and otherwise fails with a retryable `rate_limited` error. Defaults come from the
-- environment, which nginx clears except for variables named by `env`.
-- @treturn[1] table the client
-- @treturn[2] nil
-- @treturn[2] ravan.errors.Error kind `invalid_argument`
-- @function new

-- `getenv` stands in for `os.getenv` in specs; it is not part of the API.
function M.new(opts, getenv)
  if opts ~= nil and type(opts) ~= "table" then
    return nil, errors.invalid_argument("options must be a table or nil")
  end
  local plain, rate, err = {}
  for k, v in pairs(opts or {}) do
    if k == "rate_limit" then
      rate, err = rate_limit_option(v)
      if not rate then return nil, err end
    else
      plain[k] = v
    end
  end
  local cfg
  cfg, err = validate.options(plain, getenv)
  if not cfg then return nil, err end
  if cfg.ca_file or cfg.ca_path then
    return nil, errors.invalid_argument("ca_file and ca_path do not apply in nginx: cosockets"
      .. " verify against the lua_ssl_trusted_certificate directive")
  end
  -- The endpoint as the C client builds it, in parts by the core's own URL parser.
  local endpoint, msg = core.endpoint(cfg.base_url)
  local ep
  if endpoint then ep, msg = core.parse_url(endpoint) end
  if not ep then return nil, errors.invalid_argument("base_url: " .. tostring(msg)) end
  local https = ep.scheme == "https"
  local port = ep.port or (https and 443 or 80)
  local authority = ep.host
  if port ~= (https and 443 or 80) then authority = authority .. ":" .. port end
  local secret = cfg.api_key or cfg.token
  -- The C client's own header lines (ravan.core builds them for both transports), after Host.
  local lines
  lines, msg = core.request_head {
    user_agent = client.user_agent(cfg.user_agent, lua_nginx_token()),
    api_key = cfg.api_key, token = cfg.token,
  }
  if not lines then return nil, errors.invalid_argument(msg) end
  local route = net.route(cfg, ep)
  local cert, key, cert_tag = net.client_cert(cfg)
  if cert == nil then return nil, errors.invalid_argument(key) end
  -- Connections to different origins, with different credentials, client certificates, proxies
  -- or TLS settings never share a pool; a credential or key enters the pool's name only as a
  -- hash.
  local pool = ep.scheme .. "://" .. ep.host .. ":" .. port
    .. (cfg.insecure and ":insecure" or "")
    .. (secret and ngx and (":" .. ngx.encode_base64(ngx.sha1_bin(secret))) or "")
    .. (cert_tag or "") .. (route and route.tag or "")
  -- Plain http through a proxy names the whole URL in the request line, with the proxy's
  -- credential among the headers; https goes through a CONNECT tunnel, which carries that.
  local forward = route and not https
  local self = setmetatable({
    _cfg = cfg,
    _endpoint = endpoint,
    _path = ep.path,
    _https = https,
    _host = ep.host:gsub("^%[(.*)%]$", "%1"),
    _port = port,
    -- SNI names a host, never an address.
    _sni = not ep.host:find("^[%d.]+$") and not ep.host:find(":", 1, true) and ep.host or nil,
    _connect_opts = { pool = "ravan " .. pool },
    _authority = authority,
    _route = route,
    _prefix = forward and (ep.scheme .. "://" .. authority) or "",
    _budget_key = rate and ("ravan " .. pool .. " "),
    _rate = rate,
    _log = cfg.log,
    _prefetchers = setmetatable({}, { __mode = "k" }),
    _auth = cfg.api_key and "X-Api-Key" or "Bearer token",
    _stats = cfg.stats and stats.new() or nil,
  }, Client)
  if self._stats then live[self] = self._stats end
  secrets[self] = {
    secret = secret, cert = cert or nil, key = key,
    tunnel = route and https and { host = route.host, auth = route.auth },
    head = " HTTP/1.1\r\nHost: " .. authority .. "\r\n" .. lines
      .. (forward and route.auth or "") .. "\r\n",
  }
  if route then route.auth = nil end
  cfg.api_key, cfg.token, cfg.key_password, cfg.proxy = nil, nil, nil, nil
  return self
end

-- The wire. An exchange returns status, headers (lower-case names, first value) and body; or
-- nil, the transport's error kind, a message and whether retrying cannot help.

local function connect_error(host, port, err)
  local where = host .. ":" .. port
  if err:find("no resolver defined", 1, true) then
    return nil, "network", "cannot resolve " .. host .. ": nginx resolves names only"
      .. " through its resolver directive (e.g. `resolver 127.0.0.53;`)", true
  end
  if err == "timeout" then return nil, "timeout", "connect to " .. where .. " timed out" end
  return nil, "network", "connect to " .. where .. " failed: " .. err
end

local function handshake_error(self, err)
  -- OpenSSL's verify codes come as "NN: text"; anything else broke off during the handshake.
  if err:find("^%d+: ") or err:find("certificate", 1, true) then
    return nil, "tls", "TLS certificate verification failed for " .. self._host .. " (" .. err
      .. "); nginx verifies against the CAs of its lua_ssl_trusted_certificate directive", true
  end
  if err == "timeout" then return nil, "timeout", "TLS handshake timed out" end
  return nil, "network", "TLS handshake failed: " .. err
end

-- Marks a kept-alive connection that the server had closed before this request's first byte.
local STALE = {}

-- `sec` is the client's secrets, `head` the request head of this call; `ev` is the attempt's
-- event: what the exchange measures goes in it (times from `ev.t0`).
local function exchange_on(self, sec, head, target, until_t, ev)
  local cfg = self._cfg
  local sock = ngx.socket.tcp()
  local tm = ev.timings
  if not arm(sock, until_t, cfg.connect_timeout) then return nil, "timeout", "deadline reached" end
  -- Through a proxy, the connection (and the pool) is the proxy's.
  local route = self._route
  local host, port = self._host, self._port
  if route then host, port = route.host, route.port end
  local ok, err = sock:connect(host, port, self._connect_opts)
  tm.connect = now() - ev.t0
  if not ok then return connect_error(host, port, err) end
  local reused = sock:getreusedtimes() > 0
  ev.reused = reused
  if sec.tunnel and not reused then
    local kind, msg, final
    ok, kind, msg, final = net.connect(sock, sec.tunnel, self._authority, until_t, cfg)
    if not ok then
      sock:close()
      return nil, kind, msg, final
    end
  end
  if self._https and not reused then
    ok, err = true, nil
    if sec.cert then ok, err = sock:setclientcert(sec.cert, sec.key) end
    if ok then
      ok, err = nil, "timeout"
      if arm(sock, until_t, cfg.connect_timeout) then
        ok, err = sock:sslhandshake(false, self._sni, not cfg.insecure)
      end
    end
    tm.tls = now() - ev.t0
    if not ok then
      sock:close()
      return handshake_error(self, err)
    end
  end
  ok, err = nil, "timeout"
  if arm(sock, until_t) then ok, err = sock:send { "GET ", self._prefix, target, head } end
  if not ok then
    sock:close()
    if err == "timeout" then return nil, "timeout", "timed out sending the request" end
    if reused then return nil, STALE end
    return nil, "network", (err == "closed" and "connection closed" or err)
      .. " while sending the request"
  end
  local r = wire.reader(sock, until_t, cfg.low_speed_time)
  local status, version, headers
  repeat
    local nothing
    status, version, headers, nothing = wire.read_head(r, cfg.max_response_bytes)
    if not status then
      sock:close()
      if nothing and reused then return nil, STALE end
      return nil, version, headers
    end
  until status >= 200 or status == 101
  tm.first_byte = now() - ev.t0
  ev.http_version = "1." .. version
  local body, reusable, msg
  if status == 204 or status == 304 then
    body, reusable = "", true
  else
    body, reusable, msg = wire.read_body(r, headers, cfg.max_response_bytes)
  end
  if not body then
    sock:close()
    return nil, reusable, msg
  end
  ev.bytes = #body
  local conn = headers.connection
  conn = conn and conn:lower()
  if reusable and conn ~= "close" and (version == "1" or conn == "keep-alive") then
    sock:setkeepalive()
  else
    sock:close()
  end
  return status, headers, body
end

-- A kept-alive connection the server closed meanwhile says nothing
-- about the server (as with curl, it costs no attempt): the request goes again on another one.
-- Each such failure takes a dead connection out of the pool, so the loop ends on a fresh one.
local function exchange(self, sec, head, target, until_t, ev)
  while true do
    local status, a, b, c = exchange_on(self, sec, head, target, until_t, ev)
    if a ~= STALE then return status, a, b, c end
  end
end

-- The attempt's timings in the C transport's terms: nginx resolves names inside connect, so
-- `dns` is 0 and `connect` includes it; a phase that did not happen ends with the one before.
local function settle_timings(tm, total)
  tm.dns = 0
  tm.connect = tm.connect or 0
  tm.tls = max(tm.tls or 0, tm.connect)
  tm.first_byte = max(tm.first_byte or 0, tm.tls)
  tm.total = max(total, tm.first_byte)
end

-- Waits for room in the shared rate budget until `until_t` (monotonic); nil and why on failure.
local function take_budget(self, until_t)
  local rate = self._rate
  local dict = ngx.shared[rate.dict]
  if not dict then
    return nil, "invalid_argument", "rate_limit.dict: no lua_shared_dict named " .. rate.dict
  end
  while true do
    ngx.update_time()
    local t = ngx.now()
    local window = floor(t)
    -- The window's counter expires with it; every worker counts in the same one.
    local n, err = dict:incr(self._budget_key .. window, 1, 0, 2)
    if not n then
      return nil, "invalid_argument", "rate_limit.dict " .. rate.dict .. ": " .. tostring(err)
    end
    if n <= rate.per_second then return true end
    local wait = window + 1 - t
    if now() + wait >= until_t then
      return nil, "rate_limited", ("the shared rate budget (%d requests/s in lua_shared_dict %s)"
        .. " has no room before the deadline"):format(rate.per_second, rate.dict)
    end
    -- At least a millisecond: ngx.now() has that resolution, and a shorter sleep would spin.
    ngx.sleep(max(wait, 0.001))
  end
end

-- One call with its retries and redirects; returns a response as ravan.result takes it (the
-- shape of the core's client:request).
local function request(self, query)
  local sec = secrets[self]
  -- A prefetch thread may start after its client was closed.
  if not sec then
    return { error = "invalid_argument", curl_message = errors.closed().message, attempts = 0 }
  end
  local cfg = self._cfg
  local started = now()
  local deadline = query.deadline or cfg.deadline
  deadline = deadline and started + deadline
  local qs = core.query_string(query)
  local events = {}
  local res = { url = self._endpoint .. "?" .. qs, events = events, bytes = 0 }
  local head = sec.head
  if query.traceparent then
    head = head:sub(1, -3) .. "traceparent: " .. query.traceparent .. "\r\n\r\n"
  end
  local target = self._path .. "?" .. qs
  local attempt, redirects = 1, 0
  while true do
    local t0 = now()
    local until_t = t0 + cfg.timeout
    if deadline and deadline < until_t then until_t = deadline end
    -- An attempt that cannot start is no attempt: no event, as in the C transport.
    local ok, kind, msg = true, nil, nil
    if deadline and t0 >= deadline then
      ok, kind, msg = false, "timeout", "deadline reached"
    elseif self._rate then
      ok, kind, msg = take_budget(self, until_t)
    end
    if not ok then
      res.error, res.curl_message = kind, msg
      break
    end
    local ev = { attempt = attempt, t0 = t0, timings = {}, reused = false, bytes = 0 }
    local status, headers, body, final = exchange(self, sec, head, target, until_t, ev)
    local t1 = now()
    ev.t0 = nil
    ev.elapsed_ms = (t1 - t0) * 1000
    local tm = ev.timings
    settle_timings(tm, t1 - t0)
    res.timings = { tm.dns, tm.connect, tm.tls, tm.first_byte, tm.total }
    res.bytes = res.bytes + ev.bytes
    events[#events + 1] = ev
    local server_wait
    if status then
      ev.status = status
      server_wait = parse_retry_after(headers["retry-after-ms"], headers["retry-after"])
      ev.retry_after = server_wait
      res.content_type = headers["content-type"]
      local id
      for i = 1, #REQUEST_ID do
        id = id or headers[REQUEST_ID[i]]
      end
      res.request_id = id
    else
      kind = headers
      ev.error = kind
    end
    if status and core.is_redirect(status) then
      local follow, to, origin = core.redirect(res.url, headers.location, self._endpoint,
        redirects, status)
      local parts = follow and core.parse_url(to)
      if parts then
        redirects = redirects + 1
        res.url = to
        target = parts.path .. (parts.query and ("?" .. parts.query) or "")
      else
        res.status, res.error, res.body = status, "server", body
        res.curl_message = follow and "redirect to a Location that is not a URL" or to
        res.origin = origin
        break
      end
    else
      local retry, wait, refused = false, 0, nil
      if not final then
        local time_left = deadline and max(0, deadline - t1)
        retry, wait, refused = decide(cfg, attempt, status or kind, server_wait, time_left)
      end
      if not retry then
        res.status, res.error, res.retry_after = status, kind, refused
        if status then res.body = body else res.curl_message = body end
        break
      end
      ev.wait_ms = wait * 1000
      attempt = attempt + 1
      ngx.sleep(wait)
    end
  end
  res.attempts = attempt
  res.elapsed = now() - started
  -- A full budget is this side's own word: worth trying again later, unlike a 429 the core
  -- would not retry at once.
  res.retryable = res.error == "rate_limited" or core.is_transient(res.error or res.status)
  return res
end

-- The pager's hooks (see ravan.pager): a validated query, one fetch, and the result path.
function Client:_prepare(q, schema)
  if not secrets[self] then return nil, errors.closed() end
  local query, err = validate.query(q, schema)
  if query and self._cfg.traceparent and not query.traceparent then
    query.traceparent = core.traceparent()
  end
  return query, err
end

function Client:_page_of(res)
  local sec = secrets[self]
  return result.page(res, sec and sec.secret, self._log, self._stats)
end

function Client:_fetch(query)
  if not secrets[self] then return nil, errors.closed() end
  local why = no_cosocket()
  if why then return nil, errors.invalid_argument(why) end
  return self:_page_of(request(self, query))
end

-- Prefetch on light threads: each wanted page is one `ngx.thread.spawn`ed request of this
-- client; pages are taken in the pager's order, and close kills whatever is still in flight.
local Prefetcher = {}
Prefetcher.__index = Prefetcher

local function fetch_page(self, query, page)
  local q = {}
  for k, v in pairs(query) do q[k] = v end
  q.page = page
  return request(self, q)
end

function Client:_prefetcher(query, window)
  if not secrets[self] or no_cosocket() then return nil end
  local pf = setmetatable({ client = self, query = query, window = window, threads = {}, n = 0 },
    Prefetcher)
  self._prefetchers[pf] = true
  return pf
end

function Prefetcher:want(page)
  if self.threads[page] then return true end
  if self.n >= self.window then return false end
  local spawned, thread = pcall(ngx.thread.spawn, fetch_page, self.client, self.query, page)
  if not (spawned and thread) then return false end
  self.threads[page] = thread
  self.n = self.n + 1
  return true
end

function Prefetcher:take(page)
  local thread = self.threads[page]
  if not thread then return fetch_page(self.client, self.query, page) end
  self.threads[page] = nil
  self.n = self.n - 1
  -- Only the coroutine that spawned a thread may wait for it: a pager stepped from another one
  -- fetches the page itself.
  local waited, ok, res = pcall(ngx.thread.wait, thread)
  if not waited then
    pcall(ngx.thread.kill, thread)
    return fetch_page(self.client, self.query, page)
  end
  if ok then return res end
  return { error = "internal", curl_message = "prefetch failed: " .. tostring(res), attempts = 0 }
end

function Prefetcher:pending()
  return self.n
end

function Prefetcher:close()
  for page, thread in pairs(self.threads) do
    pcall(ngx.thread.kill, thread)
    self.threads[page] = nil
  end
  self.n = 0
end

--- One page of a phone's call history, as `client:phone_history` returns it.
-- The calling handler yields until the page is there.
-- @tparam table q `phone`, and optionally `page`, `page_size`, `include_transcripts`,
-- `deadline`
-- @treturn[1] table the page
-- @treturn[2] nil
-- @treturn[2] ravan.errors.Error the error, as the plain API gives it; also `invalid_argument`
-- where nginx has no cosockets
-- @function Client:phone_history

--- Every page of a phone's history, as `client:pages` iterates them; with `prefetch = N` the
-- next N pages are fetched on light threads (`ngx.thread.spawn`) while the loop works. On
-- LuaJIT a `break` does not close the pager: call `pager:close()` (or end the request) to stop
-- the pages in flight.
-- @tparam table q the query, plus `limit` and `prefetch`
-- @return the iterator, for a generic `for`
-- @function Client:pages

--- Every call of a phone's history, as `client:calls` iterates them.
-- @tparam table q the query, plus `limit` and `prefetch`
-- @return the iterator, for a generic `for`
-- @function Client:calls

function Client:_closed()
  return secrets[self] == nil
end

surface.add_methods(Client)

--- Forgets the credential and kills the pagers' pages in flight; later calls return an
-- `invalid_argument` error. Idle connections stay in nginx's pool until its
-- `lua_socket_keepalive_timeout`. Idempotent.
function Client:close()
  if not rawequal(getmetatable(self), Client) then return nil, errors.misuse("client", "close") end
  if live[self] then
    retired = stats.merge { retired, stats.snapshot(live[self]) }
    live[self] = nil
  end
  secrets[self] = nil
  for pf in next, self._prefetchers do pf:close() end
end

function Client:__tostring()
  if not secrets[self] then return "ravan.openresty client (closed)" end
  return "ravan.openresty client (" .. self._cfg.base_url .. ", " .. self._auth .. ")"
end

--- `phone_history` on a default client made from the environment (`RAVAN_API_KEY` or
-- `RAVAN_TOKEN`, `RAVAN_BASE_URL`) at its first use in the worker.
-- @tparam table q as for `Client:phone_history`
-- @treturn[1] table the page
-- @treturn[2] nil
-- @treturn[2] ravan.errors.Error the error
-- @function phone_history

--- `pages` on the default client.
-- @tparam table q as for `Client:pages`
-- @return the iterator
-- @function pages

--- `calls` on the default client.
-- @tparam table q as for `Client:calls`
-- @return the iterator
-- @function calls

surface.add_defaults(M, M.new)

return M
