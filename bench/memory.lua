-- Benchmark (d), one measurement in a fresh process: the peak RSS (VmHWM) after reading
-- `n` calls of a long history, either iterating them through the pager (nothing kept) or
-- collecting every page into one table (everything kept), for comparison.
--
--   lua5.4 bench/memory.lua iterate|collect N URL API_KEY PHONE
-- prints "<VmHWM kB> <calls read> <seconds>".
local core = require "ravan.core"
local ravan = require "ravan"

local mode, n, url, api_key, phone = arg[1], tonumber(arg[2]), arg[3], arg[4], arg[5]
local client = assert(ravan.new { base_url = url, api_key = api_key })

local function vm_hwm_kb()
  local f = assert(io.open("/proc/self/status"))
  local kb = tonumber(f:read("*a"):match("VmHWM:%s*(%d+)"))
  f:close()
  return kb
end

local t0 = core.now()
local count = 0
if mode == "iterate" then
  for call in client:calls { phone = phone, limit = n } do
    if call.id then count = count + 1 end
  end
elseif mode == "collect" then
  local pages = {} -- luacheck: ignore 241 (held: this mode measures every page kept)
  for page in client:pages { phone = phone, limit = n } do
    pages[#pages + 1] = page
    count = count + #page.calls
  end
else
  error("mode must be iterate or collect")
end
assert(count == n, "read " .. count .. " calls, wanted " .. n)
print(string.format("%d %d %.3f", vm_hwm_kb(), count, core.now() - t0))
