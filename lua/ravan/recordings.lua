--- Recordings to files: `client:recording` and `client:recordings`.
--
-- Each transfer is a job on the client's engine, holding one of its
-- `max_concurrency` slots as any request does, and driven by the C core
-- (rv_download.c): streamed to a temp file in the target directory,
-- flushed and renamed into place when complete, resumed with `Range`,
-- skipped when already complete, the credential sent only to the API's own
-- origin. This side finds the URLs, names the files, keeps at most
-- `max_concurrency` of its own in flight, paces those on the API's origin
-- by a sync's rate budget, and turns outcomes into results and errors.
-- Inside a task of the client it suspends the task instead of blocking.
-- See docs/recordings.md.
-- @module ravan.recordings

local async = require "ravan.async"
local core = require "ravan.core"
local errors = require "ravan.errors"
local validate = require "ravan.validate"

local checks = validate.checks

local M = {}

-- What the contract's recording_url looks like on the API's own origin.
local RECORDING_PATH = "/api/v1/calling/sessions/%s/recording"

-- The ids that may name a file (the core checks the same: rv_dl_safe_stem).
local function safe_id(id)
  return type(id) == "string" and #id <= 128 and id:find("^[%w_%-][%w%._%-]*$") ~= nil
end

-- A time bound: a UTC ISO 8601 string as the API writes `started_at`
-- ("2026-01-31" or "2026-01-31T12:00:00Z"), compared as text, or a number
-- of seconds since the epoch.
local function time_bound(name, v)
  if type(v) == "number" and v == v and v >= 0 and v < 253402300800 then
    return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(v))
  end
  if type(v) == "string" and v:find("^%d%d%d%d%-%d%d%-%d%d") and not v:find("%c") then
    return v
  end
  return nil, name .. " must be a UTC time: \"2026-01-31\", \"2026-01-31T12:00:00Z\" or seconds since 1970"
end

-- An array of calls, or a pager (`client:calls{...}`), which ends; not any
-- function, which might not.
local function calls_source(name, v)
  if type(v) == "table" then return v end
  return nil, name .. " must be an array of calls or client:calls{...}"
end

local MANY = {
  { "phones", checks.phones },
  { "phone", checks.phone },
  { "calls", calls_source },
  { "dir", checks.text },
  { "since", time_bound },
  { "until", time_bound },
  { "progress", checks.func },
}

local ONE = {
  { "path", checks.text },
  { "dir", checks.text },
}

-- The origin of base_url: scheme://host[:port].
local function origin(client)
  return client._base_url:match("^([%a][%w+.-]*://[^/?#]+)")
end

-- id, url of a call table or a bare id; nil and a message when there is
-- no recording to fetch (that is a per-call report, not a failure).
local function target(client, call)
  if type(call) == "string" then
    if not safe_id(call) then return nil, nil, "the call id cannot name a file" end
    return call, origin(client) .. RECORDING_PATH:format(call)
  end
  -- rawget: a metamethod of the caller's table may raise, and nothing here does.
  local id = rawget(call, "id")
  if type(id) == "number" and id == math.floor(id) and id >= 0 and id < 2 ^ 53 then id = ("%d"):format(id) end
  if not safe_id(id) then return nil, nil, "the call id cannot name a file" end
  local url = rawget(call, "recording_url")
  if type(url) ~= "string" or url == "" then return id, nil, "the call has no recording" end
  if not url:find("^[Hh][Tt][Tt][Pp][Ss]?://") then
    return id, nil, "the call's recording_url is not an http(s) URL"
  end
  return id, url
end

-- The ravan error of a failed outcome.
local function failure(out)
  local kind = errors.kind_for(out.status or 0, out.error ~= "invalid_argument" and out.error or nil)
    or out.error or "server"
  local message = out.message
  if out.status and not message then message = "HTTP " .. out.status .. " fetching the recording" end
  return errors.new(kind, message or kind, { status = out.status })
end

-- outcome -> the per-call word reports use.
local function word(out)
  if out.outcome ~= "failed" then return out.outcome end
  if out.status == 404 then return "missing" end
  if out.status == 410 then return "gone" end
  return "failed"
end

local function result(id, dir, out)
  return {
    id = id, outcome = word(out), path = out.name and (dir .. "/" .. out.name) or nil,
    bytes = out.name and out.bytes or nil, sha256 = out.sha256, received = out.received,
    resumed = out.resumed, error = out.outcome == "failed" and failure(out) or nil,
  }
end

-- What a finished download tells a sync's budget and counts, as the
-- engine's results do (see ravan.sync).
local function observe(client, out)
  local observer = client._observer
  if observer then
    observer({ status = out.status or (out.outcome ~= "failed" and 200 or nil), attempts = out.attempts,
      limited = out.limited, retry_after = out.retry_after })
  end
end

-- Downloads `items` ({ url =, dir =, stem =[, file =] }) on the client's
-- engine, at most max_concurrency of them at once, each on the API's origin
-- waiting for the budget of a sync (`client._pace`) when there is one;
-- `done(index, out)` as each ends (it must not raise). The outcomes, or nil
-- and the error that stopped the run: the client closed, or a file that
-- cannot be written, after which no more start and those in flight finish
-- (each leaving its file whole or nothing).
local function download(client, items, done)
  local outs, reqs = {}, {}
  local started, finished, in_flight = 0, 0, 0
  local limit, pace = client._max_concurrency or 1, client._pace
  local home, stop, oldest = client._base_url, nil, 1
  local function start(i, api)
    local req, err = async.start_recording(client, items[i], function(out, e)
      finished, in_flight = finished + 1, in_flight - 1
      -- Its job (and the transfer's state in C) can go once the outcome is here.
      reqs[i] = nil
      out = out or { outcome = "failed", error = e.kind, message = e.message }
      outs[i] = out
      if api then observe(client, out) end
      if out.error == "io" and not stop then stop = errors.new("io", out.message) end
      if done then done(i, out) end
    end)
    if not req then return nil, err end
    reqs[i], in_flight = req, in_flight + 1
    return true
  end
  while finished < started or (started < #items and not stop) do
    if not client._handle then return nil, errors.closed() end
    local wait
    while not stop and started < #items and in_flight < limit do
      local api = core.same_origin(items[started + 1].url, home)
      if pace and api then
        local now = core.now()
        wait = pace:delay(now)
        if wait > 0 then break end
        pace:spend(now)
        wait = nil
      end
      started = started + 1
      local ok, err = start(started, api)
      if not ok then
        started = started - 1
        stop = stop or err
      end
    end
    if finished < started then
      -- Any one of ours in flight: a task waits for it, the rest of the
      -- world for whatever ends first (or the budget's next slot).
      while outs[oldest] do oldest = oldest + 1 end
      local err = async.await_any(client, reqs[oldest], wait)
      if err then return nil, err end
    elseif wait then
      core.sleep(wait)
    end
  end
  if stop then return nil, stop end
  return outs
end

--- Downloads one call's recording to a file (`client:recording`).
-- @param client the `ravan.client.Client`
-- @param call a call table (its `id` and `recording_url`) or a bare call id
-- (then the recording is the API's `/api/v1/calling/sessions/{id}/recording`)
-- @tparam table opts `path` (the file) or `dir` (the file is then
-- `<id>.<extension from Content-Type>` in it)
-- @treturn[1] table `id`, `path`, `bytes`, `sha256`, `outcome`
-- (`downloaded` or `skipped`), `received` (bytes downloaded now), `resumed`
-- @treturn[2] nil
-- @treturn[2] ravan.errors.Error (`io` for a file that cannot be written;
-- a 404 or 410 has its `status`)
function M.one(client, call, opts)
  if type(call) ~= "string" and type(call) ~= "table" then
    return nil, errors.invalid_argument("recording needs a call or a call id")
  end
  if type(opts) ~= "table" then
    return nil, errors.invalid_argument("recording needs { path = FILE } or { dir = DIR }")
  end
  local ok, err = validate.keys(opts, ONE, "recording option")
  if not ok then return nil, err end
  local cfg
  cfg, err = validate.fields(opts, ONE, {})
  if not cfg then return nil, err end
  if (cfg.path == nil) == (cfg.dir == nil) then
    return nil, errors.invalid_argument("recording needs path or dir, one of them")
  end
  local id, url, why = target(client, call)
  if not url then return nil, errors.invalid_argument(why) end
  local dir, file = cfg.dir, nil
  if cfg.path then
    dir, file = cfg.path:match("^(.*)/([^/]+)$")
    if not dir then dir, file = ".", cfg.path end
    if dir == "" then dir = "/" end
  end
  if not client._handle then return nil, errors.closed() end
  local outs
  outs, err = download(client, { { url = url, dir = dir, stem = id, file = file } })
  if not outs then return nil, err end
  local r = result(id, dir, outs[1])
  if r.error then return nil, r.error end
  r.error = nil
  return r
end

-- Every call the options name, filtered by since/until: {id=, url=} or
-- {id=, why=} for a call without a recording.
local function listed(client, cfg)
  local out = {}
  local function add(call)
    if type(call) ~= "table" then return end
    local at = rawget(call, "started_at")
    if cfg.since and (type(at) ~= "string" or at < cfg.since) then return end
    if cfg["until"] and (type(at) ~= "string" or at >= cfg["until"]) then return end
    local id, url, why = target(client, call)
    out[#out + 1] = { id = id or errors.text_of(rawget(call, "id")), url = url, why = why }
  end
  local function each(source)
    local mt = getmetatable(source)
    if type(mt) ~= "table" or rawget(mt, "__call") == nil then
      for i = 1, #source do add(source[i]) end
    else
      for call in source do add(call) end
    end
  end
  local ok, err = pcall(function()
    if cfg.calls then each(cfg.calls) end
    for _, phone in ipairs(cfg.phones or {}) do each(client:calls{ phone = phone }) end
  end)
  if not ok then
    if errors.is_error(err) then return nil, err end
    return nil, errors.new("internal", tostring(err))
  end
  return out
end

--- Downloads the recordings of many calls into a directory
-- (`client:recordings`), up to the client's `max_concurrency` at once.
-- @param client the `ravan.client.Client`
-- @tparam table opts `phone` or `phones` (their whole histories) and/or
-- `calls` (an array of calls, or `client:calls{...}`); `dir` (required);
-- `since`, `until` (bounds on `started_at`); `progress`, a function called
-- with `{ done =, total =, id =, outcome =, bytes = }` as each call ends
-- @treturn[1] table `downloaded`, `skipped`, `failed`, `missing` (no
-- recording, 404, 410), `bytes` (downloaded now), and `recordings`, one
-- result per call as `recording` gives it, with `outcome` one of
-- `downloaded`, `skipped`, `none`, `missing`, `gone`, `failed` and an
-- `error` when it failed
-- @treturn[2] nil
-- @treturn[2] ravan.errors.Error: bad options, a history that could not be
-- listed, or `io` (disk full, a directory that cannot be written), which
-- stops the run
function M.many(client, opts)
  if type(opts) ~= "table" then
    return nil, errors.invalid_argument("recordings needs a table of options, e.g. "
      .. "{ phone = \"+14155550100\", dir = \"recordings\" }")
  end
  local ok, err = validate.keys(opts, MANY, "recordings option")
  if not ok then return nil, err end
  local cfg
  cfg, err = validate.fields(opts, MANY, {})
  if not cfg then return nil, err end
  if cfg.phones and cfg.phone then return nil, errors.invalid_argument("give phones or phone, not both") end
  cfg.phones = cfg.phones or (cfg.phone and { cfg.phone })
  if not cfg.phones and not cfg.calls then
    return nil, errors.invalid_argument("recordings needs phone, phones or calls")
  end
  if not cfg.dir then return nil, errors.invalid_argument("recordings needs dir") end
  local calls
  calls, err = listed(client, cfg)
  if not calls then return nil, err end

  local summary = { downloaded = 0, skipped = 0, failed = 0, missing = 0, bytes = 0, recordings = {} }
  local items, slot_of = {}, {}
  for i = 1, #calls do
    local c = calls[i]
    if c.url then
      items[#items + 1] = { url = c.url, dir = cfg.dir, stem = c.id }
      slot_of[#items] = i
    else
      summary.recordings[i] = { id = c.id, outcome = "none", message = c.why }
      summary.missing = summary.missing + 1
    end
  end
  local done, total, progress = 0, #calls, cfg.progress
  -- A progress that raises is not called again; the downloads go on.
  local function report(r)
    done = done + 1
    if progress and not pcall(progress, { done = done, total = total, id = r.id, outcome = r.outcome,
      bytes = r.bytes }) then
      progress = nil
    end
  end
  for i = 1, #calls do
    if summary.recordings[i] then report(summary.recordings[i]) end
  end
  local outs
  outs, err = download(client, items, function(index, out)
    report(result(calls[slot_of[index]].id, cfg.dir, out))
  end)
  if not outs then return nil, err end
  for index = 1, #outs do
    local i = slot_of[index]
    local r = result(calls[i].id, cfg.dir, outs[index])
    summary.recordings[i] = r
    summary.bytes = summary.bytes + (r.received or 0)
    local o = r.outcome
    if o == "downloaded" or o == "skipped" or o == "failed" then
      summary[o] = summary[o] + 1
    else
      summary.missing = summary.missing + 1
    end
  end
  return summary
end

return M
