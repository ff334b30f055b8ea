-- GET /api/v1/calling/sessions/{id}/recording: a call's recording as a WAV
-- file (8 kHz, 16-bit mono PCM, a tone whose pitch comes from the call id, as
-- long as the call), with Range, If-Range and a strong ETag. On the other
-- origin it stands for a pre-signed storage URL and needs no credential.
local dataset = require "ravan_mock.dataset"
local history = require "ravan_mock.history"
local faults = require "ravan_mock.faults"
local response = require "ravan_mock.response"

local md5, char, concat, floor, sin, pi = ngx.md5, string.char, table.concat, math.floor, math.sin, math.pi

local M = {}

M.PATH = "^/api/v1/calling/sessions/([%w-]+)/recording$"

local RATE = 8000
local BYTES_PER_SECOND = RATE * 2

local function le(n, bytes)
    local out = {}
    for i = 1, bytes do
        out[i] = char(n % 256)
        n = floor(n / 256)
    end
    return concat(out)
end

-- The pitch in whole Hz, so one second of samples is a whole number of
-- periods and the file is that second repeated.
function M.pitch(id)
    return 200 + tonumber(md5(id):sub(1, 4), 16) % 800
end

local function second_of_tone(hz)
    local samples = {}
    for i = 0, RATE - 1 do
        local v = floor(8000 * sin(2 * pi * hz * i / RATE) + 0.5) % 65536
        samples[i + 1] = char(v % 256, floor(v / 256))
    end
    return concat(samples)
end

local function wav_header(data_bytes)
    return "RIFF" .. le(36 + data_bytes, 4) .. "WAVE"
        .. "fmt " .. le(16, 4) .. le(1, 2) .. le(1, 2) .. le(RATE, 4) .. le(BYTES_PER_SECOND, 4) .. le(2, 2) .. le(16, 2)
        .. "data" .. le(data_bytes, 4)
end

-- The whole file of the call `id` lasting `duration` seconds (at least 1).
function M.wav(id, duration)
    local seconds = math.max(1, duration)
    return wav_header(seconds * BYTES_PER_SECOND) .. second_of_tone(M.pitch(id)):rep(seconds)
end

-- The byte range (0-based, inclusive) a Range header asks of a `size`-byte
-- file: first, last; or false when it cannot be satisfied; or nil to send the
-- whole file (no Range, several ranges, or a header that is no byte range).
local function byte_range(header, size)
    if type(header) ~= "string" then
        return nil
    end
    local a, b = header:match("^%s*bytes%s*=%s*(%d*)%s*%-%s*(%d*)%s*$")
    if not a or (a == "" and b == "") then
        return nil
    end
    if a == "" then
        local n = tonumber(b)
        if n == 0 then
            return false
        end
        return math.max(0, size - n), size - 1
    end
    a, b = tonumber(a), b ~= "" and tonumber(b)
    if b and b < a then
        return nil
    end
    if a >= size then
        return false
    end
    return a, math.min(b or size - 1, size - 1)
end

local function first(v)
    return type(v) == "table" and v[1] or v
end

-- status, body, headers, content type of the regular answer.
local function answer(id, ctx)
    local method = ngx.req.get_method()
    if method ~= "GET" and method ~= "HEAD" then
        return 405, response.error_json("method not allowed"), { Allow = "GET, HEAD" }
    end
    if ngx.var.listener ~= "other" and not ctx.authorized() then
        return 401, response.error_json("authentication required: send X-Api-Key or Authorization: Bearer")
    end
    local phone, key, duration = dataset.lookup(id)
    if not phone then
        return 404, response.error_json("recording not found")
    end
    if history.deleted(phone, key) then
        return 410, response.error_json("recording deleted")
    end
    local file = M.wav(id, duration)
    local size = #file
    local etag = '"' .. md5(id .. "/" .. size .. "/" .. M.pitch(id)) .. '"'
    local headers = { ETag = etag, ["Accept-Ranges"] = "bytes" }
    local h = ngx.req.get_headers()
    local range = first(h["range"])
    -- If-Range with another validator: the client's partial copy is stale, send it all.
    local if_range = first(h["if-range"])
    if if_range and if_range ~= etag then
        range = nil
    end
    local a, b = byte_range(range, size)
    if a == false then
        headers["Content-Range"] = "bytes */" .. size
        return 416, response.error_json("range not satisfiable"), headers
    elseif a then
        headers["Content-Range"] = ("bytes %d-%d/%d"):format(a, b, size)
        return 206, file:sub(a + 1, b + 1), headers, "audio/wav"
    end
    return 200, file, headers, "audio/wav"
end

-- Answers a recording request. ctx: rec, rl_headers, authorized (a function),
-- other_origin and moved_prefix (for redirect faults).
function M.handle(id, cfg, ctx)
    if cfg.latency_ms > 0 then
        ngx.sleep(cfg.latency_ms / 1000)
    end
    local function normal()
        local status, body, headers, content_type = answer(id, ctx)
        headers = headers or {}
        for k, v in pairs(ctx.rl_headers or {}) do
            headers[k] = v
        end
        return status, body, headers, content_type
    end
    local fault = faults.take("recording", nil, nil, id)
    if fault then
        return faults.apply(fault, normal, ctx)
    end
    local status, body, headers, content_type = normal()
    response.send(status, body, { headers = headers, content_type = content_type })
end

return M
