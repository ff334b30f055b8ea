-- Benchmark (a), one Lua contender in its own process: N sequential requests of one small
-- page, each decoded into Lua tables (but for `floor`, which keeps the body a string). The
-- first request (connection setup, and the handshake over TLS) is not timed.
--
--   lua5.4 bench/http_client.lua MODE URL PHONE PAGE_SIZE API_KEY N [CA_FILE]
-- with MODE ravan, ravan-nostats (a client made with stats = false: bench l), luasocket,
-- luasocket+nodelay, floor or floor+cjson, prints the seconds the N
-- requests took. For an https URL, CA_FILE is the certificate to trust. luasocket opens a
-- connection per request (over TLS, a handshake per request); the others keep theirs. The floors
-- need build/bench/lua_floor.so.
local core = require "ravan.core"
local cjson = require "cjson"

local mode, url, phone, page_size, api_key, n, ca_file =
  arg[1], arg[2], arg[3], arg[4], arg[5], tonumber(arg[6]), arg[7]

local full = url .. "/api/v1/calling/phone-history?phone=" .. phone:gsub("%+", "%%2B")
  .. "&page_size=" .. page_size

local request

if mode == "ravan" or mode == "ravan-nostats" then
  local ravan = require "ravan"
  local client = assert(ravan.new { base_url = url, api_key = api_key, ca_file = ca_file,
    stats = mode == "ravan" })
  local q = { phone = phone, page_size = tonumber(page_size) }
  request = function()
    assert(client:phone_history(q))
  end
elseif mode == "luasocket" or mode == "luasocket+nodelay" then
  local socket = require "socket"
  local http = require "socket.http"
  local ltn12 = require "ltn12"
  local tls = url:find("^https:") ~= nil
  -- socket.http hands an https URL to luasec (`ssl.https`), which takes its TLS parameters from
  -- the request table itself. Neither sets TCP_NODELAY: over TLS the request goes out in two
  -- records, and the second waits for the server's delayed ACK (~40 ms). `+nodelay` sets it, to
  -- show what the handshake itself costs; luasocket makes a socket's descriptor only when it
  -- connects, too late for the option, so that socket is made here (IPv4: the local server).
  local function nodelay_create(reqt)
    local tls_create = tls and require("ssl.https").tcp(reqt)
    return function()
      local sock = assert(socket.tcp4())
      assert(sock:setoption("tcp-nodelay", true))
      if not tls then return sock end
      local conn = tls_create()
      conn.sock = sock
      return conn
    end
  end
  request = function()
    local chunks = {}
    local reqt = {
      url = full, headers = { ["x-api-key"] = api_key, accept = "application/json" },
      sink = ltn12.sink.table(chunks),
      verify = tls and "peer" or nil, cafile = ca_file,
    }
    if mode == "luasocket+nodelay" then reqt.create = nodelay_create(reqt) end
    local ok, status = http.request(reqt)
    assert(ok and status == 200, status)
    assert(cjson.decode(table.concat(chunks)))
  end
elseif mode == "floor" or mode == "floor+cjson" then
  package.cpath = "build/bench/?.so;" .. package.cpath
  local get = require("lua_floor").open(full, api_key, ca_file)
  if mode == "floor" then
    request = get
  else
    request = function()
      assert(cjson.decode(get()))
    end
  end
else
  error("mode must be ravan, luasocket, luasocket+nodelay, floor or floor+cjson")
end

request()
local t0 = core.now()
for _ = 1, n do request() end
print(string.format("%.6f", core.now() - t0))
