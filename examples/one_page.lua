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

-- Optional fields may be absent (JSON null becomes nil): a dash stands for them. Each column
-- is as wide as its widest cell; numbers are aligned on the right.
local rows, widths = {}, { 0, 0, 0, 0, 0 }
for i, call in ipairs(res.calls) do
  local row = { call.started_at or "-", call.status or "-", call.agent_name or "-",
    call.duration_sec and call.duration_sec .. " s" or "-", call.cost_total or "-" }
  for c = 1, #row do widths[c] = math.max(widths[c], #row[c]) end
  rows[i] = row
end
local line = ("%%-%ds  %%-%ds  %%-%ds  %%%ds  %%%ds"):format(widths[1], widths[2], widths[3],
  widths[4], widths[5])
for _, row in ipairs(rows) do
  print(line:format(row[1], row[2], row[3], row[4], row[5]))
end
