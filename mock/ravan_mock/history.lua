-- A phone's history as the API serves it now: the seeded calls, the arrivals at
-- its head (shift), the `changes` of its newest calls, and the mutations
-- (POST /__mock/config {"mutations": ...}) that changed, deleted and inserted
-- calls at any depth. Both the API's pages and GET /__mock/dataset read it here.
local json = require "ravan_mock.json"
local dataset = require "ravan_mock.dataset"

local md5, min, max = ngx.md5, math.min, math.max

-- Their own dict: a full one must never evict the config or the fault queue.
local dict = ngx.shared.ravan_mutations

local M = {}

local function state_key(phone)
    return "mut:" .. phone
end

-- A phone's mutations: deleted keys, the calls inserted mid-history (`mids`,
-- key -> started), the revisions of changed calls (`changed`, key -> n), and
-- `version`, unique across resets, naming this state in the view cache.
local function load_state(phone)
    local text = dict:get(state_key(phone))
    return text and json.decode(text)
end

local function store_state(phone, state)
    -- Counted where a reset does not clear it, so no state reuses a version.
    state.version = ngx.shared.ravan_state:incr("mut_version", 1, 0)
    -- cjson writes empty tables as {}, which is what these maps are. safe_set: never
    -- evict another phone's mutations to make room.
    local ok, err = dict:safe_set(state_key(phone), json.encode(state))
    if not ok then
        return "mutations of " .. phone .. " not stored: " .. tostring(err)
    end
end

-- Every key of the history, newest first: the arrivals, then the seeded calls,
-- with the inserted calls merged in by started_at and the deleted ones left out.
local function build(phone, added, state)
    local keys, n = {}, 0
    local mids = {}
    for key, started in pairs(state.mids) do
        mids[#mids + 1] = { key, started }
    end
    table.sort(mids, function(a, b) return a[2] > b[2] end)
    local m = 1
    local function add(key)
        if not state.deleted[key] then
            n = n + 1
            keys[n] = key
        end
    end
    -- The inserted calls newer than `started`, then the call at `started`.
    local function push(key, started)
        while mids[m] and mids[m][2] > started do
            add(mids[m][1])
            m = m + 1
        end
        add(key)
    end
    for k = added, 1, -1 do
        push("s" .. k, dataset.T0 + k * dataset.SPACING)
    end
    for i = 1, dataset.count(phone) do
        push("b" .. i, dataset.T0 - (i - 1) * dataset.SPACING)
    end
    for j = m, #mids do
        add(mids[j][1])
    end
    return keys
end

-- One worker serves every request, so a per-VM cache of the last view of each
-- phone stays coherent: it is named by the state's version and the shift.
local views = {}

-- The phone's history: {total = n, key = function(position) -> key, state}.
function M.view(phone, cfg)
    local added = cfg.shift[phone] or 0
    local state = cfg.mutations[phone] and load_state(phone)
    if not state or (next(state.deleted) == nil and next(state.mids) == nil) then
        return {
            total = dataset.count(phone) + added,
            state = state,
            key = function(pos)
                return pos <= added and "s" .. (added - pos + 1) or "b" .. (pos - added)
            end,
        }
    end
    local cached = views[phone]
    if not (cached and cached.version == state.version and cached.added == added) then
        cached = { version = state.version, added = added, keys = build(phone, added, state) }
        views[phone] = cached
    end
    local keys = cached.keys
    return { total = #keys, state = state, key = function(pos) return keys[pos] end }
end

local function call_text(phone, view, pos, cfg, opts)
    local key = view.key(pos)
    local state = view.state
    local text = dataset.text(phone, key, opts.transcripts, state and state.mids)
    local revisions = state and state.changed[key]
    if revisions then
        -- An inserted call's text depends on its started_at as well as its key.
        local cache_key = phone .. "#" .. key .. "@" .. (state.mids[key] or "") .. "r" .. revisions
            .. (opts.transcripts and "+t" or "")
        local revised = dataset.cached(cache_key)
        if not revised then
            revised = dataset.revised(text, revisions, phone .. "#" .. key)
            dataset.cache(cache_key, revised)
        end
        text = revised
    end
    local changes = cfg.changes[phone]
    if changes and pos <= changes.newest then
        text = dataset.changed(text, changes.version)
    end
    if cfg.recordings then
        text = dataset.with_recordings(text, cfg.recordings, opts.origin, opts.other_origin)
    end
    return text
end

-- JSON texts of the calls at positions first..last (clipped to the history),
-- newest first. opts: transcripts, origin (the API's, for recording URLs),
-- other_origin.
function M.calls(phone, cfg, first, last, opts)
    local view = M.view(phone, cfg)
    local calls, n = {}, 0
    for pos = first, min(last, view.total) do
        n = n + 1
        calls[n] = call_text(phone, view, pos, cfg, opts)
    end
    return calls, view.total
end

-- Checks one mutation spec; returns an error text or nil.
local function invalid(spec)
    if type(spec) ~= "table" or not dataset.is_e164(spec.phone) then
        return "mutations need an E.164 phone"
    end
    if spec.seed == nil or (type(spec.seed) ~= "number" and type(spec.seed) ~= "string") then
        return "mutations need a seed (a number or string)"
    end
    for _, name in ipairs({ "changes", "deletions", "insertions", "arrivals" }) do
        local v = spec[name]
        if v ~= nil and not (type(v) == "number" and v >= 0 and v % 1 == 0) then
            return "mutations." .. name .. " must be an integer >= 0"
        end
    end
    for _, name in ipairs({ "from", "depth" }) do
        local v = spec[name]
        if v ~= nil and not (type(v) == "number" and v >= 1 and v % 1 == 0) then
            return "mutations." .. name .. " must be an integer >= 1"
        end
    end
end

local function count(t)
    local n = 0
    for _ in pairs(t) do
        n = n + 1
    end
    return n
end

-- Applies one checked spec to the phone's history and returns the log of what
-- it did, in order: {op = "delete"|"insert"|"change"|"arrive", id, position (in
-- the history right after that step), started_at (insert), revision (change)}.
-- Every choice comes from md5(seed, phone, draw number), so the same spec on
-- the same history does the same thing.
local function apply(cfg, spec)
    local phone = spec.phone
    local log = {}
    if (spec.arrivals or 0) > 0 then
        cfg.shift[phone] = (cfg.shift[phone] or 0) + spec.arrivals
        for k = 1, spec.arrivals do
            log[#log + 1] = { op = "arrive", position = spec.arrivals - k + 1,
                id = json.decode(dataset.text(phone, "s" .. (cfg.shift[phone] - spec.arrivals + k), false)).id }
        end
    end
    local state = cfg.mutations[phone] and load_state(phone) or { deleted = {}, mids = {}, changed = {}, inserted = 0 }
    local view = M.view(phone, cfg)
    local keys = {}
    for pos = 1, view.total do
        keys[pos] = view.key(pos)
    end
    local draws = 0
    local function draw(n)
        draws = draws + 1
        return tonumber(md5(spec.seed .. "/" .. phone .. "/" .. draws):sub(1, 8), 16) % n
    end
    local function id_of(key)
        return json.decode(dataset.text(phone, key, false, state.mids)).id
    end
    local first = spec.from or 1
    -- A position in first..last of the current history, or nil when there is none.
    local function position(last)
        last = min(spec.depth or math.huge, last)
        if last < first then
            return nil
        end
        return first + draw(last - first + 1)
    end

    for _ = 1, spec.deletions or 0 do
        local pos = position(#keys)
        if not pos then break end
        local key = table.remove(keys, pos)
        state.deleted[key] = true
        log[#log + 1] = { op = "delete", id = id_of(key), position = pos }
    end
    for _ = 1, spec.insertions or 0 do
        -- Mid-history: below the newest call, between two calls at least 2 s apart.
        local pos, started
        for _ = 1, 20 do
            pos = position(#keys + 1)
            if not pos then break end
            pos = max(pos, 2)
            if #keys == 0 then
                pos, started = 1, dataset.T0 - draw(dataset.SPACING)
                break
            end
            local upper = dataset.started(keys[pos - 1], state.mids)
            local lower = keys[pos] and dataset.started(keys[pos], state.mids) or upper - dataset.SPACING
            if upper - lower >= 2 then
                started = lower + 1 + draw(upper - lower - 1)
                break
            end
        end
        if not started then break end
        state.inserted = state.inserted + 1
        local key = "m" .. state.inserted
        state.mids[key] = started
        table.insert(keys, pos, key)
        log[#log + 1] = { op = "insert", id = id_of(key), position = pos,
            started_at = os.date("!%Y-%m-%dT%H:%M:%SZ", started) }
    end
    local picked = {}
    for _ = 1, spec.changes or 0 do
        local pos
        for _ = 1, 20 do
            pos = position(#keys)
            if not pos or not picked[pos] then break end
        end
        if not pos or picked[pos] then break end
        picked[pos] = true
        local key = keys[pos]
        state.changed[key] = (state.changed[key] or 0) + 1
        log[#log + 1] = { op = "change", id = id_of(key), position = pos, revision = state.changed[key] }
    end
    local err = store_state(phone, state)
    if err then
        return nil, err
    end
    local summary = cfg.mutations[phone] or { changed = 0 }
    for _, entry in ipairs(log) do
        if entry.op == "change" then
            summary.changed = summary.changed + 1
        end
    end
    summary.deleted, summary.inserted = count(state.deleted), count(state.mids)
    cfg.mutations[phone] = summary
    return log
end

-- Checks then applies a spec or a list of specs (in order) to cfg; returns the
-- combined log, or nil, err with nothing applied.
function M.mutate(cfg, specs)
    specs = (type(specs) == "table" and specs[1] ~= nil) and specs or { specs }
    for i, spec in ipairs(specs) do
        local err = invalid(spec)
        if err then
            return nil, (#specs > 1 and "mutation " .. i .. ": " or "") .. err
        end
    end
    local log = {}
    for _, spec in ipairs(specs) do
        local done, err = apply(cfg, spec)
        if not done then
            return nil, err
        end
        for _, entry in ipairs(done) do
            entry.phone = spec.phone
            log[#log + 1] = entry
        end
    end
    return log
end

-- Whether the call named by key was deleted from the phone's history.
function M.deleted(phone, key)
    local state = load_state(phone)
    return state ~= nil and state.deleted[key] == true
end

-- Ids of the calls mutations deleted from the phone's history, sorted.
function M.deleted_ids(phone)
    local state = load_state(phone)
    local ids = {}
    for key in pairs(state and state.deleted or {}) do
        ids[#ids + 1] = json.decode(dataset.text(phone, key, false, state.mids)).id
    end
    table.sort(ids)
    return ids
end

function M.clear()
    dict:flush_all()
end

return M
