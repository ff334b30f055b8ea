-- Compares a sync's database with the server's current dataset, field for field: the server's
-- calls are written into a reference database of the same kind by the same store (so each
-- value has the type and form the sync gives it), and the rows of both are compared.
local mock = require "spec.support.mock"
local db_mod = require "ravan.sync.db"
local store = require "ravan.sync.store"

local M = {}

local function fresh_state()
  return { passes = 0, full_passes = 0, reconciles = 0, pass_reconcile = 0 }
end

local LIVE = "SELECT c.* FROM phone_calls l JOIN calls c ON c.id = l.call_id WHERE l.phone = ? "

local function by_id(rows)
  local out = {}
  for _, r in ipairs(rows) do out[r.id] = r end
  return out
end

local function set_of(list)
  local out = {}
  for _, v in ipairs(list) do out[v] = true end
  return out
end

-- `ref_url`: an empty database of the kind to compare, kept for every check.
function M.new(ref_url)
  local self = {}
  local ref = assert(store.open(ref_url))

  -- The reference rows of the phone's current dataset, by id, and the dataset.
  local function reference(phone)
    local data = mock.dataset(phone)
    for _, t in ipairs { "calls", "phone_calls", "transcripts", "sync_state" } do
      assert(ref:exec("DELETE FROM " .. t))
    end
    assert(store.save_page(ref, phone, data.calls, fresh_state(), false))
    return by_id(assert(ref:rows(LIVE, phone))), data
  end

  -- Nil when the database at `url` holds the phone's calls exactly as the server does now
  -- (ids, every column, deleted_at exactly for the calls deleted), else what differs. With
  -- `lookback`, only the calls started within it of the newest are compared, and deleted
  -- calls are not looked at.
  function self.differs(url, phone, lookback)
    local want, data = reference(phone)
    local db = assert(db_mod.open(url))
    local rows = assert(db:rows(LIVE, phone))
    db:close()
    local got = by_id(rows)
    local head = data.calls[1] and store.epoch(data.calls[1].started_at)
    local deleted = set_of(data.deleted or {})
    for id, w in pairs(want) do
      local in_window = not lookback or store.epoch(w.started_at) >= head - lookback
      if in_window then
        local g = got[id]
        if not g then return "call " .. id .. " missing" end
        for k, v in pairs(w) do
          if g[k] ~= v then
            return "call " .. id .. " " .. k .. ": " .. tostring(g[k]) .. ", server " .. tostring(v)
          end
        end
        if g.deleted_at ~= nil then return "call " .. id .. " marked deleted" end
      end
    end
    if lookback then return nil end
    for id, g in pairs(got) do
      if not want[id] then
        if not deleted[id] then return "call " .. id .. " is not the server's" end
        if g.deleted_at == nil then return "deleted call " .. id .. " has no deleted_at" end
      end
    end
    return nil
  end

  function self.close()
    ref:close()
  end
  return self
end

return M
