--- Requests that never block the calling thread: `client:start`, `poll`,
-- `fd`, `pending` and tasks (`client:spawn`). See the "Without blocking"
-- topic for the whole picture.
--
-- Requests run on the client's engine (a helper thread in the C core) with
-- the blocking path's retries, deadline, limits and errors; their results
-- cross back through a queue and become pages on the calling thread, through
-- the client's one result path (`_page_of`).
--
-- Where the caller's code runs: callbacks run and tasks resume only inside
-- `client:poll`, `req:wait` and `task:wait`. Anything else that waits on the
-- engine (a pager step, `client:sync`) only collects: what finishes
-- meanwhile waits for the next of those. What a callback raises is kept
-- until a `poll` returns it, once.
--
-- Who keeps what: a request started with a callback is kept by its client
-- until its callback has run. A request without one, and a task, live as
-- long as the program references them: once collected they are cancelled
-- and freed.
-- @module ravan.async

local core = require "ravan.core"
local errors = require "ravan.errors"

require("ravan.interpreted")()
local M = {}

local Request = {}
Request.__index = Request

local Task = {}
Task.__index = Task

local unpack = table.unpack or unpack
local running, yield, resume_co = coroutine.running, coroutine.yield, coroutine.resume
local close_co = coroutine.close

-- What a task yields when a ravan call suspends it, so a task that yields
-- anything else is told apart.
local AWAIT = {}

local function invalid(message)
  return errors.invalid_argument(message)
end

local misuse = errors.misuse

local function is(obj, class)
  return rawequal(getmetatable(obj), class)
end

local function check_seconds(seconds, name)
  if seconds == nil or (type(seconds) == "number" and seconds >= 0) then return true end
  return nil, invalid(name .. " must be a number of seconds >= 0")
end

-- The async side of a client, made on first use: a client that only makes
-- blocking calls carries none of it.
local function state(client)
  local st = client._async
  if not st then
    st = {
      kept = {},                                  -- id -> request with a callback
      live = setmetatable({}, { __mode = "v" }),  -- id -> request without one
      ready = {},                                 -- taken, not yet delivered
      unpolled = 0,   -- finished, with nothing to deliver: for the next poll to count
      errs = {},      -- what callbacks raised, until a poll returns it
      tasks = setmetatable({}, { __mode = "kv" }),  -- coroutine -> task
    }
    client._async = st
  end
  return st
end

local function settle(req, page, err)
  req._done, req._page, req._err = true, page, err
end

-- A core result made final: a page through the client's result path, or,
-- for the pager's own requests, the core result it turns into a page itself.
local function settle_with(client, req, res)
  if req._recording then
    local outcome = core.recording_of(req._job)
    if outcome then return settle(req, outcome) end
    return settle(req, nil, errors.new(res.error or "cancelled", res.curl_message or "the recording was cancelled"))
  end
  if req._raw then return settle(req, res) end
  settle(req, client:_page_of(res))
end

-- Requests of ravan's own (the pager's, the sync's, recordings) are not
-- the caller's to count or to deliver.
local function own(req)
  return req._raw or req._now or req._recording
end

-- The fd readable while poll has something to report; while poll delivers,
-- or something else waits on the engine, it shows the core's queue only, so
-- that wait sleeps on it instead of spinning.
local function show_ready(client, st)
  if not (st.delivering or st.quiet) then
    client._handle:set_ready(#st.ready > 0 or st.unpolled > 0)
  end
end

-- Takes every finished request from the core, its page made on the way,
-- into `ready` when it has a callback or a task to run, or into the count
-- of the next poll when it has not (ravan's own requests are not even
-- counted, and the sync's callbacks run here: they are ravan's code): a
-- program that only waits, or asks `done`, never has a finished request
-- held for a poll it does not make. Returns an error only when the engine
-- cannot be used here.
local function collect(client, st)
  local handle = client._handle
  if not handle then return nil end
  while true do
    local id, res = handle:take(client:_detailed())
    if not id then
      if res then return invalid(res) end
      break
    end
    local req = st.kept[id] or st.live[id]
    if req then
      st.kept[id], st.live[id] = nil, nil
      if not req._done then settle_with(client, req, res) end
      if req._now or req._recording then
        if req._callback then req._callback(req._page, req._err) end
        -- A task waiting for it resumes where tasks do: in poll and wait.
        if req._task then st.ready[#st.ready + 1] = req end
      elseif req._callback or req._task then
        st.ready[#st.ready + 1] = req
      elseif not own(req) then
        st.unpolled = st.unpolled + 1
      end
    end
  end
  -- A log function may have closed the client meanwhile.
  if client._handle then show_ready(client, st) end
end

local function finish_task(task, ok, ...)
  task._done = true
  task._req = nil
  if ok then
    task._results = { n = select("#", ...), ... }
  else
    task._failed, task._err = true, ...
  end
end

local function resumed(task, ok, ...)
  if not ok then
    finish_task(task, false, (...))
  elseif coroutine.status(task._co) == "dead" then
    finish_task(task, true, ...)
  elseif (...) ~= AWAIT then
    if close_co then close_co(task._co) end
    finish_task(task, false, invalid("a task may suspend only inside this client's "
      .. "phone_history, pages, calls, recording(s) or wait; it yielded by itself"))
  end
end

-- Runs a task until it suspends in a ravan call or ends.
local function step(task, ...)
  return resumed(task, resume_co(task._co, ...))
end

local function deliver(st, req)
  local task = req._task
  if task then
    req._task = nil
    if not task._done then step(task, req._page, req._err) end
  elseif req._callback then
    local ok, e = pcall(req._callback, req._page, req._err)
    if not ok then st.errs[#st.errs + 1] = e end
  end
end

-- A request that closing the client left undelivered: it ends cancelled,
-- even one that had finished, and nothing of the caller's runs for it.
local function abandon(req)
  req._callback, req._task = nil, nil
  settle(req, nil, errors.new("cancelled", "the client was closed before the request was delivered"))
end

-- Waits at most `seconds` (nil: no limit) for the first finished request,
-- then delivers every finished one. Inside a callback or a task (poll
-- already delivering) it only collects: the outer poll delivers, in order.
-- What callbacks raise is kept in `st.errs` for poll to return.
local function pump(client, st, seconds)
  local handle = client._handle
  -- No wait with something to deliver, or with nothing to wait for.
  local nested = st.delivering
  local idle = #st.ready == 0 and st.unpolled == 0
  if (nested or idle) and seconds ~= 0 and (next(st.kept) or next(st.live)) then
    local _, msg = handle:wait(seconds)
    if msg then return nil, invalid(msg) end
  end
  local err = collect(client, st)
  if err then return nil, err end
  if nested then return 0 end
  st.delivering = true
  handle:set_ready(false)
  local n = st.unpolled
  st.unpolled = 0
  while #st.ready > 0 and client._handle do
    local batch = st.ready
    st.ready = {}
    for i = 1, #batch do
      local req = batch[i]
      -- A callback may close the client: the rest of the batch is then undelivered.
      if not client._handle then
        abandon(req)
      else
        if not own(req) then n = n + 1 end
        deliver(st, req)
      end
    end
  end
  st.delivering = false
  return n
end

-- Blocks until `req` is done, or, without one, at most `seconds` until
-- something finishes, collecting but delivering nothing: the caller's
-- callbacks and tasks wait for its next poll or wait.
local function collect_quietly(client, st, req, seconds)
  local handle = client._handle
  local outer = st.quiet
  st.quiet = true
  handle:set_ready(false)
  local err
  repeat
    local _, msg = handle:wait(seconds)
    if msg then
      err = invalid(msg)
      break
    end
    err = collect(client, st)
  until err or not req or req._done or not client._handle
  st.quiet = outer
  if client._handle then show_ready(client, st) end
  return err
end

-- Whether `client`'s results are being delivered right now (its code runs
-- inside a callback or a task, from poll or wait).
function M.delivering(client)
  local st = client._async
  return st ~= nil and st.delivering == true
end

-- The task of `client` running right now, if any.
function M.current_task(client)
  local st = client._async
  if not st then return nil end
  local co = running()
  return co and st.tasks[co]
end

-- Starts a prepared query on the engine; a request, or nil and an error.
-- `how` is nil for the caller's requests; "raw" settles with the core
-- result itself (the pager's); "now" runs the callback as soon as the
-- request is collected, wherever that is (the sync's, which only records).
-- "recording" settles with a download's outcome (`core.recording_of`).
local function track(client, job, id, callback, how)
  if not job then return nil, invalid(id) end
  local st = state(client)
  local req = setmetatable({ _client = client, _job = job, _callback = callback,
    _raw = how == "raw", _now = how == "now", _recording = how == "recording" }, Request)
  if callback then st.kept[id] = req else st.live[id] = req end
  return req
end

local function start(client, query, callback, how)
  local job, id = client._handle:start(query)
  return track(client, job, id, callback, how)
end

-- A request's outcome, suspending the running task of its client until it
-- is delivered (never blocking the thread), or blocking when there is none,
-- without delivering anything else.
function M.await(req)
  if req._done then return req:result() end
  local client = req._client
  local task = M.current_task(client)
  if not task then
    if not client._handle then return req:result() end
    local err = collect_quietly(client, state(client), req)
    if err then return nil, err end
    return req:result()
  end
  req._task = task
  task._req = req
  return yield(AWAIT)
end

-- For client:sync: starts query `q` (checked as client:start checks it);
-- `callback(page, err)` runs as soon as the request is collected, by
-- `M.collect`, and must not raise.
function M.start_now(client, q, callback)
  local query, err = client:_prepare(q)
  if not query then return nil, err end
  return start(client, query, callback, "now")
end

-- For ravan.recordings: downloads `spec` ({ url =, dir =, stem =[, file =] })
-- on the engine, in a transfer slot like any request. The request settles
-- with the download's outcome (see ravan.recordings); `on_done(req)` runs as
-- soon as it is collected and must not raise.
function M.start_recording(client, spec, on_done)
  local job, id = core.start_recording(client._handle, spec)
  return track(client, job, id, on_done, "recording")
end

-- Waits, without delivering anything of the caller's, until something
-- finishes: suspending the running task of `client` until `req` is
-- delivered, or blocking at most `seconds` (nil: no limit) when there is no
-- task.
function M.await_any(client, req, seconds)
  if M.current_task(client) then
    M.await(req)
    return nil
  end
  return collect_quietly(client, state(client), nil, seconds)
end

-- Waits at most `seconds` for a request to finish and collects what did,
-- delivering nothing of the caller's.
function M.collect(client, seconds)
  return collect_quietly(client, state(client), nil, seconds)
end

-- phone_history inside a task: start, then suspend until delivered.
function M.fetch(client, query)
  local req, err = start(client, query)
  if not req then return nil, err end
  return M.await(req)
end

--- A request that `client:start` returned.
-- @type Request

--- Whether the request has finished (including by `cancel`).
-- @treturn boolean
function Request:done()
  if not is(self, Request) then return nil, misuse("request", "done") end
  if not self._done then
    local client = self._client
    if client._handle then collect(client, state(client)) end
  end
  return self._done == true
end

--- The page, once done; `nil, err` when it failed (kind `cancelled` when
-- cancelled); `nil` alone while pending.
function Request:result()
  if not is(self, Request) then return nil, misuse("request", "result") end
  if not self:done() then return nil end
  if self._err then return nil, self._err end
  return self._page
end

-- Shared by requests and tasks: polls their client until `self:done()` or
-- `seconds` pass.
local function wait_until_done(self, seconds)
  local ok, err = check_seconds(seconds, "wait")
  if not ok then return nil, err end
  local client = self._client
  local until_ = seconds and core.now() + seconds
  while not self:done() and client._handle do
    local left
    if until_ then
      left = until_ - core.now()
      if left <= 0 then break end
    end
    local n, perr = pump(client, state(client), left)
    if not n then return nil, perr end
  end
  return self:result()
end

--- Blocks until the request is done, or `seconds` pass, running finished
-- requests' callbacks meanwhile (what they raise, the next `poll` returns);
-- then answers as `result` does. Inside a task of the same client, without
-- `seconds`, it suspends the task instead.
-- @tparam[opt] number seconds
function Request:wait(seconds)
  if not is(self, Request) then return nil, misuse("request", "wait") end
  if seconds == nil and not self._done and M.current_task(self._client) then
    return M.await(self)
  end
  return wait_until_done(self, seconds)
end

--- Ends the request now with an error of kind `cancelled` (never retried),
-- mid-transfer or mid-back-off. Its callback still runs, once, with that
-- error. Does nothing to a request already done.
-- @treturn boolean whether it was cancelled
function Request:cancel()
  if not is(self, Request) then return nil, misuse("request", "cancel") end
  if self._done then return false end
  local res = self._job:cancel()
  if not res then return false end
  settle_with(self._client, self, res)
  return true
end

--- A task that `client:spawn` returned.
-- @type Task

--- Whether the task's function has returned, raised or been cancelled.
function Task:done()
  if not is(self, Task) then return nil, misuse("task", "done") end
  return self._done == true
end

--- What the function returned, once done; `nil, err` when it raised (the
-- raised value) or was cancelled (kind `cancelled`); `nil` while running.
function Task:result()
  if not is(self, Task) then return nil, misuse("task", "result") end
  if not self._done then return nil end
  if self._failed then return nil, self._err end
  local r = self._results
  return unpack(r, 1, r.n)
end

--- Blocks until the task is done or `seconds` pass, delivering as
-- `Request:wait` does; then answers as `result` does.
-- @tparam[opt] number seconds
function Task:wait(seconds)
  if not is(self, Task) then return nil, misuse("task", "wait") end
  return wait_until_done(self, seconds)
end

--- Stops the task now: the request it waits on is cancelled and the
-- coroutine is closed (to-be-closed variables run on 5.4); `result` then
-- answers `nil` and an error of kind `cancelled`.
-- @treturn boolean false when it was already done
function Task:cancel()
  if not is(self, Task) then return nil, misuse("task", "cancel") end
  if self._done then return false end
  local req = self._req
  finish_task(self, false, errors.new("cancelled", "the task was cancelled"))
  if req then
    req._task = nil
    req:cancel()
  end
  if close_co and coroutine.status(self._co) == "suspended" then close_co(self._co) end
  return true
end

-- The methods a client gains.
function M.add_methods(Client)
  -- nil when `self` is an open client of this class, else the error to return.
  local function unusable(self, name)
    if not is(self, Client) then return misuse("client", name) end
    if not self._handle then return errors.closed() end
  end

  --- Starts a request on the client's engine and returns at once: no DNS,
  -- connect or TLS on the calling thread.
  -- @tparam table q the query of `phone_history`
  -- @tparam[opt] function callback `callback(page, err)`, run by `poll` or
  -- `wait` on the calling thread; the client keeps the request until then
  -- @treturn[1] Request
  -- @treturn[2] nil
  -- @treturn[2] ravan.errors.Error (`invalid_argument`: nothing was sent)
  function Client:start(q, callback)
    local err = unusable(self, "start")
    if err then return nil, err end
    if callback ~= nil and type(callback) ~= "function" then
      return nil, invalid("callback must be a function")
    end
    local query
    query, err = self:_prepare(q)
    if not query then return nil, err end
    return start(self, query, callback)
  end

  --- Delivers finished requests: runs their callbacks and resumes their
  -- tasks, on the calling thread, in the order they finished; waits at most
  -- `seconds` (default 0) for the first, and not at all when no request is
  -- pending. A callback that raises does not stop the others: what it
  -- raised is returned, with what callbacks raised inside `wait` since the
  -- last poll. A callback that closes the client ends the delivery: the
  -- requests not yet delivered end `cancelled`.
  -- @tparam[opt] number seconds
  -- @treturn[1] number how many requests were delivered
  -- @treturn[1] ?table what callbacks raised, in order, when any did
  -- @treturn[2] nil
  -- @treturn[2] ravan.errors.Error
  function Client:poll(seconds)
    local err = unusable(self, "poll")
    if err then return nil, err end
    local ok
    ok, err = check_seconds(seconds, "poll")
    if not ok then return nil, err end
    local st = state(self)
    local n, perr = pump(self, st, seconds or 0)
    if not n then return nil, perr end
    -- A poll inside a callback leaves them to the outer one.
    local errs = st.errs
    if st.delivering or #errs == 0 then return n end
    st.errs = {}
    return n, errs
  end

  --- A file descriptor that is readable exactly while `poll` has work, for
  -- event loops that watch descriptors. Never read or close it.
  -- @treturn[1] integer
  -- @treturn[2] nil
  -- @treturn[2] ravan.errors.Error
  function Client:fd()
    local err = unusable(self, "fd")
    if err then return nil, err end
    local fd, msg = self._handle:fd()
    if not fd then return nil, invalid(msg) end
    return fd
  end

  --- Requests started and not yet delivered by `poll`.
  -- @treturn integer
  function Client:pending()
    if not is(self, Client) then return nil, misuse("client", "pending") end
    local st = self._async
    if not st then return 0 end
    local n = st.unpolled
    for _, list in ipairs { st.ready, st.kept, st.live } do
      for _, req in pairs(list) do
        if not own(req) then n = n + 1 end
      end
    end
    return n
  end

  --- Runs `fn(...)` as a task: a coroutine in which this client's
  -- `phone_history`, `pages` and `calls` suspend it instead of blocking;
  -- `poll` resumes it. It runs at once up to its first suspension. Keep a
  -- reference to the task while it matters: a collected task is cancelled.
  -- On Lua 5.1 a `for` loop cannot suspend: step the pager with `:next()`.
  -- @tparam function fn
  -- @treturn[1] Task
  -- @treturn[2] nil
  -- @treturn[2] ravan.errors.Error
  function Client:spawn(fn, ...)
    local err = unusable(self, "spawn")
    if err then return nil, err end
    if type(fn) ~= "function" then return nil, invalid("spawn needs a function") end
    -- Wrapped: Lua 5.1 makes coroutines of Lua functions only.
    local co = coroutine.create(function(...) return fn(...) end)
    local task = setmetatable({ _client = self, _co = co }, Task)
    state(self).tasks[task._co] = task
    step(task, ...)
    return task
  end
end

-- The pager's prefetcher (want, take, pending, close: see ravan.pager) on
-- the engine. Each wanted page is a request of its own; `take` waits for it
-- (suspending a task of the client) and hands the pager the core result,
-- which the pager turns into a page in page order.
local Prefetcher = {}
Prefetcher.__index = Prefetcher

function M.prefetcher(client, query, window)
  return setmetatable({ client = client, query = query, window = window, reqs = {}, n = 0 },
    Prefetcher)
end

function Prefetcher:want(page)
  if self.reqs[page] then return true end
  if self.n >= self.window or not self.client._handle then return false end
  self.query.page = page   -- the core copies the query at once
  local req = start(self.client, self.query, nil, "raw")
  if not req then return false end
  self.reqs[page] = req
  self.n = self.n + 1
  return true
end

function Prefetcher:take(page)
  local req = self.reqs[page]
  if not req then
    -- Never wanted (the engine refused it): fetched here, as the pager would without one. The
    -- pager takes only from the prefetcher of an open client.
    self.query.page = page
    return self.client._handle:request(self.query, self.client:_detailed())
  end
  self.reqs[page] = nil
  self.n = self.n - 1
  return M.await(req)
end

function Prefetcher:pending()
  return self.n
end

function Prefetcher:close()
  for page, req in pairs(self.reqs) do
    self.reqs[page] = nil
    req:cancel()
  end
  self.n = 0
end

-- Closing a client cancels what is in flight: every undelivered request
-- ends as `cancelled` (its callback never runs) and every task is cancelled.
function M.close(client)
  local st = client._async
  if not st then return end
  -- The closed handle's fd stays open (reading end-of-file) while the client lives, so an event
  -- loop still watching it wakes and lets go.
  st.closed_handle = client._handle
  for _, task in pairs(st.tasks) do task:cancel() end
  for _, list in ipairs { st.kept, st.live } do
    for _, req in pairs(list) do
      if not req._done then req:cancel() end
    end
  end
  for _, req in ipairs(st.ready) do abandon(req) end
  st.kept, st.ready, st.unpolled = {}, {}, 0
end

return M
