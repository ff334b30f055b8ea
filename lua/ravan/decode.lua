-- Response body -> result table.
--
-- Speed matters here (the decode benchmark allows 1.25x bare
-- cjson.decode), so after the C null-stripping pass (skipped when the body
-- has no `null` at all) only the fields with a documented type we must fix
-- are visited; everything else, unknown fields included, stays exactly as
-- cjson built it, with no copies.
--
-- Integer fields must hold integral numbers: anything else is a `decode`
-- error, not a value passed through, since the pager's arithmetic (and
-- users' `%d` formats) rely on them. On 5.3+ they become real integers
-- (lua-cjson 2.1 decodes every number as a float there); on 5.1/LuaJIT
-- they stay doubles, exact up to 2^53.

local cjson = require "cjson.safe"
local core = require "ravan.core"
local errors = require "ravan.errors"

local M = {}

local floor, huge = math.floor, math.huge
local tointeger = math.tointeger or function(v)
  if v == floor(v) and v > -huge and v < huge then return v end
end
local strip_nulls = core.strip_nulls
local decode_json = cjson.decode
local tonumber, type, format, find = tonumber, type, string.format, string.find

local function fail(message)
  return nil, errors.new("decode", message)
end

local function is_array(v)
  return type(v) == "table" and (next(v) == nil or v[1] ~= nil)
end

-- Integer field check-and-convert; nil value means the field was absent
-- or null, which is allowed. Returns false on a wrong value.
local function integer(t, key)
  local v = t[key]
  if v == nil then return true end
  if type(v) ~= "number" then return false end
  v = tointeger(v)
  if v == nil then return false end
  t[key] = v
  return true
end

-- The shortest decimal that reads back as the same double, so 12.5 gives
-- "12.5" and 12 gives "12" on every Lua version (tostring would give
-- "12.0" on 5.3+ and "12" on 5.1). Trailing zeros the server meant
-- ("12.50") are already lost once it sends a number.
local function number_string(v)
  for digits = 15, 17 do
    local s = format("%." .. digits .. "g", v)
    if tonumber(s) == v then return s end
  end
end
M.number_string = number_string

local function fix_call(call, i)
  if type(call) ~= "table" then
    return "calls[" .. i .. "] is not an object"
  end
  if not integer(call, "duration_sec") then
    return "calls[" .. i .. "].duration_sec is not an integer"
  end
  if not integer(call, "call_latency_ms") then
    return "calls[" .. i .. "].call_latency_ms is not an integer"
  end
  local cost = call.cost_total
  if type(cost) == "number" then
    if cost ~= cost or cost == huge or cost == -huge then
      return "calls[" .. i .. "].cost_total is not a finite number"
    end
    call.cost_total = number_string(cost)
  elseif cost ~= nil and type(cost) ~= "string" then
    return "calls[" .. i .. "].cost_total is neither a string nor a number"
  end
  local transcripts = call.transcripts
  if transcripts == nil then return nil end
  if not is_array(transcripts) then
    return "calls[" .. i .. "].transcripts is not an array"
  end
  for j = 1, #transcripts do
    local tr = transcripts[j]
    if type(tr) ~= "table" then
      return "calls[" .. i .. "].transcripts[" .. j .. "] is not an object"
    end
    if not integer(tr, "timestamp_ms") then
      return "calls[" .. i .. "].transcripts[" .. j .. "].timestamp_ms is not an integer"
    end
  end
  return nil
end

-- `content_type` (optional) only improves the message for a non-JSON body.
-- Returns the result table, or nil and an error (kind `decode`, or
-- `server` for a 2xx whose body says `success: false`). The caller adds
-- the response context (status, request_id...).
function M.page(body, content_type)
  if body == nil or body == "" then return fail("empty response body") end
  local t, jerr = decode_json(body)
  if t == nil then
    -- An HTML page from a proxy is better named than a parser's complaint.
    local ct = content_type and content_type:match("^[^;%s]+")
    if ct and not ct:find("json", 1, true) then
      return fail("response is " .. ct .. ", not JSON")
    end
    return fail("response is not valid JSON: " .. tostring(jerr))
  end
  -- Checked before stripping: a top-level `null` would otherwise pass. cjson
  -- gives `[]` and `{}` the same empty table, so the text tells them apart.
  if type(t) ~= "table" or not body:find("^[ \t\r\n]*{") then
    return fail("response is not a JSON object")
  end
  -- Without the word in the text there is no null to strip, and a search of
  -- the bytes costs far less than a walk of every table.
  if find(body, "null", 1, true) then strip_nulls(t) end
  if t.success == false then
    local msg = type(t.message) == "string" and t.message ~= "" and t.message
      or "the server reported success = false"
    return nil, errors.new("server", msg)
  end
  if not (integer(t, "total_count") and integer(t, "page")
      and integer(t, "page_size")) then
    return fail("total_count, page and page_size must be integers")
  end
  local calls = t.calls
  if calls == nil then
    calls = {}
    t.calls = calls
  elseif not is_array(calls) then
    return fail("calls is not an array")
  end
  for i = 1, #calls do
    local msg = fix_call(calls[i], i)
    if msg then return fail(msg) end
  end
  return t
end

return M
