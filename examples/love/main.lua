-- A LÖVE 11 app that shows a phone's calls as they arrive: a task pages through the history
-- with client:calls, love.update polls the client once per frame (never waiting), and the list
-- scrolls as pages come in. Retries and errors are shown, and the frame time and the time spent
-- in ravan in the top right corner.
--
-- LÖVE runs LuaJIT, so it loads the LuaJIT build of ravan.core (`make LUA=luajit`), found through
-- LUA_PATH and LUA_CPATH:
--
--   make LUA=luajit && eval "$(make -s env LUA=luajit)"
--   mock/server run sh -c 'RAVAN_BASE_URL=$RAVAN_MOCK_URL RAVAN_API_KEY=rk_test_local \
--     love examples/love +15550000250'
--
-- Arguments after the phone: `--frames N` quits after N frames, and `--out DIR` then writes
-- DIR/figures.txt (what the app measured, frame by frame) and DIR/screenshot.png. R fetches the
-- history again; Escape quits.
local ffi = require "ffi"
local ravan = require "ravan"

local FPS = 60
local PAGE_SIZE = 10
local ROW_H = 18
local LIST_TOP = 52
local COLUMNS = { { "time", 10 }, { "agent", 180 }, { "status", 360 }, { "duration", 480 }, { "cost", 580 } }

local opts = { phone = "+15550000250" }
local client, task
local calls, complete, retries, problem = {}, false, 0, nil
local frame, shot, next_frame = 0, nil, nil
local ravan_ms, ravan_cpu_ms, frame_ms = {}, {}, {}

-- The CPU time of this thread: what ravan costs the frame, which the wall clock overstates
-- whenever the machine runs something else meanwhile. Linux's clock; elsewhere the wall clock.
local thread_cpu = love.timer.getTime
if jit.os == "Linux" then
  ffi.cdef [[
  struct ravan_love_timespec { long tv_sec; long tv_nsec; };
  int clock_gettime(int clock, struct ravan_love_timespec *ts);
  ]]
  local CLOCK_THREAD_CPUTIME_ID = 3
  local cpu_ts = ffi.new("struct ravan_love_timespec")
  thread_cpu = function()
    ffi.C.clock_gettime(CLOCK_THREAD_CPUTIME_ID, cpu_ts)
    return tonumber(cpu_ts.tv_sec) + tonumber(cpu_ts.tv_nsec) * 1e-9
  end
end

local function parse_args(args)
  local i = 1
  while args[i] do
    local a = args[i]
    if a == "--frames" then
      opts.frames = tonumber(args[i + 1])
      i = i + 1
    elseif a == "--out" then
      opts.out = args[i + 1]
      i = i + 1
    else
      opts.phone = a
    end
    i = i + 1
  end
end

local function fetch()
  calls, complete, problem = {}, false, nil
  task = client:spawn(function()
    for call in client:calls { phone = opts.phone, page_size = PAGE_SIZE } do
      calls[#calls + 1] = call
    end
    return #calls
  end)
end

-- The value below which fraction `p` of the sorted copy of `t` lies.
local function percentile(t, p)
  local s = {}
  for i = 1, #t do s[i] = t[i] end
  table.sort(s)
  return s[math.max(1, math.floor(p * #s + 0.5))] or 0
end

local function write_figures()
  local f = assert(io.open(opts.out .. "/figures.txt", "w"))
  f:write(("frames=%d calls=%d complete=%s retries=%d error=%s screenshot=%s\n"):format(frame,
    #calls, tostring(complete), retries, problem and tostring(problem.kind) or "none",
    shot and "yes" or "no"))
  f:write(("ravan_cpu_p99_ms=%.3f ravan_cpu_max_ms=%.3f ravan_p99_ms=%.3f ravan_max_ms=%.3f"
    .. " frame_p50_ms=%.3f frame_max_ms=%.3f\n"):format(percentile(ravan_cpu_ms, 0.99),
    percentile(ravan_cpu_ms, 1), percentile(ravan_ms, 0.99), percentile(ravan_ms, 1),
    percentile(frame_ms, 0.5), percentile(frame_ms, 1)))
  for i = 1, #ravan_ms do
    f:write(("frame %d ravan_cpu_ms=%.4f ravan_ms=%.4f frame_ms=%.4f\n"):format(i, ravan_cpu_ms[i],
      ravan_ms[i], frame_ms[i]))
  end
  f:close()
end

function love.load(args)
  parse_args(args)
  love.graphics.setBackgroundColor(0.08, 0.08, 0.10)
  client = assert(ravan.new {
    timeout = 10, retry_base = 0.1, retry_cap = 0.5,
    log = function(ev)
      if ev.event == "retry" then retries = retries + 1 end
    end,
  })
end

function love.update(dt)
  frame = frame + 1
  local t0, c0 = love.timer.getTime(), thread_cpu()
  if frame == 1 then fetch() end
  local _, errs = client:poll(0)
  if task and task:done() then
    local n, err = task:result()
    complete, problem = n ~= nil, err
    task = nil
  end
  ravan_ms[frame] = (love.timer.getTime() - t0) * 1000
  ravan_cpu_ms[frame] = (thread_cpu() - c0) * 1000
  frame_ms[frame] = dt * 1000
  if errs then problem = errs[1] end

  if opts.frames and frame == opts.frames and opts.out then
    love.graphics.captureScreenshot(function(image)
      local f = assert(io.open(opts.out .. "/screenshot.png", "wb"))
      f:write(image:encode("png"):getString())
      f:close()
      shot = true
    end)
  elseif opts.frames and frame > opts.frames and (shot or not opts.out or frame > opts.frames + FPS) then
    if opts.out then write_figures() end
    love.event.quit()
  end
end

local function cell(call, name)
  if name == "time" then
    return call.started_at and call.started_at:gsub("T", " "):sub(1, 16) or "-"
  elseif name == "agent" then
    return call.agent_name or "-"
  elseif name == "status" then
    return call.status or "-"
  elseif name == "duration" then
    return call.duration_sec and ("%d:%02d"):format(math.floor(call.duration_sec / 60), call.duration_sec % 60) or "-"
  end
  return call.cost_total and tostring(call.cost_total) or "-"
end

function love.draw()
  local g = love.graphics
  local width, height = g.getDimensions()
  g.setColor(1, 1, 1)
  g.print(("%s   %d calls%s   retries %d"):format(opts.phone, #calls, complete and ", all of them" or "",
    retries), 10, 8)
  if problem then
    g.setColor(1, 0.35, 0.3)
    g.print("error: " .. tostring(problem), 10, 24)
  elseif task then
    g.setColor(0.6, 0.8, 1)
    g.print("loading...", 10, 24)
  end
  local last = #ravan_ms
  g.setColor(0.6, 1, 0.6)
  g.printf(("frame %.1f ms   ravan %.2f ms"):format(frame_ms[last] or 0, ravan_ms[last] or 0),
    width - 260, 8, 250, "right")

  g.setColor(0.55, 0.55, 0.6)
  for _, col in ipairs(COLUMNS) do g.print(col[1], col[2], LIST_TOP - ROW_H) end
  -- The newest calls at the bottom: the list scrolls as pages arrive.
  local visible = math.floor((height - LIST_TOP) / ROW_H)
  local first = math.max(1, #calls - visible + 1)
  for i = first, #calls do
    local y = LIST_TOP + (i - first) * ROW_H
    if i % 2 == 0 then g.setColor(0.16, 0.18, 0.24) else g.setColor(0.11, 0.12, 0.16) end
    g.rectangle("fill", 0, y, width, ROW_H)
    g.setColor(0.95, 0.95, 0.95)
    for _, col in ipairs(COLUMNS) do g.print(cell(calls[i], col[1]), col[2], y + 2) end
  end

  -- Sixty frames a second, as vsync would give: a virtual display has none.
  next_frame = math.max((next_frame or 0) + 1 / FPS, love.timer.getTime())
  local left = next_frame - love.timer.getTime()
  if left > 0 then love.timer.sleep(left) end
end

function love.keypressed(key)
  if key == "escape" then
    love.event.quit()
  elseif key == "r" and not task then
    fetch()
  end
end

function love.quit()
  client:close()
end
