-- The mock's call history: a pure function of (phone, position), so every run
-- serves the same bytes and nothing large is stored.
local json = require "ravan_mock.json"

local md5, fmt, date, concat = ngx.md5, string.format, os.date, table.concat
local tonumber = tonumber

local M = {}

local EXAMPLE_PHONE = "+919876543210"
local EXAMPLE_CALLER = "+14155550100"
M.LONG_PHONE = "+15558880001"
M.SPARSE_PHONE = "+15556660001"

-- started_at of the contract example; generated calls count back from it.
local T0 = 1781170200 -- 2026-06-11T09:30:00Z
local SPACING = 900   -- seconds between consecutive calls of one phone
M.T0, M.SPACING = T0, SPACING

local CALL_KEYS = {
    "id", "agent_id", "agent_name", "organization_id", "caller_number",
    "callee_number", "caller_name", "caller_email", "channel", "status",
    "summary", "recording_url", "duration_sec", "cost_total", "twilio_cost",
    "model_cost", "credit_breakdown", "disconnect_reason", "call_latency_ms",
    "error_message", "post_call_analysis_result", "metadata", "started_at",
    "ended_at", "created_at",
}
local TRANSCRIPT_KEYS = { "id", "call_session_id", "message", "timestamp_ms", "created_at" }
local MESSAGE_KEYS = { "role", "content" }
local CREDIT_KEYS = { "model_credits", "provider_credits", "telephony_base_credits" }
local UNKNOWN_KEYS = { "sentiment_score", "tags" }
local OPTIONAL_KEYS = {
    "caller_name", "caller_email", "summary", "recording_url", "error_message",
    "metadata", "post_call_analysis_result", "credit_breakdown", "ended_at",
}

local ORG_ID = "0b2c1d3e-4f56-4789-9abc-def012345678"
local AGENTS = {
    { "8f14e45f-ceea-467f-a1d1-91ad4fb0e6c4", "Support Agent" },
    { "c9f0f895-fb98-4b91-b1c8-2a6b3ef5f9a1", "Sales Agent" },
    { "45c48cce-2e2d-4fbd-aa1a-fb7e8a3c2b11", "Billing Assistant" },
    { "d3d94468-02a4-4c29-9a3b-4e5f6a7b8c9d", "After-hours Receptionist" },
}
-- Non-ASCII names on purpose: clients must pass UTF-8 through untouched.
local PEOPLE = {
    { "Jane Doe", "jane@example.com" },
    { "Arjun Mehta", "arjun.mehta@example.com" },
    { "María García", "maria.garcia@example.com" },
    { "Chen Wei", "chen.wei@example.com" },
    { "Olu Adeyemi", "olu.adeyemi@example.com" },
}
local STATUSES = { "completed", "completed", "failed", "no-answer", "busy" }
local SUMMARIES = {
    completed = {
        "Customer asked about billing.",
        "Caller rescheduled an appointment to next week.",
        "Lead asked for pricing of the annual plan.",
        "Customer reported a delayed delivery; agent opened a ticket.",
    },
    failed = { "Call failed before the agent could answer." },
    ["no-answer"] = { "Outbound call was not answered." },
    busy = { "Callee line was busy." },
}
local DISCONNECT = {
    completed = { "user_hangup", "agent_hangup" },
    failed = { "error" },
    ["no-answer"] = { "no_answer" },
    busy = { "busy" },
}
local SENTIMENTS = { "positive", "neutral", "negative" }
local SOURCES = { "crm", "campaign", "web" }
local SHORT_LINES = {
    { "agent", "Hello! Thanks for calling, how can I help?" },
    { "user", "Hi, I have a question about my last invoice." },
    { "agent", "Sure, let me pull up your account." },
    { "user", "Great, thank you." },
}
local LONG_SENTENCES = {
    "The customer explained that the invoice for last month listed two separate charges"
        .. " for the same premium support add-on.",
    "The agent confirmed the duplicate line item, apologised for the confusion and explained"
        .. " how the refund would appear on the statement.",
    "They also discussed moving the account to annual billing, which would lower the monthly"
        .. " price and simplify future invoices.",
    "Finally the caller asked for a written summary by email, and the agent promised to send"
        .. " it within the next business day.",
}

-- Lazily loaded: cheap, and keeps require() free of file I/O.
local example_call, example_call_no_transcripts

local function load_example()
    local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
    local f = assert(io.open(dir .. "example-200.json", "rb"))
    local text = json.compact(f:read("*a"))
    f:close()
    -- The example's only call is the last member of the document: `"calls":[{...}]}`.
    local call = assert(text:match('"calls":%[(.*)%]}$'), "example-200.json: no calls array")
    local cut = assert(call:find(',"transcripts":', 1, true), "example call has no transcripts")
    assert(json.decode(call).id == "550e8400-e29b-41d4-a716-446655440000", "unexpected example call")
    example_call = call
    example_call_no_transcripts = call:sub(1, cut - 1) .. "}"
    M.register(json.decode(call).id, EXAMPLE_PHONE, "b1", json.decode(call).duration_sec)
end

local function iso(t)
    return date("!%Y-%m-%dT%H:%M:%SZ", t)
end

local VARIANT = { "8", "9", "a", "b" }

-- Formats a 32-hex digest as a version-4 UUID so strict parsers accept it.
local function uuid(h)
    return h:sub(1, 8) .. "-" .. h:sub(9, 12) .. "-4" .. h:sub(14, 16) .. "-"
        .. VARIANT[tonumber(h:sub(17, 17), 16) % 4 + 1] .. h:sub(18, 20) .. "-" .. h:sub(21, 32)
end

local function pick(list, n)
    return list[n % #list + 1]
end

local function transcript_json(call_id, started, k, role, content, seed)
    return json.object({
        id = uuid(md5(seed .. "/t" .. k)),
        call_session_id = call_id,
        message = json.raw(json.object({ role = role, content = content }, MESSAGE_KEYS)),
        timestamp_ms = (started + k) * 1000 + 123,
        created_at = iso(started + k),
    }, TRANSCRIPT_KEYS)
end

local function transcripts_json(call, started, h, seed, phone, i)
    local parts = {}
    if phone == M.LONG_PHONE then
        for k = 1, 40 do
            local role = k % 2 == 1 and "agent" or "user"
            local text = fmt("[%02d] ", k) .. pick(LONG_SENTENCES, i + k) .. " " .. pick(LONG_SENTENCES, i + k + 1)
            parts[k] = transcript_json(call.id, started, k, role, text, seed)
        end
    elseif not (phone == M.SPARSE_PHONE and i == 5) then
        for k = 1, 2 + tonumber(h:sub(7, 8), 16) % 3 do
            local line = SHORT_LINES[k]
            parts[k] = transcript_json(call.id, started, k, line[1], line[2], seed)
        end
    end
    return "[" .. concat(parts, ",") .. "]"
end

-- Where a recording request finds its call: id -> "phone key duration_sec".
-- Filled as calls are generated, so a recording is known once its call was.
local ids = ngx.shared.ravan_ids

function M.register(id, phone, key, duration)
    ids:set(id, phone .. " " .. key .. " " .. duration)
end

-- phone, key and duration_sec of the call with that id, or nil if it was never generated.
function M.lookup(id)
    local v = ids:get(id)
    if v then
        local phone, key, duration = v:match("^(%S+) (%S+) (%d+)$")
        return phone, key, tonumber(duration)
    end
end

-- Builds one generated call. `seed` makes ids unique per phone/position/kind;
-- `started` places it in time; `key` names it in the phone's history.
local function generate(phone, i, seed, started, with_transcripts, key)
    local h = md5(seed)
    local n = tonumber(h:sub(1, 6), 16)
    local status = pick(STATUSES, n)
    local completed = status == "completed"
    local inbound = i % 2 == 1
    local counterpart = fmt("+1415555%04d", 1000 + n % 9000)
    local person = pick(PEOPLE, n)
    local agent = pick(AGENTS, tonumber(h:sub(9, 10), 16))
    local duration = completed and 30 + n % 600 or 0
    local twilio_cents = 10 + (completed and duration * 2 or 0)
    local model_cents = completed and 20 + duration * 3 or 0
    local base_credits = 1 + n % 5
    local id = uuid(h)

    local call = {
        id = id,
        agent_id = agent[1],
        agent_name = agent[2],
        organization_id = ORG_ID,
        caller_number = inbound and counterpart or phone,
        callee_number = inbound and phone or counterpart,
        caller_name = person[1],
        caller_email = person[2],
        channel = n % 7 == 0 and "web" or "phone",
        status = status,
        summary = pick(SUMMARIES[status], n),
        recording_url = completed and ("https://api.example.com/api/v1/calling/sessions/" .. id .. "/recording") or "",
        duration_sec = duration,
        cost_total = fmt("%.2f", (twilio_cents + model_cents) / 100 + base_credits),
        twilio_cost = twilio_cents / 100,
        model_cost = model_cents / 100,
        credit_breakdown = json.raw(json.object({
            model_credits = model_cents / 100,
            provider_credits = twilio_cents / 100,
            telephony_base_credits = base_credits,
        }, CREDIT_KEYS)),
        disconnect_reason = pick(DISCONNECT[status], n),
        call_latency_ms = 400 + n % 900,
        error_message = status == "failed" and "SIP 503 Service Unavailable from carrier" or "",
        post_call_analysis_result = { sentiment = pick(SENTIMENTS, n) },
        metadata = { source = pick(SOURCES, n), direction = inbound and "inbound" or "outbound" },
        started_at = iso(started),
        ended_at = iso(started + duration),
        created_at = iso(started - 2),
    }

    local extra
    if phone == M.SPARSE_PHONE then
        if i == 1 then
            for _, k in ipairs(OPTIONAL_KEYS) do
                call[k] = json.null
            end
        elseif i == 2 then
            for _, k in ipairs(OPTIONAL_KEYS) do
                call[k] = nil
            end
        elseif i == 3 then
            call.cost_total = 7.25
        elseif i == 4 then
            call.sentiment_score = 0.93
            call.tags = { "vip" }
            extra = UNKNOWN_KEYS
        end
    end

    M.register(id, phone, key, duration)
    local text = json.object(call, CALL_KEYS, extra)
    if with_transcripts then
        text = text:sub(1, -2) .. ',"transcripts":' .. transcripts_json(call, started, h, seed, phone, i) .. "}"
    end
    return text
end

-- A call's JSON text as it reads after `version` later updates: the summary
-- filled in, the cost grown by version cents, the status settled. Version 0
-- is the call as first served.
function M.changed(text, version)
    if version == 0 then
        return text
    end
    text = text:gsub('"status":"[^"]*"', '"status":"completed"', 1)
    text = text:gsub('"cost_total":"([%d.]+)"', function(cost)
        return fmt('"cost_total":"%.2f"', tonumber(cost) + version / 100)
    end, 1)
    return (text:gsub('"summary":"([^"]*)"', function(s)
        return '"summary":"' .. s .. ' (update ' .. version .. ')"'
    end, 1))
end

-- E.164 as the API checks it: ^\+[1-9][0-9]{1,14}$
function M.is_e164(phone)
    return type(phone) == "string" and #phone >= 3 and #phone <= 16 and phone:find("^%+[1-9]%d+$") ~= nil
end

-- Number of calls in a phone's history (before any configured shift).
function M.count(phone)
    if phone == EXAMPLE_PHONE then
        return 3
    elseif phone == EXAMPLE_CALLER then
        return 2
    elseif phone == M.LONG_PHONE then
        return 100
    elseif phone == M.SPARSE_PHONE then
        return 5
    end
    local n = phone:match("^%+1555(%d%d%d%d%d%d%d)$")
    if n then
        return tonumber(n)
    end
    -- +1557 PPPP CCC: CCC calls, PPPP telling apart many phones of one size.
    n = phone:match("^%+1557%d%d%d%d(%d%d%d)$")
    return n and tonumber(n) or 0
end

-- Encoded JSON of generated calls. Kept in a shared dict, off the Lua heap, on
-- purpose: this LuaJIT hashes long strings by sampling a few bytes, so
-- thousands of live, similar call texts in a Lua table collide in the string
-- table and made generation ~10x slower than not caching at all.
local cache = ngx.shared.ravan_calls

-- JSON text of the call at 1-based position i (newest first) of phone's history.
function M.call(phone, i, with_transcripts)
    if i == 1 and (phone == EXAMPLE_PHONE or phone == EXAMPLE_CALLER) then
        if not example_call then
            load_example()
        end
        return with_transcripts and example_call or example_call_no_transcripts
    end
    local key = phone .. "#" .. i .. (with_transcripts and "+t" or "")
    local text = cache:get(key)
    if not text then
        text = generate(phone, i, phone .. "#" .. i, T0 - (i - 1) * SPACING, with_transcripts, "b" .. i)
        cache:set(key, text)
    end
    return text
end

function M.cached(key)
    return cache:get(key)
end

function M.cache(key, text)
    cache:set(key, text)
end

-- JSON text of the k-th call inserted by a "shift" (k = 1 is the oldest insert);
-- inserted calls are newer than the whole seeded history.
function M.inserted_call(phone, k, with_transcripts)
    local key = phone .. "#shift" .. k .. (with_transcripts and "+t" or "")
    local text = cache:get(key)
    if not text then
        text = generate(phone, k, phone .. "#shift" .. k, T0 + k * SPACING, with_transcripts, "s" .. k)
        cache:set(key, text)
    end
    return text
end

-- JSON text of the n-th call a mutation inserted mid-history, at `started`
-- (part of the cache key: after a reset the n-th insert may land elsewhere).
-- Its position number is past any special case of the sparse phone.
function M.mid_call(phone, n, started, with_transcripts)
    local key = phone .. "#m" .. n .. "@" .. started .. (with_transcripts and "+t" or "")
    local text = cache:get(key)
    if not text then
        text = generate(phone, 1000000 + n, phone .. "#m" .. n, started, with_transcripts, "m" .. n)
        cache:set(key, text)
    end
    return text
end

-- A call's place in a phone's history is named by a key: "b<i>" the i-th call
-- of the seeded history, "s<k>" the k-th arrival at the head (shift),
-- "m<n>" the n-th call a mutation inserted mid-history (its started_at in
-- `mids`, key -> epoch seconds).
function M.started(key, mids)
    local kind, n = key:match("^(%a)(%d+)$")
    n = tonumber(n)
    if kind == "b" then
        return T0 - (n - 1) * SPACING
    elseif kind == "s" then
        return T0 + n * SPACING
    end
    return mids[key]
end

function M.text(phone, key, with_transcripts, mids)
    local kind, n = key:match("^(%a)(%d+)$")
    n = tonumber(n)
    if kind == "b" then
        return M.call(phone, n, with_transcripts)
    elseif kind == "s" then
        return M.inserted_call(phone, n, with_transcripts)
    end
    return M.mid_call(phone, n, mids[key], with_transcripts)
end

-- Replaces the value of the call's first `"name":` member (top-level: a call's
-- own keys precede its transcripts) with what fn(old value text) returns.
local function set_field(text, name, fn)
    local _, stop = text:find('"' .. name .. '":', 1, true)
    if not stop then
        return text
    end
    local first, last = stop + 1
    local c = text:sub(first, first)
    if c == '"' then
        local j = first + 1
        while true do
            local q = text:find('[\\"]', j)
            if text:sub(q, q) == "\\" then
                j = q + 2
            else
                last = q
                break
            end
        end
    elseif c == "{" or c == "[" then
        last = select(2, text:find(c == "{" and "^%b{}" or "^%b[]", first))
    else
        last = select(2, text:find("^[^,}]*", first))
    end
    return text:sub(1, first - 1) .. fn(text:sub(first, last)) .. text:sub(last + 1)
end

local CYCLES = {
    status = { "completed", "failed", "no-answer", "busy" },
    disconnect_reason = { "user_hangup", "agent_hangup", "error", "no_answer", "busy", "timeout" },
}

local function next_in(list, value)
    for i, v in ipairs(list) do
        if '"' .. v .. '"' == value then
            return '"' .. list[i % #list + 1] .. '"'
        end
    end
    return '"' .. list[1] .. '"'
end

local function plus(value, cents)
    local n = tonumber((value:gsub('"', ""))) or 0
    local text = fmt("%.2f", n + cents / 100)
    return value:sub(1, 1) == '"' and '"' .. text .. '"' or text
end

-- How revision r rewrites a field: every value depends on r, so each revision
-- differs from the one before.
local REVISE = {
    status = function(v) return next_in(CYCLES.status, v) end,
    disconnect_reason = function(v) return next_in(CYCLES.disconnect_reason, v) end,
    cost_total = function(v, r) return plus(v, r) end,
    twilio_cost = function(v, r) return plus(v, r) end,
    model_cost = function(v, r) return plus(v, 2 * r) end,
    call_latency_ms = function(v, r) return tostring((tonumber(v) or 0) + r) end,
    summary = function(v, r)
        local s = v == "null" and "" or v:sub(2, -2):gsub(" %(revision %d+%)$", "")
        return '"' .. s .. " (revision " .. r .. ')"'
    end,
    post_call_analysis_result = function(_, r, h)
        return fmt('{"sentiment":"%s","revision":%d}', pick(SENTIMENTS, h), r)
    end,
    metadata = function(_, r, h)
        return fmt('{"source":"%s","revision":%d}', pick(SOURCES, h), r)
    end,
}
local REVISED = {
    "status", "cost_total", "summary", "post_call_analysis_result", "recording_url", "disconnect_reason",
    "call_latency_ms", "twilio_cost", "model_cost", "metadata",
}

-- recording_url: a recording that appears late, or is re-rendered (a new ?v=).
local function revise_recording(text, r)
    local id = text:match('^{"id":"([^"]+)"')
    return set_field(text, "recording_url", function(v)
        if v == '""' or v == "null" then
            return '"https://api.example.com/api/v1/calling/sessions/' .. (id or "") .. '/recording"'
        end
        return v:gsub("%?v=%d+", ""):sub(1, -2) .. "?v=" .. r .. '"'
    end)
end

-- A call's JSON text after `version` revisions (mutations' changes). `salt`
-- (phone and key) decides which 1 to 3 fields each revision rewrites; status
-- always exists, so a revision that found none of its fields rewrites it.
function M.revised(text, version, salt)
    for r = 1, version do
        local h = tonumber(md5(salt .. "/r" .. r):sub(1, 8), 16)
        local before = text
        for j = 0, h % 3 do
            local name = REVISED[(math.floor(h / 8) + j * 3) % #REVISED + 1]
            if name == "recording_url" then
                text = revise_recording(text, r)
            else
                text = set_field(text, name, function(v) return REVISE[name](v, r, h) end)
            end
        end
        if text == before then
            text = set_field(text, "status", REVISE.status)
        end
    end
    return text
end

local RECORDING = '"recording_url":"https://api%.example%.com(/api/v1/calling/sessions/([^/"]+)/recording[^"]*)"'

-- Points recording URLs at the mock: per call (by a hash of its id) at the API's
-- own origin, at `other_origin`, or nowhere (""), in the shares `rec` gives.
function M.with_recordings(text, rec, origin, other_origin)
    return (text:gsub(RECORDING, function(path, id)
        local x = tonumber(md5(id):sub(1, 4), 16) / 65536
        if x < rec.other then
            return '"recording_url":"' .. other_origin .. path .. '"'
        elseif x < rec.other + rec.empty then
            return '"recording_url":""'
        end
        return '"recording_url":"' .. origin .. path .. '"'
    end))
end

return M
