-- spec/support/mock.lua starts the local server only when a spec first needs it, and stops the
-- one it started when its process ends: specs that need no server run without one.
local socket = require "socket"
local proc = require "spec.support.proc"

-- Whether something listens at `url` (http://127.0.0.1:PORT).
local function listening(url)
  local c = socket.tcp()
  c:settimeout(1)
  local ok = c:connect("127.0.0.1", tonumber(url:match(":(%d+)$")))
  c:close()
  return ok == 1
end

describe("the specs' local server", function()
  local why = proc.skip()
  if why then
    pending(why)
    return
  end

  it("is started on first use, not on require, and stopped when the process ends", function()
    local script = [[
      local mock = require "spec.support.mock"
      print("after require: " .. tostring(rawget(mock, "url")))
      print("phones: " .. mock.phones.example)
      print("url: " .. mock.url)
      mock.reset()
      print("records: " .. #mock.requests())
      print("same: " .. tostring(mock.other_url ~= nil and mock.url == rawget(mock, "url")))
    ]]
    local out, status = proc.run("env -u RAVAN_MOCK_URL -u RAVAN_MOCK_TLS_URL -u RAVAN_MOCK_OTHER_URL"
      .. " -u RAVAN_MOCK_CA " .. proc.lua .. " -e " .. proc.quote(script))
    assert.are.equal(0, status, out)
    assert.matches("^after require: nil\nphones: %+919876543210\nurl: http://127%.0%.0%.1:%d+\n"
      .. "records: 0\nsame: true\n$", out)
    -- Stopping may finish just after the process (5.1 exits without closing its state).
    local url = out:match("url: (%S+)")
    for _ = 1, 100 do
      if not listening(url) then break end
      socket.sleep(0.1)
    end
    assert.is_false(listening(url), url .. " still answers")
  end)

  -- The server's own promises the sync and recording specs build on, checked through luasocket
  -- (spec.support.mock), never through ravan.
  describe("mutations", function()
    local mock = require "spec.support.mock"
    local cjson = require "cjson"
    local P = mock.phones

    -- Every call of the phone, by paging the API itself to the end.
    local function paged(phone, size)
      local calls, total = {}, nil
      for page = 1, math.huge do
        local body, status = mock.get(mock.url .. "/api/v1/calling/phone-history?phone=" .. phone:gsub("%+", "%%2B")
          .. "&page=" .. page .. "&page_size=" .. size, { ["x-api-key"] = mock.api_key })
        assert.are.equal(200, status, body)
        local doc = cjson.decode(body)
        total = doc.total_count
        if #doc.calls == 0 then break end
        for _, call in ipairs(doc.calls) do calls[#calls + 1] = call end
      end
      return calls, total
    end

    before_each(function() mock.reset() end)

    it("are reproducible from their seed, and another seed does otherwise", function()
      local spec = { phone = P.p250, seed = 42, changes = 5, deletions = 3, insertions = 4, arrivals = 2 }
      local log1 = mock.mutate(spec)
      local data1 = mock.dataset(P.p250, true)
      mock.reset()
      local log2 = mock.mutate(spec)
      assert.are.same(log1, log2)
      assert.are.same(data1, mock.dataset(P.p250, true))
      mock.reset()
      spec.seed = 43
      assert.are_not.same(log1, mock.mutate(spec))
      assert.are_not.same(data1.calls, mock.dataset(P.p250, true).calls)
    end)

    it("leave a dataset equal to what paging the API returns, total_count included", function()
      mock.config { recordings = { other = 0.3, empty = 0.2 } }
      mock.mutate { phone = P.p250, seed = 7, changes = 20, deletions = 10, insertions = 15, arrivals = 3 }
      mock.mutate { phone = P.p250, seed = 8, changes = 20, deletions = 5, insertions = 5 }
      local data = mock.dataset(P.p250)
      assert.are.equal(250 + 3 - 15 + 20, data.count)
      assert.are.equal(data.count, data.total_count)
      for _, size in ipairs({ 100, 7 }) do
        local calls, total = paged(P.p250, size)
        assert.are.equal(data.total_count, total)
        assert.are.same(data.calls, calls)
      end
      for i = 2, #data.calls do
        assert.is_true(data.calls[i - 1].started_at > data.calls[i].started_at, "newest first at " .. i)
      end
    end)

    it("delete and insert at the depth asked, and leave the calls above it alone", function()
      local before = mock.dataset(P.p250).calls
      local log = mock.mutate { phone = P.p250, seed = 3, deletions = 2, insertions = 3, from = 200, depth = 240 }
      local data = mock.dataset(P.p250)
      local after = data.calls
      assert.are.equal(250 - 2 + 3, #after)
      assert.are.same(before[199], after[199])
      for i = 1, 199 do assert.are.equal(before[i].id, after[i].id) end
      local present = {}
      for pos, call in ipairs(after) do present[call.id] = pos end
      local deleted, inserted = 0, 0
      for _, entry in ipairs(log) do
        assert.is_true(entry.position >= 200 and entry.position <= 240, cjson.encode(entry))
        if entry.op == "delete" then
          deleted = deleted + 1
          assert.is_nil(present[entry.id])
        elseif entry.op == "insert" then
          inserted = inserted + 1
          local pos = present[entry.id]
          local call = after[pos]
          assert.are.equal(entry.started_at, call.started_at)
          -- Mid-history: older than the call above it, newer than the one below.
          assert.is_true(after[pos - 1].started_at > call.started_at and call.started_at > after[pos + 1].started_at)
        end
      end
      assert.are.equal(2, deleted)
      assert.are.equal(3, inserted)
      local gone = {}
      for _, entry in ipairs(log) do
        if entry.op == "delete" then gone[#gone + 1] = entry.id end
      end
      table.sort(gone)
      assert.are.same(gone, data.deleted)
    end)

    it("change calls at any depth in fields the API has, and only those calls", function()
      local before = mock.dataset(P.p250).calls
      local log = mock.mutate { phone = P.p250, seed = 11, changes = 30 }
      local after = mock.dataset(P.p250).calls
      local changed = {}
      for _, entry in ipairs(log) do
        assert.are.equal("change", entry.op)
        assert.are.equal(before[entry.position].id, entry.id)
        changed[entry.position] = true
      end
      local fields = {}
      for i, call in ipairs(after) do
        assert.are.equal(before[i].id, call.id)
        assert.are.equal(before[i].started_at, call.started_at)
        if changed[i] then
          assert.are_not.same(before[i], call)
          for k, v in pairs(call) do
            if not require("luassert.util").deepcompare(v, before[i][k], true) then fields[k] = true end
          end
        else
          assert.are.same(before[i], call)
        end
      end
      for _, name in ipairs({ "status", "cost_total", "summary", "post_call_analysis_result", "recording_url" }) do
        assert.is_true(fields[name], name .. " never changed")
      end
      -- A second revision of a changed call differs from its first.
      local again = mock.mutate { phone = P.p250, seed = 11, changes = 30 }
      assert.are.equal(2, again[1].revision)
      assert.are_not.same(after[again[1].position], mock.dataset(P.p250).calls[again[1].position])
    end)
  end)

  describe("recordings", function()
    local mock = require "spec.support.mock"
    local P = mock.phones
    local KEY = { ["x-api-key"] = "rk_test_local" }

    -- Bytes compared without printing megabytes of audio on a failure.
    local function same_bytes(expected, got, what)
      if expected == got then return end
      local at = 1
      while expected:byte(at) == got:byte(at) do at = at + 1 end
      error(("%s: %d bytes, %d expected, first difference at byte %d"):format(what or "body", #got, #expected, at), 2)
    end

    local function u32(s, at)
      local a, b, c, d = s:byte(at, at + 3)
      return a + b * 256 + c * 65536 + d * 16777216
    end
    local function u16(s, at)
      local a, b = s:byte(at, at + 1)
      return a + b * 256
    end

    local call, url
    before_each(function()
      mock.reset()
      for _, c in ipairs(mock.dataset(P.p250).calls) do
        if c.duration_sec > 0 then call = c break end
      end
      url = mock.url .. mock.recording_path(call.id)
    end)

    it("are WAV files as long as the call, typed and sized", function()
      local body, status, headers = mock.get(url, KEY)
      assert.are.equal(200, status)
      assert.are.equal("audio/wav", headers["content-type"])
      local data = call.duration_sec * 16000
      assert.are.equal(44 + data, #body)
      assert.are.equal(tostring(#body), headers["content-length"])
      assert.are.equal("RIFF", body:sub(1, 4))
      assert.are.equal(36 + data, u32(body, 5))
      assert.are.equal("WAVEfmt ", body:sub(9, 16))
      assert.are.same({ 16, 1, 1, 8000, 16000, 2, 16 },
        { u32(body, 17), u16(body, 21), u16(body, 23), u32(body, 25), u32(body, 29), u16(body, 33), u16(body, 35) })
      assert.are.equal("data", body:sub(37, 40))
      assert.are.equal(data, u32(body, 41))
      -- Audio, not silence.
      assert.is_truthy(body:sub(45, 1044):find("[^%z]"))
      local rec = mock.requests()[1]
      assert.are.equal(call.id, rec.recording)
      assert.are.equal(#body, rec.body_bytes_sent)
      assert.is_true(rec.credential)
      assert.is_true(rec.done >= rec.time)
    end)

    it("answer ranges with 206 and Content-Range, and unsatisfiable ones with 416", function()
      local whole = mock.get(url, KEY)
      local size = #whole
      local cases = {
        { "bytes=100-199", 100, 199 }, { "bytes=1000-", 1000, size - 1 }, { "bytes=-500", size - 500, size - 1 },
        { "bytes=10-" .. (size + 99), 10, size - 1 },
      }
      for _, case in ipairs(cases) do
        local h = { ["x-api-key"] = "rk_test_local", range = case[1] }
        local body, status, headers = mock.get(url, h)
        assert.are.equal(206, status, case[1])
        assert.are.equal(("bytes %d-%d/%d"):format(case[2], case[3], size), headers["content-range"])
        same_bytes(whole:sub(case[2] + 1, case[3] + 1), body, case[1])
      end
      local _, status, headers = mock.get(url, { ["x-api-key"] = "rk_test_local", range = "bytes=" .. size .. "-" })
      assert.are.equal(416, status)
      assert.are.equal("bytes */" .. size, headers["content-range"])
      local ranges = {}
      for _, rec in ipairs(mock.requests()) do ranges[#ranges + 1] = { rec.range, rec.status, rec.body_bytes_sent } end
      assert.are.same({ "bytes=100-199", 206, 100 }, ranges[2])
      assert.are.equal(416, ranges[#ranges][2])
    end)

    it("carry one ETag, on both origins, and If-Range with another sends the whole file", function()
      local _, _, h1 = mock.get(url, KEY)
      local _, _, h2 = mock.get(url, KEY)
      local _, _, h3 = mock.get(mock.other_url .. mock.recording_path(call.id))
      assert.matches('^"%x+"$', h1.etag)
      assert.are.equal(h1.etag, h2.etag)
      assert.are.equal(h1.etag, h3.etag)
      local _, status = mock.get(url, { ["x-api-key"] = "rk_test_local", range = "bytes=0-9", ["if-range"] = h1.etag })
      assert.are.equal(206, status)
      _, status = mock.get(url, { ["x-api-key"] = "rk_test_local", range = "bytes=0-9", ["if-range"] = '"stale"' })
      assert.are.equal(200, status)
    end)

    it("need the credential on the API's origin, none on the other, which records what it got", function()
      local _, status = mock.get(url)
      assert.are.equal(401, status)
      local body, other_status = mock.get(mock.other_url .. mock.recording_path(call.id))
      assert.are.equal(200, other_status)
      assert.are.equal(44 + call.duration_sec * 16000, #body)
      mock.get(mock.other_url .. mock.recording_path(call.id), KEY)
      local recs = mock.requests()
      assert.are.same({ "main", false, "other", false, "other", true },
        { recs[1].listener, recs[1].credential, recs[2].listener, recs[2].credential, recs[3].listener, recs[3].credential })
    end)

    it("are linked from recording_url on the API's origin, the other origin, or not at all", function()
      mock.config { recordings = { other = 0.4, empty = 0.2 } }
      local seen = { api = 0, other = 0, none = 0 }
      for _, c in ipairs(mock.dataset(P.p250).calls) do
        if c.recording_url == "" then
          seen.none = seen.none + 1
        elseif c.recording_url == mock.other_url .. mock.recording_path(c.id) then
          seen.other = seen.other + 1
        else
          assert.are.equal(mock.url .. mock.recording_path(c.id), c.recording_url)
          seen.api = seen.api + 1
        end
      end
      assert.is_true(seen.api > 0 and seen.other > 0 and seen.none > 0)
      mock.config { recordings = false }
      assert.matches("^https://api%.example%.com/", mock.dataset(P.p250).calls[1].recording_url)
    end)

    it("of deleted calls are gone (410), of unknown ids not found (404)", function()
      local log = mock.mutate { phone = P.p250, seed = 1, deletions = 1, depth = 1 }
      local _, status = mock.get(mock.url .. mock.recording_path(log[1].id), KEY)
      assert.are.equal(410, status)
      _, status = mock.get(mock.url .. mock.recording_path("00000000-0000-4000-8000-00000000dead"), KEY)
      assert.are.equal(404, status)
    end)

    describe("under faults", function()
      local whole
      before_each(function() whole = mock.get(url, KEY); mock.reset() end)

      local function fault(spec)
        spec.endpoint = "recording"
        spec.call = call.id
        mock.fault(spec)
      end

      it("are cut mid-body where asked", function()
        fault { kind = "truncate", at = 5000 }
        local body, status, headers = mock.get(url, KEY)
        assert.are.equal(200, status)
        assert.are.equal(tostring(#whole), headers["content-length"])
        same_bytes(whole:sub(1, 5000), body)
        local rec = mock.requests()[1]
        assert.are.same({ "truncate", 200, 5000 }, { rec.fault, rec.status, rec.body_bytes_sent })
      end)

      it("come slowly, intact", function()
        fault { kind = "dribble", bytes = 65536, interval_ms = 1 }
        local body, status = mock.get(url, KEY)
        assert.are.equal(200, status)
        same_bytes(whole, body)
        assert.are.equal("dribble", mock.requests()[1].fault)
      end)

      it("answer 404 and 410", function()
        fault { kind = "status", status = 404 }
        fault { kind = "status", status = 410 }
        local _, s1 = mock.get(url, KEY)
        local _, s2 = mock.get(url, KEY)
        local _, s3 = mock.get(url, KEY)
        assert.are.same({ 404, 410, 200 }, { s1, s2, s3 })
      end)

      it("redirect to the other origin, which serves it without the key", function()
        fault { kind = "redirect", target = "other" }
        local _, status, headers = mock.get(url, KEY)
        assert.are.equal(302, status)
        assert.are.equal(mock.other_url .. mock.recording_path(call.id), headers.location)
        local body, other_status = mock.get(headers.location)
        assert.are.equal(200, other_status)
        same_bytes(whole, body)
        local recs = mock.requests()
        assert.are.same({ "redirect", "other", false }, { recs[1].fault, recs[2].listener, recs[2].credential })
      end)

      it("announce a wrong Content-Length", function()
        fault { kind = "wrong_length", delta = 1000 }
        local body, status, long_headers = mock.get(url, KEY)
        assert.are.equal(200, status)
        assert.are.equal(tostring(#whole + 1000), long_headers["content-length"])
        same_bytes(whole, body)
        fault { kind = "wrong_length", delta = -1000 }
        local short, short_status, headers = mock.get(url, KEY)
        assert.are.equal(200, short_status)
        assert.are.equal(tostring(#whole - 1000), headers["content-length"])
        -- All of it is sent: a client that trusts the header finds bytes it did not expect.
        same_bytes(whole, short)
      end)

      it("leave the API's requests alone, and API faults leave recordings alone", function()
        fault { kind = "status", status = 500 }
        mock.fault { kind = "status", status = 503 }
        local _, api_status = mock.get(mock.url .. "/api/v1/calling/phone-history?phone=%2B15550000250", KEY)
        local _, rec_status = mock.get(url, KEY)
        assert.are.same({ 503, 500 }, { api_status, rec_status })
      end)
    end)
  end)
end)
