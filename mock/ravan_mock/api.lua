-- GET /api/v1/calling/phone-history, as the vendor serves it, plus the
-- mock's persistent config and queued faults.
local json = require "ravan_mock.json"
local dataset = require "ravan_mock.dataset"
local history = require "ravan_mock.history"
local recording = require "ravan_mock.recording"
local recorder = require "ravan_mock.recorder"
local config = require "ravan_mock.config"
local faults = require "ravan_mock.faults"
local response = require "ravan_mock.response"
local ratelimit = require "ravan_mock.ratelimit"

local fmt, concat, type, tonumber = string.format, table.concat, type, tonumber

local M = {}

local API_KEY = "rk_test_local"
local BEARER_TOKEN = "tok_test_local"
local API_PATH = "/api/v1/calling/phone-history"
-- A second path serving the API, target of same-origin redirects.
local MOVED_PREFIX = "/v1-moved"
local PATHS = { [API_PATH] = true, [MOVED_PREFIX .. API_PATH] = true }
local MAX_PAGE = 2147483647

local other_origin

-- Called from init_by_lua with values only known when the server starts.
function M.init(opts)
    other_origin = opts.other_origin
end

-- The origin the client addressed this request to, as recording URLs name it.
local function origin()
    local host = ngx.var.http_host or (ngx.var.server_addr .. ":" .. ngx.var.server_port)
    return ngx.var.scheme .. "://" .. host
end

-- How history.calls renders calls for a request on this listener.
function M.call_opts(transcripts)
    return { transcripts = transcripts, origin = origin(), other_origin = other_origin }
end

-- First value of a query argument; a bare "?name" counts as "".
local function arg(args, name)
    local v = args[name]
    if type(v) == "table" then
        v = v[1]
    end
    if v == true then
        return ""
    end
    return v
end

local function header(headers, name)
    local v = headers[name]
    if type(v) == "table" then
        return v[1]
    end
    return v
end

local function int_in(text, lo, hi)
    local n = text:find("^%d+$") and tonumber(text)
    return n and n >= lo and n <= hi and n or nil
end

local function error_answer(status, message, headers)
    return status, response.error_json(message), headers
end

function M.authorized()
    local headers = ngx.req.get_headers()
    if header(headers, "x-api-key") == API_KEY then
        return true
    end
    local authz = header(headers, "authorization")
    local scheme, token = (authz or ""):match("^(%a+) +(%S+)$")
    return scheme ~= nil and scheme:lower() == "bearer" and token == BEARER_TOKEN
end

-- The regular answer: status, JSON body, extra headers.
local function answer(args, cfg)
    local method = ngx.req.get_method()
    if method ~= "GET" and method ~= "HEAD" then
        return error_answer(405, "method not allowed", { Allow = "GET, HEAD" })
    end
    if not M.authorized() then
        return error_answer(401, "authentication required: send X-Api-Key or Authorization: Bearer")
    end
    local phone = arg(args, "phone")
    if phone == nil or phone == "" then
        return error_answer(400, "phone query parameter is required")
    end
    if not dataset.is_e164(phone) then
        return error_answer(400, "phone must be in E.164 format, e.g. +1234567890")
    end
    local page_arg, size_arg = arg(args, "page"), arg(args, "page_size")
    local page = page_arg == nil and 1 or int_in(page_arg, 1, MAX_PAGE)
    if not page then
        return error_answer(400, "page must be an integer >= 1")
    end
    local size = size_arg == nil and 20 or int_in(size_arg, 1, 100)
    if not size then
        return error_answer(400, "page_size must be an integer between 1 and 100")
    end
    local transcripts = arg(args, "include_transcripts") == "true"

    local calls, total = history.calls(phone, cfg, (page - 1) * size + 1, page * size, M.call_opts(transcripts))
    local n = #calls
    if cfg.unordered[phone] then
        for i = 1, math.floor(n / 2) do
            calls[i], calls[n - i + 1] = calls[n - i + 1], calls[i]
        end
    end
    return 200, '{"success":true,"message":"call history retrieved successfully","phone":'
        .. json.encode(phone)
        .. fmt(',"total_count":%d,"page":%d,"page_size":%d,"calls":[', cfg.total_count[phone] or total, page, size)
        .. concat(calls, ",") .. "]}"
end

function M.handle()
    local rec = recorder.begin()
    -- Recordings answer under the moved prefix too, for same-origin redirects.
    local path = ngx.var.uri
    if path:sub(1, #MOVED_PREFIX + 1) == MOVED_PREFIX .. "/" then
        path = path:sub(#MOVED_PREFIX + 1)
    end
    local call_id = path:match(recording.PATH)
    if not PATHS[ngx.var.uri] and not call_id then
        return response.error(404, "not found: " .. ngx.var.uri)
    end
    rec.recording = call_id or json.null
    local args = ngx.req.get_uri_args()
    local phone, page_arg = arg(args, "phone"), arg(args, "page")
    -- Faults and page_delays match the page the API would serve (default 1).
    local page = page_arg == nil and 1 or int_in(page_arg, 1, MAX_PAGE)
    local cfg = config.get()
    local rl_headers
    -- Recordings on the other origin stand for pre-signed storage URLs: no
    -- credential, and no API rate limit.
    if cfg.rate_limit and not (call_id and ngx.var.listener == "other") then
        local headers = ngx.req.get_headers()
        local credential = header(headers, "x-api-key") or header(headers, "authorization") or ""
        local retry, tokens = ratelimit.take(cfg.rate_limit, credential)
        rl_headers = cfg.rate_limit.headers and ratelimit.headers(cfg.rate_limit, tokens, {}) or {}
        if retry then
            rl_headers["Retry-After"] = tostring(math.max(1, math.ceil(retry)))
            rl_headers["retry-after-ms"] = tostring(math.ceil(retry * 1000))
            return response.error(429, "rate limit exceeded", rl_headers)
        end
    end
    if call_id then
        return recording.handle(call_id, cfg, {
            rec = rec, rl_headers = rl_headers, other_origin = other_origin, moved_prefix = MOVED_PREFIX,
            authorized = M.authorized,
        })
    end
    cfg = config.arrive(cfg)
    local wait = cfg.latency_ms + (page and cfg.page_delays[tostring(page)] or 0)
    if wait > 0 then
        ngx.sleep(wait / 1000)
    end
    local function normal()
        return answer(args, cfg)
    end
    local fault = faults.take("api", phone, page)
    if fault then
        return faults.apply(fault, normal, {
            rec = rec, phone = phone, moved_prefix = MOVED_PREFIX, other_origin = other_origin,
        })
    end
    local status, body, headers = normal()
    if rl_headers then
        for k, v in pairs(headers or {}) do
            rl_headers[k] = v
        end
        headers = rl_headers
    end
    response.send(status, body, { headers = headers })
end

return M
