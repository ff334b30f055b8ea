-- One sync worker, as a process: `lua spec/sync/worker.lua PHONES_FILE DB_URL NAME LEASE RATE`
-- syncs the phones (one a line) with worker = true, its requests carrying NAME in User-Agent,
-- and prints "NAME ok REQUESTS FAILED" or "NAME err ERROR". Used by the worker spec and bench n.
local ravan = require "ravan"
local phones = {}
for line in io.lines(arg[1]) do phones[#phones + 1] = line end
local c = assert(ravan.new { user_agent = arg[3], timeout = 30 })
local s, err = c:sync { phones = phones, db = arg[2], worker = true, lease = tonumber(arg[4]),
  rate_limit = { requests = tonumber(arg[5]), per = 1 } }
io.write(arg[3], " ", s and ("ok " .. s.requests .. " " .. #s.errors) or ("err " .. tostring(err)),
  "\n")
