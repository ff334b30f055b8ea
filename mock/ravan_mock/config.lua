-- Persistent behaviour set through POST /__mock/config, kept until reset.
-- Stored as JSON in a shared dict so every listener sees the same settings.
local json = require "ravan_mock.json"
local dataset = require "ravan_mock.dataset"
local history = require "ravan_mock.history"

local dict = ngx.shared.ravan_state
local KEY = "config"

local M = {}

local function empty()
    return {
        latency_ms = 0, page_delays = {}, shift = {}, total_count = {},
        arrivals = {}, changes = {}, unordered = {}, mutations = {},
    }
end

function M.get()
    local text = dict:get(KEY)
    local cfg = text and json.decode(text) or empty()
    -- Configs stored before a key existed read as if it were empty.
    for k, v in pairs(empty()) do
        if cfg[k] == nil then
            cfg[k] = v
        end
    end
    return cfg
end

local function nonneg_int(v)
    return type(v) == "number" and v >= 0 and v % 1 == 0
end


-- Merges `patch` into the stored config. shift and total_count are per phone:
-- {phone, add} / {phone, value}, or a list of those; add 0 / value null undo.
function M.update(patch)
    if type(patch) ~= "table" then
        return nil, "config must be a JSON object"
    end
    local cfg = M.get()
    if patch.latency_ms ~= nil then
        if not nonneg_int(patch.latency_ms) then
            return nil, "latency_ms must be an integer >= 0"
        end
        cfg.latency_ms = patch.latency_ms
    end
    if patch.page_delays ~= nil then
        if type(patch.page_delays) ~= "table" then
            return nil, "page_delays must be an object {\"page\": ms}"
        end
        local delays = {}
        for page, ms in pairs(patch.page_delays) do
            if not nonneg_int(ms) or not tostring(page):find("^%d+$") then
                return nil, "page_delays must map page numbers to integer ms"
            end
            delays[tostring(page)] = ms
        end
        cfg.page_delays = delays
    end
    for _, spec in ipairs({ { "shift", "add" }, { "total_count", "value" } }) do
        local name, field = spec[1], spec[2]
        local v = patch[name]
        if v ~= nil then
            local list = (type(v) == "table" and v[1] ~= nil) and v or { v }
            for _, item in ipairs(list) do
                if type(item) ~= "table" or not dataset.is_e164(item.phone) then
                    return nil, name .. " needs an E.164 phone"
                end
                local n = item[field]
                if n == json.null or n == 0 and name == "shift" then
                    cfg[name][item.phone] = nil
                elseif nonneg_int(n) then
                    cfg[name][item.phone] = n
                else
                    return nil, name .. "." .. field .. " must be an integer >= 0"
                end
            end
        end
    end
    local err = M.update_sync(cfg, patch)
    if err then
        return nil, err
    end
    local log = cfg.mutation_log
    cfg.mutation_log = nil
    dict:set(KEY, json.encode(cfg))
    return cfg, nil, log
end

local function list_of(v)
    return (type(v) == "table" and v[1] ~= nil) and v or { v }
end

-- The settings that exercise a syncing client: a per-credential rate limit,
-- calls arriving at a phone's head as requests come in, the newest calls
-- changing after they were first served, pages out of order, recording URLs
-- that lead to the mock, and mutations at any depth (ravan_mock.history).
function M.update_sync(cfg, patch)
    local rl = patch.rate_limit
    if rl == json.null then
        cfg.rate_limit = nil
    elseif rl ~= nil then
        if type(rl) ~= "table" or not nonneg_int(rl.requests) or rl.requests < 1 then
            return "rate_limit needs requests: an integer >= 1"
        end
        local per = rl.per == nil and 1 or rl.per
        if type(per) ~= "number" or per <= 0 then
            return "rate_limit.per must be a number of seconds > 0"
        end
        cfg.rate_limit = { requests = rl.requests, per = per, headers = rl.headers == true }
    end
    if patch.arrivals ~= nil then
        for _, item in ipairs(list_of(patch.arrivals)) do
            if type(item) ~= "table" or not dataset.is_e164(item.phone) or not nonneg_int(item.every_requests) then
                return "arrivals needs {phone, every_requests: integer >= 0}"
            end
            cfg.arrivals[item.phone] = item.every_requests > 0 and item.every_requests or nil
        end
    end
    if patch.changes ~= nil then
        for _, item in ipairs(list_of(patch.changes)) do
            if type(item) ~= "table" or not dataset.is_e164(item.phone) or not nonneg_int(item.newest)
                or not nonneg_int(item.version or 0) then
                return "changes needs {phone, newest: integer >= 0, version: integer >= 0}"
            end
            cfg.changes[item.phone] = item.newest > 0 and { newest = item.newest, version = item.version or 1 } or nil
        end
    end
    if patch.recordings ~= nil then
        local rec = patch.recordings
        if rec == json.null or rec == false then
            cfg.recordings = nil
        elseif rec == true then
            cfg.recordings = { other = 0, empty = 0 }
        else
            local function share(v)
                return v == nil and 0 or type(v) == "number" and v >= 0 and v <= 1 and v
            end
            local other, none = share(type(rec) == "table" and rec.other), share(type(rec) == "table" and rec.empty)
            if not other or not none or other + none > 1 then
                return "recordings must be true, null, or {other: share, empty: share} (0..1, sum <= 1)"
            end
            cfg.recordings = { other = other, empty = none }
        end
    end
    if patch.unordered ~= nil then
        if type(patch.unordered) ~= "table" then
            return "unordered must be a list of phones"
        end
        local set = {}
        for _, phone in ipairs(patch.unordered) do
            if not dataset.is_e164(phone) then
                return "unordered must be a list of E.164 phones"
            end
            set[phone] = true
        end
        cfg.unordered = set
    end
    -- Last: mutations are stored as they apply, so nothing may fail after them.
    if patch.mutations ~= nil then
        local log, err = history.mutate(cfg, patch.mutations)
        if not log then
            return err
        end
        cfg.mutation_log = log
    end
end

-- Counts an API request and lands the calls that `arrivals` says arrive
-- with it (one at a phone's head every `every_requests` requests). Returns
-- the config the request is answered with.
function M.arrive(cfg)
    if next(cfg.arrivals) == nil then
        return cfg
    end
    local n = dict:incr("arrivals_n", 1, 0)
    local landed = false
    for phone, every in pairs(cfg.arrivals) do
        if n % every == 0 then
            cfg.shift[phone] = (cfg.shift[phone] or 0) + 1
            landed = true
        end
    end
    if landed then
        dict:set(KEY, json.encode(cfg))
    end
    return cfg
end

function M.clear()
    history.clear()
    dict:delete(KEY)
    dict:delete("arrivals_n")
end

return M
