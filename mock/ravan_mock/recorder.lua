-- Records every API request (in arrival order) so specs can assert what went
-- over the wire. Records live in their own shared dict, keyed by sequence
-- number, so filling it can never evict faults or config.
local json = require "ravan_mock.json"

local dict = ngx.shared.ravan_records
local CAP = 20000

local M = {}

local function key(seq)
    return "r:" .. seq
end

-- Sequence numbers keep growing across resets, so a `since` taken before a
-- reset never hides newer records; "floor" is the last seq before the reset.
local function floor()
    return dict:get("floor") or 0
end

local function save(rec)
    dict:set(key(rec.seq), json.encode(rec))
end

-- Stores the request as it arrived (status still null) and returns the record;
-- storing it before answering lets specs see requests that are still in flight.
function M.begin()
    local seq = dict:incr("seq", 1, 0)
    local request_uri = ngx.var.request_uri
    local rec = {
        seq = seq,
        listener = ngx.var.listener,
        method = ngx.req.get_method(),
        uri = request_uri:match("^[^?]*"),
        query = ngx.var.args or "",
        headers = ngx.req.get_headers(0),
        connection = tonumber(ngx.var.connection),
        connection_requests = tonumber(ngx.var.connection_requests),
        -- "HTTP/1.1" or "HTTP/2.0"; on TLS, "r" when the session was resumed, "." after a full
        -- handshake; the subject of a client certificate the mtls listener verified.
        protocol = ngx.var.server_protocol,
        ssl_session_reused = ngx.var.ssl_session_reused or json.null,
        client_subject = ngx.var.ssl_client_s_dn or json.null,
        status = json.null,
        fault = json.null,
        time = ngx.now(),
        request_id = ngx.var.request_id,
        -- Whether any credential reached this listener (the other origin must see none).
        credential = ngx.var.http_x_api_key ~= nil or ngx.var.http_authorization ~= nil,
        range = ngx.var.http_range or json.null,
        recording = json.null,
    }
    ngx.ctx.record = rec
    save(rec)
    if seq > CAP then
        dict:delete(key(seq - CAP))
    end
    return rec
end

-- Log phase: stores the final status. Handlers that answer without a normal
-- status line set rec.status themselves (0 = nothing sent).
function M.finish()
    local rec = ngx.ctx.record
    -- Skip records cleared by a reset or pushed out by the cap meanwhile.
    if not rec or rec.seq <= floor() or rec.seq <= (dict:get("seq") or 0) - CAP then
        return
    end
    if rec.status == json.null then
        rec.status = ngx.status
    end
    -- What reached the client's socket, headers included: shows a body cut short.
    rec.bytes_sent = tonumber(ngx.var.bytes_sent)
    -- When the answer was done: with `time`, the interval the request was being served.
    ngx.update_time()
    rec.done = ngx.now()
    rec.body_bytes_sent = tonumber(ngx.var.body_bytes_sent)
    save(rec)
end

-- JSON array text of the records with seq > since, oldest first.
function M.list_json(since)
    local last = dict:get("seq") or 0
    local first = math.max(floor(), since or 0, last - CAP) + 1
    local parts, n = {}, 0
    for seq = first, last do
        local text = dict:get(key(seq))
        if text then
            n = n + 1
            parts[n] = text
        end
    end
    return "[" .. table.concat(parts, ",") .. "]"
end

function M.clear()
    local last = dict:get("seq") or 0
    for seq = math.max(floor(), last - CAP) + 1, last do
        dict:delete(key(seq))
    end
    dict:set("floor", last)
end

return M
