-- ravan_history: `/calls PHONE` answers in chat with a phone's latest calls from the Ravan.ai
-- API. ravan is a C module, so this is a trusted mod (README.md: what minetest.conf needs). Each
-- command runs as a ravan task that a globalstep polls without waiting: the server step never
-- waits on the network, and each step's time in ravan is measured.
local MOD = minetest.get_current_modname()
local LATEST = 5

local ie = minetest.request_insecure_environment()
if not ie then
  error(MOD .. " loads a C module: add it to secure.trusted_mods in minetest.conf", 0)
end

-- ravan's modules call `require` as they load, and the mod sandbox has none: they get the real
-- one while they load, and the sandbox never keeps it.
local sandbox_require = rawget(_G, "require")
rawset(_G, "require", ie.require)
local ok, ravan = pcall(ie.require, "ravan")
rawset(_G, "require", sandbox_require)
if not ok then
  error(MOD .. ": cannot load ravan (LUA_PATH and LUA_CPATH of the server): " .. tostring(ravan), 0)
end

local settings = minetest.settings
local client = assert(ravan.new {
  api_key = settings:get(MOD .. ".api_key"),
  base_url = settings:get(MOD .. ".base_url"),
  timeout = 10, deadline = 30,
})

local function row(call)
  local d = call.duration_sec
  return ("%s  %s  %s  %s  %s"):format(call.started_at and call.started_at:gsub("T", " "):sub(1, 16) or "-",
    call.agent_name or "-", call.status or "-",
    d and ("%d:%02d"):format(math.floor(d / 60), d % 60) or "-", call.cost_total or "-")
end

local function answer_lines(phone, page, err)
  if not page then return { ("%s: no history (%s)"):format(phone, tostring(err)) } end
  local lines = { ("%s: %d calls, the latest %d:"):format(phone, page.total_count or #page.calls,
    #page.calls) }
  for i, call in ipairs(page.calls) do lines[i + 1] = row(call) end
  return lines
end

-- Commands waiting for their answer: { task, name, phone, started }.
local waiting = {}

local function send(name, lines)
  for _, line in ipairs(lines) do
    minetest.chat_send_player(name, line)
    minetest.log("action", ("[%s] to %s: %s"):format(MOD, name, line))
  end
end

local function ask(name, phone)
  local task = client:spawn(function()
    return client:phone_history { phone = phone, page_size = LATEST }
  end)
  waiting[#waiting + 1] = { task = task, name = name, phone = phone, started = os.clock() }
end

minetest.register_privilege("call_history", {
  description = "May look up phones' call histories with /calls", give_to_singleplayer = false,
})

minetest.register_chatcommand("calls", {
  params = "<phone>",
  description = "A phone's latest calls, from the Ravan.ai API",
  privs = { call_history = true },
  func = function(name, param)
    local phone = param:match("^%s*(%+?%d+)%s*$")
    if not phone then return false, "usage: /calls +14155550100" end
    ask(name, phone)
    return true, phone .. ": looking it up..."
  end,
})

-- The time each server step spent in ravan while a command waited, and the longest step then, in
-- ms, for the figures.
local spent, longest_step = {}, 0

local function figures()
  local s = {}
  for i = 1, #spent do s[i] = spent[i] end
  table.sort(s)
  local budget = (tonumber(settings:get("dedicated_server_step")) or 0.09) * 1000
  return ("steps=%d ravan_p99_ms=%.3f ravan_max_ms=%.3f step_budget_ms=%.0f longest_step_ms=%.0f"):format(
    #s, s[math.max(1, math.floor(0.99 * #s + 0.5))] or 0, s[#s] or 0, budget, longest_step)
end

minetest.register_globalstep(function(dtime)
  if #waiting == 0 then return end
  longest_step = math.max(longest_step, dtime * 1000)
  local t0 = minetest.get_us_time()
  local _, errs = client:poll(0)
  for i = #waiting, 1, -1 do
    local w = waiting[i]
    if w.task:done() then
      table.remove(waiting, i)
      send(w.name, answer_lines(w.phone, w.task:result()))
    end
  end
  spent[#spent + 1] = (minetest.get_us_time() - t0) / 1000
  for _, e in ipairs(errs or {}) do minetest.log("error", ("[%s] %s"):format(MOD, tostring(e))) end
end)

-- For tests without a player client: `ravan_history.selftest = PHONE` in minetest.conf runs
-- /calls PHONE as the player "selftest" once the server runs, logs the figures when the answer
-- is in, and shuts the server down.
local selftest = settings:get(MOD .. ".selftest")
if selftest then
  minetest.after(0, function()
    ask("selftest", selftest)
    local function finish()
      if #waiting > 0 then return minetest.after(0, finish) end
      minetest.log("action", ("[%s] selftest done: %s"):format(MOD, figures()))
      minetest.request_shutdown("selftest done")
    end
    finish()
  end)
end

minetest.register_on_shutdown(function() client:close() end)
