--- Keeps a database in step with phones' call histories: `client:sync`.
--
--    local summary, err = client:sync{
--      phones = { "+14155550100", "+919876543210" },
--      db = "sqlite:calls.db",        -- or "postgresql://user@host/dbname"
--    }
--
-- Incremental: each phone's first page is always read and upserted (the
-- newest calls change after the call: status, cost, summary), then paging
-- goes on until it reaches the newest call of the phone's last completed
-- sync. Calls are upserted by id and the phone's progress is committed in
-- the same transaction as each page's rows, so a sync killed at any instant
-- and run again ends with every call present once. See docs/sync.md.
-- @module ravan.sync

local core = require "ravan.core"
local errors = require "ravan.errors"
local validate = require "ravan.validate"
local store = require "ravan.sync.store"
local rate = require "ravan.sync.rate"
local lease_mod = require "ravan.sync.lease"
local idwindow = require "ravan.pager.idwindow"
local async = require "ravan.async"
local defaults = require "ravan.defaults"
local sync_recordings = require "ravan.sync.recordings"

local M = {}

-- A page answered 429 after the core's own retries is tried again after the
-- pause, this many times, before the phone counts as failed.
M.MAX_LIMITED_ROUNDS = 8
-- Follow mode: the wait after a round with errors doubles up to this many
-- intervals; each wait varies by up to JITTER of itself.
M.MAX_BACKOFF = 8
M.JITTER = 0.1
-- Consecutive full pages with nothing new that end a pass with an error.
M.MAX_STALE_PAGES = 3
-- Seconds a worker waits before trying again a phone another worker held.
M.HELD_WAIT = 0.5
-- Seconds between looks at `stop` while waiting (for answers, the budget,
-- or the next round).
M.STOP_CHECK = 0.2

local checks = validate.checks
local D = defaults.sync

-- Option tables are read with rawget and next only: a metamethod is the
-- caller's code and may raise.
local phone_list = checks.phones

local function rate_limit(name, v)
  if type(v) ~= "table" then
    return nil, name .. " must be a table { requests = N, per = seconds }"
  end
  local ok, err = validate.keys(v, { { "requests" }, { "per" } }, name .. " key")
  if not ok then return nil, err.message end
  local n, msg = validate.integer_in(1, 1000000)(name .. ".requests", rawget(v, "requests"))
  if not n then return nil, msg end
  local per = rawget(v, "per")
  per, msg = checks.positive(name .. ".per", per == nil and 1 or per)
  if not per then return nil, msg end
  return { requests = n, per = per }
end

local OPTIONS = {
  { "phones", phone_list },
  { "phone", checks.phone },
  { "db", checks.text },
  { "include_transcripts", checks.boolean, D.include_transcripts },
  { "follow", checks.boolean, D.follow },
  { "interval", checks.positive, D.interval },
  { "rate_limit", rate_limit },
  { "page_size", checks.page_size, D.page_size },
  { "lookback", checks.non_negative, D.lookback },
  { "reconcile_every", checks.positive, D.reconcile_every },
  { "reconcile", checks.boolean, false },
  { "purge", checks.boolean, false },
  { "worker", checks.boolean, false },
  { "lease", checks.positive, D.lease },
  { "progress", checks.func },
  { "stop", checks.func },
  { "recordings", checks.text },
}

local function options(o)
  if type(o) ~= "table" then
    return nil, errors.invalid_argument("sync needs a table of options, e.g. "
      .. "{ phone = \"+14155550100\", db = \"sqlite:calls.db\" }")
  end
  local ok, err = validate.keys(o, OPTIONS, "sync option")
  if not ok then return nil, err end
  local cfg
  cfg, err = validate.fields(o, OPTIONS, {})
  if not cfg then return nil, err end
  if cfg.phones and cfg.phone then
    return nil, errors.invalid_argument("give phones or phone, not both")
  end
  cfg.phones = cfg.phones or (cfg.phone and { cfg.phone })
  if not cfg.phones or #cfg.phones == 0 then
    return nil, errors.invalid_argument("sync needs phone or a non-empty phones list")
  end
  if not cfg.db then
    return nil, errors.invalid_argument("sync needs db: \"sqlite:PATH\" or a postgresql:// URL")
  end
  if cfg.worker and cfg.db:find("^sqlite:") then
    return nil, errors.invalid_argument("worker needs a PostgreSQL db: SQLite takes one writer, "
      .. "so run one sync on it")
  end
  return cfg
end

local epoch = store.epoch
M.epoch = epoch

local function call_time(call)
  return epoch(call.started_at) or epoch(call.created_at)
end

-- Whether the page keeps the newest-first order, against itself and the
-- pages before it in this pass, and how many of its calls are new to the
-- pass. Calls seen earlier in the pass (pushed down by calls that arrived
-- at the head meanwhile) are skipped.
local function in_order(pass, calls)
  local ok, fresh = true, 0
  for i = 1, #calls do
    local call = calls[i]
    local id = call.id
    if id == nil or not pass.seen:has(id) then
      fresh = fresh + 1
      local t = call_time(call)
      if t then
        if pass.oldest and t > pass.oldest then ok = false end
        if not pass.oldest or t < pass.oldest then pass.oldest = t end
      end
      if id ~= nil then pass.seen:add(id) end
    end
  end
  return ok, fresh
end

-- A pass remembers the ids it has seen, to tell calls pushed down a page by new arrivals
-- from calls out of order.
local function new_pass()
  return { seen = idwindow.new() }
end

local COUNTS = { "inserted", "updated", "unchanged", "deleted", "reconciled" }
local function add_counts(st, counts)
  for _, k in ipairs(COUNTS) do st[k] = st[k] + counts[k] end
end

-- The oldest time among `calls` (newest first, so normally the last one's).
local function oldest_of(calls)
  local oldest
  for i = 1, #calls do
    local t = call_time(calls[i])
    if t and (not oldest or t < oldest) then oldest = t end
  end
  return oldest
end

-- Whether an incremental pass has read far enough after this page: it reached the calls of
-- the last completed pass (its head by id, or a call no newer than the head's time, which
-- holds when the head itself was deleted), and every call within `lookback` of this pass's
-- head.
local function reached_end(ctx, state, calls)
  local reached = false
  for i = 1, #calls do
    if calls[i].id == state.head_id then
      reached = true
      -- A database from before head_at knows the head's time once the head is read again.
      state.head_at = state.head_at or call_time(calls[i])
      break
    end
  end
  local oldest = oldest_of(calls)
  if not reached and state.head_at and oldest and oldest <= state.head_at then reached = true end
  if not reached then return false end
  if ctx.lookback == 0 or not state.pass_head_at or not oldest then return true end
  return oldest < state.pass_head_at - ctx.lookback
end

local function mismatch(page, field, asked)
  return errors.new("decode", "asked for " .. field .. " " .. asked
    .. ", the server answered " .. field .. " " .. tostring(page[field]))
end

-- Reads pages from state.pass_page (a pass begun earlier, when `resuming`)
-- or from page 1, writing each page with the progress it makes, until the
-- phone's last completed head and the lookback window behind this pass's
-- head are read, or the end of its history. A pass begun as a reconciliation
-- (`reconcile`) reads to the end.
local function run_pass(ctx, phone, state, st, resuming, reconcile)
  -- A reconciliation left by an earlier run cannot know what changed above its page while
  -- nothing ran (a call deleted and one inserted there shift nothing and change no count):
  -- it reads on to the end, as any pass, but leaves the deletions to a reconciliation read in
  -- one go.
  local trusted = not resuming
  -- A resumed pass keeps the page size its page number counts in.
  if not resuming or not state.pass_page_size then
    state.pass_page_size = ctx.page_size
  end
  local size = state.pass_page_size
  if not resuming then
    state.pass_head_id, state.pass_head_at, state.pass_page, state.pass_full = nil, nil, 1, false
    state.pass_reconcile, state.pass_total = 0, nil
    if reconcile then
      state.reconciles = state.reconciles + 1
      state.pass_reconcile = state.reconciles
    end
  end
  local pass = new_pass()
  while true do
    if ctx.stopping() then return nil, "stopped" end
    local p = state.pass_page
    local page, err = ctx.fetch({
      phone = phone, page = p, page_size = size,
      include_transcripts = ctx.include_transcripts or nil,
    })
    if not page then return nil, err end
    if page.page ~= nil and page.page ~= p then return nil, mismatch(page, "page", p) end
    if page.page_size ~= nil and page.page_size ~= size then
      return nil, mismatch(page, "page_size", size)
    end
    local calls = page.calls
    if p == 1 and not resuming and not state.pass_full then
      state.pass_head_id = calls[1] and calls[1].id
      state.pass_head_at = calls[1] and call_time(calls[1])
      state.pass_total = page.total_count
    end
    local ordered, fresh = in_order(pass, calls)
    -- Full pages of calls already read, again and again: a server that
    -- ignores `page` would otherwise be paged forever.
    pass.stale = (#calls == size and fresh == 0) and (pass.stale or 0) + 1 or 0
    if pass.stale >= M.MAX_STALE_PAGES then
      return nil, errors.new("decode", "the server answered " .. pass.stale
        .. " full pages with no call not already read (does it ignore page?)")
    end
    local restart = false
    if not ordered and not state.pass_full then
      -- Paging to the last head assumes newest-first order; without it only
      -- reading everything is sure to miss nothing.
      state.pass_full, state.full_passes = true, state.full_passes + 1
      st.full_passes = st.full_passes + 1
      restart = true
    end
    local to_end = state.pass_full or state.pass_reconcile > 0 or not state.head_id
    -- The end is a short page, never total_count alone: a count that is
    -- low (or stale while calls arrive) would end the pass before its end.
    local last = not restart and (#calls < size or not to_end and reached_end(ctx, state, calls))
    local rec = state.pass_reconcile > 0 and {
      number = state.pass_reconcile, total = page.total_count, first_total = state.pass_total,
      last = last and trusted, purge = ctx.purge,
    } or nil
    if restart then
      state.pass_page = 1
    elseif last then
      if state.pass_head_id then
        state.head_id, state.head_at = state.pass_head_id, state.pass_head_at
      end
      state.pass_head_id, state.pass_head_at, state.pass_page, state.pass_full = nil, nil, nil, false
      state.pass_page_size, state.pass_reconcile, state.pass_total = nil, 0, nil
      state.passes = state.passes + 1
      state.completed_at = store.now_text()
    else
      state.pass_page = p + 1
    end
    local counts
    counts, err = store.save_page(ctx.db, phone, calls, state, ctx.include_transcripts, rec,
      ctx.lease and ctx.lease:guard(phone))
    if not counts then return nil, err end
    add_counts(st, counts)
    ctx.report()
    if last then return true end
    if restart then pass = new_pass() end
    resuming = resuming or restart
  end
end

-- Whether a reconciliation of the phone is due: never done, or done reconcile_every seconds
-- ago or more.
local function reconcile_due(ctx, state)
  local at = epoch(state.reconciled_at)
  return not at or os.time() - at >= ctx.reconcile_every
end

-- One phone: finish a pass a killed run left behind (it began before calls
-- that came meanwhile), then a pass from page 1: a reconciliation when one
-- is asked for, or due. A reconciliation just finished from an earlier run
-- marked no deletions (see run_pass) and stays due: the next sync reads it
-- again, unless asked for now.
local function run_phone(ctx, phone, st)
  local state, err = store.get_state(ctx.db, phone)
  if not state then return nil, err end
  local resumed_reconcile = false
  if state.pass_page then
    resumed_reconcile = state.pass_reconcile > 0
    local ok
    ok, err = run_pass(ctx, phone, state, st, true)
    if not ok then return nil, err end
  end
  local ok
  ok, err = run_pass(ctx, phone, state, st, false,
    ctx.reconcile or not resumed_reconcile and reconcile_due(ctx, state))
  if not ok then return nil, err end
  return true
end

-- What one response tells the budget; `res` is the core's result table, or
-- a recording's outcome, which counts its 429s itself.
local function outcome_of(res)
  local limited, retry_after = res.limited or 0, nil
  local events = res.events or {}
  for i = 1, #events do
    if events[i].status == 429 then
      limited = limited + 1
      retry_after = events[i].retry_after
    end
  end
  return {
    ok = res.status ~= nil and res.status >= 200 and res.status < 300,
    limited = limited, retry_after = res.retry_after or retry_after,
    headers = res.ratelimit,
  }
end

-- The transport: the one place that sends queries, on the client's engine.
-- start() never blocks; poll(wait) returns what finished, waiting at most
-- `wait` seconds for the first, as { token, page, err } entries, or nil and
-- the error that made collecting fail. Its requests' callbacks only record
-- (async.start_now); the caller's own requests finishing meanwhile are left
-- for its next poll, so no user callback runs inside a sync.
local function engine_transport(client)
  local done, pending = {}, {}
  local function finish(token, page, err)
    pending[token] = nil
    done[#done + 1] = { token, page, err }
  end
  return {
    max_in_flight = client._max_concurrency or 1,
    start = function(query, token)
      pending[token] = true
      local req, err = async.start_now(client, query, function(page, e) finish(token, page, e) end)
      if not req then finish(token, nil, err) end
    end,
    poll = function(wait)
      if #done == 0 then
        if client._handle then
          -- Sleeps while nothing of ours is in flight: the wait is then the
          -- budget's, slept rather than spun.
          local err = async.collect(client, wait)
          if err then return nil, err end
        else
          -- Closing the client cancelled these without their callbacks.
          for token in pairs(pending) do
            finish(token, nil, errors.closed())
          end
        end
      end
      local out = done
      done = {}
      return out
    end,
  }
end

local function new_summary(n)
  return {
    phones = n, requests = 0, inserted = 0, updated = 0, unchanged = 0, deleted = 0,
    reconciled = 0, full_passes = 0, rate_limited = 0, errors = {}, phones_done = 0, rounds = 0,
    callback_errors = {},
  }
end

-- Runs every phone once as a coroutine: a phone's code calls ctx.fetch,
-- which yields its query to this loop; the loop spends the budget, starts
-- requests on the engine and resumes phones with their pages.
local function round(ctx, phones, summary)
  local transport, budget = ctx.transport, ctx.budget
  -- A queue of phones waiting to send their next request.
  local ready, head, tail, in_flight = {}, 1, 0, 0
  local co_yield = coroutine.yield
  ctx.fetch = function(query)
    local tries = 0
    while true do
      local page, err = co_yield(query)
      if page or type(err) ~= "table" or err.kind ~= "rate_limited" then return page, err end
      -- The core gave up on 429s: wait out the pause and ask again, unless
      -- the server asks for longer than a pause lasts.
      tries = tries + 1
      if tries >= M.MAX_LIMITED_ROUNDS or (err.retry_after or 0) > rate.MAX_PAUSE then
        return nil, err
      end
    end
  end
  -- A worker starts its phones a few at a time, so the phones it has not reached stay free
  -- for the others and the ones it leased are not left waiting longer than a lease.
  -- Phones another worker held, tried again HELD_WAIT later (before the phones not yet
  -- begun), so a dead worker's phones are taken over soon after its leases run out.
  local next_phone, active, retry = 1, 0, {}
  local cap = ctx.lease and transport.max_in_flight * 2 or #phones
  local function step(task, ...)
    local ok, query_or_err, err = coroutine.resume(task.co, ...)
    local finished = not ok or coroutine.status(task.co) == "dead"
    if not finished then
      task.query = query_or_err
      tail = tail + 1
      ready[tail] = task
      return
    end
    active = active - 1
    if ok and query_or_err == "held" then
      retry[#retry + 1] = { phone = task.phone, at = core.now() + M.HELD_WAIT }
      return
    end
    if not ok then err = errors.new("internal", "sync failed: " .. tostring(query_or_err)) end
    summary.phones_done = summary.phones_done + 1
    if err and err ~= "stopped" and not ctx.stopping() then
      summary.errors[#summary.errors + 1] = { phone = task.phone, error = err }
    end
    ctx.report()
  end
  local function start_more()
    while active < cap do
      local phone
      if retry[1] and (retry[1].at <= core.now() or ctx.stopping()) then
        phone = table.remove(retry, 1).phone
      elseif next_phone <= #phones then
        phone = phones[next_phone]
        next_phone = next_phone + 1
      else
        break
      end
      active = active + 1
      local task = { phone = phone }
      task.co = coroutine.create(function()
        return ctx.run_phone(phone)
      end)
      step(task)
    end
  end
  while head <= tail or in_flight > 0 or next_phone <= #phones or retry[1] do
    start_more()
    if ctx.lease then
      local n, herr = ctx.lease:heartbeat()
      if not n then return nil, herr end
      budget:share(n)
    end
    local wait = 0
    while head <= tail and in_flight < transport.max_in_flight do
      local now = core.now()
      wait = budget:delay(now)
      if wait > 0 then break end
      local task = ready[head]
      ready[head] = nil
      head = head + 1
      budget:spend(now)
      in_flight = in_flight + 1
      transport.start(task.query, task)
    end
    -- Short polls while waiting, so a stop is seen within one.
    if wait == 0 or wait > M.STOP_CHECK then wait = M.STOP_CHECK end
    local finished, perr = transport.poll(wait)
    if not finished then return nil, perr end
    if ctx.stopping() then
      -- Phones waiting for the budget end now, as stopped; those in flight
      -- end when their answers come.
      while head <= tail do
        local task = ready[head]
        ready[head] = nil
        head = head + 1
        step(task, nil, "stopped")
      end
    end
    for i = 1, #finished do
      local f = finished[i]
      in_flight = in_flight - 1
      step(f[1], f[2], f[3])
    end
  end
  return true
end

local function jittered(seconds)
  return seconds * (1 + M.JITTER * (2 * math.random() - 1))
end

-- Sleeps up to `seconds` in short slices, returning early once stopping; a worker keeps
-- its heartbeat meanwhile.
local function idle(ctx, seconds)
  local stop_at = core.now() + seconds
  while not ctx.stopping() do
    local left = stop_at - core.now()
    if left <= 0 then return true end
    core.sleep(left < M.STOP_CHECK and left or M.STOP_CHECK)
    if ctx.lease then
      local n, err = ctx.lease:heartbeat()
      if not n then return nil, err end
      ctx.budget:share(n)
    end
  end
  return true
end

-- A worker's round: a round whose phones count as done when some worker finished them since
-- the oldest round of the live workers began (a worker that joins late shares the round in
-- progress), and whose phones other workers hold are tried again until they are done or free
-- (a dead worker's leases run out; this worker then takes them over).
local function worker_round(ctx, phones, summary)
  local began, err = ctx.lease:begin_round()
  if not began then return nil, err end
  ctx.round_began = began
  return round(ctx, phones, summary)
end

-- The rounds of one sync: one, or in follow mode until stopped.
local function run(client, cfg, db, summary, lease)
  local stop_fn, progress = cfg.stop, cfg.progress
  local stopped = false
  local function raised(e)
    summary.callback_errors[#summary.callback_errors + 1] = e
  end
  local ctx = {
    db = db, page_size = cfg.page_size, include_transcripts = cfg.include_transcripts,
    lookback = cfg.lookback, reconcile_every = cfg.reconcile_every, reconcile = cfg.reconcile,
    purge = cfg.purge, lease = lease,
    transport = engine_transport(client),
    budget = rate.new(cfg.rate_limit, core.now()),
  }
  -- A stop() that raises asks for a stop as well as one returning true.
  function ctx.stopping()
    if not stopped then
      local ok, want = true, false
      if stop_fn then ok, want = pcall(stop_fn) end
      if not ok then raised(want) end
      stopped = not ok or want == true or not client._handle
    end
    return stopped
  end
  -- A progress that raises is not called again: its error is kept once.
  function ctx.report()
    summary.rate_limited = ctx.budget.limited
    if progress then
      local ok, e = pcall(progress, summary)
      if not ok then
        progress = nil
        raised(e)
      end
    end
  end
  -- A worker leases each phone around its passes (see worker_round).
  function ctx.run_phone(phone)
    if ctx.stopping() then return nil, "stopped" end
    if not lease then return run_phone(ctx, phone, summary) end
    local got, err = lease:take(phone, ctx.round_began)
    if not got then return nil, err end
    if got ~= "taken" then return got == "held" and "held" or true end
    local ok, perr = run_phone(ctx, phone, summary)
    local released, ferr = lease:finish(phone, ok)
    if not ok then return nil, perr end
    if not released then return nil, ferr end
    return true
  end
  if ctx.lease then
    -- Announced, then counted a heartbeat later: workers started together each see the others
    -- before their first request, rather than each taking the whole budget for a second.
    local n, err = ctx.lease:heartbeat(true)
    if n then
      n, err = idle(ctx, lease_mod.HEARTBEAT)
      if n then n, err = ctx.lease:heartbeat(true) end
    end
    if not n then return nil, err end
    ctx.budget:share(n)
  end
  -- Every response of this client, whichever request it answers, counts
  -- and teaches the budget; the recordings on the API's origin spend it too
  -- (ravan.recordings).
  client._pace = ctx.budget
  client._observer = function(res)
    summary.requests = summary.requests + (res.attempts or 0)
    ctx.budget:observe(core.now(), outcome_of(res))
  end
  local backoff = 1
  repeat
    summary.errors, summary.phones_done, summary.next_round_in = {}, 0, nil
    local ok, err = (ctx.lease and worker_round or round)(ctx, cfg.phones, summary)
    if not ok then return nil, err end
    if ctx.lease then summary.workers = ctx.lease.workers end
    if cfg.recordings then
      ok, err = sync_recordings.fetch(client, db, cfg.phones, cfg.recordings, summary)
      if not ok then return nil, err end
    end
    summary.rounds = summary.rounds + 1
    ctx.report()
    if not cfg.follow or ctx.stopping() then break end
    backoff = #summary.errors > 0 and math.min(backoff * 2, M.MAX_BACKOFF) or 1
    local wait = jittered(cfg.interval * backoff)
    local now = core.now()
    local paused = ctx.budget:paused_until(now)
    if paused and paused - now > wait then wait = paused - now end
    -- A Retry-After longer than a pause (the phone failed on it) is honoured
    -- here, between rounds.
    for _, e in ipairs(summary.errors) do
      local ra = e.error.retry_after
      if type(ra) == "number" and ra > wait then wait = ra end
    end
    summary.next_round_in = wait
    ctx.report()
    ok, err = idle(ctx, wait)
    if not ok then return nil, err end
  until ctx.stopping()
  summary.stopped = stopped
  return true
end

--- Syncs phones' call histories into a database (`client:sync`).
-- @param client the `ravan.client.Client` whose requests it makes
-- @tparam table o the options
--
-- * `phones` (an array) or `phone`: E.164 numbers
-- * `db`: `"sqlite:PATH"` or a `postgresql://` URL
-- * `include_transcripts` (false): also store transcripts
-- * `follow` (false): sync again every `interval` seconds (60, with jitter)
--   until `stop()` returns true or the client is closed
-- * `rate_limit`: `{ requests = N, per = S }`; without it the rate is
--   learnt from 429s and rate-limit headers
-- * `recordings`: a directory: the synced calls' recordings are downloaded
--   into it after each round and recorded in the table `recordings`
--   (`ravan.sync.recordings`, docs/recordings.md); the summary then has
--   `recordings` (counts) and `recording_errors`
-- * `page_size` (100), `progress` (called with the running summary),
--   `stop` (a function: true ends the sync after the page in hand)
-- @treturn[1] table summary: `phones`, `requests`, `inserted`, `updated`,
-- `unchanged`, `full_passes`, `rate_limited` (429s seen), `rounds`,
-- `stopped`, `next_round_in` (follow mode: seconds to the next round),
-- `errors` (an array of `{ phone, error }`) and `callback_errors` (what
-- `stop` and `progress` raised)
-- @treturn[2] nil
-- @treturn[2] ravan.errors.Error kind `invalid_argument` or `database`, or
-- the engine's own error (in a child after fork(), say)
function M.sync(client, o)
  local cfg, err = options(o)
  if not cfg then return nil, err end
  if not client._handle then return nil, errors.closed() end
  if async.current_task(client) or async.delivering(client) then
    return nil, errors.invalid_argument("sync runs its own loop on the client's engine: "
      .. "call it outside the client's tasks and callbacks")
  end
  local db
  db, err = store.open(cfg.db)
  if not db then return nil, err end
  local summary = new_summary(#cfg.phones)
  -- Nothing may raise out of here: a bug below still ends as nil, err, with
  -- the client and the database left as they should be.
  local lease = cfg.worker and lease_mod.new(db, cfg.lease) or nil
  local ok, done, rerr = pcall(run, client, cfg, db, summary, lease)
  client._observer, client._pace = nil, nil
  -- Leaving at once frees its leases and the budget it held for the others; a worker that
  -- cannot say so is forgotten a lease later.
  if lease then lease:leave() end
  db:close()
  if not ok then return nil, errors.new("internal", "sync failed: " .. tostring(done)) end
  if not done then return nil, rerr end
  summary.phones_done = nil
  return summary
end

return M
