-- The local Ravan server as the specs see it: its URLs, its test credentials, and its control
-- API (records of what it received, fault injection, persistent config). Control calls go
-- through luasocket, so they never share a connection or a code path with the client under test.
--
-- The server is started on first use, so specs that need none run without one: `url`,
-- `tls_url`, `other_url` and `ca_file` are those of `mock/server run` when it exported them
-- (RAVAN_MOCK_*), else of a server this process starts when one of them is first read, and
-- which is stopped when the process ends.
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local cjson = require "cjson"

local M = {}

local SERVER_VARS = {
  url = "RAVAN_MOCK_URL", tls_url = "RAVAN_MOCK_TLS_URL", other_url = "RAVAN_MOCK_OTHER_URL",
  ca_file = "RAVAN_MOCK_CA", mtls_url = "RAVAN_MOCK_MTLS_URL",
  -- The instance's directory: client.pem/.key, client2, client-enc.key under the passphrase
  -- "ravan-key-pass", other.pem/.key (a CA the mtls listener does not know).
  dir = "RAVAN_MOCK_DIR",
}

-- A stopper is a shell whose stdin is a pipe from this process: it reads to the end of it,
-- which comes when this process exits however it exits, then stops the server. Kept here so
-- the pipe stays open until then.
local stopper -- luacheck: ignore 231 (held, never read: see above)

local function own_server()
  local p = assert(io.popen("mock/server start"))
  local out = p:read("*a")
  p:close()
  local vars = {}
  for name, value in out:gmatch("(RAVAN_MOCK_[%w_]+)=([^\n]*)") do vars[name] = value end
  assert(vars.RAVAN_MOCK_URL and vars.RAVAN_MOCK_DIR, "mock/server start failed:\n" .. out)
  stopper = assert(io.popen("cat >/dev/null; exec mock/server stop '" .. vars.RAVAN_MOCK_DIR
    .. "'", "w"))
  return vars
end

setmetatable(M, {
  __index = function(_, key)
    if not SERVER_VARS[key] then return nil end
    local vars = os.getenv("RAVAN_MOCK_URL") and {} or own_server()
    for field, name in pairs(SERVER_VARS) do
      rawset(M, field, vars[name] or os.getenv(name))
    end
    return rawget(M, key)
  end,
})

M.api_key = "rk_test_local"
M.token = "tok_test_local"

-- Phones of the seeded dataset (see mock/README.md).
M.phones = {
  example = "+919876543210",     -- the contract example's call, verbatim, and two more
  example_caller = "+14155550100",
  none = "+15550000000",
  p250 = "+15550000250",
  p10k = "+15550010000",
  p100k = "+15550100000",
  nulls = "+15556660001",        -- null and missing optional fields, cost_total as a number
  long = "+15558880001",         -- long transcripts: a 100-call page is over 1 MB
}

-- Where the server serves a call's recording on an origin (the contract's recording_url).
function M.recording_path(id)
  return "/api/v1/calling/sessions/" .. id .. "/recording"
end

local function control(method, path, body, base)
  local chunks = {}
  local ok, status = http.request {
    url = (base or M.url) .. path,
    method = method,
    headers = body and { ["content-type"] = "application/json", ["content-length"] = #body } or nil,
    source = body and ltn12.source.string(body) or nil,
    sink = ltn12.sink.table(chunks),
  }
  local text = table.concat(chunks)
  assert(ok and status == 200, ("mock %s %s: %s %s"):format(method, path, tostring(status), text))
  return cjson.decode(text)
end

function M.reset()
  control("POST", "/__mock/reset")
end

-- Queues one fault (or a list of them): {kind=, count=, phone=, page=, ...}.
function M.fault(spec)
  return control("POST", "/__mock/faults", cjson.encode(spec))
end

-- Persistent behaviour until the next reset: latency_ms, page_delays, shift, total_count,
-- rate_limit, arrivals, changes, unordered, recordings, mutations (see mock/README.md).
function M.config(cfg)
  return control("POST", "/__mock/config", cjson.encode(cfg))
end

-- Mutates phones' histories at any depth, seeded: {phone=, seed=, changes=, deletions=,
-- insertions=, arrivals=, from=, depth=} or a list. Returns the log of what was done:
-- {op=, id=, position=, phone=, started_at= (insert), revision= (change)}, in order.
function M.mutate(spec)
  return control("POST", "/__mock/mutate", cjson.encode(spec)).mutations
end

-- The phone's whole current history as the API serves it (on `url`, default the main
-- listener): {phone=, total_count=, count=, calls={...}}, newest first.
function M.dataset(phone, transcripts, url)
  local path = "/__mock/dataset?phone=" .. phone:gsub("%+", "%%2B")
    .. (transcripts and "&include_transcripts=true" or "")
  return control("GET", path, nil, url)
end

-- A GET on its own connection (closed after it), written and read by hand so that a body cut
-- short arrives as it was sent: body (every byte after the head, to the close), status,
-- headers (lower-case names). Redirects are not followed. `url` is http://host:port/path.
function M.get(url, headers)
  local host, port, path = url:match("^http://([^:/]+):(%d+)(/.*)$")
  local lines = { "GET " .. path .. " HTTP/1.1", "Host: " .. host .. ":" .. port, "Connection: close" }
  for name, value in pairs(headers or {}) do lines[#lines + 1] = name .. ": " .. value end
  local c = assert(socket.tcp())
  c:settimeout(60)
  assert(c:connect(host, tonumber(port)))
  assert(c:send(table.concat(lines, "\r\n") .. "\r\n\r\n"))
  local data, err, partial = c:receive("*a")
  c:close()
  data = data or partial
  assert(data ~= nil, err)
  local head_end = data:find("\r\n\r\n", 1, true)
  if not head_end then return data, nil, {} end
  local head = data:sub(1, head_end - 1)
  local response_headers = {}
  for name, value in head:gmatch("\r\n([^:\r\n]+):%s*([^\r\n]*)") do response_headers[name:lower()] = value end
  return data:sub(head_end + 4), tonumber(head:match("^HTTP/1%.%d (%d%d%d)")), response_headers
end

-- Every API request the server received since the last reset (or after sequence `since`).
function M.requests(since)
  return control("GET", "/__mock/requests" .. (since and ("?since=" .. since) or ""))
end

-- Options for ravan.new pointing at the local server with the test key, merged with `extra`.
function M.options(extra)
  local opts = { base_url = M.url, api_key = M.api_key }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return opts
end

-- The environment a child process (the CLI, an example) reaches the local server with, under
-- the test key, merged with `extra`.
function M.env(extra)
  local env = { RAVAN_BASE_URL = M.url, RAVAN_API_KEY = M.api_key }
  for k, v in pairs(extra or {}) do env[k] = v end
  return env
end

function M.client(extra)
  local ravan = require "ravan"
  return assert(ravan.new(M.options(extra)))
end

-- A client whose retries are quick (2 of them, 10 to 50 ms apart), so injected faults do not
-- make a spec wait for real backoff; `extra` overrides.
function M.fast_client(extra)
  local opts = { max_retries = 2, retry_base = 0.01, retry_cap = 0.05 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return M.client(opts)
end

return M
