-- Workers on one PostgreSQL: four `client:sync{ worker = true }` processes on 1,000 phones under
-- the server's limit of 50 requests/s, one killed with kill -9 mid-run and another started
-- later. The server's request log shows each phone fetched by one worker at a time, every phone
-- completed with nothing lost or doubled, and the aggregate rate within the limit.
local mock = require "spec.support.mock"
local proc = require "spec.support.proc"
local postgres = require "spec.support.postgres"
local db_mod = require "ravan.sync.db"

local PHONES, CALLS, LIMIT, LEASE = 1000, 3, 50, 3

-- One worker: a process whose requests carry its name in User-Agent.
-- One worker process (its requests carry its name in User-Agent).
local WORKER = "spec/sync/worker.lua"

local function decode_phone(query)
  local p = query:match("phone=([^&]+)")
  return p and p:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
end

describe("sync workers on one PostgreSQL", function()
  local why = proc.skip("four processes on a thousand phones")
  if why then
    pending(why)
    return
  end
  local pg
  teardown(function()
    if pg then pg.stop() end
  end)

  it("share the phones, one worker a phone at a time, and the rate limit, across a kill -9", function()
    mock.reset()
    pg = postgres.start()
    local url = pg.new_database()
    local phones = {}
    for i = 1, PHONES do phones[i] = string.format("+1557%04d%03d", i, CALLS) end
    local list = os.tmpname()
    local f = assert(io.open(list, "w"))
    f:write(table.concat(phones, "\n"), "\n")
    f:close()
    -- 40 ms a request: two workers on one phone would be in flight together.
    mock.config { rate_limit = { requests = LIMIT, per = 1 }, latency_ms = 40 }
    local function worker(name)
      return string.format("%s %s %s %s %s %d %d", proc.lua, WORKER, proc.quote(list),
        proc.quote(url), name, LEASE, LIMIT)
    end
    -- w1 is killed mid-run (its 1,000 phones take the four at least 20 s); w5 starts after.
    local out = proc.run(string.format([[
%s & w1=$!
%s & %s & %s &
sleep 6
kill -9 $w1; echo killed
sleep 2
%s &
wait]], worker "worker-1", worker "worker-2", worker "worker-3", worker "worker-4",
      worker "worker-5"), mock.env())
    os.remove(list)
    assert.matches("killed", out)
    for i = 2, 5 do assert.matches("worker%-" .. i .. " ok %d+ 0\n", out) end

    -- One worker a phone at a time: no two requests of one phone by two workers overlap.
    local by_phone, api, limited = {}, 0, 0
    local first_t, last_t = math.huge, 0
    for _, r in ipairs(mock.requests()) do
      if r.uri:find("phone%-history") then
        api = api + 1
        if r.status == 429 then limited = limited + 1 end
        local who = tostring(r.headers["user-agent"]):match("worker%-%d")
        local phone = decode_phone(r.query)
        by_phone[phone] = by_phone[phone] or {}
        table.insert(by_phone[phone], { who = who, from = r.time, to = r.done or math.huge })
        if r.time < first_t then first_t = r.time end
        if r.time > last_t then last_t = r.time end
      end
    end
    local killed_made = 0
    for _, reqs in pairs(by_phone) do
      for _, q in ipairs(reqs) do
        if q.who == "worker-1" then killed_made = killed_made + 1 end
      end
    end
    assert.is_true(killed_made > 0, "worker-1 was killed before its first request")
    for phone, reqs in pairs(by_phone) do
      for i = 1, #reqs do
        for j = i + 1, #reqs do
          local a, b = reqs[i], reqs[j]
          if a.who ~= b.who then
            assert(a.to <= b.from or b.to <= a.from, phone .. " fetched by " .. a.who .. " and "
              .. b.who .. " at once")
          end
        end
      end
    end
    -- Each phone read by one worker but those the killed one had begun (at most twice its 8
    -- requests in flight), which another worker read after it died.
    local shared = 0
    for _, reqs in pairs(by_phone) do
      local who = {}
      for _, q in ipairs(reqs) do who[q.who] = true end
      if next(who, next(who)) then
        shared = shared + 1
        assert.is_true(who["worker-1"], "a phone read by two live workers")
      end
    end
    assert.is_true(shared <= 16, shared .. " phones read by two workers")
    -- Every phone completed, each call once.
    local db = assert(db_mod.open(url))
    local row = assert(db:rows("SELECT count(*) AS n FROM sync_state WHERE passes > 0 "
      .. "AND pass_page IS NULL"))[1]
    assert.are.equal(PHONES, tonumber(row.n))
    row = assert(db:rows("SELECT count(*) AS n, count(DISTINCT call_id) AS d FROM phone_calls"))[1]
    assert.are.same({ PHONES * CALLS, PHONES * CALLS }, { tonumber(row.n), tonumber(row.d) })
    row = assert(db:rows("SELECT count(*) AS n FROM calls"))[1]
    assert.are.equal(PHONES * CALLS, tonumber(row.n))
    db:close()
    -- The aggregate rate within the limit: few 429s (workers joining and leaving move the
    -- shares for up to a heartbeat), and no more than the limit over the run.
    assert(limited <= 0.02 * api, limited .. " 429s of " .. api)
    assert((api - limited) / (last_t - first_t) <= LIMIT * 1.05,
      (api - limited) .. " answered in " .. (last_t - first_t) .. " s")
  end)
end)
