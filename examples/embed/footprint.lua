-- What ravan costs a host, measured from inside it (build/embed/ravan-embed
-- examples/embed/footprint.lua [N]): resident memory added by `require "ravan"` (libcurl's and
-- TLS's global set-up included), and per client, both idle and after one request has opened its
-- connection. Needs RAVAN_BASE_URL and RAVAN_API_KEY for the requests. Linux only: reads VmRSS.
local n = tonumber(arg[1]) or 50

local function rss_kb()
  local f = assert(io.open("/proc/self/status"))
  local kb = f:read("*a"):match("VmRSS:%s*(%d+)")
  f:close()
  return tonumber(kb)
end

local function settled_rss()
  collectgarbage()
  collectgarbage()
  return rss_kb()
end

local base = settled_rss()
local ravan = require "ravan"
local loaded = settled_rss()

local clients = {}
for i = 1, n do clients[i] = assert(ravan.new()) end
local idle = settled_rss()

for i = 1, n do
  assert(clients[i]:phone_history { phone = "+14155550100", page_size = 1 })
end
local used = settled_rss()

print(("require_kb=%d"):format(loaded - base))
print(("client_idle_kb=%.1f"):format((idle - loaded) / n))
print(("client_used_kb=%.1f"):format((used - loaded) / n))
for i = 1, n do clients[i]:close() end
