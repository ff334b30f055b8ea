-- Run by the C host in its game-loop mode (build/embed/ravan-embed --frames
-- examples/embed/frames.lua [N]): frame 1 starts N requests (default 50), every frame polls once,
-- and the loop ends when every callback has run. The host prints its frame times; this script
-- prints what came back and when the last one did. Credentials and the server come from
-- RAVAN_API_KEY / RAVAN_BASE_URL.
local ravan = require "ravan"
local core = require "ravan.core"

local n = tonumber(arg[1]) or 50
local client = assert(ravan.new { timeout = 10, deadline = 30 })
local ok, failed, delivered = 0, 0, 0
local started

local function on_page(page, err)
  delivered = delivered + 1
  if page then ok = ok + 1 else
    failed = failed + 1
    io.stderr:write(tostring(err), "\n")
  end
end

return function(frame)
  if frame == 1 then
    started = core.now()
    for i = 1, n do
      assert(client:start({ phone = "+15550000250", page = i, page_size = 1 }, on_page))
    end
  end
  assert(client:poll(0))
  if delivered < n then return false end
  print(("requests=%d ok=%d failed=%d last_ms=%.0f"):format(n, ok, failed,
    (core.now() - started) * 1000))
  client:close()
  return true
end
