-- Writing responses the way the handlers need them.
local json = require "ravan_mock.json"

local M = {}

local REASONS = {
    [301] = "Moved Permanently", [302] = "Found", [303] = "See Other",
    [307] = "Temporary Redirect", [308] = "Permanent Redirect",
    [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden",
    [404] = "Not Found", [405] = "Method Not Allowed", [408] = "Request Timeout",
    [409] = "Conflict", [413] = "Payload Too Large", [429] = "Too Many Requests",
    [500] = "Internal Server Error", [502] = "Bad Gateway",
    [503] = "Service Unavailable", [504] = "Gateway Timeout",
}

function M.reason(status)
    return REASONS[status] or ("HTTP " .. status)
end

function M.error_json(message)
    return json.object({ success = false, message = message }, { "success", "message" })
end

-- nginx's gzip filter leaves "proxied" requests alone (gzip_proxied off), and
-- it decides that from the Via request header. Setting it here is the only
-- per-request switch; the recorder captured the headers before this.
function M.no_gzip()
    ngx.req.set_header("Via", "1.1 ravan-mock")
end

-- Sets status and headers. opts: content_type (default application/json),
-- headers, no_gzip, length (Content-Length to announce; false = none, chunked).
function M.start(status, opts)
    ngx.status = status
    ngx.header["Content-Type"] = opts.content_type or "application/json"
    for name, value in pairs(opts.headers or {}) do
        -- An empty value sends no such header at all: the only way to answer without the
        -- request id every response otherwise gets (see the header filter in nginx.conf.in).
        if value == "" then
            ngx.header[name] = nil
            ngx.ctx.without = ngx.ctx.without or {}
            ngx.ctx.without[name:lower()] = true
        else
            ngx.header[name] = value
        end
    end
    if opts.no_gzip then
        M.no_gzip()
    end
    if opts.length then
        ngx.header["Content-Length"] = opts.length
    end
end

-- Sends a complete response with an exact Content-Length (gzip, when it
-- applies, drops it and switches to chunked, as nginx does).
function M.send(status, body, opts)
    opts = opts or {}
    if opts.length == nil then
        opts.length = #body
    end
    M.start(status, opts)
    ngx.print(body)
end

function M.error(status, message, headers)
    M.send(status, M.error_json(message), { headers = headers })
end

return M
