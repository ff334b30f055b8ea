-- One sync of PHONE into DB in this process, for bench/sync.lua's (j): prints its seconds, the
-- process's peak RSS (VmHWM, KiB) and how many calls it inserted.
local ravan = require "ravan"
local core = require "ravan.core"

local phone, db = arg[1], arg[2]
local c = assert(ravan.new { base_url = os.getenv("RAVAN_MOCK_URL"), api_key = "rk_test_local" })
local t0 = core.now()
local s = assert(c:sync { phone = phone, db = db })
local dt = core.now() - t0
c:close()
assert(#s.errors == 0, tostring(s.errors[1] and s.errors[1].error))
local f = assert(io.open("/proc/self/status"))
local hwm = f:read("*a"):match("VmHWM:%s*(%d+)")
f:close()
print(string.format("seconds=%.3f hwm=%s inserted=%d", dt, hwm, s.inserted))
