-- One page of a phone's call history.
--
--   lua examples/one_page.lua +14155550100 [PAGE]
--
-- The credential and server come from RAVAN_API_KEY (or RAVAN_TOKEN) and RAVAN_BASE_URL.
local ravan = require "ravan"

local phone = arg[1] or "+14155550100"
local page = tonumber(arg[2]) or 1

local res, err = ravan.phone_history { phone = phone, page = page, page_size = 20 }
if not res then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end

print(("%s: page %d, %d of %d calls"):format(res.phone, res.page, #res.calls, res.total_count))
for _, call in ipairs(res.calls) do
  -- Optional fields may be absent (JSON null becomes nil): show a dash.
  print(("%-20s  %-10s  %-16s  %6s s  %8s"):format(call.started_at or "-", call.status or "-",
    call.agent_name or "-", tostring(call.duration_sec or "-"), call.cost_total or "-"))
end
