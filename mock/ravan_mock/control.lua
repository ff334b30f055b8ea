-- The /__mock/* control API (no credentials): records, faults, config, reset.
local json = require "ravan_mock.json"
local recorder = require "ravan_mock.recorder"
local config = require "ravan_mock.config"
local faults = require "ravan_mock.faults"
local response = require "ravan_mock.response"
local ratelimit = require "ravan_mock.ratelimit"
local history = require "ravan_mock.history"
local dataset = require "ravan_mock.dataset"
local api = require "ravan_mock.api"

local M = {}

local function body_json()
    ngx.req.read_body()
    local value, err = json.decode(ngx.req.get_body_data())
    if value == nil then
        return nil, "invalid JSON body: " .. tostring(err)
    end
    return value
end

local OK = '{"success":true}'

local function post_faults()
    local value, err = body_json()
    if value == nil then
        return response.error(400, err)
    end
    local specs = (type(value) == "table" and value[1] ~= nil) and value or { value }
    local added = {}
    for i, spec in ipairs(specs) do
        local fault
        if type(spec) == "table" and (spec.kind == "shift" or spec.kind == "total_count") then
            -- Persistent data changes, not consumed per request: stored as config.
            local field = spec.kind == "shift" and "add" or "value"
            fault, err = config.update({ [spec.kind] = { phone = spec.phone, [field] = spec[field] } })
            fault = fault and { kind = spec.kind, phone = spec.phone, [field] = spec[field] }
        else
            fault, err = faults.add(spec)
        end
        if not fault then
            return response.error(400, "fault " .. i .. ": " .. err)
        end
        added[i] = json.encode(fault)
    end
    response.send(200, '{"success":true,"faults":[' .. table.concat(added, ",") .. "]}")
end

-- The phone's whole history as the API serves it now, newest first, rendered
-- for this listener: what paging it to the end returns, in one document.
local function get_dataset()
    local args = ngx.req.get_uri_args()
    local phone = type(args.phone) == "string" and args.phone
    if not phone or not dataset.is_e164(phone) then
        return response.error(400, "dataset needs phone (E.164, + sent as %2B)")
    end
    local cfg = config.get()
    local calls, total = history.calls(phone, cfg, 1, math.huge, api.call_opts(args.include_transcripts == "true"))
    local deleted = history.deleted_ids(phone)
    response.send(200, '{"phone":' .. json.encode(phone) .. ',"total_count":' .. (cfg.total_count[phone] or total)
        .. ',"count":' .. total .. ',"deleted":' .. (#deleted > 0 and json.encode(deleted) or "[]")
        .. ',"calls":[' .. table.concat(calls, ",") .. "]}")
end

-- Applies mutations (as config {"mutations": ...} does) and answers what they did.
local function post_mutate()
    local value, err = body_json()
    local cfg, log
    if value ~= nil then
        cfg, err, log = config.update({ mutations = value })
    end
    if not cfg then
        return response.error(400, err)
    end
    local parts = {}
    for i, entry in ipairs(log) do
        parts[i] = json.encode(entry)
    end
    response.send(200, '{"success":true,"mutations":[' .. table.concat(parts, ",") .. "]}")
end

function M.handle()
    local uri, method = ngx.var.uri, ngx.req.get_method()
    if uri == "/__mock/requests" and method == "GET" then
        local since = ngx.var.arg_since
        if since and not since:find("^%d+$") then
            return response.error(400, "since must be a sequence number")
        end
        return response.send(200, recorder.list_json(tonumber(since)))
    elseif uri == "/__mock/reset" and method == "POST" then
        recorder.clear()
        faults.clear()
        config.clear()
        ratelimit.clear()
        return response.send(200, OK)
    elseif uri == "/__mock/faults" and method == "POST" then
        return post_faults()
    elseif uri == "/__mock/faults" and method == "GET" then
        return response.send(200, faults.pending_json())
    elseif uri == "/__mock/config" and method == "POST" then
        local value, err = body_json()
        local cfg
        if value ~= nil then
            cfg, err = config.update(value)
        end
        if not cfg then
            return response.error(400, err)
        end
        return response.send(200, json.encode(cfg))
    elseif uri == "/__mock/dataset" and method == "GET" then
        return get_dataset()
    elseif uri == "/__mock/mutate" and method == "POST" then
        return post_mutate()
    elseif uri == "/__mock/config" and method == "GET" then
        return response.send(200, json.encode(config.get()))
    end
    return response.error(404, "unknown control endpoint: " .. method .. " " .. uri)
end

return M
