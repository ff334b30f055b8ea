-- Run by the C host (build/embed/ravan-embed examples/embed/history.lua PHONE): one page of a
-- phone's history, bounded the way a game loop or a device wants it — a short connect timeout,
-- one deadline over every attempt and back-off sleep, a cap on the body, and no retries beyond one.
-- Credentials and the server come from RAVAN_API_KEY / RAVAN_BASE_URL.
local ravan = require "ravan"

local phone = arg[1] or "+14155550100"

local client = assert(ravan.new {
  connect_timeout = 2,
  timeout = 5,
  deadline = 8,
  max_retries = 1,
  max_response_bytes = 4 * 1024 * 1024,
})

local res, err = client:phone_history { phone = phone, page_size = 10 }
if not res then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end

print(("%s: %d calls in all, page %d"):format(res.phone, res.total_count, res.page))
-- Fixed widths that fit the data (a status has at most 9 characters); numbers on the right.
for _, call in ipairs(res.calls) do
  print(("%-20s  %-9s  %-24s  %5s s  %8s"):format(call.started_at or "-", call.status or "-",
    call.agent_name or "-", tostring(call.duration_sec or "-"), call.cost_total or "-"))
end
client:close()
