-- The per-credential rate limit of POST /__mock/config {"rate_limit": ...}: a
-- token bucket of `requests` tokens refilled at requests/per per second, one
-- per credential, kept in the shared dict so every listener spends the same.
local dict = ngx.shared.ravan_state

local M = {}

local PREFIX = "rl:"

-- Takes a token for `credential`. Returns nil when the request may go on,
-- else the seconds until a token is there; and the tokens left either way.
function M.take(rl, credential)
    ngx.update_time()
    local now = ngx.now()
    local key = PREFIX .. credential
    local cap, rate = rl.requests, rl.requests / rl.per
    local tokens = cap
    local text = dict:get(key)
    if text then
        local t, l = text:match("^([^|]+)|(.+)$")
        tokens = math.min(cap, tonumber(t) + (now - tonumber(l)) * rate)
    end
    local wait
    if tokens >= 1 then
        tokens = tokens - 1
    else
        wait = (1 - tokens) / rate
    end
    dict:set(key, tokens .. "|" .. now)
    return wait, tokens
end

-- RateLimit-* headers (IETF draft names) for a response, when asked for.
function M.headers(rl, tokens, headers)
    local rate = rl.requests / rl.per
    local remaining = math.floor(tokens)
    local reset = remaining < 1 and (1 - tokens) / rate or (rl.requests - tokens) / rate
    headers["RateLimit-Limit"] = tostring(rl.requests)
    headers["RateLimit-Remaining"] = tostring(remaining)
    headers["RateLimit-Reset"] = tostring(math.ceil(reset))
    headers["RateLimit-Policy"] = rl.requests .. ";w=" .. rl.per
    return headers
end

function M.clear()
    for _, key in ipairs(dict:get_keys(0)) do
        if key:sub(1, #PREFIX) == PREFIX then
            dict:delete(key)
        end
    end
end

return M
