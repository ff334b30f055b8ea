-- Response body -> result table.
--
-- Speed matters here (the decode benchmark allows 1.25x bare
-- cjson.decode), so after the C null-stripping pass (skipped when the body
-- has no `null` at all) only the fields with a documented type we must fix
-- are visited, by one C pass while all is well; everything else, unknown
-- fields included, stays exactly as cjson built it, with no copies.
--
-- Integer fields must hold integral numbers: anything else is a `decode`
-- error, not a value passed through, since the pager's arithmetic (and
-- users' `%d` formats) rely on them. On 5.3+ they become real integers
-- (lua-cjson 2.1 decodes every number as a float there); on 5.1/LuaJIT
-- they stay doubles, exact up to 2^53.

local cjson = require "cjson.safe"
local contract = require "ravan.contract"
local core = require "ravan.core"
local errors = require "ravan.errors"
local number_string = require("ravan.json").number_string

require("ravan.interpreted")()
local M = {}

local floor, huge = math.floor, math.huge
local tointeger = math.tointeger or function(v)
  if v == floor(v) and v > -huge and v < huge then return v end
end
local strip_nulls = core.strip_nulls
local decode_json = cjson.decode
local type, find, byte = type, string.find, string.byte

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


-- What each record's decoding checks: its integers, its decimals, and its
-- arrays of records (name, then the items' checks), as flat lists, since
-- this runs for every call of every page. The C pass reads the same three
-- lists as [1], [2] and [3].
local CHECKS = {}
local function checks_of(rec)
  local c = CHECKS[rec]
  if c then return c end
  c = { integers = rec.integers, decimals = rec.decimals, arrays = {} }
  c[1], c[2], c[3] = c.integers, c.decimals, c.arrays
  CHECKS[rec] = c
  for _, name in ipairs(rec.keys) do
    if rec.type_of[name] == "array" then
      c.arrays[#c.arrays + 1] = name
      c.arrays[#c.arrays + 1] = checks_of(rec.fields[name].items)
    end
  end
  return c
end

-- A decimal may arrive as a JSON number; it is kept as the decimal string
-- the number reads as.
local function decimal(t, key)
  local v = t[key]
  if type(v) == "number" then
    if v ~= v or v == huge or v == -huge then return " is not a finite number" end
    t[key] = number_string(v)
  elseif v ~= nil and type(v) ~= "string" then
    return " is neither a string nor a number"
  end
end

-- Checks and converts record `t` by `c`; returns nil, or what is wrong,
-- its path relative to `t` (the caller adds its own, so the path costs
-- nothing while all is well).
local function fix(c, t)
  local list = c.integers
  for k = 1, #list do
    if not integer(t, list[k]) then return list[k] .. " is not an integer" end
  end
  list = c.decimals
  for k = 1, #list do
    local why = decimal(t, list[k])
    if why then return list[k] .. why end
  end
  list = c.arrays
  for k = 1, #list, 2 do
    local name = list[k]
    local items = t[name]
    if items ~= nil then
      if not is_array(items) then return name .. " is not an array" end
      for j = 1, #items do
        local item = items[j]
        if type(item) ~= "table" then return name .. "[" .. j .. "] is not an object" end
        local msg = fix(list[k + 1], item)
        if msg then return name .. "[" .. j .. "]." .. msg end
      end
    end
  end
end

local PAGE_INTEGERS = contract.PAGE.integers
local PAGE_INTEGERS_MESSAGE = table.concat(PAGE_INTEGERS, ", ", 1, #PAGE_INTEGERS - 1)
  .. " and " .. PAGE_INTEGERS[#PAGE_INTEGERS] .. " must be integers"
local CALL_CHECKS = checks_of(contract.CALL)
local PAGE_CHECKS = checks_of(contract.PAGE)
local record_passes = core.record_passes

-- The page's typed fields checked and converted, or what is wrong.
local function check_page(t)
  for i = 1, #PAGE_INTEGERS do
    if not integer(t, PAGE_INTEGERS[i]) then return PAGE_INTEGERS_MESSAGE end
  end
  local calls = t.calls
  if calls == nil then return nil end
  if not is_array(calls) then return "calls is not an array" end
  for i = 1, #calls do
    local call = calls[i]
    if type(call) ~= "table" then return "calls[" .. i .. "] is not an object" end
    local msg = fix(CALL_CHECKS, call)
    if msg then return "calls[" .. i .. "]." .. msg end
  end
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
  -- (The pattern runs only when the first byte is not the '{' already.)
  if type(t) ~= "table" or byte(body) ~= 123 and not find(body, "^[ \t\r\n]*{") then
    return fail("response is not a JSON object")
  end
  -- Given the text, it walks the tables only when "null" is in it.
  strip_nulls(t, body)
  if t.success == false then
    local msg = type(t.message) == "string" and t.message ~= "" and t.message
      or "the server reported success = false"
    return nil, errors.new("server", msg)
  end
  -- The C pass checks and converts the same fields in one go, and says only whether all is
  -- well; when not (a decimal sent as a number, or something wrong), the checks here convert
  -- the rest and word what is wrong.
  if not record_passes(t, PAGE_CHECKS) then
    local msg = check_page(t)
    if msg then return fail(msg) end
  end
  if t.calls == nil then t.calls = {} end
  return t
end

return M
