--- Ravan from OpenResty / nginx without blocking the event loop.
--
-- A libcurl call made straight from a request handler stops the whole nginx
-- worker, and every client it serves, until the API answers. This module runs
-- each call on a thread of an nginx `thread_pool` through
-- `ngx.run_worker_thread`; the request's coroutine yields meanwhile, so the
-- worker keeps serving other requests. Results and errors are the same as the
-- plain API's.
--
--    # nginx.conf (main context)
--    env RAVAN_API_KEY;
--    thread_pool ravan threads=16;
--
--    -- in a content_by_lua_block
--    local ravan = require "ravan.openresty"
--    local res, err = ravan.phone_history { phone = ngx.req.get_uri_args().phone }
--
-- (`ngx.var.arg_phone` would be the raw `%2B...`; a phone's `+` must travel as
-- `%2B` in a query string, where a bare `+` means a space.)
--
-- The thread pool's Lua VMs are separate from the request's: each keeps its
-- own clients (one per distinct set of options) for the life of the worker, so
-- connections and TLS sessions are reused across requests. Only plain data
-- crosses between the VMs, which is why the `log` option's events are
-- collected in the thread and replayed here, and why errors are rebuilt here.
--
-- Requires lua-nginx-module 0.10.21 or later (Debian bookworm has 0.10.23)
-- and nginx built with threads (Debian's is).
-- @module ravan.openresty

local errors = require "ravan.errors"
local surface = require "ravan.surface"
local validate = require "ravan.validate"

local M = {}

--- The `thread_pool` used when a client names none.
M.DEFAULT_POOL = "ravan"

local MODULE = "ravan.openresty"

-- Thread side: runs in the thread pool's VMs, which have no `ngx`. A VM runs
-- one call at a time, so the module-level event buffer is never shared.

--- How many clients (distinct option sets) each thread VM keeps; past it
-- the least recently used one is closed. Bounds memory when options vary per
-- request (one API key per tenant, say): VMs x this x ~40 KiB at most.
M.MAX_CLIENTS_PER_VM = 16

local clients, n_clients, uses = {}, 0, 0
local events

local function collect(ev)
  if events then events[#events + 1] = ev end
end

local function evict_lru()
  local oldest_key, oldest
  for key, entry in pairs(clients) do
    if not oldest or entry.used < oldest.used then oldest_key, oldest = key, entry end
  end
  clients[oldest_key] = nil
  n_clients = n_clients - 1
  oldest.client:close()
end

-- Not part of the API: the function `ngx.run_worker_thread` calls by name.
-- Returns the page, or nil and the error (a plain table once copied out), and
-- the log events when asked for.
function M.thread_phone_history(key, opts, query, want_log)
  local entry = clients[key]
  if not entry then
    if want_log then opts.log = collect end
    local client, err = require("ravan").new(opts)
    if not client then return nil, err end
    if n_clients >= M.MAX_CLIENTS_PER_VM then evict_lru() end
    entry = { client = client }
    clients[key] = entry
    n_clients = n_clients + 1
  end
  uses = uses + 1
  entry.used = uses
  events = want_log and {} or nil
  local res, err = entry.client:phone_history(query)
  local evs = events
  events = nil
  return res, err, evs
end

-- nginx side.

-- A stable text for an options table: equal options share a thread-side
-- client. Values are strings, numbers and booleans once validated.
local function options_key(opts)
  local keys = {}
  for k in pairs(opts) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for i = 1, #keys do
    local v = opts[keys[i]]
    parts[i] = keys[i] .. "=" .. (type(v) == "string" and ("%q"):format(v) or tostring(v))
  end
  return table.concat(parts, ",")
end

local Client = {}
Client.__index = Client

--- A client whose calls run on an nginx thread pool.
-- @tparam[opt] table opts the options of `ravan.new`, plus `pool`: the name of
-- the `thread_pool` to run on (default `"ravan"`). Defaults come from the
-- environment, which nginx clears except for variables named by `env`.
-- @treturn[1] table the client
-- @treturn[2] nil
-- @treturn[2] ravan.errors.Error kind `invalid_argument`
function M.new(opts)
  if opts ~= nil and type(opts) ~= "table" then
    return nil, errors.invalid_argument("options must be a table or nil")
  end
  local plain, pool = {}, M.DEFAULT_POOL
  for k, v in pairs(opts or {}) do
    if k == "pool" then pool = v else plain[k] = v end
  end
  if type(pool) ~= "string" or pool == "" then
    return nil, errors.invalid_argument("pool must be the name of a thread_pool")
  end
  -- Checked here as well as in the thread, so bad options fail at once and
  -- the same way as with ravan.new.
  local _, err = validate.options(plain)
  if err then return nil, err end
  local log = plain.log
  plain.log = nil
  return setmetatable({
    _pool = pool,
    _opts = plain,
    _key = options_key(plain) .. (log and ",log" or ""),
    _log = log,
  }, Client)
end

-- The pager's hooks (see ravan.pager): a validated query, and one blocking
-- fetch of it. The thread-side client applies its own default deadline.
function Client._prepare(_, q, schema)
  return validate.query(q, schema)
end

function Client:_fetch(query)
  local ngx = rawget(_G, "ngx")
  if not (ngx and ngx.run_worker_thread) then
    error("ravan.openresty: ngx.run_worker_thread is missing (needs lua-nginx-module >= 0.10.21)", 3)
  end
  local ok, res, plain_err, evs = ngx.run_worker_thread(self._pool, MODULE,
    "thread_phone_history", self._key, self._opts, query, self._log ~= nil)
  if not ok then error("ravan.openresty: " .. tostring(res), 3) end
  if evs then
    for i = 1, #evs do pcall(self._log, evs[i]) end
  end
  if plain_err then
    return nil, errors.new(plain_err.kind, plain_err.message, plain_err)
  end
  return res
end

-- No engine here (the pager's prefetch starts nothing): each page is one
-- call on the pool, in turn.
function Client._start()
  return nil
end

--- One page of a phone's call history, fetched on the thread pool.
-- Takes and returns what `client:phone_history` does; the calling request
-- handler yields until the page is there.
-- @tparam table q `phone`, and optionally `page`, `page_size`,
-- `include_transcripts`, `deadline`
-- @treturn[1] table the page
-- @treturn[2] nil
-- @treturn[2] ravan.errors.Error the error, as the plain API gives it
-- @raise when the call cannot be handed to a thread at all: no `thread_pool`
-- of that name, no free thread VM (`lua_worker_thread_vm_pool_size`), or not
-- inside a request handler that may yield
-- @function Client:phone_history

--- Every page of a phone's history, as `client:pages` iterates them; each
-- page is one call on the thread pool (`prefetch` is accepted and ignored).
-- @tparam table q the query, plus `limit` and `prefetch`
-- @return the iterator, for a generic `for`
-- @function Client:pages

--- Every call of a phone's history, as `client:calls` iterates them.
-- @tparam table q the query, plus `limit` and `prefetch`
-- @return the iterator, for a generic `for`
-- @function Client:calls

surface.add_methods(Client)

--- Nothing to free on this side: the thread VMs own the connections and keep
-- them for the life of the worker. Present so code written for the plain
-- client runs unchanged.
function Client.close() end

function Client:__tostring()
  return "ravan.openresty client (thread_pool " .. self._pool .. ")"
end

--- `phone_history` on a default client made from the environment
-- (`RAVAN_API_KEY` or `RAVAN_TOKEN`, `RAVAN_BASE_URL`) and the pool `"ravan"`.
-- @tparam table q as for `Client:phone_history`
-- @treturn[1] table the page
-- @treturn[2] nil
-- @treturn[2] ravan.errors.Error the error
-- @function phone_history

--- `pages` on the default client.
-- @tparam table q as for `Client:pages`
-- @return the iterator
-- @function pages

--- `calls` on the default client.
-- @tparam table q as for `Client:calls`
-- @return the iterator
-- @function calls

surface.add_defaults(M, M.new)

return M
