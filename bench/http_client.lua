-- Benchmark (a), one Lua contender in its own process: N sequential requests of one small
-- page, each decoded into Lua tables (but for `floor`, which keeps the body a string). The
-- first request (connection setup) is not timed.
--
--   lua5.4 bench/http_client.lua ravan|luasocket|floor|floor+cjson URL PHONE PAGE_SIZE API_KEY N
-- prints the seconds the N requests took. The floors need build/bench/lua_floor.so.
local core = require "ravan.core"
local cjson = require "cjson"

local mode, url, phone, page_size, api_key, n = arg[1], arg[2], arg[3], arg[4], arg[5], tonumber(arg[6])

local request

if mode == "ravan" then
  local ravan = require "ravan"
  local client = assert(ravan.new { base_url = url, api_key = api_key })
  local q = { phone = phone, page_size = tonumber(page_size) }
  request = function()
    assert(client:phone_history(q))
  end
elseif mode == "luasocket" then
  local http = require "socket.http"
  local ltn12 = require "ltn12"
  local full = url .. "/api/v1/calling/phone-history?phone=" .. phone:gsub("%+", "%%2B")
    .. "&page_size=" .. page_size
  request = function()
    local chunks = {}
    local ok, status = http.request {
      url = full, headers = { ["x-api-key"] = api_key, accept = "application/json" },
      sink = ltn12.sink.table(chunks),
    }
    assert(ok and status == 200, status)
    assert(cjson.decode(table.concat(chunks)))
  end
elseif mode == "floor" or mode == "floor+cjson" then
  package.cpath = "build/bench/?.so;" .. package.cpath
  local full = url .. "/api/v1/calling/phone-history?phone=" .. phone:gsub("%+", "%%2B")
    .. "&page_size=" .. page_size
  local get = require("lua_floor").open(full, api_key)
  if mode == "floor" then
    request = get
  else
    request = function()
      assert(cjson.decode(get()))
    end
  end
else
  error("mode must be ravan, luasocket, floor or floor+cjson")
end

request()
local t0 = core.now()
for _ = 1, n do request() end
print(string.format("%.6f", core.now() - t0))
