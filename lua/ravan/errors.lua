--- Errors: what every failing call returns as its second value.
--
--    local res, err = client:phone_history{ phone = "+14155550100" }
--    if not res then
--      if err.kind == "rate_limited" then ... end
--      print(tostring(err))  -- one line, never the credential
--    end
-- @module ravan.errors

-- The mapping from a core response (HTTP status or transport class) to an
-- error kind. All errors share one metatable so `is_error` is a single
-- comparison and cannot be fooled by a plain table that happens to have a
-- `kind` field.

local cjson = require "cjson.safe"
local core = require "ravan.core"
local redact = require "ravan.redact"

require("ravan.interpreted")()
local M = {}

--- An error. `tostring(err)` gives one line.
-- @table Error
-- @tfield string kind one of `ravan.errors.KINDS` (see docs/errors.md):
-- `invalid_argument`, `auth` (401, 403), `bad_request` (400, 404, 422),
-- `rate_limited` (429), `server` (5xx, a 2xx with `success = false`, a
-- redirect not followed), `timeout`, `network`, `tls` (certificate
-- verification), `decode` (not JSON, or not the documented shape),
-- `too_large` (over `max_response_bytes`, or a header line over libcurl's
-- limit), `cancelled` (the caller gave the request up), `database` (a
-- `sync` store refused a connection or a statement) or `internal` (out of
-- memory, or a handle libcurl would not take)
-- @tfield string message the server's own message when its body has one
-- @tfield[opt] number status the HTTP status, when there was an answer
-- @tfield[opt] string request_id from `X-Request-Id` or a similar header
-- @tfield boolean retryable whether trying again later may succeed
-- @tfield[opt] number attempts how many requests were made
-- @tfield[opt] string body the response body (HTTP errors only; at most 2 KiB)
-- @tfield[opt] number curl_code libcurl's code (transport errors)
-- @tfield[opt] number retry_after seconds the server asked to wait, when the
-- wait was not slept (longer than `max_retry_after` or past the deadline)
-- @tfield[opt] table timings the last attempt's, when one ran: `dns`, `connect`,
-- `tls`, `first_byte`, `total`, each in seconds from its start (see
-- docs/observability.md)

--- Every kind, as a set: `errors.KINDS[err.kind]` is true. The list itself
-- is the C core's (`ravan.core.KINDS`), so the two cannot disagree.
-- @table KINDS
local KINDS = {}
for i = 1, #core.KINDS do KINDS[core.KINDS[i]] = true end
M.KINDS = KINDS

-- What errors.new is given for a kind outside KINDS: it must not raise.
local FALLBACK_KIND = "internal"

-- The optional fields an error may carry, with their types: anything else
-- handed to errors.new is left out, so tostring(err) always works.
local FIELDS = {
  status = "number", request_id = "string", attempts = "number",
  body = "string", curl_code = "number", retry_after = "number",
  retryable = "boolean", timings = "table",
}

-- Bodies are kept for debugging only; a cap keeps a huge HTML page (or a
-- 64 MiB payload) from riding along with every error.
local MAX_BODY = 2048
M.MAX_BODY = MAX_BODY

local REASONS = {
  [300] = "Multiple Choices", [301] = "Moved Permanently", [302] = "Found",
  [303] = "See Other", [304] = "Not Modified", [307] = "Temporary Redirect",
  [308] = "Permanent Redirect",
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden",
  [404] = "Not Found", [405] = "Method Not Allowed",
  [408] = "Request Timeout", [409] = "Conflict", [410] = "Gone",
  [413] = "Content Too Large", [415] = "Unsupported Media Type",
  [422] = "Unprocessable Content", [429] = "Too Many Requests",
  [500] = "Internal Server Error", [501] = "Not Implemented",
  [502] = "Bad Gateway", [503] = "Service Unavailable",
  [504] = "Gateway Timeout",
}

local Error = {}
Error.__index = Error

-- One line whatever the server put in its message: a multi-line message
-- would break log lines and the CLI's single error line.
local function one_line(s)
  return (tostring(s):gsub("%c+", " "))
end

function Error:__tostring()
  local parts = { "ravan: ", self.kind }
  if self.status then
    parts[#parts + 1] = " (HTTP " .. self.status .. ")"
  end
  parts[#parts + 1] = ": " .. one_line(self.message)
  local extra = {}
  if self.request_id then
    extra[#extra + 1] = "request_id=" .. one_line(self.request_id)
  end
  if self.attempts and self.attempts > 1 then
    extra[#extra + 1] = "attempts=" .. self.attempts
  end
  if self.retry_after then
    extra[#extra + 1] = string.format("retry_after=%gs", self.retry_after)
  end
  if #extra > 0 then
    parts[#parts + 1] = " [" .. table.concat(extra, ", ") .. "]"
  end
  return table.concat(parts)
end

-- Text for any value, without calling a __tostring that might raise.
local function text_of(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" or t == "boolean" or t == "nil" then return tostring(v) end
  return "(a " .. t .. ")"
end
M.text_of = text_of

-- `fields` may carry the optional fields of an Error; `retryable` defaults
-- to false so every error has it. Never raises: an unknown kind becomes
-- `internal`, naming the kind it was given, and fields of the wrong type
-- are left out.
function M.new(kind, message, fields)
  message = text_of(message)
  if not KINDS[kind] then
    message = "unknown error kind " .. text_of(kind):sub(1, 64) .. ": " .. message
    kind = FALLBACK_KIND
  end
  local e = { kind = kind, message = message }
  if type(fields) == "table" then
    for name, t in next, FIELDS do
      local v = rawget(fields, name)
      if type(v) == t then e[name] = v end
    end
  end
  e.retryable = e.retryable == true
  return setmetatable(e, Error)
end

function M.invalid_argument(message)
  return M.new("invalid_argument", message)
end

-- What every call on a closed client answers, the pager's included.
-- `obj.method(...)` (a dot for a colon) passes the first argument as self: said, never raised.
-- `args` is what the call's parentheses show ("..." unless given).
function M.misuse(object, name, args)
  args = args == nil and "..." or text_of(args)
  return M.invalid_argument("use " .. text_of(object) .. ":" .. text_of(name) .. "(" .. args
    .. "), with a colon")
end

function M.closed()
  return M.invalid_argument("this ravan client is closed")
end

--- Tells a ravan error from any other value (also `ravan.is_error`).
-- @param v any value
-- @treturn boolean
function M.is_error(v)
  return rawequal(getmetatable(v), Error)
end

-- The kind for one attempt's outcome; shared by the final classification
-- and the log's retry events so both always agree. `transport` is the core's
-- kind, which is already one of KINDS.
function M.kind_for(status, transport)
  if transport then return transport end
  if status == 401 or status == 403 then return "auth" end
  if status == 408 then return "timeout" end
  if status == 429 then return "rate_limited" end
  if status >= 400 and status < 500 then return "bad_request" end
  if status >= 200 and status < 300 then return nil end
  -- 5xx, plus 1xx/3xx that reached us: the core follows same-origin
  -- redirects itself, so any 3xx left over is the server misbehaving.
  return "server"
end

-- Every string of `err` that may hold what a server sent, scrubbed of
-- `secret`; the body also cut to MAX_BODY (redacted before and after the
-- cut, so a secret across it does not survive in part).
local function scrub(err, secret)
  err.message = redact.text(err.message, secret)
  err.request_id = redact.text(err.request_id, secret)
  err.body = redact.text(err.body, secret, MAX_BODY)
  return err
end

-- A JSON error body's own explanation, when it has one. Only small bodies
-- are parsed: a large error body is not worth decoding for one string.
local function server_message(body, content_type)
  if not body or #body > 65536 then return nil end
  local looks_json = body:find("^%s*{") ~= nil
  if not looks_json and not (content_type and content_type:find("json", 1, true)) then
    return nil
  end
  local t = cjson.decode(body)
  if type(t) ~= "table" then return nil end
  if type(t.message) == "string" and t.message ~= "" then return t.message end
  if type(t.error) == "string" and t.error ~= "" then return t.error end
  return nil
end

local function http_message(status, body, content_type)
  local msg = server_message(body, content_type)
  if msg then return msg end
  local text = "HTTP " .. status
  if REASONS[status] then text = text .. " " .. REASONS[status] end
  if status >= 300 and status < 400 then
    return text .. " (redirect not followed)"
  end
  if not body or body == "" then return text .. " (empty body)" end
  local ct = content_type and content_type:match("^[^;%s]+")
  if (ct and ct:find("html", 1, true)) or body:find("^%s*<") then
    return text .. " (" .. (ct or "HTML") .. " response from a proxy?)"
  end
  if not ct then return text .. " (non-JSON response)" end
  if not ct:find("json", 1, true) then
    return text .. " (" .. ct .. " response, not JSON)"
  end
  return text
end

-- The phases of a response's `timings` list, in its order.
local PHASES = { "dns", "connect", "tls", "first_byte", "total" }

-- A transport's timings list -> the named table errors and log events show; nil for none.
function M.timings(list)
  if type(list) ~= "table" then return nil end
  local t = {}
  for i = 1, #PHASES do t[PHASES[i]] = rawget(list, i) end
  return t
end

-- Response context shared by every error built from a core response.
local function context(res)
  return {
    -- The core's word, so the field and the retry policy cannot disagree.
    retryable = res.retryable == true,
    status = res.status,
    request_id = res.request_id,
    attempts = res.attempts,
    retry_after = res.retry_after,
    timings = M.timings(res.timings),
  }
end

-- Attach a response's context to an error made from its body (decode
-- failures, `success = false`), where the body is the best clue there is.
-- `secret` is the client's credential, scrubbed from every field.
function M.with_response(err, res, secret)
  err.status = err.status or res.status
  err.request_id = err.request_id or res.request_id
  err.attempts = err.attempts or res.attempts
  err.timings = err.timings or M.timings(res.timings)
  err.body = err.body or res.body
  return scrub(err, secret)
end

-- `res` as returned by core `client:request`; nil when it is a 2xx that
-- the decoder should look at. `secret` as for with_response.
function M.from_response(res, secret)
  local kind = M.kind_for(res.status, res.error)
  if not kind then return nil end
  local f = context(res)
  if res.error then
    -- The core words its own failures (libcurl's text, or why a redirect
    -- was not followed); a body comes only with an answer.
    f.curl_code = res.curl_code
    f.body = res.body
    local msg = res.curl_message
    if type(msg) ~= "string" or msg == "" then msg = kind .. " (no detail from the core)" end
    return scrub(M.new(kind, msg, f), secret)
  end
  f.body = res.body
  return scrub(M.new(kind, http_message(res.status, res.body, res.content_type), f), secret)
end

return M
