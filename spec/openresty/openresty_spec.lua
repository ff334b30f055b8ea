-- examples/openresty/nginx.conf in Debian's nginx with the checkout's LuaJIT build of ravan
-- (build/luajit, made by `make test`), against the local server: the JSON it serves, every fault
-- of the server through cosockets, TLS, redirects, keep-alive pools, timers, light-thread
-- prefetch, phases without cosockets, and load, each checked against the server's records.
local cjson = require "cjson"
local socket = require "socket"
local mock = require "spec.support.mock"
local proc = require "spec.support.proc"
local helpers = require "spec.support.helpers"

local CONF = proc.root .. "/examples/openresty/nginx.conf"
local CORE = proc.root .. "/build/luajit/ravan/core.so"
local START_TIMEOUT = 10
local SLOW_MS = 2000
local PROBES = 100
local PROBE_INTERVAL = 0.005
-- How long after taking its place in the shared rate budget a request may take to reach the
-- local server.
local ARRIVAL_SLACK = 0.05

local read = proc.read_file

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- Plain-text substitution that insists the text is there, so a change to the example that the
-- rendering no longer matches fails loudly instead of testing something else.
local function replace(text, old, new)
  local i, j = text:find(old, 1, true)
  assert(i, "examples/openresty/nginx.conf no longer contains: " .. old)
  return text:sub(1, i - 1) .. new .. text:sub(j + 1)
end

-- The example as a user would run it, made to fit here: a free port, one worker (the spec is
-- about that worker), the checkout on the package paths, root's worker allowed to read it. No
-- resolver (the spec's API is on 127.0.0.1), so a host name shows the error for its absence.
-- Added: /call and /call_ca (the local server's CA trusted), which run one call described in
-- JSON (spec/openresty/cases.lua); /budget, one call under a shared rate budget; and
-- calls from phases that have no cosockets. `workers` > 1 spreads connections over them.
local function render(port, workers)
  workers = workers or 1
  local conf = read(CONF)
  conf = replace(conf, "listen 127.0.0.1:8080", "listen 127.0.0.1:" .. port
    .. (workers > 1 and " reuseport" or ""))
  -- As root nginx would hand its worker to nobody, who may not read the checkout.
  local uid = proc.run("id -u")
  conf = replace(conf, "worker_processes auto;", "worker_processes " .. workers .. ";"
    .. (uid:match("^0%s") and "\nuser root;" or ""))
  conf = replace(conf, "resolver 127.0.0.53 ipv6=off;", "")
  local metrics = 'assert(require("ravan.openresty.metrics").start("ravan_metrics"))'
  conf = replace(conf, metrics, metrics .. [[

        local res, err = require("ravan.openresty").phone_history { phone = "+14155550100" }
        ngx.shared.ravan:set("init_worker phase", err and (err.kind .. ": " .. err.message) or "no error")]])
  conf = conf:gsub('lua_package_path "[^"]*";', ('lua_package_path "%s/lua/?.lua;%s/lua/?/init.lua;%s/?.lua;;";')
    :format(proc.root, proc.root, proc.root), 1)
  conf = conf:gsub('lua_package_cpath "[^"]*";', ('lua_package_cpath "%s/build/luajit/?.so;;";')
    :format(proc.root), 1)
  local history = conf:match("\n(        location = /history {.-\n        }\n)")
  assert(history, "no /history location in the example")
  local cases = ([[
        location = /call {
            content_by_lua_block { require("spec.openresty.cases").handle() }
        }
        location = /call_ca {
            lua_ssl_trusted_certificate %s;
            content_by_lua_block { require("spec.openresty.cases").handle() }
        }
        location = /budget {
            content_by_lua_block {
                local client = require("ravan.openresty").new {
                    token = "tok_test_local", rate_limit = { dict = "ravan", per_second = 4 },
                }
                local deadline = tonumber(ngx.req.get_uri_args().deadline)
                local res, err = client:phone_history { phone = "+14155550100", deadline = deadline }
                ngx.say(res and "ok" or err.kind, " ", ngx.worker.pid())
            }
        }
        location = /phase_set {
            set_by_lua_block $ravan_err {
                local res, err = require("ravan.openresty").phone_history { phone = "+14155550100" }
                return err and (err.kind .. ": " .. err.message) or "no error"
            }
            return 200 $ravan_err;
        }
        location = /phase_filters {
            content_by_lua_block { ngx.say("body") }
            header_filter_by_lua_block {
                local res, err = require("ravan.openresty").phone_history { phone = "+14155550100" }
                ngx.header["X-Ravan"] = err and (err.kind .. ": " .. err.message) or "no error"
            }
            body_filter_by_lua_block {
                if ngx.arg[2] then
                    local res, err = require("ravan.openresty").phone_history { phone = "+14155550100" }
                    ngx.arg[1] = (ngx.arg[1] or "") .. (err and (err.kind .. ": " .. err.message) or "no error")
                end
            }
            log_by_lua_block {
                local res, err = require("ravan.openresty").phone_history { phone = "+14155550100" }
                ngx.shared.ravan:set("log phase", err and (err.kind .. ": " .. err.message) or "no error")
            }
        }
        location = /lua_error {
            content_by_lua_block { error("a Lua error for the log check") }
        }
        location = /phase_log {
            content_by_lua_block {
                ngx.say(ngx.shared.ravan:get("log phase"))
                ngx.say(ngx.shared.ravan:get("init_worker phase"))
            }
        }
]]):format(mock.ca_file)
  return replace(conf, history, history .. cases)
end

local function pid_alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return false end
  local state = f:read("*a"):match("^%d+ %b() (%a)")
  f:close()
  return state ~= nil and state ~= "Z"
end

local function connect(port)
  local sock = socket.tcp()
  sock:settimeout(1)
  local ok = sock:connect("127.0.0.1", port)
  if ok then return sock end
  sock:close()
end

local Nginx = {}
Nginx.__index = Nginx

-- Starts nginx in `dir` on a random free port; nil and the log when it cannot.
local function start_nginx(dir, workers)
  local env = mock.env()
  local log = ""
  for _ = 1, 20 do
    local port = math.random(20000, 60000)
    write(dir .. "/nginx.conf", render(port, workers))
    local out, status = proc.run(("nginx -p %s -c %s"):format(proc.quote(dir),
      proc.quote(dir .. "/nginx.conf")), env)
    if status == 0 then
      local deadline = socket.gettime() + START_TIMEOUT
      while socket.gettime() < deadline do
        local sock = connect(port)
        if sock then
          sock:close()
          local pid = tonumber(read(dir .. "/logs/nginx.pid"):match("%d+"))
          return setmetatable({ port = port, dir = dir, pid = pid }, Nginx)
        end
        socket.sleep(0.05)
      end
      log = out .. read(dir .. "/logs/error.log")
      break
    end
    log = out
    if not out:find("Address already in use", 1, true) then break end
  end
  return nil, log
end

function Nginx:stop()
  proc.run("kill -TERM " .. self.pid)
  local deadline = socket.gettime() + 5
  while pid_alive(self.pid) and socket.gettime() < deadline do socket.sleep(0.05) end
  if pid_alive(self.pid) then proc.run("kill -KILL " .. self.pid) end
end

function Nginx:error_log()
  return read(self.dir .. "/logs/error.log")
end

-- What nginx logged at warn or worse in `log`, but for the resets the local server was told to
-- send (nginx itself logs those); "" when nothing.
local function log_problems(log)
  local found = {}
  for line in log:gmatch("[^\n]+") do
    if line:find("%[warn%]") or line:find("%[error%]") or line:find("%[alert%]") or line:find("%[crit%]")
        or line:find("%[emerg%]") then
      if not line:find("recv() failed (104: Connection reset by peer)", 1, true) then
        found[#found + 1] = line
      end
    end
  end
  return table.concat(found, "\n")
end

-- Sends one HTTP/1.0 request (the answer ends when the server closes); returns the socket.
function Nginx:send(path)
  local sock = assert(connect(self.port), "cannot connect to nginx")
  assert(sock:send("GET " .. path .. " HTTP/1.0\r\nHost: localhost\r\n\r\n"))
  return sock
end

local function parse_response(raw)
  local status = tonumber(raw:match("^HTTP/1%.%d (%d%d%d)"))
  local body = raw:match("\r\n\r\n(.*)$")
  return status, body
end

function Nginx:get(path)
  local sock = self:send(path)
  sock:settimeout(30)
  local raw, err = sock:receive("*a")
  sock:close()
  assert(raw, err)
  return parse_response(raw)
end

-- One call in nginx (see spec/openresty/cases.lua): `spec.opts` default to the local
-- server and its key. Returns the decoded answer.
function Nginx:call(spec, path)
  local opts = spec.opts or {}
  if opts.token == nil then opts = mock.options(opts) end
  if opts.base_url == nil then opts.base_url = mock.url end
  spec.opts = opts
  local body = cjson.encode(spec)
  local sock = assert(connect(self.port), "cannot connect to nginx")
  assert(sock:send(("POST %s HTTP/1.0\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n%s")
    :format(path or "/call", #body, body)))
  sock:settimeout(30)
  local raw = assert(sock:receive("*a"))
  sock:close()
  local status, answer = parse_response(raw)
  assert(status == 200, raw)
  return cjson.decode(answer)
end

-- Open-loop load: request i is sent at start + i * interval whatever happened to the ones
-- before, and its latency counts from that moment, so a stalled worker shows as the wait
-- it imposes rather than as fewer requests sent. Returns the sorted latencies (s) and the
-- responses.
function Nginx:paced(path, n, interval)
  local start = socket.gettime()
  local pending, latencies, responses = {}, {}, {}
  local sent = 0
  while sent < n or next(pending) do
    local now = socket.gettime()
    while sent < n and start + sent * interval <= now do
      local sock = self:send(path)
      sock:settimeout(0)
      pending[sock] = { due = start + sent * interval, chunks = {} }
      sent = sent + 1
    end
    local readable = {}
    for sock in pairs(pending) do readable[#readable + 1] = sock end
    local wait = sent < n and math.max(0, start + sent * interval - socket.gettime()) or 1
    local ready = socket.select(readable, nil, wait)
    for _, sock in ipairs(ready) do
      local p = pending[sock]
      local data, err, partial = sock:receive("*a")
      p.chunks[#p.chunks + 1] = data or partial
      if data or err == "closed" then
        latencies[#latencies + 1] = socket.gettime() - p.due
        responses[#responses + 1] = table.concat(p.chunks)
        pending[sock] = nil
        sock:close()
      end
    end
    assert(socket.gettime() - start < 30, "load did not finish in 30 s")
  end
  table.sort(latencies)
  return latencies, responses
end

local function percentile(sorted, p)
  return sorted[math.max(1, math.ceil(#sorted * p))]
end

-- Waits until the local server has the slow request in hand (its record is made on arrival).
local function wait_in_flight(phone)
  local deadline = socket.gettime() + 5
  while socket.gettime() < deadline do
    for _, rec in ipairs(mock.requests()) do
      if rec.query:find(phone:gsub("^%+", "%%2B"), 1, true) then return end
    end
    socket.sleep(0.01)
  end
  error("the slow request never reached the local server")
end

-- How many of `recs` went in each one-second window of a shared rate budget of `per_second`, read
-- from the times the server recorded rather than from when the spec began: a request arrives in
-- the second it took its place in, or, taken as that second ended, early in the next (within
-- ARRIVAL_SLACK); such a one counts toward the second before when that still has room.
local function budget_windows(recs, per_second)
  local first = math.huge
  for _, rec in ipairs(recs) do first = math.min(first, math.floor(rec.time)) end
  local per_window, early = {}, {}
  for _, rec in ipairs(recs) do
    local w = math.floor(rec.time) - first + 1
    for i = #per_window + 1, w do per_window[i], early[i] = 0, 0 end
    per_window[w] = per_window[w] + 1
    if rec.time % 1 < ARRIVAL_SLACK then early[w] = early[w] + 1 end
  end
  for w = 2, #per_window do
    local moved = math.min(per_window[w] - per_second, early[w], per_second - per_window[w - 1])
    if moved > 0 then
      per_window[w], per_window[w - 1] = per_window[w] - moved, per_window[w - 1] + moved
    end
  end
  return per_window
end

-- Waits until the server has answered every request of this spec. A client that gave up leaves
-- the server working, and a request still asleep there (a latency, a page delay) would take a
-- fault queued by the next spec.
local function settle()
  for _ = 1, 400 do
    local busy = false
    for _, rec in ipairs(mock.requests()) do busy = busy or rec.status == cjson.null end
    if not busy then return end
    socket.sleep(0.05)
  end
  error("the server was still answering this spec's requests after 20 s")
end

local function count_keys(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

local function events_of(answer)
  local names = {}
  for i, ev in ipairs(answer.events) do names[i] = ev.event end
  return table.concat(names, ",")
end

-- The halves of ravan.openresty that need no nginx, on every Lua.
describe("ravan.openresty outside nginx", function()
  local openresty = require "ravan.openresty"

  it("refuses bad options at once, as ravan.new does", function()
    local c, err = openresty.new { api_key = mock.api_key, timeot = 1 }
    assert.is_nil(c)
    assert.are.equal("invalid_argument", err.kind)
    assert.truthy(err.message:find("timeout", 1, true), err.message)
  end)

  it("refuses CA options, naming the directive nginx verifies with", function()
    local c, err = openresty.new(mock.options { ca_file = mock.ca_file })
    assert.is_nil(c)
    assert.are.equal("invalid_argument", err.kind)
    assert.truthy(err.message:find("lua_ssl_trusted_certificate", 1, true), err.message)
  end)

  it("checks the shared rate budget's options", function()
    for _, bad in ipairs { 5, { dict = "ravan" }, { dict = "", per_second = 1 },
        { dict = "ravan", per_second = 0 }, { dict = "ravan", per_second = 1, burst = 2 } } do
      local c, err = openresty.new(mock.options { rate_limit = bad })
      assert.is_nil(c)
      assert.are.equal("invalid_argument", err.kind)
      assert.truthy(err.message:find("rate_limit", 1, true), err.message)
    end
    assert.truthy(openresty.new(mock.options { rate_limit = { dict = "ravan", per_second = 3 } }))
  end)

  it("keeps the credential out of the client table", function()
    local c = assert(openresty.new(mock.options()))
    helpers.walk(c, function(x, path)
      if type(x) ~= "table" then assert.falsy(tostring(x):find(mock.api_key, 1, true), path) end
    end)
    assert.falsy(tostring(c):find(mock.api_key, 1, true))
  end)

  it("never raises, whatever it is given", function()
    local values = { 1, "x", true, {}, { 1 }, { phone = 5 }, { [{}] = 1 }, function() end,
      { timeout = "x" }, { rate_limit = "x" }, { base_url = "ftp://x" } }
    local c = assert(openresty.new(mock.options()))
    for _, v in ipairs(values) do
      local ok, res, err = pcall(openresty.new, v)
      assert.is_true(ok, tostring(res))
      if not res then assert.are.equal("invalid_argument", err.kind) end
      for _, f in ipairs { "phone_history", "pages", "calls" } do
        local ok2, got, err2 = pcall(c[f], c, v)
        assert.is_true(ok2, tostring(got))
        if f ~= "phone_history" then ok2, got, err2 = pcall(got.next, got) end
        assert.is_true(ok2, tostring(got))
        assert.is_nil(got)
        assert.are.equal("invalid_argument", err2.kind)
      end
    end
  end)

  it("returns an error outside nginx instead of raising", function()
    local c = assert(openresty.new(mock.options()))
    local res, err = c:phone_history { phone = "12345" }
    assert.is_nil(res)
    assert.are.equal("invalid_argument", err.kind)
    res, err = c:phone_history { phone = mock.phones.example }
    assert.is_nil(res)
    assert.are.equal("invalid_argument", err.kind)
    assert.truthy(err.message:find("inside nginx", 1, true), err.message)
    local pager = c:pages { phone = mock.phones.p250 }
    res, err = pager:next()
    assert.is_nil(res)
    assert.are.equal("invalid_argument", err.kind)
  end)
end)

describe("ravan.openresty in nginx", function()
  local why = proc.skip("nginx runs its own LuaJIT whatever runs busted")
  if why then
    pending(why)
    return
  end

  local nginx, tmp

  setup(function()
    assert(proc.file_size(CORE), CORE .. " is missing: `make LUA=luajit` (make test does)")
    math.randomseed(os.time() + math.floor(socket.gettime() * 1000) % 1000)
    tmp = proc.tmpdir()
    assert(os.execute("mkdir -p " .. proc.quote(tmp .. "/logs") .. " " .. proc.quote(tmp .. "/temp")))
    local log
    nginx, log = start_nginx(tmp)
    assert(nginx, "nginx did not start:\n" .. tostring(log))
  end)

  teardown(function()
    if nginx then nginx:stop() end
    if tmp then proc.rmdir(tmp) end
  end)

  -- Each spec leaves nginx's error log free of Lua errors and warnings: checked after every one,
  -- on the part of the log written during it, so no spec depends on running after the others.
  local log_from

  before_each(function()
    mock.reset()
    log_from = #nginx:error_log()
  end)

  after_each(function()
    settle()
    assert.are.equal("", log_problems(nginx:error_log():sub(log_from + 1)))
  end)

  it("serves a caller's history as the same JSON the plain API returns", function()
    local status, body = nginx:get("/history?phone=%2B919876543210")
    assert.are.equal(200, status, body)
    local got = cjson.decode(body)
    local want = assert(mock.client():phone_history { phone = "+919876543210" })
    assert.are.same(want, got)
    assert.are.equal(3, #got.calls)
    assert.are.equal("12.50", got.calls[1].cost_total)
  end)

  it("answers an empty history with an empty calls array", function()
    local status, body = nginx:get("/history?phone=%2B15550000000")
    assert.are.equal(200, status, body)
    assert.truthy(body:find('"calls":[]', 1, true), body)
  end)

  it("turns a bad phone into a 400 without calling the API", function()
    local status, body = nginx:get("/history?phone=12345")
    assert.are.equal(400, status, body)
    assert.are.equal("invalid_argument", cjson.decode(body).error)
    assert.are.equal(0, #mock.requests())
  end)

  it("turns a page, page_size or limit that is no number into a 400 naming it, calling nothing", function()
    for _, case in ipairs {
      { "/calls?phone=%2B15550000250&limit=abc", "limit" },
      { "/calls?phone=%2B15550000250&limit=0", "limit" },
      { "/calls?phone=%2B15550000250&limit=1&limit=2", "limit" },
      { "/calls?phone=%2B15550000250&limit", "limit" },
      { "/history?phone=%2B15550000250&page=abc", "page" },
      { "/history?phone=%2B15550000250&page_size=ten", "page_size" },
    } do
      local status, body = nginx:get(case[1])
      assert.are.equal(400, status, case[1] .. ": " .. tostring(body))
      local answer = cjson.decode(body:match("[^\n]+"))
      assert.are.equal("invalid_argument", answer.error, body)
      assert.truthy(answer.message:find("^" .. case[2] .. " must be"), answer.message)
    end
    assert.are.equal(0, #mock.requests())
  end)

  it("streams every call of a 250-call history through the pager, prefetching", function()
    local status, body = nginx:get("/calls?phone=%2B15550000250")
    assert.are.equal(200, status, body)
    local ids, n = {}, 0
    for line in body:gmatch("[^\n]+") do
      local call = cjson.decode(line)
      assert.is_nil(ids[call.id], "duplicate id " .. tostring(call.id))
      ids[call.id] = true
      n = n + 1
    end
    assert.are.equal(250, n)
    -- Default page size 100: three requests, the last two in flight together, so on two
    -- connections (one after the other they would share the kept-alive one).
    local recs = mock.requests()
    assert.are.equal(3, #recs)
    assert.are_not.equal(recs[2].connection, recs[3].connection)
  end)

  it("sends the C client's exact request: query bytes, headers, no Accept-Encoding", function()
    local q = { phone = "+919876543210", page = 2, page_size = 5, include_transcripts = true }
    local answer = nginx:call { query = q }
    assert.is_nil(answer.err)
    assert.is_true(mock.client():phone_history(q) ~= nil)
    local recs = mock.requests()
    assert.are.equal(2, #recs)
    assert.are.equal("phone=%2B919876543210&page=2&page_size=5&include_transcripts=true",
      recs[1].query)
    assert.are.equal(recs[2].query, recs[1].query)
    assert.are.equal(recs[2].uri, recs[1].uri)
    local h = recs[1].headers
    assert.are.equal(mock.api_key, h["x-api-key"])
    assert.are.equal("application/json", h["accept"])
    assert.is_nil(h["accept-encoding"])
    assert.truthy(h["user-agent"]:find("^ravan%-lua/[%d.]+ ngx_lua/[%d.]+ LuaJIT/"), h["user-agent"])
    assert.truthy(recs[2].headers["user-agent"]:find("^ravan%-lua/[%d.]+ libcurl/"))
  end)

  it("sends the C client's head: the same header lines, from ravan.core, in either credential mode", function()
    for _, opts in ipairs({ { api_key = mock.api_key }, { token = mock.token } }) do
      mock.reset()
      local q = { phone = mock.phones.example }
      assert.is_nil(nginx:call({ opts = opts, query = q }).err)
      local plain = { base_url = mock.url, api_key = opts.api_key, token = opts.token }
      assert(require("ravan").new(plain):phone_history(q))
      local recs = mock.requests()
      assert.are.equal(2, #recs)
      local cosocket, curl = recs[1].headers, recs[2].headers
      -- What each transport adds of its own: the product token of the User-Agent, and
      -- libcurl's Accept-Encoding.
      local product = "^ravan%-lua/%S+"
      assert.are.equal(curl["user-agent"]:match(product), cosocket["user-agent"]:match(product))
      curl["user-agent"], cosocket["user-agent"], curl["accept-encoding"] = nil, nil, nil
      assert.are.same(curl, cosocket)
      local names = {}
      for name in pairs(curl) do names[#names + 1] = name end
      table.sort(names)
      local expected = { "accept", "host", opts.api_key and "x-api-key" or "authorization" }
      table.sort(expected)
      assert.are.same(expected, names)
    end
  end)

  it("hands back real ravan errors and log events, never the credential", function()
    local answer = nginx:call { opts = { api_key = "rk_wrong_key" },
      query = { phone = mock.phones.example } }
    assert.are.equal("auth", answer.err.kind)
    assert.are.equal(401, answer.err.status)
    assert.truthy(answer.err.text:find("^ravan: auth %(HTTP 401%)"), answer.err.text)
    assert.are.equal("request,response,error", events_of(answer))
    assert.falsy(cjson.encode(answer):find("rk_wrong_key", 1, true))
    assert.are.equal(mock.requests()[1].request_id, answer.err.request_id)
  end)

  it("measures every attempt, counts it in client:stats() and sends a traceparent on each", function()
    local function ordered(t, where)
      assert.is_true(t.dns <= t.connect and t.connect <= t.tls and t.tls <= t.first_byte
        and t.first_byte <= t.total and t.total > 0, where .. ": " .. cjson.encode(t))
    end
    mock.fault { kind = "status", status = 503, count = 1 }
    local answer = nginx:call { opts = { retry_base = 0.01, traceparent = true },
      query = { phone = mock.phones.example } }
    assert.is_table(answer.page)
    local timed = 0
    for _, e in ipairs(answer.events) do
      if e.event == "retry" or e.event == "response" then
        ordered(e.timings, e.event)
        assert.are.equal("1.1", e.http_version)
        assert.is_boolean(e.reused)
        timed = timed + 1
      end
    end
    assert.are.equal(2, timed)
    assert.are.same({ server = 1 }, answer.stats.retries)
    assert.are.equal(1, answer.stats.requests)
    assert.are.equal(2, answer.stats.attempts)
    assert.is_true(answer.stats.bytes > 0)
    local got = mock.requests()
    assert.are.equal(2, #got)
    assert.matches("^00%-%x+%-%x+%-01$", got[1].headers.traceparent)
    assert.are.equal(got[1].headers.traceparent, got[2].headers.traceparent)

    answer = nginx:call { mode = "pages", query = { phone = mock.phones.p250, prefetch = 2 } }
    assert.are.equal(3, #answer.items)
    assert.are.equal(3, answer.stats.requests)
    for _, e in ipairs(answer.events) do
      if e.event == "response" then ordered(e.timings, "page") end
    end

    answer = nginx:call { opts = { api_key = "rk_wrong_key" }, query = { phone = mock.phones.example } }
    assert.are.equal("auth", answer.err.kind)
    ordered(answer.err.timings, "error")
    assert.are.same({ auth = 1 }, answer.stats.errors)
  end)

  it("masks a credential the server echoes JSON-escaped or percent-encoded", function()
    local function pct(c) return ("%%%02X"):format(c:byte()) end
    local function json_u(c) return ("\\u%04x"):format(c:byte()) end
    local n = 0
    for _, field in ipairs({ "api_key", "token" }) do
      local secret = (field == "api_key" and "rk" or "tok") .. "/AbC+dEf/9xYz=="
      for _, echoed in ipairs({ (secret:gsub("/", "\\/")), (secret:gsub("[^%w]", pct)),
          (secret:gsub("[^%w]", json_u)) }) do
        mock.reset()
        mock.fault { kind = "status", status = 401, body = '{"message":"bad key ' .. echoed .. '"}' }
        local answer = nginx:call { opts = { [field] = secret, max_retries = 0 },
          query = { phone = mock.phones.example } }
        assert.are.equal("auth", answer.err.kind)
        assert.truthy(answer.err.body:find("[REDACTED]", 1, true), answer.err.body)
        for _, s in ipairs(helpers.strings(answer)) do
          for _, form in ipairs({ secret, echoed }) do
            assert.is_nil(s:find(form, 1, true), field .. ": " .. s)
          end
        end
        n = n + 1
      end
    end
    assert.are.equal(6, n)
  end)

  describe("meets every fault of the server", function()
    local fast = { max_retries = 2, retry_base = 0.01, retry_cap = 0.05 }
    local phone = mock.phones.example

    it("retries 503s with the core's back-off, then succeeds", function()
      mock.fault { kind = "status", status = 503, count = 2 }
      local answer = nginx:call { opts = fast, query = { phone = phone } }
      assert.is_nil(answer.err)
      assert.are.equal(3, answer.page.n)
      assert.are.same({ 503, 503, 200 }, helpers.pluck(mock.requests(), "status"))
      assert.are.equal("request,retry,request,retry,request,response", events_of(answer))
      assert.is_true(answer.events[2].wait_ms > 0)
    end)

    it("gives up after max_retries with a retryable server error", function()
      mock.fault { kind = "status", status = 500, count = 5 }
      local answer = nginx:call { opts = fast, query = { phone = phone } }
      assert.are.equal("server", answer.err.kind)
      assert.are.equal(500, answer.err.status)
      assert.are.equal(3, answer.err.attempts)
      assert.is_true(answer.err.retryable)
      assert.are.equal(3, #mock.requests())
    end)

    it("waits what Retry-After asks, and reports a wait it will not sleep", function()
      mock.fault { kind = "status", status = 429, retry_after = "1" }
      local answer = nginx:call { opts = fast, query = { phone = phone } }
      assert.is_nil(answer.err)
      assert.are.equal(1, answer.events[2].retry_after)
      assert.is_true(answer.events[2].wait_ms >= 1000)
      local recs = mock.requests()
      assert.is_true(recs[2].time - recs[1].time >= 0.9)

      mock.reset()
      mock.fault { kind = "status", status = 429, retry_after = "120" }
      answer = nginx:call { opts = fast, query = { phone = phone } }
      assert.are.equal("rate_limited", answer.err.kind)
      assert.are.equal(120, answer.err.retry_after)
      assert.are.equal(1, #mock.requests())
    end)

    it("times an attempt out, retries it, and keeps to the deadline", function()
      mock.fault { kind = "delay", ms = 1500 }
      local answer = nginx:call { opts = { max_retries = 1, retry_base = 0.01, timeout = 0.3 },
        query = { phone = phone } }
      assert.is_nil(answer.err)
      assert.are.equal("timeout", answer.events[2].kind)
      assert.are.equal(2, #mock.requests())

      mock.reset()
      mock.config { latency_ms = 1500 }
      answer = nginx:call { opts = fast, query = { phone = phone, deadline = 0.4 } }
      assert.are.equal("timeout", answer.err.kind)
      assert.is_true(answer.err.retryable)
    end)

    it("sends again on another connection when a kept-alive one was closed, at no attempt", function()
      assert.is_nil(nginx:call({ query = { phone = phone } }).err)
      mock.reset()
      mock.fault { kind = "reset" }
      local answer = nginx:call { opts = { max_retries = 0 }, query = { phone = phone } }
      assert.is_nil(answer.err)
      assert.are.equal("request,response", events_of(answer))
      local recs = mock.requests()
      assert.are.equal(2, #recs)
      assert.are.equal("reset", recs[1].fault)
      assert.is_true(recs[1].connection_requests > 1)
      assert.are_not.equal(recs[1].connection, recs[2].connection)
    end)

    it("retries resets as network errors once no kept-alive connection is left", function()
      -- Each pooled connection is reset and dropped at no attempt; then fresh ones are reset.
      mock.fault { kind = "reset", count = 1000 }
      local answer = nginx:call { opts = fast, query = { phone = phone } }
      assert.are.equal("network", answer.err.kind)
      assert.are.equal(3, answer.err.attempts)
      assert.is_true(answer.err.retryable)
      assert.are.equal("request,retry,request,retry,request,error", events_of(answer))
    end)

    it("refuses a truncated body", function()
      mock.fault { kind = "truncate", count = 3 }
      local answer = nginx:call { opts = fast, query = { phone = phone } }
      assert.are.equal("network", answer.err.kind)
      assert.truthy(answer.err.message:find("bytes remaining", 1, true), answer.err.message)
      assert.are.equal(3, answer.err.attempts)
    end)

    -- Bytes no HTTP server should send, through both transports: each an error of the same
    -- kind, never a raise (nginx would answer the spec's call with a 500).
    local REFUSED = '{"success":false,"message":"refused"}'
    local function chunked(body)
      return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        .. body
    end
    local function with_headers(lines, body)
      return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" .. lines .. "\r\n" .. body
    end
    local SIZE = ("%x"):format(#REFUSED)
    local HOSTILE = {
      { "a chunk size that is no number", chunked("zz\r\n{}\r\n0\r\n\r\n"), "network" },
      { "a chunk size with an extension", chunked(SIZE .. ";name=value\r\n" .. REFUSED .. "\r\n0\r\n\r\n"),
        "server" },
      { "a chunk size of 17 hex digits", chunked("fffffffffffffffff\r\n" .. REFUSED .. "\r\n0\r\n\r\n"),
        "network" },
      { "a chunk size over 2^63", chunked("ffffffffffffffff\r\n" .. REFUSED .. "\r\n0\r\n\r\n"), "network" },
      { "a chunk size padded past 16 digits",
        chunked(("0"):rep(20) .. SIZE .. "\r\n" .. REFUSED .. "\r\n0\r\n\r\n"), "network" },
      { "a negative chunk size", chunked("-5\r\n" .. REFUSED .. "\r\n0\r\n\r\n"), "network" },
      { "an empty chunk size line", chunked("\r\n" .. REFUSED .. "\r\n0\r\n\r\n"), "network" },
      { "a chunk size after a space", chunked(" " .. SIZE .. "\r\n" .. REFUSED .. "\r\n0\r\n\r\n"), "network" },
      { "chunk data without its CRLF", chunked(SIZE .. "\r\n" .. REFUSED .. "XX0\r\n\r\n"), "network" },
      { "no last chunk", chunked(SIZE .. "\r\n" .. REFUSED .. "\r\n"), "network" },
      { "chunk lines ended by LF alone", chunked(SIZE .. "\n" .. REFUSED .. "\n0\n\n"), "server" },
      { "a trailer", chunked(SIZE .. "\r\n" .. REFUSED .. "\r\n0\r\nX-Trailer: 1\r\n\r\n"), "server" },
      { "a header line without a colon", with_headers("NoColonHere\r\nContent-Length: " .. #REFUSED .. "\r\n",
        REFUSED), "network" },
      { "a negative Content-Length", with_headers("Content-Length: -1\r\n", REFUSED), "network" },
      { "a Content-Length of 23 digits", with_headers("Content-Length: " .. ("9"):rep(23) .. "\r\n", REFUSED),
        "too_large" },
    }

    it("meets hostile bytes with the plain client's error kind, never a raise", function()
      for _, case in ipairs(HOSTILE) do
        local what, bytes, kind = case[1], case[2], case[3]
        mock.reset()
        mock.fault { kind = "raw", bytes = bytes, count = 2 }
        local answer = nginx:call { opts = { max_retries = 0 }, query = { phone = phone } }
        assert.is_table(answer.err, what)
        assert.are.equal(kind, answer.err.kind, what .. ": " .. answer.err.message)
        local plain_err = select(2, mock.fast_client { max_retries = 0 }:phone_history { phone = phone })
        assert.are.equal(kind, plain_err.kind, what .. ": " .. tostring(plain_err))
        assert.are.same({ "raw", "raw" }, helpers.pluck(mock.requests(), "fault"), what)
      end
    end)

    -- Where libcurl's reading is odd (an unknown protocol taken for the caller's mistake, a head
    -- cut short taken for an empty body, digits before junk taken for a length), this reader
    -- keeps to what the bytes are: no HTTP, so a network error.
    it("calls bytes that are not HTTP a network error", function()
      for _, bytes in ipairs {
        "HTTP/1.1 abc OK\r\n\r\n", "HTTP/1.1 099 OK\r\nContent-Length: 0\r\n\r\n", "hello\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Le", with_headers("Content-Length: 12abc\r\n", REFUSED),
      } do
        mock.reset()
        mock.fault { kind = "raw", bytes = bytes }
        local answer = nginx:call { opts = { max_retries = 0 }, query = { phone = phone } }
        assert.is_table(answer.err, bytes)
        assert.are.equal("network", answer.err.kind, ("%q: %s"):format(bytes, answer.err.message))
        assert.are.equal(1, #mock.requests())
      end
    end)

    -- libcurl refuses a header line of 100 KiB: so does the cosocket reader, with the same kind
    -- and retry decision; a shorter one is read, so the body decides.
    it("treats large header lines as the plain client does", function()
      for _, case in ipairs { { 70, "server" }, { 200, "too_large" } } do
        local size, kind = case[1], case[2]
        local fault = { kind = "status", status = 200, count = 10, body = REFUSED,
          headers = { ["X-Huge"] = ("h"):rep(size * 1024) } }
        mock.reset()
        mock.fault(fault)
        local answer = nginx:call { opts = fast, query = { phone = phone } }
        assert.is_table(answer.err, size .. " KiB")
        assert.are.equal(kind, answer.err.kind, size .. " KiB: " .. answer.err.message)
        assert.is_false(answer.err.retryable)
        assert.are.equal(1, #mock.requests())
        if kind == "too_large" then assert.truthy(answer.err.message:find("header", 1, true)) end
        mock.reset()
        mock.fault(fault)
        local plain_err = select(2, mock.fast_client():phone_history { phone = phone })
        assert.are.equal(kind, plain_err.kind, size .. " KiB: " .. tostring(plain_err))
        assert.is_false(plain_err.retryable)
        assert.are.equal(1, #mock.requests())
      end
    end)

    it("reads a chunked body, and stops one over max_response_bytes while reading", function()
      mock.fault { kind = "large", bytes = 300000, chunked = true }
      local answer = nginx:call { query = { phone = phone } }
      assert.is_nil(answer.err)
      assert.are.equal(1, answer.page.n)

      mock.fault { kind = "large", bytes = 3000000, chunked = true }
      answer = nginx:call { opts = { max_response_bytes = 100000 }, query = { phone = phone } }
      assert.are.equal("too_large", answer.err.kind)
      mock.fault { kind = "large", bytes = 3000000 }
      answer = nginx:call { opts = { max_response_bytes = 100000 }, query = { phone = phone } }
      assert.are.equal("too_large", answer.err.kind)
      assert.is_false(answer.err.retryable)
    end)

    it("reports a slow dribble as a timeout", function()
      mock.fault { kind = "dribble", bytes = 16, interval_ms = 100, count = 2 }
      local answer = nginx:call { opts = { max_retries = 0, timeout = 0.3 },
        query = { phone = phone } }
      assert.are.equal("timeout", answer.err.kind)
    end)

    it("names malformed JSON and an HTML error page as the plain API does", function()
      mock.fault { kind = "malformed_json" }
      local answer = nginx:call { query = { phone = phone } }
      assert.are.equal("decode", answer.err.kind)
      mock.fault { kind = "html", status = 502, count = 6 }
      answer = nginx:call { opts = fast, query = { phone = phone } }
      assert.are.equal("server", answer.err.kind)
      local plain_err = select(2, mock.fast_client():phone_history { phone = phone })
      assert.is_table(plain_err, cjson.encode(mock.requests()))
      assert.are.equal(plain_err.message, answer.err.message)
    end)
  end)

  describe("redirects", function()
    it("follows a same-origin redirect", function()
      mock.fault { kind = "redirect", target = "same" }
      local answer = nginx:call { query = { phone = mock.phones.example } }
      assert.is_nil(answer.err)
      local recs = mock.requests()
      assert.are.equal(2, #recs)
      assert.are.equal("/v1-moved/api/v1/calling/phone-history", recs[2].uri)
      assert.are.equal(recs[1].query, recs[2].query)
    end)

    it("refuses one to another origin, sending it nothing", function()
      mock.fault { kind = "redirect", target = "other" }
      local answer = nginx:call { query = { phone = mock.phones.example } }
      assert.are.equal("server", answer.err.kind)
      assert.truthy(answer.err.message:find("another origin", 1, true), answer.err.message)
      local recs = mock.requests()
      assert.are.equal(1, #recs)
      assert.are.equal("main", recs[1].listener)
    end)
  end)

  describe("TLS", function()
    it("verifies the server against lua_ssl_trusted_certificate", function()
      local answer = nginx:call({ opts = { base_url = mock.tls_url },
        query = { phone = mock.phones.example } }, "/call_ca")
      assert.is_nil(answer.err)
      assert.are.equal(3, answer.page.n)
      assert.are.equal("tls", mock.requests()[1].listener)
    end)

    -- A pooled connection was verified when it was made: the token keeps this call out of the
    -- pool the call above verified under the local CA.
    it("fails without the CA, naming the directive, and sends nothing", function()
      local answer = nginx:call { opts = { base_url = mock.tls_url, token = mock.token },
        query = { phone = mock.phones.example } }
      assert.are.equal("tls", answer.err.kind)
      assert.is_false(answer.err.retryable)
      assert.truthy(answer.err.message:find("lua_ssl_trusted_certificate", 1, true),
        answer.err.message)
      assert.are.equal(0, #mock.requests())
    end)

    it("skips verification only when told to", function()
      local answer = nginx:call { opts = { base_url = mock.tls_url, insecure = true },
        query = { phone = mock.phones.example } }
      assert.is_nil(answer.err)
    end)
  end)

  it("names nginx's resolver directive when there is none to resolve a host name", function()
    local port = mock.url:match(":(%d+)$")
    local answer = nginx:call { opts = { base_url = "http://localhost:" .. port },
      query = { phone = mock.phones.example } }
    assert.are.equal("network", answer.err.kind)
    assert.truthy(answer.err.message:find("resolver", 1, true), answer.err.message)
    assert.are.equal(1, answer.err.attempts)
  end)

  describe("client certificates", function()
    local function cert_opts(name, extra)
      local opts = { base_url = mock.mtls_url, max_retries = 0,
        client_cert = mock.dir .. "/" .. name .. ".pem", client_key = mock.dir .. "/" .. name .. ".key" }
      for k, v in pairs(extra or {}) do opts[k] = v end
      return { opts = opts, query = { phone = mock.phones.example } }
    end

    it("are presented to a server that requires one, a key under its passphrase too", function()
      assert.is_nil(nginx:call(cert_opts("client"), "/call_ca").err)
      local answer = nginx:call(cert_opts("client", { client_key = mock.dir .. "/client-enc.key",
        key_password = "ravan-key-pass", token = mock.token }), "/call_ca")
      assert.is_nil(answer.err)
      local recs = mock.requests()
      assert.are.equal(2, #recs)
      for _, rec in ipairs(recs) do assert.matches("CN=ravan client", rec.client_subject) end
      assert.is_nil(cjson.encode(answer):find("ravan-key-pass", 1, true))
    end)

    it("are refused when missing, and nothing reaches the API", function()
      local answer = nginx:call({ opts = { base_url = mock.mtls_url, max_retries = 0 },
        query = { phone = mock.phones.example } }, "/call_ca")
      assert.truthy(answer.err)
      assert.are.equal(0, #mock.requests())
    end)

    it("keep connections apart in the pool: one made with a certificate serves only it", function()
      for _, name in ipairs { "client", "client2", "client", "client2" } do
        assert.is_nil(nginx:call(cert_opts(name), "/call_ca").err)
      end
      local recs = mock.requests()
      assert.are.equal(4, #recs)
      assert.matches("CN=ravan client$", recs[1].client_subject)
      assert.matches("CN=ravan client2", recs[2].client_subject)
      assert.are.equal(recs[1].connection, recs[3].connection)
      assert.are.equal(recs[2].connection, recs[4].connection)
      assert.are_not.equal(recs[1].connection, recs[2].connection)
      assert.matches("CN=ravan client$", recs[3].client_subject)
      assert.matches("CN=ravan client2", recs[4].client_subject)
    end)
  end)

  describe("through an HTTP proxy", function()
    local proxy = require "spec.support.proxy"
    local proxies = proxy.each_kind(setup, teardown)

    local function via(url, extra)
      local opts = { base_url = mock.tls_url, proxy = url, max_retries = 0 }
      for k, v in pairs(extra or {}) do opts[k] = v end
      return { opts = opts, query = { phone = mock.phones.example } }
    end

    it("tunnels HTTPS with CONNECT, and keeps the tunnel alive", function()
      local before = proxies.open.requests()
      for _ = 1, 2 do assert.is_nil(nginx:call(via(proxies.open.url), "/call_ca").err) end
      assert.truthy(proxies.open.log():find("CONNECT 127.0.0.1:" .. mock.tls_url:match(":(%d+)$"), 1, true))
      assert.are.equal(1, proxies.open.requests() - before)
      local recs = mock.requests()
      assert.are.equal(2, #recs)
      assert.are.equal(recs[1].connection, recs[2].connection)
    end)

    it("sends plain http as an absolute URL to the proxy", function()
      local before = proxies.open.requests()
      assert.is_nil(nginx:call(via(proxies.open.url, { base_url = mock.url })).err)
      assert.truthy(proxies.open.log():find("GET http://127.0.0.1:" .. mock.url:match(":(%d+)$"), 1, true))
      assert.are.equal(1, proxies.open.requests() - before)
      assert.are.equal(1, #mock.requests())
    end)

    it("goes direct for a host in no_proxy", function()
      local before = proxies.open.requests()
      assert.is_nil(nginx:call(via(proxies.open.url, { no_proxy = "127.0.0.1", token = mock.token }),
        "/call_ca").err)
      assert.are.equal(0, proxies.open.requests() - before)
      assert.are.equal(1, #mock.requests())
    end)

    it("fails as network when the proxy refuses, and nothing reaches the API", function()
      local answer = nginx:call(via(proxies.refuse.url), "/call_ca")
      assert.are.equal("network", answer.err.kind)
      assert.matches("403", answer.err.message)
      assert.are.equal(0, #mock.requests())
    end)

    it("sends the proxy's credentials, which no event or error shows", function()
      local good = ("http://%s:%s@127.0.0.1:%d"):format(proxy.user, proxy.password, proxies.auth.port)
      local answer = nginx:call(via(good), "/call_ca")
      assert.is_nil(answer.err)
      assert.is_nil(cjson.encode(answer):find(proxy.password, 1, true))
      local bad = ("http://%s:wrong-%s@127.0.0.1:%d"):format(proxy.user, proxy.password, proxies.auth.port)
      answer = nginx:call(via(bad, { token = mock.token }), "/call_ca")
      assert.are.equal("network", answer.err.kind)
      assert.matches("credentials", answer.err.message)
      assert.is_nil(cjson.encode(answer):find(proxy.password, 1, true))
      assert.are.equal(1, #mock.requests())
    end)
  end)

  describe("keep-alive", function()
    it("reuses one connection across calls", function()
      for _ = 1, 3 do assert.is_nil(nginx:call({ query = { phone = mock.phones.example } }).err) end
      local recs = mock.requests()
      assert.are.equal(3, #recs)
      assert.are.equal(recs[1].connection, recs[2].connection)
      assert.are.equal(recs[1].connection, recs[3].connection)
      assert.are.equal(recs[1].connection_requests + 2, recs[3].connection_requests)
    end)

    -- Two origins (the server's two listeners) and two credentials, interleaved twice: each of
    -- the four keeps to its own connection, and no connection carries two of them.
    it("never shares a connection between credentials or origins", function()
      local q = { phone = mock.phones.example }
      local kinds = {
        { base_url = mock.url }, { base_url = mock.other_url },
        { base_url = mock.url, token = mock.token }, { base_url = mock.other_url, token = mock.token },
      }
      for _ = 1, 2 do
        for _, opts in ipairs(kinds) do
          local copy = {}
          for k, v in pairs(opts) do copy[k] = v end
          assert.is_nil(nginx:call({ opts = copy, query = q }).err)
        end
      end
      local recs = mock.requests()
      assert.are.equal(8, #recs)
      local owner, used = {}, {}
      for _, rec in ipairs(recs) do
        local h = rec.headers
        assert.are_not.equal(h["x-api-key"] == nil, h["authorization"] == nil)
        local who = rec.listener .. " " .. (h["x-api-key"] or h["authorization"])
        assert.are.equal(owner[rec.connection] or who, who)
        owner[rec.connection] = who
        used[who] = used[who] or {}
        used[who][rec.connection] = true
      end
      assert.are.same({ "main", "other", "main", "other", "main", "other", "main", "other" },
        helpers.pluck(recs, "listener"))
      assert.are.equal(4, count_keys(used))
      -- Pooled: each one's second call went on its first call's connection.
      for who, connections in pairs(used) do assert.are.equal(1, count_keys(connections), who) end
    end)
  end)

  it("works from ngx.timer.at", function()
    local answer = nginx:call { timer = true, query = { phone = mock.phones.example } }
    assert.are.equal("timer", answer.phase)
    assert.is_nil(answer.err)
    assert.are.equal(3, answer.page.n)
  end)

  it("returns an error in phases without cosockets, and calls nothing", function()
    local status, body = nginx:get("/phase_set")
    assert.are.equal(200, status)
    assert.truthy(body:find("^invalid_argument: .*no cosockets in the set phase"), body)
    local sock = nginx:send("/phase_filters")
    sock:settimeout(10)
    local raw = assert(sock:receive("*a"))
    sock:close()
    assert.truthy(raw:find("X%-Ravan: invalid_argument: [^\r]*header_filter phase"), raw)
    assert.truthy(raw:find("\r\n\r\nbody\ninvalid_argument: [^\n]*body_filter phase"), raw)
    body = select(2, nginx:get("/phase_log"))
    assert.truthy(body:find("^invalid_argument: [^\n]*log phase"), body)
    assert.truthy(body:find("\ninvalid_argument: [^\n]*init_worker phase"), body)
    assert.are.equal(0, #mock.requests())
  end)

  describe("prefetch on light threads", function()
    -- The handler answered while pages 2 and 3 (wanted after page 1, 3 s slow) were in flight or
    -- not yet sent: their killed threads did not hold the request. Nothing past the window.
    local function assert_killed(recs)
      assert.is_true(#recs <= 3)
      for i = 2, #recs do assert.are.equal(cjson.null, recs[i].status) end
    end

    it("yields pages in order while later ones are in flight", function()
      -- Page 2 is the slowest, so pages 3 and 4 arrive before it.
      mock.config { page_delays = { ["2"] = 400, ["3"] = 100 } }
      local answer = nginx:call { mode = "pages",
        query = { phone = mock.phones.p250, page_size = 50, prefetch = 3 } }
      assert.is_nil(answer.err)
      assert.are.same({ 1, 2, 3, 4, 5 }, helpers.pluck(answer.items, "page"))
      assert.are.equal(5, #answer.pending)
      for _, n in ipairs(answer.pending) do assert.is_true(n <= 3) end
      assert.are.equal(3, answer.pending[2])
      local recs = mock.requests()
      assert.are.equal(5, #recs)
      -- Pages 2 to 4 were asked for together, before page 2 was answered.
      local pages = {}
      for i, rec in ipairs(recs) do pages[i] = tonumber(rec.query:match("page=(%d+)")) end
      assert.are.same({ 1, 2, 3, 4 }, { pages[1], pages[2], pages[3], pages[4] })
      assert.is_true(recs[4].time < recs[2].time + 0.4)
      local ids = {}
      for _, page in ipairs(answer.items) do
        for _, id in ipairs(page.ids) do
          assert.is_nil(ids[id])
          ids[id] = true
        end
      end
      assert.are.equal(250, count_keys(ids))
    end)

    it("kills the pages in flight on close", function()
      mock.config { page_delays = { ["2"] = 3000, ["3"] = 3000 } }
      local answer = nginx:call { mode = "pages", take = 1,
        query = { phone = mock.phones.p250, page_size = 50, prefetch = 2 } }
      assert.are.equal(1, #answer.items)
      assert.are.equal(0, answer.pending_after_close)
      assert.are.equal(2, answer.pending[1])
      assert_killed(mock.requests())
    end)

    it("kills them when the client is closed, and the pager answers the closed error", function()
      mock.config { page_delays = { ["2"] = 3000, ["3"] = 3000 } }
      local answer = nginx:call { mode = "pages", take = 1, close_client = true,
        query = { phone = mock.phones.p250, page_size = 50, prefetch = 2 } }
      assert.are.equal(1, #answer.items)
      assert.are.equal(0, answer.pending_after_close)
      assert.are.equal("invalid_argument", answer.next_err.kind)
      assert.truthy(answer.next_err.message:find("closed", 1, true))
      assert.are.equal(2, answer.pending[1])
      assert_killed(mock.requests())
    end)
  end)

  it("keeps a shared rate budget across calls", function()
    local opts = { rate_limit = { dict = "ravan", per_second = 2 } }
    local q = { phone = mock.phones.example }
    for _ = 1, 5 do assert.is_nil(nginx:call({ opts = opts, query = q }).err) end
    local recs = mock.requests()
    assert.are.equal(5, #recs)
    -- Two per one-second window: the five take three windows at least.
    local windows = budget_windows(recs, 2)
    assert.is_true(#windows >= 3, #windows .. " windows")
    for w, n in ipairs(windows) do assert.is_true(n <= 2, n .. " in window " .. w) end

    -- One a second, and no time to wait for the next: calls in a row until one finds the
    -- window full. That one fails at once, retryable, and sends nothing.
    mock.reset()
    local calls, limited = 0
    repeat
      calls = calls + 1
      local answer = nginx:call { opts = { rate_limit = { dict = "ravan", per_second = 1 },
        token = mock.token }, query = { phone = mock.phones.example, deadline = 0.05 } }
      limited = answer.err
    until limited or calls == 10
    assert.is_table(limited, "10 calls in a row each found room in a budget of one a second")
    assert.are.equal("rate_limited", limited.kind)
    assert.is_true(limited.retryable)
    assert.are.equal(calls - 1, #mock.requests())
  end)

  it("shares the rate budget between workers", function()
    local dir = proc.tmpdir()
    assert(os.execute("mkdir -p " .. proc.quote(dir .. "/logs") .. " " .. proc.quote(dir .. "/temp")))
    local two, log = start_nginx(dir, 2)
    assert(two, "nginx did not start:\n" .. tostring(log))
    local ok, err = pcall(function()
      -- 16 calls at once, each allowed to wait: a budget of 4 a second shared by the workers
      -- sends 4 in each of four one-second windows; kept by each worker, up to 8 in one.
      local _, responses = two:paced("/budget?deadline=10", 16, 0)
      assert.are.equal(16, #responses)
      local workers = {}
      for _, raw in ipairs(responses) do
        local _, body = parse_response(raw)
        local outcome, pid = body:match("^(%S+) (%d+)")
        assert.are.equal("ok", outcome, body)
        workers[pid] = true
      end
      assert.are.equal(2, count_keys(workers))
      local recs = mock.requests()
      assert.are.equal(16, #recs)
      assert.are.same({ 4, 4, 4, 4 }, budget_windows(recs, 4))
    end)
    two:stop()
    proc.rmdir(dir)
    assert(ok, err)
  end)

  it("serves 500 concurrent requests at +100 ms with no failure", function()
    mock.config { latency_ms = 100 }
    local latencies, responses = nginx:paced("/history?phone=%2B919876543210", 500, 0)
    assert.are.equal(500, #latencies)
    local failed = 0
    for _, raw in ipairs(responses) do
      local status = parse_response(raw)
      if status ~= 200 then failed = failed + 1 end
    end
    assert.are.equal(0, failed)
    local recs = mock.requests()
    assert.are.equal(500, #recs)
    local connections = {}
    for _, rec in ipairs(recs) do connections[rec.connection] = true end
    print(("# openresty: 500 concurrent requests at +100 ms: p50 %.0f ms, p99 %.0f ms,"
      .. " %d connections"):format(percentile(latencies, 0.5) * 1000,
      percentile(latencies, 0.99) * 1000, count_keys(connections)))
  end)

  it("keeps the worker answering while a slow API call is in flight", function()
    local slow = mock.phones.p250
    mock.fault { kind = "delay", ms = SLOW_MS, phone = slow, count = 1 }
    local slow_sock = nginx:send("/history?phone=" .. slow:gsub("^%+", "%%2B"))
    wait_in_flight(slow)
    local latencies, responses = nginx:paced("/history?phone=%2B919876543210", PROBES, PROBE_INTERVAL)
    assert.are.equal(PROBES, #latencies)
    for _, raw in ipairs(responses) do
      assert.are.equal(200, (parse_response(raw)), raw)
    end
    -- Every probe reached the API before the slow call was answered, by the server's clock: the
    -- worker went on serving while its call waited.
    local recs = mock.requests()
    assert.are.equal(PROBES + 1, #recs)
    local answered = recs[1].time + SLOW_MS / 1000
    assert.truthy(recs[1].query:find(slow:gsub("^%+", "%%2B"), 1, true), recs[1].query)
    for i = 2, #recs do assert.is_true(recs[i].time < answered, "probe " .. (i - 1)) end
    slow_sock:settimeout(10)
    local status = parse_response(assert(slow_sock:receive("*a")))
    slow_sock:close()
    assert.are.equal(200, status)
  end)

  it("runs from a checkout as docs/openresty.md says: examples/openresty/run", function()
    local out, status
    -- A port taken meanwhile (by a listener or an outgoing connection): another one.
    for _ = 1, 10 do
      local port = math.random(20000, 32000)
      out, status = proc.run("examples/openresty/run curl -s "
        .. proc.quote(("http://127.0.0.1:%d/history?phone=%%2B14155550100"):format(port)),
        mock.env { RAVAN_EXAMPLE_PORT = port })
      if not out:find("Address already in use", 1, true) then break end
    end
    assert.are.equal(0, status, out)
    local page = cjson.decode(out:match("{.*}"))
    assert.are.equal("+14155550100", page.phone)
    assert.are.equal(2, #page.calls)
    assert.are.equal(1, #mock.requests())
  end)

  it("finds a Lua error in nginx's log, the check every spec here ends with", function()
    local status = nginx:get("/lua_error")
    assert.are.equal(500, status)
    local problems = log_problems(nginx:error_log():sub(log_from + 1))
    assert.truthy(problems:find("a Lua error for the log check", 1, true), problems)
    -- This spec's own error is the one the check would find; it has been seen, so skip it.
    log_from = #nginx:error_log()
  end)
end)
