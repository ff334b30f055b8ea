-- Every call of a phone's history through the lazy pager: pages are fetched as the loop needs
-- them, with the next ones already on their way (prefetch), and memory stays flat however long
-- the history is.
--
--   lua examples/every_call.lua +14155550100 [LIMIT]
local ravan = require "ravan"

local phone = arg[1] or "+14155550100"
local limit = tonumber(arg[2])

-- A failure mid-way is raised from the loop as a ravan error; pcall turns it into a message.
local ok, err = pcall(function()
  local n = 0
  for call in ravan.calls { phone = phone, limit = limit } do
    n = n + 1
    -- Fixed widths, as the calls stream: an id has 36 characters, a time 20, a phone up to 16.
    print(("%6d  %-36s  %-20s  %16s -> %s"):format(n, call.id, call.started_at or "-",
      call.caller_number or "-", call.callee_number or "-"))
  end
  print(("%d calls"):format(n))
end)
if not ok then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
