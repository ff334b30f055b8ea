-- Queued faults (POST /__mock/faults): each applies to the next `count` API
-- requests matching its optional phone/page filters, oldest fault first.
local json = require "ravan_mock.json"
local response = require "ravan_mock.response"
local sockreset = require "ravan_mock.sockreset"

local dict = ngx.shared.ravan_state
local KEY = "faults"

local M = {}

local function int(v, lo, hi)
    return type(v) == "number" and v % 1 == 0 and v >= lo and v <= (hi or math.huge)
end

-- Per-kind parameters: name -> {default, check, error text}.
local function opt_string(v)
    return v == nil or type(v) == "string" or type(v) == "number"
end

-- Extra response headers: an object of name -> string value.
local function header_table(v)
    if v == nil then
        return true
    end
    if type(v) ~= "table" then
        return false
    end
    for name, value in pairs(v) do
        if type(name) ~= "string" or not name:find("^[%w-]+$") or type(value) ~= "string" then
            return false
        end
    end
    return true
end

local PARAMS = {
    status = {
        headers = { nil, header_table, "an object of header name -> string value" },
        status = { 500, function(v) return int(v, 200, 599) end, "an HTTP status 200..599" },
        retry_after = { nil, opt_string, "a string" },
        retry_after_ms = { nil, opt_string, "a string or number" },
        body = { nil, function(v) return v == nil or type(v) == "string" end, "a string" },
        content_type = { nil, function(v) return v == nil or type(v) == "string" end, "a string" },
    },
    delay = { ms = { 1000, function(v) return int(v, 0) end, "an integer >= 0" } },
    dribble = {
        bytes = { 16, function(v) return int(v, 1) end, "an integer >= 1" },
        interval_ms = { 50, function(v) return int(v, 0) end, "an integer >= 0" },
    },
    reset = {},
    empty = {},
    truncate = { at = { nil, function(v) return v == nil or int(v, 0) end, "an integer >= 0" } },
    wrong_length = { delta = { 1000, function(v) return int(v, -math.huge) and v ~= 0 end, "a non-zero integer" } },
    malformed_json = { body = { nil, function(v) return v == nil or type(v) == "string" end, "a string" } },
    html = { status = { 502, function(v) return int(v, 200, 599) end, "an HTTP status 200..599" } },
    redirect = {
        status = { 302, function(v) return int(v, 300, 399) end, "an HTTP status 300..399" },
        target = { "same", function(v) return v == "same" or v == "other" end, "\"same\" or \"other\"" },
        location = { nil, function(v) return v == nil or type(v) == "string" end, "a string" },
    },
    raw = { bytes = { nil, function(v) return type(v) == "string" and v ~= "" end, "a non-empty string" } },
    large = {
        bytes = { 2 * 1024 * 1024, function(v) return int(v, 1) end, "an integer >= 1" },
        chunked = { false, function(v) return type(v) == "boolean" end, "a boolean" },
    },
}

local function load()
    local text = dict:get(KEY)
    return text and json.decode(text) or {}
end

local function store(list)
    -- cjson encodes an empty table as {}; keep the stored value an array.
    dict:set(KEY, #list > 0 and json.encode(list) or "[]")
end

-- Validates and queues one fault spec; returns the stored fault or nil, err.
function M.add(spec)
    if type(spec) ~= "table" then
        return nil, "a fault must be a JSON object"
    end
    local params = PARAMS[spec.kind]
    if not params then
        return nil, "unknown fault kind: " .. tostring(spec.kind)
    end
    local fault = { kind = spec.kind, count = spec.count or 1 }
    if not int(fault.count, 1) then
        return nil, "count must be an integer >= 1"
    end
    if spec.phone ~= nil then
        if type(spec.phone) ~= "string" then
            return nil, "phone must be a string"
        end
        fault.phone = spec.phone
    end
    fault.endpoint = spec.endpoint or "api"
    if fault.endpoint ~= "api" and fault.endpoint ~= "recording" then
        return nil, "endpoint must be \"api\" or \"recording\""
    end
    if spec.call ~= nil then
        if type(spec.call) ~= "string" or fault.endpoint ~= "recording" then
            return nil, "call (a call id) filters recording faults only"
        end
        fault.call = spec.call
    end
    if spec.page ~= nil then
        local page = tonumber(spec.page)
        if not int(page, 1) then
            return nil, "page must be an integer >= 1"
        end
        fault.page = page
    end
    for name, p in pairs(params) do
        local v = spec[name]
        if v == nil then
            v = p[1]
        end
        if not p[2](v) then
            return nil, spec.kind .. "." .. name .. " must be " .. p[3]
        end
        fault[name] = v
    end
    fault.id = dict:incr("fault_id", 1, 0)
    local list = load()
    list[#list + 1] = fault
    store(list)
    return fault
end

-- Takes one use of the oldest fault matching the request: its endpoint ("api"
-- or "recording"), phone and page (API) or call id (recording). The
-- read-modify-write never yields, and the mock runs a single worker, so it is atomic.
function M.take(endpoint, phone, page, call)
    local list = load()
    for i, fault in ipairs(list) do
        if fault.endpoint == endpoint and (fault.phone == nil or fault.phone == phone)
            and (fault.page == nil or fault.page == page) and (fault.call == nil or fault.call == call) then
            fault.count = fault.count - 1
            if fault.count == 0 then
                table.remove(list, i)
            end
            store(list)
            return fault
        end
    end
end

function M.pending_json()
    return dict:get(KEY) or "[]"
end

function M.clear()
    dict:delete(KEY)
end

local HTML = [[<html>
<head><title>%d %s</title></head>
<body>
<center><h1>%d %s</h1></center>
<hr><center>nginx</center>
</body>
</html>
]]

local function html_page(status)
    local reason = response.reason(status)
    return HTML:format(status, reason, status, reason)
end

local MALFORMED = '{"success": true, "message": "call history retrieved successfully", "calls": [{"id": "550e8400-'

local CHUNK = 64 * 1024

-- Sends body in pieces of `size` bytes, flushing each; stops if the client left.
local function trickle(body, size, interval)
    for i = 1, #body, size do
        local ok = ngx.print(body:sub(i, i + size - 1))
        if not ok or not ngx.flush(true) then
            return
        end
        if interval > 0 and i + size <= #body then
            ngx.sleep(interval)
        end
    end
end

-- A well-formed response of at least `bytes` bytes: one call whose summary
-- carries the bulk.
local function large_body(phone, bytes)
    local head = '{"success":true,"message":"call history retrieved successfully","phone":'
        .. json.encode(phone or "") .. ',"total_count":1,"page":1,"page_size":20,"calls":[{'
        .. '"id":"00000000-0000-4000-8000-000000000001","status":"completed","summary":"'
    local tail = '"}]}'
    return head .. string.rep("x", math.max(0, bytes - #head - #tail)) .. tail
end

local function location(fault, moved_prefix, other_origin)
    if fault.location then
        return fault.location
    end
    local path = ngx.var.request_uri
    if fault.target == "other" then
        return other_origin .. path
    end
    -- Toggle the prefix so a redirect from the moved path comes back home.
    local home = path:sub(#moved_prefix + 1)
    if path:sub(1, #moved_prefix + 1) == moved_prefix .. "/" then
        path = home
    else
        path = moved_prefix .. path
    end
    local host = ngx.var.http_host or (ngx.var.server_addr .. ":" .. ngx.var.server_port)
    return ngx.var.scheme .. "://" .. host .. path
end

-- The response head as a server would write it, for the faults that write to
-- the socket themselves.
local function head(status, headers, content_type, length)
    local lines = { ("HTTP/1.1 %d %s"):format(status, response.reason(status)),
        "Content-Type: " .. (content_type or "application/json"), "Content-Length: " .. length,
        "X-Request-Id: " .. ngx.var.request_id, "Connection: close" }
    for name, value in pairs(headers or {}) do
        lines[#lines + 1] = name .. ": " .. value
    end
    return table.concat(lines, "\r\n") .. "\r\n\r\n"
end

-- Answers the current request according to `fault`. `normal()` produces the
-- regular answer (status, body, headers, content type); `ctx` has rec (the
-- request record), phone, moved_prefix and other_origin.
function M.apply(fault, normal, ctx)
    local kind, rec = fault.kind, ctx.rec
    rec.fault = kind
    if kind == "status" then
        local body = fault.body or response.error_json("mock fault: " .. response.reason(fault.status))
        local headers = {
            ["Retry-After"] = fault.retry_after and tostring(fault.retry_after),
            ["retry-after-ms"] = fault.retry_after_ms and tostring(fault.retry_after_ms),
        }
        for name, value in pairs(fault.headers or {}) do
            headers[name] = value
        end
        response.send(fault.status, body, { content_type = fault.content_type, headers = headers })
    elseif kind == "delay" then
        ngx.sleep(fault.ms / 1000)
        local status, body, headers, content_type = normal()
        response.send(status, body, { headers = headers, content_type = content_type })
    elseif kind == "dribble" then
        local status, body, headers, content_type = normal()
        response.start(status, { headers = headers, no_gzip = true, length = #body, content_type = content_type })
        ngx.send_headers()
        ngx.flush(true)
        trickle(body, fault.bytes, fault.interval_ms / 1000)
    elseif kind == "truncate" then
        local status, body, headers, content_type = normal()
        response.start(status, { headers = headers, no_gzip = true, length = #body, content_type = content_type })
        ngx.print(body:sub(1, math.min(fault.at or math.floor(#body / 2), #body)))
        ngx.flush(true)
        rec.status = status
        return ngx.exit(444)
    elseif kind == "wrong_length" then
        -- nginx would hold a body to its Content-Length; the raw socket sends it all.
        local status, body, headers, content_type = normal()
        rec.status = status
        local sock, err = ngx.req.socket(true)
        if not sock then
            ngx.log(ngx.ERR, "wrong_length fault: no raw socket: ", err)
            return ngx.exit(444)
        end
        sock:send(head(status, headers, content_type, math.max(0, #body + fault.delta)))
        if ngx.req.get_method() ~= "HEAD" then
            sock:send(body)
        end
        return ngx.exit(444)
    elseif kind == "empty" then
        rec.status = 0
        return ngx.exit(444)
    elseif kind == "reset" then
        rec.status = 0
        if not sockreset.arm() then
            ngx.log(ngx.WARN, "reset fault: client socket not found, closing with FIN instead")
        end
        return ngx.exit(444)
    elseif kind == "malformed_json" then
        response.send(200, fault.body or MALFORMED)
    elseif kind == "html" then
        response.send(fault.status, html_page(fault.status), { content_type = "text/html" })
    elseif kind == "redirect" then
        response.send(fault.status, html_page(fault.status), {
            content_type = "text/html",
            headers = { Location = location(fault, ctx.moved_prefix, ctx.other_origin) },
        })
    elseif kind == "raw" then
        -- The request's own socket, past nginx's HTTP writer: the bytes go out as they are, then
        -- the connection closes, whatever they say about the body's length.
        rec.status = tonumber(fault.bytes:match("^HTTP/1%.%d (%d%d%d)")) or 0
        local sock, err = ngx.req.socket(true)
        if not sock then
            ngx.log(ngx.ERR, "raw fault: no raw socket: ", err)
            return ngx.exit(444)
        end
        sock:send(fault.bytes)
        return ngx.exit(444)
    elseif kind == "large" then
        local body = large_body(ctx.phone, fault.bytes)
        response.start(200, { no_gzip = true, length = not fault.chunked and #body })
        trickle(body, CHUNK, 0)
    end
end

return M
