-- client:sync{ recordings = DIR }: the synced calls' recordings on disk and in the database.
local mock = require "spec.support.mock"
local proc = require "spec.support.proc"
local db_mod = require "ravan.sync.db"
local h = require "spec.support.helpers"

local PHONE = mock.phones.example

describe("sync with recordings", function()
  local dir, client

  before_each(function()
    mock.reset()
    mock.config { recordings = { other = 0.25, empty = 0.1 } }
    dir = proc.tmpdir()
    assert(os.execute("mkdir " .. proc.quote(dir .. "/rec")))
    client = mock.fast_client()
  end)

  after_each(function()
    client:close()
    proc.rmdir(dir)
  end)

  -- The recording requests the server received, in arrival order.
  local function recording_records()
    local out = {}
    for _, rec in ipairs(mock.requests()) do
      if type(rec.recording) == "string" then out[#out + 1] = rec end
    end
    return out
  end

  local function recording_requests() return #recording_records() end

  it("downloads them once and records path, bytes and sha256 per call", function()
    local url = "sqlite:" .. dir .. "/calls.db"
    local s = assert(client:sync { phone = PHONE, db = url, recordings = dir .. "/rec" })
    local with = 0
    for _, c in ipairs(mock.dataset(PHONE).calls) do
      if c.recording_url ~= "" then with = with + 1 end
    end
    assert.are.same({ with, 0, 0 }, { s.recordings.downloaded, s.recordings.skipped, s.recordings.failed })
    local db = assert(db_mod.open(url))
    local rows = assert(db:rows("SELECT call_id, recording_path, recording_bytes, recording_sha256 "
      .. "FROM recordings ORDER BY call_id"))
    db:close()
    assert.are.equal(with, #rows)
    for _, row in ipairs(rows) do
      assert.are.equal(dir .. "/rec/" .. row.call_id .. ".wav", row.recording_path)
      assert.are.equal(tonumber(row.recording_bytes), proc.file_size(row.recording_path))
      local out = proc.run("sha256sum " .. proc.quote(row.recording_path))
      assert.are.equal(row.recording_sha256, out:match("^(%x+)"))
    end
    local before = recording_requests()
    s = assert(client:sync { phone = PHONE, db = url, recordings = dir .. "/rec" })
    assert.are.same({ 0, 0 }, { s.recordings.downloaded, s.recordings.skipped })
    assert.are.equal(before, recording_requests())
  end)

  describe("under the sync's rate budget", function()
    local P250 = mock.phones.p250

    it("paces the recordings on the API's origin as it paces pages", function()
      -- Few recordings, all on the API's origin: a score or so of 250 calls.
      mock.config { recordings = { other = 0, empty = 0.9 } }
      local rate = 3
      local s = assert(client:sync { phone = P250, db = "sqlite:" .. dir .. "/calls.db",
        recordings = dir .. "/rec", rate_limit = { requests = rate, per = 1 } })
      local recs = recording_records()
      assert.is_true(#recs >= 8, #recs .. " recordings")
      assert.are.equal(#recs, s.recordings.downloaded)
      -- One per 1/rate s, but for the few the budget lets go together after an idle spell
      -- (ravan.sync.rate's CATCH_UP): so the server saw them over at least this long. (The
      -- local server answers one at a time, so its arrival times spread even unpaced
      -- downloads: the rate is slower than that.)
      local span = recs[#recs].time - recs[1].time
      local least = (#recs - 1 - 2) / rate
      assert.is_true(span >= least - 0.02, ("%d recordings arrived within %.2f s, not %.2f"):format(#recs, span, least))
    end)

    it("learns from a 429 on a recording, and the file still arrives", function()
      mock.config { recordings = { other = 0, empty = 0.9 } }
      mock.fault { endpoint = "recording", kind = "status", status = 429, retry_after = "1" }
      local s = assert(client:sync { phone = P250, db = "sqlite:" .. dir .. "/calls.db", recordings = dir .. "/rec" })
      assert.are.equal(1, s.rate_limited)
      assert.are.equal(0, s.recordings.failed)
      local recs = recording_records()
      assert.are.equal(#recs - 1, s.recordings.downloaded)
      -- Its call was asked again once the second it was told to wait had passed.
      local limited, again
      for _, rec in ipairs(recs) do
        if rec.status == 429 then
          limited = rec
        elseif limited and rec.recording == limited.recording then
          again = again or rec
        end
      end
      assert.is_true(again.time - limited.time >= 1 - 0.01)
    end)
  end)

  it("is `ravan-history sync --recordings DIR` from the shell", function()
    local with = 0
    for _, c in ipairs(mock.dataset(PHONE).calls) do
      if c.recording_url ~= "" then with = with + 1 end
    end
    local status, out, err = h.run_cli({ "sync", PHONE, "--db", "sqlite:" .. dir .. "/calls.db",
      "--recordings", dir .. "/rec" }, mock.env())
    assert.are.equal(0, status, err)
    assert.matches("; recordings: " .. with .. " downloaded, 0 skipped, 0 failed\n$", out)
  end)
end)
