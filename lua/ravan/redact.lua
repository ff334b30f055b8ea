-- Credentials out of every string that reaches the user: error fields, log
-- events, bodies kept for debugging. One function for every client flavour
-- (the plain client and ravan.openresty), so none can forget a case.
--
-- A server may echo the key it was sent anywhere: in its message, in its
-- body, in a header such as X-Request-Id. Redaction runs over the whole
-- string before it is cut to a length, and again after; the cut itself may
-- leave the first characters of the secret at the end, and those go too.

local M = {}

M.MASK = "[REDACTED]"

-- Too short a "secret" would mangle every message while hiding nothing.
M.MIN_SECRET = 4

local function mask_all(s, secret)
  return (s:gsub(secret:gsub("%p", "%%%0"), M.MASK))
end

-- `s` with every occurrence of `secret` masked and, with `max`, cut to at
-- most `max` bytes. Values that are not strings come back unchanged, and so
-- does everything when `secret` is not a string of MIN_SECRET bytes or more.
function M.text(s, secret, max)
  if type(s) ~= "string" then return s end
  local usable = type(secret) == "string" and #secret >= M.MIN_SECRET
  if usable and max then
    -- Only a prefix of `s` can reach the first `max` bytes of the result. Masking turns
    -- #secret bytes into #MASK, so n bytes become at least n / ceil(#secret / #MASK): this
    -- many give `max` or more, and the last #secret - 1 let a secret that starts within them
    -- be matched whole. An error body can be megabytes; masking all of it to keep 2 KiB
    -- made every error pay for its whole body.
    local prefix = max * math.ceil(#secret / #M.MASK) + #secret - 1
    if #s > prefix then s = s:sub(1, prefix) end
  end
  if usable then s = mask_all(s, secret) end
  if max and #s > max then
    s = s:sub(1, max)
    if usable then
      for n = math.min(#secret - 1, #s), 1, -1 do
        if s:sub(-n) == secret:sub(1, n) then
          s = s:sub(1, -n - 1)
          break
        end
      end
      s = mask_all(s, secret)
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

return M
