-- Every call of a phone's history as CSV (RFC 4180), to a file or stdout.
--
--   lua examples/export_csv.lua +14155550100 [calls.csv]
local ravan = require "ravan"

local phone = arg[1] or "+14155550100"
local out = arg[2] and assert(io.open(arg[2], "w")) or io.stdout

local COLUMNS = {
  "id", "started_at", "ended_at", "caller_number", "callee_number", "agent_name", "status",
  "duration_sec", "cost_total", "disconnect_reason", "summary",
}

-- Quotes a field only when it needs it; inner quotes are doubled.
local function field(v)
  if v == nil then return "" end
  v = tostring(v)
  if v:find('[,"\r\n]') then return '"' .. v:gsub('"', '""') .. '"' end
  return v
end

out:write(table.concat(COLUMNS, ","), "\r\n")
local rows = 0
local ok, err = pcall(function()
  for call in ravan.calls { phone = phone } do
    local line = {}
    for i, name in ipairs(COLUMNS) do line[i] = field(call[name]) end
    out:write(table.concat(line, ","), "\r\n")
    rows = rows + 1
  end
end)
if out ~= io.stdout then out:close() end
if not ok then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
io.stderr:write(("%d calls written\n"):format(rows))
