-- The lean profile's figures, measured inside the host that runs it (build/embed/ravan-embed, or
-- build/arm64/embed/ravan-embed under qemu-aarch64): what a client costs idle, and what one page
-- adds while the program holds it, in Lua heap and in resident memory.
--
--   ravan-embed examples/embed/lean.lua idle [N]              N idle clients, per client
--   ravan-embed examples/embed/lean.lua SIZE [transcripts]    one page of SIZE calls
--
-- One case per process, so memory a case freed cannot hide what the next one takes. Needs
-- RAVAN_BASE_URL and RAVAN_API_KEY. Linux only: reads /proc/self.
local ravan = require "ravan"

local PHONE = "+15550000250"

local function rss_kb()
  local f = assert(io.open("/proc/self/status"))
  local kb = f:read("*a"):match("VmRSS:%s*(%d+)")
  f:close()
  return tonumber(kb)
end

local function settled()
  collectgarbage()
  collectgarbage()
  return collectgarbage("count"), rss_kb()
end

-- The libcurl this process mapped, as its own /proc/self/maps names it: under qemu-user that is
-- the guest's view, so it tells which architecture's library the host really runs on.
local function libcurl()
  for line in io.lines("/proc/self/maps") do
    local path = line:match("(/%S*libcurl[^/%s]*)$")
    if path then return path end
  end
  return "none"
end

local case = arg[1] or "idle"
local line
if case == "idle" then
  local n = tonumber(arg[2]) or 20
  local clients = {}
  local heap0, rss0 = settled()
  for i = 1, n do clients[i] = assert(ravan.new()) end
  local heap1, rss1 = settled()
  line = ("case=idle heap_kb=%.1f rss_kb=%.1f"):format((heap1 - heap0) / n, (rss1 - rss0) / n)
  for i = 1, n do clients[i]:close() end
else
  local size = assert(tonumber(case), "usage: lean.lua idle [N] | lean.lua SIZE [transcripts]")
  local transcripts = arg[2] == "transcripts"
  local client = assert(ravan.new())
  local function fetch(page_size)
    return assert(client:phone_history {
      phone = PHONE, page_size = page_size, include_transcripts = transcripts,
    })
  end
  -- A first request of one call pays the one-off costs (the connection, libcurl's first use,
  -- under qemu the translation of that code), so what follows is the page's own.
  fetch(1)
  local heap0, rss0 = settled()
  local page = fetch(size)
  local heap1, rss1 = settled()
  assert(#page.calls == size, "short page")
  line = ("case=%d%s heap_kb=%.1f rss_kb=%d"):format(size, transcripts and "+transcripts" or "",
    heap1 - heap0, rss1 - rss0)
  client:close()
end
print(line .. " libcurl=" .. libcurl())
