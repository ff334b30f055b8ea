--- Every default value ravan has, in one place: the client options, the
-- pager's, the engine's and sync's. Validation, the C core (which receives every
-- value explicitly), the docs and the CLI all read them from here; a spec
-- checks the documentation's tables against this module.
-- @module ravan.defaults

local LIMITS = require("ravan.core").LIMITS

local M = {}

--- Client options (`ravan.new`).
M.client = {
  base_url = "https://api.ravan.ai",
  allow_http = false,
  timeout = 60,
  connect_timeout = 10,
  max_retries = 2,
  retry_base = 0.5,
  retry_cap = 8,
  max_retry_after = 60,
  max_response_bytes = 64 * 1024 * 1024,
  -- Under 1 byte/s for 30 s means the connection is dead (half-open TCP, a
  -- stuck proxy) and is cut well before the per-attempt timeout; a higher
  -- floor would also cut slow but alive links.
  low_speed_limit = 1,
  low_speed_time = 30,
  insecure = false,
  http2 = true,
  max_concurrency = 8,
  -- Counting costs well under 1 % of a request on loopback: always on.
  stats = true,
  traceparent = false,
}

--- Pager options (`client:pages`, `client:calls`).
M.pager = {
  -- The most the API serves in one response: the fewest requests.
  page_size = LIMITS.page_size,
  prefetch = 2,
}

--- Sync options (`client:sync`).
M.sync = {
  include_transcripts = false,
  follow = false,
  interval = 60,
  page_size = LIMITS.page_size,
  -- Seconds behind the newest call that every sync reads again: what voice platforms fill in
  -- after a call (cost, analysis, recording) lands within minutes, and an hour of calls fits
  -- page 1 for any phone taking fewer than 100 calls an hour, so it costs those nothing.
  lookback = 3600,
  -- Seconds between reconciliations of a phone (a full read): a day.
  reconcile_every = 86400,
  -- Seconds a worker's phones stay leased after its last sign of life (heartbeats come every
  -- second): what a takeover waits for when a worker dies.
  lease = 15,
}

return M
