-- Runs inside the nginx of spec/openresty/openresty_spec.lua: one ravan.openresty call described by a JSON
-- request body, answered as JSON (the page's summary or the error, and the log events), so the
-- spec can inject faults, call, and compare with what the local server recorded.
--
--   { "opts": {...}, "query": {...}, "mode": "phone_history" | "pages" | "calls",
--     "take": N (pages: stop after N, then close), "close_client": true (close the client
--     instead of the pager), "timer": true (run in ngx.timer.at) }
local cjson = require "cjson"

local M = {}

local function error_table(err)
  if not err then return nil end
  return {
    kind = err.kind, message = err.message, status = err.status, attempts = err.attempts,
    retryable = err.retryable, retry_after = err.retry_after, request_id = err.request_id,
    body = err.body, text = tostring(err), timings = err.timings,
  }
end

local function summary(page)
  local ids = {}
  for i, call in ipairs(page.calls) do ids[i] = call.id end
  return { page = page.page, total_count = page.total_count, page_size = page.page_size,
    n = #page.calls, ids = ids, phone = page.phone }
end

local function run(spec)
  local ravan = require "ravan.openresty"
  local events = {}
  local opts = spec.opts or {}
  opts.log = function(ev) events[#events + 1] = ev end
  local client, err = ravan.new(opts)
  if not client then return { err = error_table(err) } end
  local out = { events = events }
  if (spec.mode or "phone_history") == "phone_history" then
    local page
    page, err = client:phone_history(spec.query)
    out.page = page and summary(page)
    out.err = error_table(err)
    out.stats = client:stats()
    return out
  end
  local pager = client[spec.mode](client, spec.query)
  local items, stats = {}, {}
  while not spec.take or #items < spec.take do
    local item
    item, err = pager:next()
    if not item then break end
    items[#items + 1] = spec.mode == "pages" and summary(item) or item.id
    stats[#stats + 1] = pager:stats().pending
  end
  if spec.close_client then
    client:close()
    out.pending_after_close = pager:stats().pending
    out.next_err = error_table(select(2, pager:next()))
  else
    pager:close()
    out.pending_after_close = pager:stats().pending
  end
  out.items, out.pending, out.err = items, stats, error_table(err)
  out.stats = client:stats()
  return out
end

local function answer(out)
  ngx.say(cjson.encode(out))
end

-- In a timer: the handler waits (on a semaphore-free poll of a shared table) for its result.
local function run_in_timer(spec)
  local done
  local ok, err = ngx.timer.at(0, function()
    done = run(spec)
    done.phase = ngx.get_phase()
  end)
  if not ok then return { timer_error = err } end
  for _ = 1, 1000 do
    if done then return done end
    ngx.sleep(0.01)
  end
  return { timer_error = "no result in 10 s" }
end

function M.handle()
  ngx.req.read_body()
  local spec = cjson.decode(ngx.req.get_body_data())
  answer(spec.timer and run_in_timer(spec) or run(spec))
end

return M
