-- The one JSON writer: the CLI's output and the sync's stored JSON values.
--
-- lua-cjson cannot order keys or indent, and 2.1 tells `[]` from `{}` only
-- as the same empty table, so tables are walked here. A shape (the records
-- of `ravan.contract`) gives an object's keys in order (`keys`; others
-- follow, sorted), its values' shapes (`fields`), an array's item shape
-- (`items`), and says an empty table is an object (it has `keys`).
--
-- A table whose keys are all positive integers is an array of its largest
-- key's length, holes written as null (JSON nulls inside an array keep their
-- places); any other is an object. The non-finite numbers a server can send
-- (1e400) and values JSON has no word for become null. Other numbers print
-- exactly: cjson rounds to 14 digits.

local M = {}

local concat, sort, format, find = table.concat, table.sort, string.format, string.find
local type, next, pairs, tostring, tonumber = type, next, pairs, tostring, tonumber
local huge = math.huge
local mtype, tointeger = math.type, math.tointeger

-- Strings are escaped by lua-cjson (in C: a Lua pattern is slower), its
-- own instance so no one's settings touch it: the quote, the backslash and
-- every control character, with the short escapes where JSON has them.
-- cjson 2.1 also escapes every "/" (allowed, never needed), which is undone
-- so URLs read as written; the canonical form spells every control
-- character \u00XX, as stored values always have. Each backslash in
-- cjson's output starts an escape, so the pairs are read left to right.
local cjson_encode = require("cjson").new().encode
local UNESCAPE = { ["/"] = "/" }
local CANONICAL_UNESCAPE = { ["/"] = "/", b = "\\u0008", f = "\\u000c", n = "\\u000a",
  r = "\\u000d", t = "\\u0009" }

local function string_of(s, unescape)
  local e = cjson_encode(s)
  if not find(e, "\\", 1, true) then return e end
  return (e:gsub("\\(.)", unescape))
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

local function number_of(v, canonical)
  if v ~= v or v == huge or v == -huge then return "null" end
  if mtype and mtype(v) == "integer" then return format("%d", v) end
  -- The canonical form writes an integral float as an integer where Lua can
  -- (5.3+), as stored values always have been.
  local i = canonical and tointeger and tointeger(v)
  if i then return format("%d", i) end
  return number_string(v)
end

local NONE = {}

-- Each shape's keys as a set, made once: the CLI meets the same shapes for
-- every call it writes.
local known_sets = setmetatable({}, { __mode = "k" })
local function known_of(shape)
  local known = known_sets[shape]
  if not known then
    known = {}
    for _, k in ipairs(shape.keys or NONE) do known[k] = true end
    known_sets[shape] = known
  end
  return known
end

-- The array's length, or nil when `t` is an object (or empty).
local function array_length(t)
  local n = 0
  for k in next, t do
    if type(k) ~= "number" or k < 1 or k ~= math.floor(k) then return nil end
    if k > n then n = k end
  end
  return n > 0 and n or nil
end

-- `o`: the options of one call; `indent` is nil on one line, else the
-- current line's indentation.
local function encode(v, shape, indent, o, buf)
  local kind = type(v)
  if kind == "string" then
    buf[#buf + 1] = string_of(v, o.unescape)
  elseif kind == "number" then
    buf[#buf + 1] = number_of(v, o.canonical)
  elseif kind == "boolean" then
    buf[#buf + 1] = tostring(v)
  elseif kind ~= "table" then
    buf[#buf + 1] = "null"
  else
    shape = shape or NONE
    local inner = indent and indent .. o.step
    local open = indent and "\n" .. inner
    local first = true
    local function item()
      buf[#buf + 1] = first and (open or "") or (open and "," .. open or ",")
      first = false
    end
    local n = array_length(v)
    if n or (next(v) == nil and not shape.keys and not o.canonical) then
      buf[#buf + 1] = "["
      for i = 1, n or 0 do
        item()
        encode(v[i], shape.items, inner, o, buf)
      end
      buf[#buf + 1] = first and "]" or (open and "\n" .. indent .. "]" or "]")
      return buf
    end
    local keys, known, by_name = {}, known_of(shape), {}
    for _, k in ipairs(shape.keys or NONE) do
      if v[k] ~= nil then keys[#keys + 1] = k end
    end
    local rest = {}
    for k in pairs(v) do
      if not known[k] then
        local name = tostring(k)
        rest[#rest + 1] = name
        by_name[name] = k
      end
    end
    sort(rest)
    buf[#buf + 1] = "{"
    local fields = shape.fields or NONE
    for _, k in ipairs(keys) do
      item()
      buf[#buf + 1] = string_of(k, o.unescape) .. o.colon
      encode(v[k], fields[k], inner, o, buf)
    end
    for _, name in ipairs(rest) do
      item()
      buf[#buf + 1] = string_of(name, o.unescape) .. o.colon
      encode(v[by_name[name]], nil, inner, o, buf)
    end
    buf[#buf + 1] = first and "}" or (open and "\n" .. indent .. "}" or "}")
  end
  return buf
end

local COMPACT = { unescape = UNESCAPE, colon = ":" }
local PRETTY = { unescape = UNESCAPE, colon = ": ", step = "  " }
local CANONICAL = { unescape = CANONICAL_UNESCAPE, colon = ":", canonical = true }

--- `v` as JSON text. Options (all optional):
-- `shape`: the key order and empty-table kinds (see above);
-- `pretty`: indented, two spaces a level, `indent` (a string) being the
-- indentation of the line the value starts on;
-- `canonical`: the same value gives the same bytes on every run and every
-- Lua: keys sorted, one line, an empty table as `{}`, control characters
-- as \u00XX. The sync stores its JSON values so, and an unchanged value is
-- then not rewritten.
function M.encode(v, opts)
  opts = opts or NONE
  if opts.canonical then return concat(encode(v, nil, nil, CANONICAL, {})) end
  if opts.pretty then return concat(encode(v, opts.shape, opts.indent or "", PRETTY, {})) end
  return concat(encode(v, opts.shape, nil, COMPACT, {}))
end

--- `M.encode(v, { canonical = true })`.
function M.canonical(v)
  return M.encode(v, { canonical = true })
end

return M
