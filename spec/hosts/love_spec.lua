-- examples/love: the LÖVE app under Xvfb against the local server with 200 ms of latency and one
-- 503 to retry. The figures are the app's own, measured in LÖVE's loop frame by frame; the
-- screenshot is the one LÖVE captured of its window.
local host = require "spec.support.host"
local mock = require "spec.support.mock"
local png = require "spec.support.png"
local proc = require "spec.support.proc"

local FRAMES = 480
local PAGE_SIZE = 10      -- examples/love/main.lua's
local CALLS = 250         -- mock.phones.p250's
local ROW_H, LIST_TOP = 18, 52

local function percentile(t, p)
  local s = {}
  for i = 1, #t do s[i] = t[i] end
  table.sort(s)
  return s[math.max(1, math.floor(p * #s + 0.5))]
end

-- Pixels of the band of rows [y0, y1) and columns [x0, x1) for which `pred(r, g, b)` holds.
local function count(img, x0, x1, y0, y1, pred)
  local n = 0
  for y = y0, y1 - 1 do
    for x = x0, x1 - 1 do
      if pred(img.pixel(x, y)) then n = n + 1 end
    end
  end
  return n
end

local function white(r, g, b) return r > 200 and g > 200 and b > 200 end
local function green(r, g, b) return g > 220 and r < 190 and b < 190 end

host.describe("the LÖVE app", "LÖVE runs its own LuaJIT whatever runs busted", {
  { command = "love", by = ".ci/deps installs it (make test runs that)" },
  { command = "xvfb-run", by = ".ci/deps installs it (make test runs that)" },
  host.luajit_core,
}, function(ctx)
  it("shows every call as it arrives, within a frame budget it measures itself", function()
    local tmp = ctx.tmp
    mock.reset()
    mock.config { latency_ms = 200 }
    mock.fault { kind = "status", status = 503, phone = mock.phones.p250, page = 2 }
    -- xvfb-run stops its Xvfb when love exits, and timeout bounds love whatever it does.
    local out, status = proc.run(("eval \"$(make -s env LUA=luajit)\"; xvfb-run -a -s '-screen 0 800x480x24'"
      .. " timeout -k 5 120 love examples/love %s --frames %d --out %s"):format(mock.phones.p250, FRAMES,
      proc.quote(tmp)), mock.env())
    local got = mock.requests()
    mock.reset()
    assert.are.equal(0, status, out)

    local figures = proc.read_file(tmp .. "/figures.txt")
    local summary = figures:match("^[^\n]*\n[^\n]*")
    assert.truthy(figures:find(("calls=%d complete=true retries=1 error=none screenshot=yes"):format(CALLS),
      1, true), summary)
    local cpu, wall, frame_ms = {}, {}, {}
    for c, w, f in figures:gmatch("frame %d+ ravan_cpu_ms=([%d.]+) ravan_ms=([%d.]+) frame_ms=([%d.]+)") do
      cpu[#cpu + 1], wall[#wall + 1], frame_ms[#frame_ms + 1] = tonumber(c), tonumber(w), tonumber(f)
    end
    assert.is_true(#cpu > FRAMES, summary)
    -- What ravan cost each frame, as this thread's CPU time: the wall clock adds whatever else the
    -- machine ran meanwhile. Every page was decoded and shown inside some frame's poll.
    local p99, max = percentile(cpu, 0.99), percentile(cpu, 1)
    print(("# LÖVE: %d frames, ravan per frame p99 %.3f ms / max %.3f ms CPU (wall p99 %.3f / max %.3f),"
      .. " frame p50 %.1f ms"):format(#cpu, p99, max, percentile(wall, 0.99), percentile(wall, 1),
      percentile(frame_ms, 0.5)))
    assert.is_true(p99 <= 1, summary)
    assert.is_true(max <= 5, summary)
    -- CPU time cannot see a poll that waits (it sleeps): the wall clock can, and its p99 stays
    -- far below the 200 ms a waiting frame would take, however busy the machine.
    assert.is_true(percentile(wall, 0.99) <= 10, summary)

    -- Each page was asked for, page 2 twice (the 503, then its retry), and nothing else.
    local pages = {}
    for _, r in ipairs(got) do
      local page = tonumber(r.query:match("page=(%d+)"))
      pages[page] = (pages[page] or 0) + 1
      assert.truthy(r.query:find("page_size=" .. PAGE_SIZE, 1, true), r.query)
    end
    for page = 1, CALLS / PAGE_SIZE do
      assert.are.equal(page == 2 and 2 or 1, pages[page], "page " .. page)
    end
    assert.are.equal(CALLS / PAGE_SIZE + 1, #got)

    local img = assert(png.read(proc.read_file(tmp .. "/screenshot.png")))
    assert.are.same({ 800, 480 }, { img.width, img.height })
    -- The header and the frame time in the top right corner are drawn...
    assert.is_true(count(img, 0, 400, 8, 22, white) > 50, "no header")
    assert.is_true(count(img, 540, 800, 8, 22, green) > 50, "no frame time")
    -- ...and the list fills the window: every row a stripe of its own colour, alternating, with
    -- text on it.
    local rows = math.floor((img.height - LIST_TOP) / ROW_H)
    local previous
    for i = 1, rows do
      local y = LIST_TOP + (i - 1) * ROW_H
      local r, g, b = img.pixel(img.width - 5, y + 1)
      local stripe = ("%d,%d,%d"):format(r, g, b)
      assert.are_not.equal(stripe, previous, "row " .. i .. " is no new stripe")
      assert.is_true(b > r and b > 30, "row " .. i .. " has no stripe: " .. stripe)
      assert.is_true(count(img, 0, 700, y + 2, y + ROW_H - 2, white) > 100, "row " .. i .. " has no text")
      previous = stripe
    end
  end)
end)
