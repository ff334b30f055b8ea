-- Persistent behaviour set through POST /__mock/config, kept until reset.
-- Stored as JSON in a shared dict so every listener sees the same settings.
local json = require "ravan_mock.json"
local dataset = require "ravan_mock.dataset"

local dict = ngx.shared.ravan_state
local KEY = "config"

local M = {}

local function empty()
    return { latency_ms = 0, page_delays = {}, shift = {}, total_count = {} }
end

function M.get()
    local text = dict:get(KEY)
    return text and json.decode(text) or empty()
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
    dict:set(KEY, json.encode(cfg))
    return cfg
end

function M.clear()
    dict:delete(KEY)
end

return M
