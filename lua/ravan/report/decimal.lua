-- Exact sums of money: decimal strings ("12.50") added as decimals, never
-- as floats, so 0.10 + 0.20 is "0.30" and a million calls' costs sum to the
-- cent. A number (the API sends twilio_cost and the credits as JSON
-- numbers) counts as the shortest decimal that reads back as it, which is
-- the text the server wrote whenever that text had 15 significant digits
-- or fewer.
--
-- A sum keeps the most places any of its values had ("0.10" + "0.2" is
-- "0.30"). Values are added as integers scaled to those places: into a
-- float while it stays exact (below 2^53), then carried into base-10^7
-- limbs, so there is no bound on the sum's size or its number of places.

local json = require "ravan.json"

local M = {}

local type, tonumber, format, rep = type, tonumber, string.format, string.rep
local floor, huge = math.floor, math.huge
local concat = table.concat
local mtype = math.type

local BASE = 1e7
local POW10 = {}
for i = 0, 15 do POW10[i] = 10 ^ i end
-- A pending part is flushed into the limbs from here: each value added to
-- it is below 10^15, so it never leaves the doubles' exact integers.
local FLUSH = 1e15
-- Beyond this exponent a value is refused rather than spelled out.
local MAX_EXPONENT = 400

-- The decimal text of `v`, or nil: strings as they are, finite numbers as
-- the shortest text that reads back as the same number.
local function text_of(v)
  if type(v) == "string" then return v end
  if type(v) ~= "number" or v ~= v or v == huge or v == -huge then return nil end
  if mtype and mtype(v) == "integer" then return format("%d", v) end
  return json.number_string(v)
end

--- Reads a decimal (a string such as "12.50", "-3", "1e-5", or a finite
-- number): its sign (-1 or 1), its digits without leading zeros ("" for
-- zero), and its places; nil when it is not a decimal.
function M.parse(v)
  local s = text_of(v)
  if not s then return nil end
  local sign, int, frac, rest = s:match("^%s*([+-]?)(%d*)%.?(%d*)(.-)%s*$")
  if not sign or #int + #frac == 0 then return nil end
  -- "1." and ".5" are decimals; "1.2.3" leaves ".3" in rest and is not.
  local places = #frac
  if rest ~= "" then
    local e = rest:match("^[eE]([+-]?%d+)$")
    e = e and tonumber(e)
    if not e or e > MAX_EXPONENT or e < -MAX_EXPONENT then return nil end
    places = places - e
  end
  local digits = int .. frac
  if places < 0 then
    digits, places = digits .. rep("0", -places), 0
  end
  digits = digits:gsub("^0+", "")
  return sign == "-" and -1 or 1, digits, places
end

local Sum = {}
Sum.__index = Sum

--- A new sum, 0 with no places.
function M.sum()
  return setmetatable({ places = 0, pending = 0, limbs = {}, invalid = 0 }, Sum)
end

-- Carries every limb but the top into [0, BASE); the top keeps the sign
-- and stays within (-BASE, BASE).
local function normalize(limbs)
  local n = #limbs
  if n == 0 then return end
  local carry = 0
  for i = 1, n - 1 do
    local v = limbs[i] + carry
    carry = floor(v / BASE)
    limbs[i] = v - carry * BASE
  end
  local top = limbs[n] + carry
  while top >= BASE or top <= -BASE do
    local q = floor(top / BASE)
    limbs[n] = top - q * BASE
    n, top = n + 1, q
  end
  limbs[n] = top
end

local function flush(self)
  local p = self.pending
  if p == 0 then return end
  self.pending = 0
  local limbs = self.limbs
  local low = p % BASE
  local high = (p - low) / BASE
  limbs[1] = (limbs[1] or 0) + low
  limbs[2] = (limbs[2] or 0) + high
  normalize(limbs)
end

-- Scales the sum up to `places`.
local function rescale(self, places)
  flush(self)
  local limbs = self.limbs
  local k = places - self.places
  while k > 0 do
    local step = k > 7 and 7 or k
    local m = 10 ^ step
    for i = 1, #limbs do limbs[i] = limbs[i] * m end
    normalize(limbs)
    k = k - step
  end
  self.places = places
end

-- Adds a long digit string (scaled to the sum's places) limb by limb.
local function add_digits(self, sign, digits)
  local limbs, i, n = self.limbs, 1, #digits
  while n > 0 do
    local first = n - 6 > 1 and n - 6 or 1
    limbs[i] = (limbs[i] or 0) + sign * tonumber(digits:sub(first, n))
    n, i = first - 1, i + 1
  end
  normalize(limbs)
end

-- What `M.parse` made of each value met, with its digits as a number when
-- they fit a double exactly: a day's costs repeat the same few hundred
-- values, so most adds are a lookup. Emptied when it grows large.
local parsed, n_parsed = {}, 0
local MAX_PARSED = 65536

local function parse_cached(v)
  local p = parsed[v]
  if p == nil then
    local sign, digits, places = M.parse(v)
    p = sign and { sign, digits, places, #digits <= 15 and tonumber(digits) or nil } or false
    -- NaN cannot be a key, and is not a decimal anyway.
    if v == v then
      if n_parsed >= MAX_PARSED then parsed, n_parsed = {}, 0 end
      parsed[v] = p
      n_parsed = n_parsed + 1
    end
  end
  return p
end

--- Adds `v` (as `M.parse` reads it). Returns true, or false when `v` is not
-- a decimal: the sum is then unchanged and its `invalid` count grows.
function Sum:add(v)
  local p = parse_cached(v)
  if not p then
    self.invalid = self.invalid + 1
    return false
  end
  local sign, digits, places, n = p[1], p[2], p[3], p[4]
  if places > self.places then rescale(self, places) end
  if digits == "" then return true end
  local shift = self.places - places
  if n and #digits + shift <= 15 then
    -- Below 10^15 after the shift: exact as a double.
    local x = self.pending + sign * n * POW10[shift]
    self.pending = x
    if x >= FLUSH or x <= -FLUSH then flush(self) end
  else
    add_digits(self, sign, shift > 0 and digits .. rep("0", shift) or digits)
  end
  return true
end

--- The sum as a decimal string with its places: "0.30", "-1.5", "12".
function Sum:text()
  flush(self)
  local limbs = {}
  for i = 1, #self.limbs do limbs[i] = self.limbs[i] end
  normalize(limbs)
  local n = #limbs
  while n > 0 and limbs[n] == 0 do
    limbs[n] = nil
    n = n - 1
  end
  local negative = n > 0 and limbs[n] < 0
  if negative then
    for i = 1, n do limbs[i] = -limbs[i] end
    normalize(limbs)
    while n > 0 and limbs[n] == 0 do
      limbs[n] = nil
      n = n - 1
    end
  end
  local parts = { n > 0 and format("%d", limbs[n]) or "0" }
  for i = n - 1, 1, -1 do parts[#parts + 1] = format("%07d", limbs[i]) end
  local digits = concat(parts)
  local places = self.places
  if places > 0 then
    if #digits <= places then digits = rep("0", places - #digits + 1) .. digits end
    digits = digits:sub(1, -places - 1) .. "." .. digits:sub(-places)
  end
  return (negative and "-" or "") .. digits
end

Sum.__tostring = Sum.text

--- The exact sum of decimals, as a string; nil when one is not a decimal.
function M.add(...)
  local s = M.sum()
  for i = 1, select("#", ...) do
    if not s:add((select(i, ...))) then return nil end
  end
  return s:text()
end

return M
