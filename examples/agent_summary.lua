-- Cost and duration per agent over a phone's whole history.
--
--   lua examples/agent_summary.lua +14155550100
--
-- cost_total is a decimal string ("12.50"); it is summed exactly, in the smallest unit the data
-- uses, because adding binary floats would print sums such as 0.30000000000000004.
local ravan = require "ravan"

local phone = arg[1] or "+14155550100"

-- "12.5" -> 125, 1 (digits, decimals); nil for anything that is not a plain decimal.
local function parse_decimal(s)
  local int, frac = s:match("^(%d+)%.?(%d*)$")
  if not int then return nil end
  return tonumber(int .. frac), #frac
end

local function format_decimal(units, decimals)
  if decimals == 0 then return ("%d"):format(units) end
  local scale = 10 ^ decimals
  return ("%d.%0" .. decimals .. "d"):format(math.floor(units / scale), units % scale)
end

local agents, order = {}, {}
local pager = ravan.calls { phone = phone }
while true do
  local call, err = pager:next()
  if err then
    io.stderr:write(tostring(err), "\n")
    os.exit(1)
  end
  if not call then break end
  local name = call.agent_name or call.agent_id or "(no agent)"
  local a = agents[name]
  if not a then
    a = { calls = 0, seconds = 0, costs = {} }
    agents[name] = a
    order[#order + 1] = name
  end
  a.calls = a.calls + 1
  a.seconds = a.seconds + (call.duration_sec or 0)
  if call.cost_total then a.costs[#a.costs + 1] = call.cost_total end
end

-- Sums each agent's costs at the largest number of decimals among them.
local function total_cost(costs)
  local decimals = 0
  for _, c in ipairs(costs) do
    local _, d = parse_decimal(c)
    if d and d > decimals then decimals = d end
  end
  local units = 0
  for _, c in ipairs(costs) do
    local digits, d = parse_decimal(c)
    if digits then units = units + digits * 10 ^ (decimals - d) end
  end
  return format_decimal(units, decimals)
end

table.sort(order, function(x, y) return agents[x].seconds > agents[y].seconds end)
-- The name column is as wide as the longest name.
local name_width = #"agent"
for _, name in ipairs(order) do name_width = math.max(name_width, #name) end
local heading = "%-" .. name_width .. "s  %6s  %8s  %8s  %10s"
local row = "%-" .. name_width .. "s  %6d  %8.1f  %8.1f  %10s"
print(heading:format("agent", "calls", "minutes", "avg s", "cost"))
for _, name in ipairs(order) do
  local a = agents[name]
  print(row:format(name, a.calls, a.seconds / 60, a.seconds / a.calls, total_cost(a.costs)))
end
