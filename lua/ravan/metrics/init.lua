--- Prometheus text exposition (format 0.0.4) of what clients have done.
--
--    local metrics = require "ravan.metrics"
--    local text = metrics.render(client)            -- or { client1, client2 }, or snapshots
--    -- serve `text` with Content-Type metrics.CONTENT_TYPE
--
-- Every series is named `ravan_...`, counters end in `_total`, durations are in seconds and
-- sizes in bytes. The only labels are `reason` (a retry's) and `kind` (an error's), whose
-- values are ravan's own error kinds: nothing a caller or a server supplies (no credential,
-- phone number, URL or message) ever becomes a label. Under nginx, `ravan.openresty.metrics`
-- adds up the workers. See docs/observability.md.
-- @module ravan.metrics

local core = require "ravan.core"
local errors = require "ravan.errors"
local stats = require "ravan.metrics.stats"

local M = {}

--- The Content-Type of the exposition.
M.CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

local COUNTERS = {
  { "requests", "ravan_requests_total", "Calls finished, failed ones included (a page is one)." },
  { "attempts", "ravan_attempts_total", "HTTP requests made, retries and redirects included." },
  { "rate_limited", "ravan_rate_limited_total", "HTTP 429 answers, retried ones included." },
  { "bytes", "ravan_response_bytes_total", "Response body bytes received." },
}

local LABELLED = {
  { "retries", "ravan_retries_total", "reason", "Retries, by the reason of the attempt retried." },
  { "errors", "ravan_errors_total", "kind", "Failed calls, by error kind." },
}

local HISTOGRAMS = {
  { "request", "ravan_request_duration_seconds",
    "Duration of a call: every attempt and the waits between them." },
  { "first_byte", "ravan_first_byte_duration_seconds",
    "Time from the start of a call's last attempt to the first byte of its answer." },
}

-- Integers as integers (5.1 and LuaJIT have only doubles), the rest as short as reads back
-- exactly (0.005, not 0.0050000000000000001).
local function number(v)
  if v == math.floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then return ("%d"):format(v) end
  local text = ("%.15g"):format(v)
  if tonumber(text) ~= v then text = ("%.17g"):format(v) end
  return text
end

local function escape(v)
  return (v:gsub("[\\\"\n]", { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" }))
end

local function header(out, name, kind, help)
  out[#out + 1] = "# HELP " .. name .. " " .. help
  out[#out + 1] = "# TYPE " .. name .. " " .. kind
end

-- A client (anything with a `stats` method), a snapshot, or a list of either -> one snapshot.
local function snapshot_of(source)
  if type(source) ~= "table" then return nil end
  if type(source.stats) == "function" then return (source:stats()) end
  if type(source.requests) == "number" then return source end
  local list = {}
  for i = 1, #source do
    local s = snapshot_of(source[i])
    if not s then return nil end
    list[i] = s
  end
  return stats.merge(list)
end

local function render(source)
  local s = snapshot_of(source)
  if not s then return nil end
  local out = {}
  for _, c in ipairs(COUNTERS) do
    header(out, c[2], "counter", c[3])
    out[#out + 1] = c[2] .. " " .. number(s[c[1]] or 0)
  end
  for _, l in ipairs(LABELLED) do
    header(out, l[2], "counter", l[4])
    -- Every kind, at 0 until it happens: a series that appears late hides its first increase
    -- from rate().
    local counts = s[l[1]] or {}
    for _, kind in ipairs(core.KINDS) do
      out[#out + 1] = ('%s{%s="%s"} %s'):format(l[2], l[3], escape(kind), number(counts[kind] or 0))
    end
  end
  for _, h in ipairs(HISTOGRAMS) do
    local hist = s.latency and s.latency[h[1]]
    if hist then
      header(out, h[2], "histogram", h[3])
      for i, le in ipairs(hist.buckets) do
        out[#out + 1] = ('%s_bucket{le="%s"} %s'):format(h[2], number(le), number(hist.counts[i]))
      end
      out[#out + 1] = ('%s_bucket{le="+Inf"} %s'):format(h[2], number(hist.counts[#hist.buckets + 1]))
      out[#out + 1] = h[2] .. "_sum " .. number(hist.sum)
      out[#out + 1] = h[2] .. "_count " .. number(hist.count)
    end
  end
  out[#out + 1] = ""
  return table.concat(out, "\n")
end

--- The exposition text of `source`.
-- @param source a client, a `ravan.metrics.stats.Stats` snapshot, or a list of clients and
-- snapshots (added up)
-- @treturn[1] string the text, ending in a newline
-- @treturn[2] nil
-- @treturn[2] ravan.errors.Error `invalid_argument` when `source` is none of those (or a
-- client keeps no stats)
function M.render(source)
  -- A hand-made "snapshot" with fields of the wrong type fails somewhere inside: said, not
  -- raised.
  local ok, text = pcall(render, source)
  if ok and text then return text end
  return nil, errors.invalid_argument("metrics.render takes a client, client:stats() or a list"
    .. " of them")
end

return M
