-- JSON encoding as the vendor's server writes it: keys in the contract's order,
-- integers as integers, "/" unescaped.
local cjson = require "cjson"
local cjson_safe = require "cjson.safe"

-- 14 is the largest precision Debian's lua-cjson 2.1.0 accepts; it keeps every
-- integer below 1e14 exact, which covers millisecond timestamps (13 digits).
cjson.encode_number_precision(14)
cjson_safe.encode_number_precision(14)

local encode = cjson.encode
local type, concat, gsub, find = type, table.concat, string.gsub, string.find

local M = {}

M.null = cjson.null

-- lua-cjson escapes "/" as "\/". Valid JSON, but real servers (Go, the vendor)
-- send URLs unescaped and specs compare raw bodies, so undo it. Safe because
-- cjson escapes every "/" and every backslash, so "\/" only ever stems from "/".
local function unslash(s)
    if find(s, "\\/", 1, true) then
        return (gsub(s, "\\/", "/"))
    end
    return s
end

function M.encode(value)
    return unslash(encode(value))
end

local RAW = {}

-- '"key":' prefixes, memoized: the same few dozen keys are encoded per call.
local key_prefix = setmetatable({}, {
    __index = function(t, k)
        local prefix = encode(k) .. ":"
        t[k] = prefix
        return prefix
    end,
})

-- Marks already-encoded JSON text so M.object embeds it as it is; nested
-- objects built with M.object keep their key order that way.
function M.raw(text)
    return setmetatable({ text }, RAW)
end

-- Encodes t as an object with the keys of `order` first, in that order (absent
-- keys skipped, M.null written as null), then `extra` keys in their order.
function M.object(t, order, extra)
    local parts, n = {}, 0
    for _, list in ipairs({ order, extra or {} }) do
        for i = 1, #list do
            local k = list[i]
            local v = t[k]
            if v ~= nil then
                n = n + 1
                parts[n] = key_prefix[k] .. (getmetatable(v) == RAW and v[1] or unslash(encode(v)))
            end
        end
    end
    return "{" .. concat(parts, ",") .. "}"
end

-- Decodes untrusted text; returns nil, err instead of raising.
function M.decode(text)
    if type(text) ~= "string" then
        return nil, "no JSON body"
    end
    return cjson_safe.decode(text)
end

-- Removes insignificant whitespace without re-encoding, so numbers keep their
-- exact spelling (the contract example has 4.0, which cjson would turn into 4).
function M.compact(text)
    local out, n, i, len = {}, 0, 1, #text
    while i <= len do
        local q = text:find('"', i, true)
        local chunk = text:sub(i, (q or len + 1) - 1)
        n = n + 1
        out[n] = (chunk:gsub("%s+", ""))
        if not q then
            break
        end
        local j = q + 1
        while true do
            local c = text:find('[\\"]', j)
            if not c then
                error("unterminated string in JSON text")
            end
            if text:sub(c, c) == "\\" then
                j = c + 2
            else
                n = n + 1
                out[n] = text:sub(q, c)
                i = c + 1
                break
            end
        end
    end
    return concat(out)
end

return M
