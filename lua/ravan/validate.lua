-- Checks of client options and query arguments, done before any traffic.
-- Every failure is `nil, err` with kind `invalid_argument`; nothing here
-- raises for bad user input.
--
-- Credentials and user-agent strings are checked but never echoed in a
-- message: an error may end up in a log the secret must not reach.

local core = require "ravan.core"
local defaults = require "ravan.defaults"
local errors = require "ravan.errors"

require("ravan.interpreted")()
local M = {}

local floor, huge = math.floor, math.huge
local tointeger = math.tointeger

-- Upper bounds keep every integer representable in the C core's types
-- (int for counts, and doubles below 2^53 for sizes on Lua 5.1/LuaJIT).
local INT_MAX = 2147483647
local SIZE_MAX = 9007199254740992
M.INT_MAX = INT_MAX

-- The caps of src/rv_limits.h (which says why each is what it is): the C
-- core's own numbers, so the two sides cannot disagree.
local LIMITS = core.LIMITS
local valid_query = core.valid_query
local MAX_SECONDS = LIMITS.max_seconds

local D = defaults.client

local function levenshtein(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    local ca = a:byte(i)
    for j = 1, #b do
      local cost = ca == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

-- `schema` is an array of { name, check, default }; arrays (not sets) keep
-- the order of checks, so the first error reported is deterministic.
-- Every request checks its query, so what a schema's checks need besides
-- the array (its entries by name, those with defaults) is made once.
local compiled = setmetatable({}, { __mode = "k" })

local function compile(schema)
  local c = compiled[schema]
  if not c then
    c = { by_name = {}, defaulted = {} }
    for i = 1, #schema do
      local entry = schema[i]
      c.by_name[entry[1]] = entry
      if entry[3] ~= nil then c.defaulted[#c.defaulted + 1] = entry end
    end
    compiled[schema] = c
  end
  return c
end

-- The names in order, for messages only.
local function sorted_names(schema)
  local list = {}
  for i = 1, #schema do list[i] = schema[i][1] end
  table.sort(list)
  return list
end

-- The name of `list` nearest to `key`, or nil when even that one is a few edits away (a
-- far-off "nearest" name is noise). The CLI words its did-you-mean with it too.
local function suggestion(key, list)
  local best, best_d
  for i = 1, #list do
    local d = levenshtein(key, list[i])
    if not best_d or d < best_d then best, best_d = list[i], d end
  end
  if best_d and best_d <= math.max(2, floor(#key / 3)) then return best end
end
M.suggestion = suggestion

local function unknown_key_message(key, list, what)
  if type(key) ~= "string" then
    return "positional value [" .. errors.text_of(key) .. "] where a named " .. what
      .. " was expected (valid: " .. table.concat(list, ", ") .. ")"
  end
  local shown = key:sub(1, 40):gsub("%c", "?")
  local best = suggestion(key, list)
  if best then
    return "unknown " .. what .. " '" .. shown .. "' (did you mean '" .. best .. "'?)"
  end
  return "unknown " .. what .. " '" .. shown .. "' (valid: "
    .. table.concat(list, ", ") .. ")"
end

-- Refuses keys outside `schema`; exported so later modules (the pager)
-- check their own option tables the same way.
function M.keys(t, schema, what)
  local by_name = compile(schema).by_name
  local unknown
  -- next, not pairs: a __pairs metamethod is the caller's code, and may raise.
  for k in next, t do
    if not by_name[k] then
      unknown = unknown or {}
      unknown[#unknown + 1] = k
    end
  end
  if not unknown then return true end
  -- Keys may be any value; their text never calls the caller's __tostring.
  table.sort(unknown, function(x, y) return errors.text_of(x) < errors.text_of(y) end)
  return nil, errors.invalid_argument(unknown_key_message(unknown[1], sorted_names(schema),
    what))
end

local function finite(v)
  return type(v) == "number" and v == v and v > -huge and v < huge
end

-- Value checks: each returns the (normalised) value, or nil and a message.

local function positive(name, v)
  if finite(v) and v > 0 and v <= MAX_SECONDS then return v end
  return nil, name .. " must be a number of seconds > 0 and <= " .. MAX_SECONDS
    .. " (a day; there is no 'wait forever')"
end

local function non_negative(name, v)
  if finite(v) and v >= 0 and v <= MAX_SECONDS then return v end
  return nil, name .. " must be a number of seconds from 0 to " .. MAX_SECONDS .. " (a day)"
end

local function integer_in(lo, hi)
  return function(name, v)
    if finite(v) and v == floor(v) and v >= lo and v <= hi then
      -- On 5.3+ the core and the server want a real integer, not 2.0.
      return tointeger and tointeger(v) or v
    end
    return nil, name .. " must be an integer from " .. lo .. " to " .. hi
  end
end
M.integer_in = integer_in

local function boolean(name, v)
  if type(v) == "boolean" then return v end
  return nil, name .. " must be a boolean"
end

local function func(name, v)
  if type(v) == "function" then return v end
  return nil, name .. " must be a function"
end

-- A control character in a header value would let it inject headers (or
-- split the request); the value itself is never quoted back.
local function text(name, v)
  if type(v) ~= "string" or v == "" then
    return nil, name .. " must be a non-empty string"
  end
  if v:find("%c") then
    return nil, name .. " must not contain control characters (CR, LF, ...)"
  end
  return v
end

local function readable_file(name, v)
  local ok, msg = text(name, v)
  if not ok then return nil, msg end
  local f, err = io.open(v, "rb")
  if not f then return nil, name .. " cannot be opened: " .. err end
  f:close()
  return v
end

-- A proxy: an http:// URL (a bare host:port means one), credentials allowed
-- in its userinfo; false for none, whatever the environment says (""). The
-- message never repeats the value: it may hold the proxy's password.
local function proxy_url(name, v)
  if v == false then return "" end
  local ok, msg = text(name, v)
  if not ok then return nil, msg end
  if not v:find("://", 1, true) then v = "http://" .. v end
  local url = core.parse_url(v)
  if not url or url.scheme ~= "http" then
    return nil, name .. " must be an http:// proxy URL such as http://proxy.example:3128"
  end
  if url.path ~= "/" or url.query or url.fragment then
    return nil, name .. " must be a proxy's scheme, host and port, without a path or query"
  end
  return v
end

-- The first `max` bytes of `s` at most, cut where a UTF-8 character
-- starts, and "…" after it when anything was cut: an echo of a bad value
-- neither splits a character nor hides that it is partial.
local function excerpt(s, max)
  if #s <= max then return s end
  local cut = max
  -- A continuation byte (10xxxxxx) at the cut means a character spans it.
  while cut > 0 and s:byte(cut + 1) and s:byte(cut + 1) >= 0x80 and s:byte(cut + 1) < 0xC0 do
    cut = cut - 1
  end
  return s:sub(1, cut) .. "\226\128\166"
end
M.excerpt = excerpt

local function phone(name, v)
  if type(v) == "string" and #v >= 3 and #v <= 16 and v:find("^%+[1-9]%d+$") then
    return v
  end
  local shown = type(v) == "string" and ("'" .. excerpt(v, 32):gsub("%c", "?") .. "'")
    or ("a " .. type(v))
  return nil, name .. " must be E.164: '+' then 2 to 15 digits, the first "
    .. "1-9 (e.g. +14155550100); got " .. shown
end

local page_size = integer_in(1, LIMITS.page_size)

-- W3C Trace Context: version, trace id, parent id, flags, lower-case hex; version ff and
-- all-zero ids are invalid.
local TRACEPARENT = "^(%x%x)%-(" .. ("%x"):rep(32) .. ")%-(" .. ("%x"):rep(16) .. ")%-%x%x$"

local function traceparent(name, v)
  if type(v) == "string" and not v:find("%u") then
    local version, trace, parent = v:match(TRACEPARENT)
    if version and version ~= "ff" and trace:find("[^0]") and parent:find("[^0]") then
      return v
    end
  end
  return nil, name .. " must be a W3C traceparent, e.g. "
    .. "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
end

-- An array of E.164 numbers, each checked, duplicates dropped (first kept).
-- Read with rawget and next only: a metamethod is the caller's code.
local function phone_list(name, v)
  local msg = name .. " must be an array of E.164 phone numbers"
  if type(v) ~= "table" then return nil, msg end
  local n = 0
  for _ in next, v do n = n + 1 end
  local out, seen = {}, {}
  for i = 1, n do
    local p = rawget(v, i)
    if p == nil then return nil, msg end
    local ok, why = phone(name .. "[" .. i .. "]", p)
    if not ok then return nil, why end
    if not seen[ok] then
      seen[ok] = true
      out[#out + 1] = ok
    end
  end
  return out
end

-- For modules with option tables of their own (sync).
M.checks = {
  phone = phone, phones = phone_list, boolean = boolean, positive = positive, func = func,
  text = text, page_size = page_size, non_negative = non_negative,
}

local QUERY = {
  { "phone", phone },
  { "page", integer_in(1, INT_MAX) },
  { "page_size", page_size },
  { "include_transcripts", boolean },
  { "deadline", positive },
  { "traceparent", traceparent },
}
M.QUERY = QUERY

-- Defaults come from ravan.defaults, the one home of every default value.
local CLIENT = {
  { "api_key", text },
  { "token", text },
  { "base_url", text },
  { "allow_http", boolean, D.allow_http },
  { "timeout", positive, D.timeout },
  { "connect_timeout", positive, D.connect_timeout },
  { "deadline", positive },
  { "max_retries", integer_in(0, INT_MAX), D.max_retries },
  { "retry_base", non_negative, D.retry_base },
  { "retry_cap", non_negative, D.retry_cap },
  { "max_retry_after", non_negative, D.max_retry_after },
  { "max_response_bytes", integer_in(1, SIZE_MAX), D.max_response_bytes },
  { "low_speed_limit", integer_in(0, INT_MAX), D.low_speed_limit },
  { "low_speed_time", integer_in(1, MAX_SECONDS), D.low_speed_time },
  { "ca_file", readable_file },
  { "ca_path", text },
  { "insecure", boolean, D.insecure },
  { "http2", boolean, D.http2 },
  { "client_cert", readable_file },
  { "client_key", readable_file },
  { "key_password", text },
  { "proxy", proxy_url },
  { "no_proxy", text },
  { "max_concurrency", integer_in(1, LIMITS.max_concurrency), D.max_concurrency },
  { "user_agent", text },
  { "log", func },
  { "stats", boolean, D.stats },
  { "traceparent", boolean, D.traceparent },
}

-- Fills `out` from `t` by `schema`; defaults apply to absent keys only.
local function check_all(t, schema, out)
  for i = 1, #schema do
    local name, check, default = schema[i][1], schema[i][2], schema[i][3]
    local v = rawget(t, name)
    if v == nil then
      out[name] = default
    else
      local ok, msg = check(name, v)
      if ok == nil then return nil, errors.invalid_argument(msg) end
      out[name] = ok
    end
  end
  return out
end
-- For option tables of other modules (ravan.openresty's rate_limit, sync's).
M.fields = check_all

-- check_all for a table that passes, in one walk over the keys it has
-- rather than over the whole schema; nil at the first key or value that
-- does not, and the ordered checks then say which comes first.
local function quick_fields(t, schema)
  local c = compile(schema)
  local by_name, out = c.by_name, {}
  for k, v in next, t do
    local entry = by_name[k]
    if not entry then return nil end
    v = entry[2](k, v)
    if v == nil then return nil end
    out[k] = v
  end
  local defaulted = c.defaulted
  for i = 1, #defaulted do
    local entry = defaulted[i]
    if out[entry[1]] == nil then out[entry[1]] = entry[3] end
  end
  return out
end

-- `schema` (default QUERY) lets the pager check its own options in the same
-- single pass: it is QUERY plus more entries.
function M.query(q, schema)
  -- The usual query, valid, is checked in one pass in C (the same checks as QUERY's); any
  -- other, and a pager's schema, takes the checks here, which also word what is wrong.
  if schema == nil or schema == QUERY then
    local query = valid_query(q)
    if query then return query end
  end
  if type(q) ~= "table" then
    return nil, errors.invalid_argument(
      "query must be a table, e.g. { phone = \"+14155550100\" }")
  end
  schema = schema or QUERY
  local query = quick_fields(q, schema)
  if query and query.phone ~= nil then return query end
  local ok, err = M.keys(q, schema, "query option")
  if not ok then return nil, err end
  if rawget(q, "phone") == nil then
    return nil, errors.invalid_argument("phone is required")
  end
  return check_all(q, schema, {})
end

local function is_loopback(host)
  host = host:lower()
  if host == "localhost" or host == "[::1]" then return true end
  local a, b, c, d = host:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  return a == "127" and tonumber(b) <= 255 and tonumber(c) <= 255
    and tonumber(d) <= 255
end

-- Returns the normalised base URL (lower-case scheme and host, no trailing
-- slash) or nil and a message that never repeats the URL: it might hold
-- a password in its userinfo. libcurl's parser decides what a URL is, the
-- same parser the client then builds its requests with.
local function base_url(name, s, allow_http)
  if s:find("%s") then return nil, name .. " must not contain spaces" end
  local url, reason = core.parse_url(s)
  if not url then
    if not s:find("://", 1, true) then
      return nil, name .. " must be an absolute URL such as " .. D.base_url
    end
    return nil, name .. " is not a valid URL (" .. reason .. ")"
  end
  if url.scheme ~= "https" and url.scheme ~= "http" then
    return nil, name .. " must use https://"
  end
  -- Refused, not stripped: a URL with a password in it is a mistake the
  -- user should fix, and the credential belongs in api_key or token.
  if url.userinfo then
    return nil, name .. " must not contain user:password@; use api_key or token"
  end
  if url.query or url.fragment then
    return nil, name .. " must not contain a query string or fragment"
  end
  if url.port == 0 then return nil, name .. " has an invalid port" end
  if url.scheme == "http" and not allow_http and not is_loopback(url.host) then
    return nil, name .. " must use https:// (plain http is allowed only for "
      .. "localhost, 127.0.0.0/8 and [::1], or with allow_http = true)"
  end
  return url.base
end

-- An empty variable is treated as unset, as shells make that easy to do
-- by accident (`RAVAN_TOKEN= cmd`).
local function env_value(getenv, name)
  local ok, v = pcall(getenv, name)
  if not ok or type(v) ~= "string" or v == "" then return nil end
  return v
end

-- Credentials: explicit options win, and when either is given the
-- environment's credentials are not read at all. Both explicit is refused
-- as ambiguous. Both from the environment: api_key wins, since the org key
-- is the API's primary scheme; the two headers are never sent together.
-- Returns a message on failure, nil on success.
local function credentials(cfg, getenv)
  if cfg.api_key ~= nil and cfg.token ~= nil then
    return "give api_key or token, not both"
  end
  if cfg.api_key ~= nil or cfg.token ~= nil then return nil end
  local key = env_value(getenv, "RAVAN_API_KEY")
  local token = env_value(getenv, "RAVAN_TOKEN")
  local msg
  if key then
    cfg.api_key, msg = text("RAVAN_API_KEY", key)
  elseif token then
    cfg.token, msg = text("RAVAN_TOKEN", token)
  else
    -- Every call would be a 401 (or, against the real host, DNS and TLS
    -- first): say so now, before any traffic.
    msg = "no credential: give api_key or token, or set RAVAN_API_KEY or RAVAN_TOKEN"
  end
  return msg
end

local PROXY_VARS = {
  https = { "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY" },
  http = { "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY" },
}

-- The proxy a client uses, decided once here for both transports: the
-- `proxy` option (false: none), else the environment's variable for the
-- base URL's scheme, lower case first as curl reads them; the environment's
-- NO_PROXY then applies unless `no_proxy` was given. Returns a message on
-- failure, nil on success; cfg.proxy stays nil when there is none.
local function proxy(cfg, getenv)
  if cfg.proxy ~= nil then return nil end
  local vars = PROXY_VARS[cfg.base_url:match("^(%a+):")]
  for i = 1, #vars do
    local v = env_value(getenv, vars[i])
    if v then
      local msg
      cfg.proxy, msg = proxy_url(vars[i], v)
      if not cfg.proxy then return msg end
      if cfg.no_proxy == nil then
        cfg.no_proxy = env_value(getenv, "no_proxy") or env_value(getenv, "NO_PROXY")
      end
      return nil
    end
  end
  return nil
end

-- `getenv` is injectable so specs can try environments without setting
-- them; `insecure` is deliberately not in any environment variable.
function M.options(opts, getenv)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    return nil, errors.invalid_argument("options must be a table or nil")
  end
  if type(getenv) ~= "function" then getenv = os.getenv end
  local ok, err = M.keys(opts, CLIENT, "option")
  if not ok then return nil, err end
  local cfg
  cfg, err = check_all(opts, CLIENT, {})
  if not cfg then return nil, err end
  local msg = credentials(cfg, getenv)
  if msg then return nil, errors.invalid_argument(msg) end
  local url, url_name = cfg.base_url, "base_url"
  if url == nil then
    url, url_name = env_value(getenv, "RAVAN_BASE_URL"), "RAVAN_BASE_URL"
  end
  cfg.base_url, msg = base_url(url_name, url or D.base_url, cfg.allow_http)
  if not cfg.base_url then return nil, errors.invalid_argument(msg) end
  msg = proxy(cfg, getenv)
  if msg then return nil, errors.invalid_argument(msg) end
  return cfg
end

return M
