-- What ravan costs a host, measured from inside it (build/embed/ravan-embed, or
-- build/ARCH/embed/ravan-embed under qemu-user), in resident memory (VmRSS) and Lua heap:
--
--   footprint.lua [N]                      `require "ravan"` (libcurl's and TLS's global set-up
--                                          included), the first client, and per client of N
--                                          more, idle and after one request has opened its
--                                          connection
--   footprint.lua page SIZE [transcripts]  what one page of SIZE calls adds while the program
--                                          holds it, once a first one-call request has paid the
--                                          one-off costs (the connection, libcurl's first use)
--
-- One case per process, so memory a case freed cannot hide what the next one takes. Both print
-- the libcurl the process mapped. Needs RAVAN_BASE_URL and RAVAN_API_KEY. Linux only: reads
-- /proc/self.
local function rss_kb()
  local f = assert(io.open("/proc/self/status"))
  local kb = f:read("*a"):match("VmRSS:%s*(%d+)")
  f:close()
  return tonumber(kb)
end

-- The Lua heap and the RSS in KiB, after a full collection.
local function settled()
  collectgarbage()
  collectgarbage()
  return collectgarbage("count"), rss_kb()
end

-- The libcurl this process mapped, as its own /proc/self/maps names it: under qemu-user that is
-- the guest's view, so it tells which architecture's library the host really runs.
local function libcurl()
  for line in io.lines("/proc/self/maps") do
    local path = line:match("(/%S*libcurl[^/%s]*)$")
    if path then return path end
  end
  return "none"
end

local function per_client(n)
  local _, base = settled()
  local ravan = require "ravan"
  local _, loaded = settled()

  -- The first client pays what every later one shares (libcurl's first handle, and under
  -- qemu-user the emulator's own memory, 2 MiB for armhf): reported on its own, so the figures
  -- per client are what one more client costs.
  local first = assert(ravan.new())
  local heap, warm = settled()

  local clients = {}
  for i = 1, n do clients[i] = assert(ravan.new()) end
  local idle_heap, idle = settled()

  for i = 1, n do
    assert(clients[i]:phone_history { phone = "+14155550100", page_size = 1 })
  end
  local _, used = settled()

  print(("require_kb=%d"):format(loaded - base))
  print(("first_client_kb=%d"):format(warm - loaded))
  print(("client_idle_kb=%.1f"):format((idle - warm) / n))
  print(("client_idle_heap_kb=%.1f"):format((idle_heap - heap) / n))
  print(("client_used_kb=%.1f"):format((used - warm) / n))
  first:close()
  for i = 1, n do clients[i]:close() end
end

local function page(size, transcripts)
  local ravan = require "ravan"
  local client = assert(ravan.new())
  local function fetch(page_size)
    return assert(client:phone_history {
      phone = "+15550000250", page_size = page_size, include_transcripts = transcripts,
    })
  end
  fetch(1)
  local heap0, rss0 = settled()
  local res = fetch(size)
  local heap1, rss1 = settled()
  assert(#res.calls == size, "short page")
  print(("page=%d%s heap_kb=%.1f rss_kb=%d"):format(size, transcripts and "+transcripts" or "",
    heap1 - heap0, rss1 - rss0))
  client:close()
end

if arg[1] == "page" then
  page(assert(tonumber(arg[2]), "usage: footprint.lua page SIZE [transcripts]"), arg[3] == "transcripts")
else
  per_client(tonumber(arg[1]) or 50)
end
print("libcurl=" .. libcurl())
