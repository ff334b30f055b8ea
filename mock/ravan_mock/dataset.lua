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

-- Builds one generated call. `seed` makes ids unique per phone/position/kind;
-- `started` places it in time.
local function generate(phone, i, seed, started, with_transcripts)
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
        text = generate(phone, i, phone .. "#" .. i, T0 - (i - 1) * SPACING, with_transcripts)
        cache:set(key, text)
    end
    return text
end

-- JSON text of the k-th call inserted by a "shift" (k = 1 is the oldest insert);
-- inserted calls are newer than the whole seeded history.
function M.inserted_call(phone, k, with_transcripts)
    local key = phone .. "#shift" .. k .. (with_transcripts and "+t" or "")
    local text = cache:get(key)
    if not text then
        text = generate(phone, k, phone .. "#shift" .. k, T0 + k * SPACING, with_transcripts)
        cache:set(key, text)
    end
    return text
end

return M
