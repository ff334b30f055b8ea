--- Clients: validated options around one libcurl handle, reused across
-- calls (keep-alive, TLS session reuse).
-- @module ravan.client

-- Each call goes validate -> core request -> classify -> decode.

local core = require "ravan.core"
local errors = require "ravan.errors"
local validate = require "ravan.validate"
local result = require "ravan.result"
local surface = require "ravan.surface"
local async = require "ravan.async"
local stats = require "ravan.metrics.stats"

require("ravan.interpreted")()
local M = {}

local Client = {}
Client.__index = Client

-- Credentials live here, keyed weakly by client, instead of in the client
-- table: a debug dump of the client (inspect, serpent) must not show them.
-- They are kept only to scrub a server that echoes them back.
local secrets = setmetatable({}, { __mode = "k" })

-- The options the C core reads; the rest (log, deadline, allow_http) are
-- handled on this side.
local CORE_KEYS = {
  "base_url", "api_key", "token", "connect_timeout", "timeout",
  "low_speed_limit", "low_speed_time", "max_retries", "retry_base",
  "retry_cap", "max_retry_after", "max_response_bytes", "ca_file",
  "ca_path", "insecure", "max_concurrency", "client_cert", "client_key",
  "key_password", "proxy", "no_proxy", "http2",
}

-- "Lua 5.4" -> "Lua/5.4": a product token, as User-Agent grammar wants.
local function lua_token()
  local jit = rawget(_G, "jit")
  local v = jit and jit.version or _VERSION
  return (v:gsub(" ", "/", 1))
end

-- `transport` is the product token of what carries the request: libcurl's by default.
function M.user_agent(prefix, transport)
  local ua = "ravan-lua/" .. core.VERSION .. " "
    .. (transport or ("libcurl/" .. core.CURL_VERSION)) .. " " .. lua_token()
  if prefix then return prefix .. " " .. ua end
  return ua
end

--- Makes a client (also `ravan.new`).
--
-- Every option is checked before any traffic; an unknown key is refused,
-- naming the nearest valid one. The defaults are `ravan.defaults.client`;
-- every duration is at most 86400 s (docs/options.md has the full table).
-- @tparam[opt] table opts
--
-- * `api_key` (sent as `X-Api-Key`) or `token` (sent as
--   `Authorization: Bearer`); default `RAVAN_API_KEY`, else `RAVAN_TOKEN`;
--   with none of the four, `invalid_argument` naming both variables
-- * `base_url`: default `RAVAN_BASE_URL`, else `https://api.ravan.ai`;
--   `https://` unless the host is loopback or `allow_http = true`
-- * `timeout` (per attempt, default 60 s), `connect_timeout` (10 s),
--   `deadline` (one bound on every attempt and back-off sleep together)
-- * `max_retries` (2), `retry_base` (0.5 s), `retry_cap` (8 s),
--   `max_retry_after` (60 s)
-- * `max_response_bytes` (64 MiB), `low_speed_limit` (1 byte/s) over
--   `low_speed_time` (30 s)
-- * `ca_file`, `ca_path`, `insecure` (verification off: never from the
--   environment)
-- * `user_agent`: a prefix for the User-Agent header
-- * `max_concurrency` (8, 1 to 64): requests of `start`, tasks and the
--   pager's prefetch in flight at once; more wait in start order
-- * `log`: a function called with one table per event (`request`, `retry`,
--   `response`, `error`), never with the credential; `retry` and `response`
--   carry the attempt's `timings`, `bytes`, `http_version`, `reused`
-- * `stats` (true): keep the counters and histograms of `client:stats()`
-- * `traceparent` (false): true sends a W3C `traceparent` made for each call
--   (a query's own `traceparent` wins) on every attempt
-- @treturn[1] Client
-- @treturn[2] nil
-- @treturn[2] ravan.errors.Error kind `invalid_argument`
-- @function new

-- `getenv` stands in for `os.getenv` in specs; it is not part of the API.
function M.new(opts, getenv)
  local cfg, err = validate.options(opts, getenv)
  if not cfg then return nil, err end
  local core_cfg = {}
  for i = 1, #CORE_KEYS do
    core_cfg[CORE_KEYS[i]] = cfg[CORE_KEYS[i]]
  end
  core_cfg.user_agent = M.user_agent(cfg.user_agent)
  -- "" for none: the core must not let libcurl read the environment again.
  core_cfg.proxy = cfg.proxy or ""
  -- Validation used the core's own URL parser, so what is left to fail here
  -- is memory or libcurl itself: still an error value, not a raise.
  local ok, handle = pcall(core.new, core_cfg)
  if not ok then return nil, errors.new("internal", tostring(handle)) end
  local self = setmetatable({
    _handle = handle,
    _base_url = cfg.base_url,
    _auth = cfg.api_key and "X-Api-Key" or "Bearer token",
    _log = cfg.log,
    _deadline = cfg.deadline,
    _max_concurrency = cfg.max_concurrency,
    _stats = cfg.stats and stats.new() or nil,
    _traceparent = cfg.traceparent,
  }, Client)
  secrets[self] = cfg.api_key or cfg.token
  return self
end

-- A validated core query (client defaults applied), or nil and an error.
-- The pager hands in a `schema` with its own options too, so everything is
-- checked once; they come back in the query for it to take out.
function Client:_prepare(q, schema)
  if not self._handle then return nil, errors.closed() end
  local query, err = validate.query(q, schema)
  if not query then return nil, err end
  if query.deadline == nil then query.deadline = self._deadline end
  if self._traceparent and not query.traceparent then query.traceparent = core.traceparent() end
  return query
end

-- Whether the core should report every attempt (`events`, `url`, `elapsed`)
-- with its results: only a log and client:sync's observer read them.
function Client:_detailed()
  return self._log ~= nil or self._observer ~= nil
end

-- One core result -> the page, or nil and an error: the single path from
-- the wire to the user (ravan.result), for phone_history, for every request
-- the engine finishes and every page the pager takes from its prefetcher.
function Client:_page_of(res)
  -- client:sync watches every response of its client for its rate budget.
  if self._observer then self._observer(res) end
  return result.page(res, secrets[self], self._log, self._stats)
end

-- A request for a prepared query: blocking, except inside a task of this
-- client, which it suspends until the page is there.
function Client:_fetch(query)
  local handle = self._handle
  if not handle then return nil, errors.closed() end
  if self._async and async.current_task(self) then return async.fetch(self, query) end
  return self:_page_of(handle:request(query, self:_detailed()))
end

-- The pager's prefetcher: pages started ahead on the client's engine, or
-- nil when the client is closed; the pager then fetches sequentially.
function Client:_prefetcher(query, window)
  if not self._handle then return nil end
  return async.prefetcher(self, query, window)
end

--- A client, as `ravan.new` makes it.
-- On Lua 5.4 `local c <close> = ravan.new{...}` closes it at the end of
-- the block; elsewhere `close` or the garbage collector does.
-- @type Client

--- One page of a phone's call history.
-- @tparam table q
--
-- * `phone`: E.164, e.g. `"+14155550100"` (required)
-- * `page` (from 1), `page_size` (1 to 100)
-- * `include_transcripts`: a boolean
-- * `deadline`: overrides the client's for this call
-- @treturn[1] table the page as the API documents it: `success`, `message`,
-- `phone`, `total_count`, `page`, `page_size` and `calls`, an array (empty
-- when there are none) of calls with every field of the schema. JSON null
-- becomes nil; `cost_total` is a decimal string; integer fields are
-- integers on Lua 5.3+ (doubles on 5.1 and LuaJIT, exact to `2^53`).
-- @treturn[2] nil
-- @treturn[2] ravan.errors.Error
-- @function Client:phone_history

--- Every page of a phone's history, lazily: a page is requested when the
-- loop needs it, with up to `prefetch` following pages already in flight.
--
--    for page in client:pages{ phone = "+14155550100" } do ... end
-- @tparam table q the query of `phone_history` (`page_size` defaults to
-- 100), plus `limit` (most calls to yield) and `prefetch` (0 to 16,
-- default 2; 0 means strictly one request at a time)
-- @return a `ravan.pager.Pager`, for a generic `for`; an error is raised
-- from the loop as a `ravan.errors.Error`
-- @function Client:pages

--- What this client has done so far: requests, attempts, retries by reason,
-- errors by kind, 429s, bytes and latency histograms. Works on a closed
-- client too.
-- @treturn[1] ravan.metrics.stats.Stats a snapshot, a table of the caller's own
-- @treturn[2] nil
-- @treturn[2] ravan.errors.Error `invalid_argument` for a client made with
-- `stats = false`
-- @function Client:stats

--- Every call of a phone's history, across pages, in the server's order;
-- a call already yielded is not yielded again.
--
--    for call in client:calls{ phone = "+14155550100", limit = 500 } do ... end
-- @tparam table q as for `pages`
-- @return a `ravan.pager.Pager`, for a generic `for`
-- @function Client:calls

surface.add_methods(Client)
async.add_methods(Client)

--- Keeps a database in step with phones' call histories: incremental,
-- exactly once, many phones under one rate budget. See `ravan.sync.sync`
-- for the options and the summary, and docs/sync.md.
-- @tparam table opts `phones` or `phone`, `db`, ...
-- @treturn[1] table the summary
-- @treturn[2] nil
-- @treturn[2] ravan.errors.Error
function Client:sync(opts)
  if not rawequal(getmetatable(self), Client) then return nil, errors.misuse("client", "sync") end
  return require("ravan.sync").sync(self, opts)
end

--- Downloads one call's recording to a file. See `ravan.recordings.one`
-- and docs/recordings.md.
-- @param call a call table or a call id
-- @tparam table opts `path` or `dir`
-- @treturn[1] table the file: `path`, `bytes`, `sha256`, `outcome`, ...
-- @treturn[2] nil
-- @treturn[2] ravan.errors.Error
function Client:recording(call, opts)
  if not rawequal(getmetatable(self), Client) then return nil, errors.misuse("client", "recording") end
  return require("ravan.recordings").one(self, call, opts)
end

--- Downloads many calls' recordings into a directory, concurrently. See
-- `ravan.recordings.many` and docs/recordings.md.
-- @tparam table opts `phone`, `phones` or `calls`, `dir`, `since`, `until`, `progress`
-- @treturn[1] table the summary
-- @treturn[2] nil
-- @treturn[2] ravan.errors.Error
function Client:recordings(opts)
  if not rawequal(getmetatable(self), Client) then return nil, errors.misuse("client", "recordings") end
  return require("ravan.recordings").many(self, opts)
end

--- Frees the connections and libcurl's handles now, cancelling what is in
-- flight: undelivered requests end as `cancelled` without their callbacks,
-- tasks are cancelled. Later calls return an `invalid_argument` error.
-- Idempotent.
function Client:close()
  if not rawequal(getmetatable(self), Client) then return nil, errors.misuse("client", "close") end
  local handle = self._handle
  if handle then
    -- Requests in flight (the pagers' prefetch among them) are cancelled.
    async.close(self)
    self._handle = nil
    handle:close()
  end
end

-- Whether close has been called: the pager asks before it takes a page
-- from a prefetcher, which does not depend on the handle.
function Client:_closed()
  return self._handle == nil
end

-- Lets `local c <close> = ravan.new{...}` free the handle on 5.4.
Client.__close = Client.close

function Client:__tostring()
  if not self._handle then return "ravan.client (closed)" end
  return "ravan.client (" .. self._base_url .. ", " .. self._auth .. ")"
end

return M
