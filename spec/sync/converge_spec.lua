-- The sync's convergence, as a property: seeded random rounds of mutations on the server
-- (calls changed, deleted and inserted at random depths, arrivals at the head), each followed
-- by a sync, in-process or a `ravan-history sync` killed with kill -9 at a random instant.
-- After every sync that ran to its end, every call started within `lookback` of the newest
-- equals the server's field for field; after every reconciliation the whole database equals
-- the server's dataset (ids, every column, deleted_at exactly for the deleted). The seed is in
-- every failure's message; RAVAN_SEED replays one.
local mock = require "spec.support.mock"
local proc = require "spec.support.proc"
local databases = require "spec.sync.databases"
local compare = require "spec.sync.compare"

local PHONES = { "+15550000030", "+15550000040" }
local PAGE = 5
-- Calls are 15 minutes apart: a window of 12 calls, about 3 pages.
local LOOKBACK = 3 * 3600
local ROUNDS = 50

after_each(databases.remove_files)

local KINDS = {
  { "SQLite", databases.sqlite_url },
  { "PostgreSQL", databases.pg_database },
}

local function mutations(round_seed)
  local list = {}
  for i, phone in ipairs(PHONES) do
    list[i] = {
      phone = phone, seed = round_seed .. "/" .. i,
      changes = math.random(0, 3), deletions = math.random(0, 2),
      insertions = math.random(0, 2), arrivals = math.random(0, 3),
      depth = math.random(2, 45),
    }
  end
  return list
end

-- `ravan-history sync`, killed with kill -9 once the server has seen `after` of its requests
-- (or left to finish, when it makes fewer).
local function killed_run(url, after, reconcile)
  local records = mock.requests()
  local since = #records > 0 and records[#records].seq or 0
  local cmd = string.format([[
%s bin/ravan-history sync %s --db %s --page-size %d --lookback %d %s >/dev/null 2>&1 & p=$!
for i in $(seq 600); do
  kill -0 $p 2>/dev/null || break
  n=$(curl -s "$RAVAN_BASE_URL/__mock/requests?since=%d" | grep -o '"seq"' | wc -l)
  [ "$n" -ge %d ] && break
  sleep 0.005
done
kill -9 $p 2>/dev/null; wait $p]], proc.lua, table.concat(PHONES, " "), proc.quote(url), PAGE,
    LOOKBACK, reconcile and "--reconcile" or "", since, after)
  proc.run(cmd, mock.env())
end

for _, k in ipairs(KINDS) do
  local name, new_url = k[1], k[2]
  describe("sync convergence on " .. name, function()
    -- Its subject is the sync's logic, not the Lua it runs on: checked on the first Lua only.
    local why = proc.skip("a property of many rounds and processes")
    if why then
      pending(why)
      return
    end
    teardown(databases.stop_pg)

    it("keeps the lookback window exact after every sync, and all of it after every reconciliation", function()
      mock.reset()
      local seed = tonumber(os.getenv("RAVAN_SEED")) or os.time()
      math.randomseed(seed)
      local url, cmp = new_url(), compare.new(new_url())
      local c = mock.fast_client()
      local killed, reconciled = 0, 0
      for round = 1, ROUNDS do
        local where = "seed " .. seed .. ", round " .. round .. ": "
        mock.mutate(mutations(seed .. "/" .. round))
        local reconcile = math.random() < 0.3
        if math.random() < 0.25 then
          killed_run(url, math.random(1, 10), reconcile)
          killed = killed + 1
        else
          local s, err = c:sync { phones = PHONES, db = url, page_size = PAGE, lookback = LOOKBACK,
            reconcile = reconcile }
          assert(s, where .. tostring(err))
          assert.are.same({}, s.errors, where)
          for _, phone in ipairs(PHONES) do
            local diff = cmp.differs(url, phone, LOOKBACK)
            assert(not diff, where .. phone .. " (lookback): " .. tostring(diff))
          end
          if reconcile then
            assert.are.equal(#PHONES, s.reconciled, where)
            reconciled = reconciled + 1
            for _, phone in ipairs(PHONES) do
              local diff = cmp.differs(url, phone)
              assert(not diff, where .. phone .. ": " .. tostring(diff))
            end
          end
        end
      end
      c:close()
      cmp.close()
      assert.is_true(killed > 0 and reconciled > 0, "seed " .. seed)
    end)
  end)
end
