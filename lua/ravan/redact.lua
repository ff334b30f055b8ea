-- Credentials out of every string that reaches the user: error fields, log
-- events, bodies kept for debugging. One function for every client flavour
-- (the plain client and ravan.openresty), so none can forget a case.
--
-- A server may echo the key it was sent anywhere: in its message, in its
-- body, in a header such as X-Request-Id. And not only as sent: a JSON
-- encoder writes `/` as `\/` (PHP) or `+` as `\u002B` (.NET), a URL carries
-- it percent-encoded (or twice, `%252F`), an HTML error page as `&#x2F;`.
-- So each character of the secret is matched in any of those forms, mixed
-- freely within one occurrence. Redaction runs over the string before it is
-- cut to a length; the cut itself may leave the first characters of the
-- secret (in any form, an escape cut in two included) at the end, and those
-- go too.

require("ravan.interpreted")()
local M = {}

M.MASK = "[REDACTED]"

-- Too short a "secret" would mangle every message while hiding nothing.
M.MIN_SECRET = 4

-- Named HTML entities for the characters an HTML page must escape.
local ENTITIES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }
-- JSON's two-character escapes of printable characters, and form encoding's space.
local SHORT = { ["/"] = "\\/", ["\\"] = "\\\\", ['"'] = '\\"', [" "] = "+" }

-- `\uXXXX` of a code point (a surrogate pair above the BMP), lower case.
local function json_u(cp)
  if cp < 0x10000 then return ("\\u%04x"):format(cp) end
  cp = cp - 0x10000
  return ("\\u%04x\\u%04x"):format(0xD800 + math.floor(cp / 0x400), 0xDC00 + cp % 0x400)
end

-- The length of the UTF-8 sequence a lead byte starts, for the value bits it keeps.
local LEAD = { { 0xC2, 0xDF, 2, 32 }, { 0xE0, 0xEF, 3, 16 }, { 0xF0, 0xF4, 4, 8 } }

-- The character at `i` of `s` and its code point; a byte that starts no
-- well-formed character comes alone, with no code point.
local function char_at(s, i)
  local b1 = s:byte(i)
  if b1 < 0x80 then return s:sub(i, i), b1 end
  for _, lead in ipairs(LEAD) do
    if b1 >= lead[1] and b1 <= lead[2] then
      local cp = b1 % lead[4]
      for j = i + 1, i + lead[3] - 1 do
        local b = s:byte(j)
        if not b or b < 0x80 or b > 0xBF then return s:sub(i, i) end
        cp = cp * 64 + b % 64
      end
      return s:sub(i, i + lead[3] - 1), cp
    end
  end
  return s:sub(i, i)
end

-- The secret as units (a character, or a byte that starts none), each with
-- the forms it may take: { text, case_insensitive }. Escapes compare
-- without case (`%2f`, `%2F`); the character itself exactly.
local function units_of(secret)
  local units, i = {}, 1
  while i <= #secret do
    local ch, cp = char_at(secret, i)
    i = i + #ch
    local pct, pct2 = {}, {}
    for j = 1, #ch do
      pct[j] = ("%%%02x"):format(ch:byte(j))
      pct2[j] = ("%%25%02x"):format(ch:byte(j))
    end
    local forms = { { ch, false }, { table.concat(pct), true }, { table.concat(pct2), true } }
    if cp then
      forms[#forms + 1] = { json_u(cp), true }
      forms[#forms + 1] = { ("&#%d;"):format(cp), false }
      forms[#forms + 1] = { ("&#x%x;"):format(cp), true }
    else
      -- A byte read as Latin-1 by the server's encoder.
      forms[#forms + 1] = { json_u(ch:byte()), true }
    end
    if SHORT[ch] then forms[#forms + 1] = { SHORT[ch], false } end
    if ENTITIES[ch] then forms[#forms + 1] = { ENTITIES[ch], true } end
    units[#units + 1] = forms
  end
  return units
end

-- Where an occurrence of the secret (`units`) that starts at `i` of `s`
-- ends (the index after its last byte; the longest when forms allow
-- several), or nil. With `partial`: whether `s` from `i` to its end is the
-- start of an occurrence, cut short. The positions reachable after each
-- unit are kept as a set, so forms that overlap cost no backtracking.
local function match(s, i, units, partial)
  local reach = { [i] = true }
  for u = 1, #units do
    local nxt, any = {}, false
    for pos in next, reach do
      for _, form in ipairs(units[u]) do
        local text, ci = form[1], form[2]
        local piece = s:sub(pos, pos + #text - 1)
        if ci then piece = piece:lower() end
        if piece == text then
          nxt[pos + #text], any = true, true
        elseif partial and #piece < #text and pos + #piece > #s and piece == text:sub(1, #piece) then
          return true
        end
      end
    end
    if not any then return nil end
    reach = nxt
  end
  if partial then return nil end
  local last = i
  for pos in next, reach do
    if pos > last then last = pos end
  end
  return last
end

-- A pattern finding every byte an occurrence can start with.
local function starts_of(units)
  local set = {}
  for _, form in ipairs(units[1]) do
    local b = form[1]:sub(1, 1)
    set[b] = true
    if form[2] then set[b:upper()] = true end
  end
  local class = {}
  -- Punctuation escaped; "%" before a letter or digit would be a class of its own.
  for b in next, set do class[#class + 1] = b:find("^%p$") and "%" .. b or b end
  return "[" .. table.concat(class) .. "]"
end

local function mask_all(s, units, starts)
  local out, from, i = {}, 1, 1
  while true do
    local p = s:find(starts, i)
    if not p then break end
    local e = match(s, p, units)
    if e then
      out[#out + 1] = s:sub(from, p - 1)
      out[#out + 1] = M.MASK
      from, i = e, e
    else
      i = p + 1
    end
  end
  out[#out + 1] = s:sub(from)
  return table.concat(out)
end

-- The longest form of the whole secret.
local function longest(units)
  local n = 0
  for _, forms in ipairs(units) do
    local m = 0
    for _, form in ipairs(forms) do m = math.max(m, #form[1]) end
    n = n + m
  end
  return n
end

-- A secret's units, start pattern and longest span, made once: every log event and error of a
-- client scrubs the same credential, and making them costs far more than using them.
local cache, cached = {}, 0
local CACHE_MAX = 16

local function compiled(secret)
  local c = cache[secret]
  if not c then
    local units = units_of(secret)
    c = { units, starts_of(units), longest(units) }
    if cached >= CACHE_MAX then cache, cached = {}, 0 end
    cache[secret], cached = c, cached + 1
  end
  return c[1], c[2], c[3]
end

-- `s` with every occurrence of `secret` (in any of the forms above) masked
-- and, with `max`, cut to at most `max` bytes. Values that are not strings
-- come back unchanged, and so does everything when `secret` is not a
-- string of MIN_SECRET bytes or more.
function M.text(s, secret, max)
  if type(s) ~= "string" then return s end
  if type(secret) ~= "string" or #secret < M.MIN_SECRET then
    if max and #s > max then s = s:sub(1, max) end
    return s
  end
  local units, starts, span = compiled(secret)
  if max then
    -- Only a prefix of `s` can reach the first `max` bytes of the result. Masking turns at
    -- most `span` bytes into #MASK, so n bytes become at least n / ceil(span / #MASK): this
    -- many give `max` or more, and the last span - 1 let an occurrence that starts within
    -- them be matched whole. An error body can be megabytes; masking all of it to keep 2 KiB
    -- made every error pay for its whole body.
    local prefix = max * math.ceil(span / #M.MASK) + span - 1
    if #s > prefix then s = s:sub(1, prefix) end
  end
  s = mask_all(s, units, starts)
  if max and #s > max then
    s = s:sub(1, max)
    for p = math.max(1, #s - span + 2), #s do
      if match(s, p, units, true) then
        s = s:sub(1, p - 1)
        break
      end
    end
  end
  return s
end

-- Every string value of `t` (one level, which is all an error or a log
-- event has) through M.text, in place. Returns `t`.
function M.fields(t, secret)
  for k, v in next, t do
    if type(v) == "string" then t[k] = M.text(v, secret) end
  end
  return t
end

-- Between tokens: blanks and the quotes a driver puts around what it echoes.
local DELIMITER = "[%s\"'`]"

-- `msg` with every token (a run between blanks and quotes) that holds a part of one of
-- `secrets` (MIN_SECRET characters in a row) replaced by the mask. For messages of programs
-- that echo a secret in their own way, cut or quoted (libpq and a password in a URL): however
-- they word it, none of it survives.
function M.parts(msg, secrets)
  local marks = {}
  for _, secret in ipairs(secrets) do
    local n = math.min(#secret, M.MIN_SECRET)
    for i = 1, #secret - n + 1 do
      local part, init = secret:sub(i, i + n - 1), 1
      while true do
        local s, e = msg:find(part, init, true)
        if not s then break end
        marks[#marks + 1] = { s, e }
        init = s + 1
      end
    end
  end
  if #marks == 0 then return msg end
  table.sort(marks, function(a, b) return a[1] < b[1] end)
  local out, pos = {}, 1
  for _, m in ipairs(marks) do
    local s, e = m[1], m[2]
    if e >= pos then
      while s > pos and not msg:sub(s - 1, s - 1):find(DELIMITER) do s = s - 1 end
      while e < #msg and not msg:sub(e + 1, e + 1):find(DELIMITER) do e = e + 1 end
      if s >= pos then
        out[#out + 1] = msg:sub(pos, s - 1)
        out[#out + 1] = M.MASK
      else
        -- Overlaps the token just masked: extend it.
        out[#out] = M.MASK
      end
      pos = e + 1
    end
  end
  out[#out + 1] = msg:sub(pos)
  return table.concat(out)
end

return M
