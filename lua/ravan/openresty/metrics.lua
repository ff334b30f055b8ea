--- Prometheus metrics of every `ravan.openresty` client of every nginx worker.
--
-- Each worker counts in its own Lua tables (no shared-dict write per request: that lock is what
-- a busy server cannot afford), and a timer copies the worker's totals into a
-- `lua_shared_dict` every `interval` seconds, one write per worker. The `/metrics` handler adds
-- up the workers' entries. A scrape therefore lags by up to `interval`.
--
--    lua_shared_dict ravan_metrics 1m;
--    init_worker_by_lua_block { require("ravan.openresty.metrics").start("ravan_metrics") }
--    location = /metrics {
--        content_by_lua_block { require("ravan.openresty.metrics").serve("ravan_metrics") }
--    }
-- @module ravan.openresty.metrics

local cjson = require "cjson.safe"
local metrics = require "ravan.metrics"
local openresty = require "ravan.openresty"
local stats = require "ravan.metrics.stats"

local M = {}

local ngx = rawget(_G, "ngx")

local PREFIX = "ravan worker "

--- The default seconds between two flushes of a worker's figures.
M.INTERVAL = 1

local function dict_of(name)
  local shared = ngx and ngx.shared[name]
  if shared then return shared end
  return nil, "ravan.openresty.metrics: no lua_shared_dict named " .. tostring(name)
end

-- A worker's entry: by pid, so a worker that nginx replaces leaves its final figures and the
-- sums never go back. A reload keeps old entries only until the dict evicts them.
local function flush(dict)
  dict:set(PREFIX .. ngx.worker.pid(), cjson.encode(openresty.worker_stats()))
end

--- Starts this worker's flush timer: call it from `init_worker_by_lua*`.
-- @tparam string dict the name of a `lua_shared_dict`
-- @tparam[opt] number interval seconds between flushes (default `INTERVAL`)
-- @treturn[1] true
-- @treturn[2] nil
-- @treturn[2] string why not (no such dict, no timer)
function M.start(dict, interval)
  local shared, err = dict_of(dict)
  if not shared then return nil, err end
  interval = interval or M.INTERVAL
  -- NaN is no number of seconds either.
  if type(interval) ~= "number" or interval ~= interval or interval <= 0 then
    return nil, "ravan.openresty.metrics: the interval must be a number of seconds above 0"
  end
  local ok
  ok, err = ngx.timer.every(interval, function(premature)
    if not premature then flush(shared) end
  end)
  if not ok then return nil, "ravan.openresty.metrics: " .. tostring(err) end
  return true
end

--- The workers' figures added up (flushed ones, plus this worker's own as of now).
-- @tparam string dict the name of the `lua_shared_dict`
-- @treturn[1] ravan.metrics.stats.Stats
-- @treturn[2] nil
-- @treturn[2] string why not
function M.collect(dict)
  local shared, err = dict_of(dict)
  if not shared then return nil, err end
  local own = PREFIX .. ngx.worker.pid()
  local list = { openresty.worker_stats() }
  for _, key in ipairs(shared:get_keys(0)) do
    if key ~= own and key:sub(1, #PREFIX) == PREFIX then
      local s = cjson.decode(shared:get(key) or "")
      if type(s) == "table" then list[#list + 1] = s end
    end
  end
  return stats.merge(list)
end

--- Answers a scrape: the exposition of `collect(dict)`, from a `content_by_lua*` handler.
-- @tparam string dict the name of the `lua_shared_dict`
-- @treturn[1] true
-- @treturn[2] nil
-- @treturn[2] string why not (outside nginx)
function M.serve(dict)
  if not ngx then return nil, "ravan.openresty.metrics: serve runs inside nginx" end
  local s, err = M.collect(dict)
  if not s then
    ngx.status = 500
    ngx.say(err)
    return nil, err
  end
  ngx.header["Content-Type"] = metrics.CONTENT_TYPE
  ngx.print(metrics.render(s))
  return true
end

return M
