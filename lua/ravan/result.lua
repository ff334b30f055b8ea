-- The one path from a transport's response to the user, shared by every client flavour (the
-- libcurl client, its pager's prefetcher and `ravan.openresty`'s cosockets): classify
-- (`errors.from_response`), decode (`decode.page`), scrub the credential (`ravan.redact`), emit
-- log events.
--
-- A response is the table the core's `client:request` returns: `status`, `body`, `error` (a
-- kind the transport gave), `curl_message`, `content_type`, `request_id`, `origin`,
-- `retry_after`, `retryable`, `attempts`, `elapsed` (the whole call), `bytes` (over every
-- attempt) and, once an attempt ran, its `timings`: a list of the seconds from its start at
-- which DNS, connect, TLS, the first byte and the whole ended (errors.timings names them);
-- when asked for (a log is set) `url`, and `events` when asked for or when there were several
-- attempts: one per attempt, each with named `timings`, `bytes`, `http_version` and `reused`.

local errors = require "ravan.errors"
local redact = require "ravan.redact"
local decode = require "ravan.decode"
local stats = require "ravan.metrics.stats"

require("ravan.interpreted")()
local M = {}

-- A logger that raises must not turn a good call into a failed one, and no string in an event
-- may carry the credential.
local function emit(log, secret, ev)
  pcall(log, redact.fields(ev, secret))
end

-- Events are built after the fact from the transport's per-attempt record, so every transport
-- logs the same events whatever it does between attempts.
local function log_events(log, secret, res, err)
  local url = res.url
  local events = res.events or {}
  for i = 1, #events do
    local e = events[i]
    emit(log, secret, { event = "request", method = "GET", url = url, attempt = e.attempt })
    if e.wait_ms then
      emit(log, secret, {
        event = "retry", method = "GET", url = url, attempt = e.attempt,
        status = e.status, kind = errors.kind_for(e.status, e.error),
        elapsed_ms = e.elapsed_ms, wait_ms = e.wait_ms,
        retry_after = e.retry_after, timings = e.timings, bytes = e.bytes,
        http_version = e.http_version, reused = e.reused,
      })
    elseif e.status then
      emit(log, secret, {
        event = "response", method = "GET", url = url, attempt = e.attempt,
        status = e.status, elapsed_ms = e.elapsed_ms, timings = e.timings, bytes = e.bytes,
        http_version = e.http_version, reused = e.reused,
      })
    end
  end
  if err then
    emit(log, secret, {
      event = "error", method = "GET", url = url, attempt = res.attempts,
      status = err.status, kind = err.kind, message = err.message,
      request_id = err.request_id,
      elapsed_ms = res.elapsed and math.floor(res.elapsed * 1000 + 0.5),
      timings = err.timings, bytes = res.bytes,
    })
  end
end

-- One response -> the page, or nil and an error. `secret` (the credential) is scrubbed from
-- whatever the server echoed; `log` is the client's `log` option, `counts` its ravan.metrics.stats
-- (nil when it keeps none).
function M.page(res, secret, log, counts)
  -- A 2xx without a transport error, the usual answer, is no error: said here without a call.
  local status, err = res.status, nil
  if res.error or not status or status < 200 or status >= 300 then
    err = errors.from_response(res, secret)
  end
  local page
  if not err then
    page, err = decode.page(res.body, res.content_type)
    if err then errors.with_response(err, res, secret) end
  end
  if counts then stats.record(counts, res, err) end
  if log then log_events(log, secret, res, err) end
  if err then return nil, err end
  return page
end

return M
