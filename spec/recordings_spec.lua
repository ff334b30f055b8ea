-- Recordings to files (client:recording, client:recordings) against the local server's
-- recordings: what reached which origin, and what is on the disk afterwards.
local cjson = require "cjson"
local mock = require "spec.support.mock"
local proc = require "spec.support.proc"
local helpers = require "spec.support.helpers"

local PHONE = mock.phones.p250
local unpack = table.unpack or unpack

-- sha256 of a file, by the system's tool: a check that does not share the core's code.
local function sha256(path)
  local out, status = proc.run("sha256sum " .. proc.quote(path))
  assert(status == 0, out)
  return out:match("^(%x+)")
end

-- Names in `dir`, hidden ones too, sorted.
local function listing(dir)
  local out = proc.run("ls -A " .. proc.quote(dir))
  local names = {}
  for name in out:gmatch("[^\n]+") do names[#names + 1] = name end
  table.sort(names)
  return names
end

-- The recording requests the server received for call `id`, oldest first.
local function recording_records(id, listener)
  local out = {}
  for _, rec in ipairs(mock.requests()) do
    if rec.recording == id and (not listener or rec.listener == listener) then out[#out + 1] = rec end
  end
  return out
end

-- The completed calls of PHONE with a recording on `where` ("main" or "other"), shortest first.
local function calls_on(where)
  local other = mock.other_url
  local list = {}
  for _, c in ipairs(mock.dataset(PHONE).calls) do
    local url = c.recording_url
    if url and url ~= "" and (url:sub(1, #other) == other) == (where == "other") then
      list[#list + 1] = c
    end
  end
  table.sort(list, function(a, b) return a.duration_sec < b.duration_sec end)
  return list
end

local function wav_size(call) return 44 + call.duration_sec * 16000 end

describe("recordings", function()
  local dir, client

  before_each(function()
    mock.reset()
    mock.config { recordings = { other = 0.25, empty = 0.1 } }
    dir = proc.tmpdir()
    client = mock.fast_client()
  end)

  after_each(function()
    client:close()
    proc.rmdir(dir)
  end)

  it("sends the credential to the API's origin only, never to another, redirected or not", function()
    local home, away = calls_on("main")[1], calls_on("other")[1]
    local moved = calls_on("main")[2]
    mock.fault { endpoint = "recording", call = moved.id, kind = "redirect", target = "other" }
    local s = assert(client:recordings { calls = { home, away, moved }, dir = dir })
    assert.are.equal(3, s.downloaded)
    local home_recs, away_recs = recording_records(home.id), recording_records(away.id)
    assert.are.equal(1, #home_recs)
    assert.are.equal("main", home_recs[1].listener)
    assert.is_true(home_recs[1].credential)
    assert.are.equal(1, #away_recs)
    assert.are.equal("other", away_recs[1].listener)
    assert.is_false(away_recs[1].credential)
    local hops = recording_records(moved.id)
    assert.are.equal(2, #hops)
    assert.are.same({ "main", true }, { hops[1].listener, hops[1].credential })
    assert.are.same({ "other", false }, { hops[2].listener, hops[2].credential })
    for _, r in ipairs(s.recordings) do
      assert.are.equal(r.bytes, proc.file_size(r.path))
      assert.are.equal(sha256(r.path), r.sha256)
    end
  end)

  it("tells the API's origin as libcurl's URL parser reads it", function()
    local core = require "ravan.core"
    local home = "https://api.ravan.ai"
    for _, url in ipairs { "https://api.ravan.ai/x.wav", "HTTPS://API.Ravan.AI:443/x.wav", "https://api.ravan.ai:443" } do
      assert.is_true(core.same_origin(url, home), url)
    end
    for _, url in ipairs { "http://api.ravan.ai/x.wav", "https://api.ravan.ai:8443/x.wav",
      "https://api.ravan.ai.evil.example/x.wav", "https://user@evil.example/api.ravan.ai", "not a url" } do
      assert.is_false(core.same_origin(url, home), url)
    end
  end)

  it("never follows a redirect from https to http", function()
    local tls = mock.fast_client { base_url = mock.tls_url, ca_file = mock.ca_file }
    local call = calls_on("main")[1]
    mock.fault { endpoint = "recording", call = call.id, kind = "redirect", target = "other" }
    local r, err = tls:recording(call.id, { dir = dir })
    tls:close()
    assert.is_nil(r)
    assert.are.equal("server", err.kind)
    assert.matches("https to http", err.message)
    assert.are.same({ "tls" }, helpers.pluck(recording_records(call.id), "listener"))
    assert.are.same({}, listing(dir))
  end)

  it("names files <id>.<extension> and keeps only them and their sidecars", function()
    local call = calls_on("main")[1]
    local r = assert(client:recording(call, { dir = dir }))
    assert.are.equal(dir .. "/" .. call.id .. ".wav", r.path)
    assert.are.equal(wav_size(call), r.bytes)
    assert.are.same({ "." .. call.id .. ".ravan", call.id .. ".wav" }, listing(dir))
  end)

  it("fetches a bare id from the API's own path, to the path given", function()
    local call = calls_on("other")[1]
    local r = assert(client:recording(call.id, { path = dir .. "/x.wav" }))
    assert.are.equal(dir .. "/x.wav", r.path)
    assert.are.equal(wav_size(call), proc.file_size(r.path))
    local recs = recording_records(call.id)
    assert.are.same({ "main", true }, { recs[1].listener, recs[1].credential })
  end)

  it("resumes a download cut short with Range, and the file is whole", function()
    local call = calls_on("main")[3]
    mock.fault { endpoint = "recording", call = call.id, kind = "truncate", at = 100000 }
    local r = assert(client:recording(call, { dir = dir }))
    local recs = recording_records(call.id)
    assert.are.equal(2, #recs)
    assert.are.equal(cjson.null, recs[1].range)
    assert.are.equal("bytes=100000-", recs[2].range)
    assert.are.equal(206, recs[2].status)
    assert.is_true(r.resumed)
    assert.are.equal(wav_size(call), proc.file_size(r.path))
    assert.are.equal(sha256(r.path), r.sha256)
    -- The same bytes as a download that was never cut.
    local whole = assert(client:recording(call, { path = dir .. "/whole.wav" }))
    assert.are.equal(whole.sha256, r.sha256)
  end)

  it("skips complete files: a re-run downloads nothing", function()
    local calls = { calls_on("main")[1], calls_on("other")[1] }
    local first = assert(client:recordings { calls = calls, dir = dir })
    assert.are.equal(2, first.downloaded)
    local all = mock.requests()
    local seq = ("%d"):format(all[#all].seq)
    local again = assert(client:recordings { calls = calls, dir = dir })
    assert.are.same({ 0, 2, 0 }, { again.downloaded, again.skipped, again.bytes })
    for i, r in ipairs(again.recordings) do
      assert.are.equal(first.recordings[i].sha256, r.sha256)
    end
    local recs = mock.requests(seq)
    assert.are.equal(2, #recs)
    -- Each asks for the bytes after the end of its file, and the server has none.
    local size = {}
    for _, r in ipairs(first.recordings) do size[r.id] = r.bytes end
    for _, rec in ipairs(recs) do
      assert.are.equal("bytes=" .. size[rec.recording] .. "-", rec.range)
      assert.are.equal(416, rec.status)
    end
  end)

  it("downloads a file again when it is not the one the sidecar describes", function()
    local call = calls_on("main")[1]
    local r = assert(client:recording(call, { dir = dir }))
    local f = assert(io.open(r.path, "ab"))
    f:write("x")
    f:close()
    local again = assert(client:recording(call, { dir = dir }))
    assert.are.equal("downloaded", again.outcome)
    assert.are.equal(r.sha256, sha256(again.path))
  end)

  it("streams a recording larger than max_response_bytes (that limit is for JSON)", function()
    local small = mock.fast_client { max_response_bytes = 1024 }
    local call = calls_on("main")[1]
    local r = assert(small:recording(call, { dir = dir }))
    small:close()
    assert.is_true(r.bytes > 1024 * 100)
    assert.are.equal(r.bytes, proc.file_size(r.path))
  end)

  it("reports calls without a recording, 404s and 410s per call, and goes on", function()
    local main = calls_on("main")
    local none
    for _, c in ipairs(mock.dataset(PHONE).calls) do
      if c.recording_url == "" then none = c break end
    end
    mock.fault { endpoint = "recording", call = main[1].id, kind = "status", status = 404 }
    mock.fault { endpoint = "recording", call = main[2].id, kind = "status", status = 410 }
    local s = assert(client:recordings { calls = { main[1], main[2], none, main[3] }, dir = dir })
    local words = helpers.pluck(s.recordings, "outcome")
    assert.are.same({ "missing", "gone", "none", "downloaded" }, words)
    assert.are.equal(404, s.recordings[1].error.status)
    assert.are.equal(410, s.recordings[2].error.status)
    assert.are.same({ 1, 3 }, { s.downloaded, s.missing })
    assert.are.same({ "." .. main[3].id .. ".ravan", main[3].id .. ".wav" }, listing(dir))
  end)

  it("takes the pager's calls, within since and until", function()
    local all = mock.dataset(PHONE).calls
    local since, till = all[20].started_at, all[10].started_at
    local seen = {}
    local s = assert(client:recordings { calls = client:calls { phone = PHONE, limit = 30 },
      dir = dir, since = since, ["until"] = till,
      progress = function(p) seen[#seen + 1] = p.done end })
    assert.are.equal(10, #s.recordings)
    assert.are.equal(10, #seen)
    for _, r in ipairs(s.recordings) do
      local at
      for _, c in ipairs(all) do if c.id == r.id then at = c.started_at end end
      assert.is_true(at >= since and at < till)
    end
  end)

  it("leaves no file under the final name when killed, and a re-run completes it", function()
    local call = calls_on("main")[4]
    mock.fault { endpoint = "recording", call = call.id, kind = "dribble", bytes = 65536, interval_ms = 100 }
    local script = ("local ravan = require 'ravan'; local c = assert(ravan.new{ base_url = %q, api_key = %q });"
      .. " c:recording(%q, { dir = %q })"):format(mock.url, mock.api_key, call.id, dir)
    local out, status = proc.run(proc.lua .. " -e " .. proc.quote(script) .. " >/dev/null 2>&1 & echo $! > "
      .. proc.quote(dir .. "/pid"))
    assert(status == 0, out)
    local temp = dir .. "/." .. call.id .. ".part"
    -- Until the child has written some of the body: it is slowed by the server, not by a clock.
    for _ = 1, 600 do
      if (proc.file_size(temp) or 0) > 0 then break end
      proc.run("sleep 0.05")
    end
    local pid = proc.read_file(dir .. "/pid"):match("%d+")
    proc.run("kill -9 " .. pid .. "; while kill -0 " .. pid .. " 2>/dev/null; do sleep 0.05; done")
    os.remove(dir .. "/pid")
    local partial = proc.file_size(temp)
    assert.is_true(partial > 0 and partial < wav_size(call))
    assert.is_nil(proc.file_size(dir .. "/" .. call.id .. ".wav"))
    local r = assert(client:recording(call, { dir = dir }))
    assert.is_true(r.resumed)
    local recs = recording_records(call.id)
    assert.are.equal("bytes=" .. partial .. "-", recs[#recs].range)
    assert.are.equal(wav_size(call), proc.file_size(r.path))
    assert.are.equal(sha256(r.path), r.sha256)
    assert.are.same({ "." .. call.id .. ".ravan", call.id .. ".wav" }, listing(dir))
  end)

  describe("on the client's engine", function()
    -- The most requests the server was serving at once, from its records' `time`..`done`.
    local function most_at_once(recs)
      local edges = {}
      for _, rec in ipairs(recs) do
        assert(rec.done, "a request was still being answered")
        edges[#edges + 1] = { rec.time, 1 }
        edges[#edges + 1] = { rec.done, -1 }
      end
      -- An end before a start at the same instant: a slot handed straight on is not two.
      table.sort(edges, function(a, b)
        if a[1] ~= b[1] then return a[1] < b[1] end
        return a[2] < b[2]
      end)
      local now, most = 0, 0
      for _, e in ipairs(edges) do
        now = now + e[2]
        if now > most then most = now end
      end
      return most
    end

    local function slow_recordings(calls)
      for _, c in ipairs(calls) do
        mock.fault { endpoint = "recording", call = c.id, kind = "dribble", bytes = 262144, interval_ms = 60 }
      end
    end

    it("shares max_concurrency with the client's other requests, as the server saw it", function()
      client:close()
      client = mock.fast_client { max_concurrency = 2 }
      mock.config { latency_ms = 150 }
      local calls = { unpack(calls_on("main"), 1, 4) }
      slow_recordings(calls)
      local pages = {}
      for p = 1, 3 do
        assert(client:start({ phone = PHONE, page = p, page_size = 10 }, function(page)
          pages[#pages + 1] = page
        end))
      end
      local s = assert(client:recordings { calls = calls, dir = dir })
      -- The pages finished meanwhile; their callbacks wait for a poll.
      for _ = 1, 200 do
        if #pages == 3 then break end
        client:poll(0.05)
      end
      assert.are.equal(4, s.downloaded)
      local recs = mock.requests()
      assert.are.equal(7, #recs)
      assert.are.equal(2, most_at_once(recs))
    end)

    it("stops when the client closes, leaving the partial file for the next run to resume", function()
      local call = calls_on("main")[6]
      slow_recordings { call }
      local task = assert(client:spawn(function() return client:recording(call, { dir = dir }) end))
      local temp = dir .. "/." .. call.id .. ".part"
      for _ = 1, 500 do
        if (proc.file_size(temp) or 0) > 0 then break end
        client:poll(0.02)
      end
      client:close()
      local r, err = task:result()
      assert.is_nil(r)
      assert.are.equal("cancelled", err.kind)
      local partial = proc.file_size(temp)
      assert.is_true(partial > 0 and partial < wav_size(call))
      assert.is_nil(proc.file_size(dir .. "/" .. call.id .. ".wav"))
      client = mock.fast_client()
      r = assert(client:recording(call, { dir = dir }))
      assert.is_true(r.resumed)
      assert.are.equal(sha256(r.path), r.sha256)
    end)

    it("suspends a task instead of blocking: the host's loop turns while files arrive", function()
      local calls = { unpack(calls_on("main"), 1, 3) }
      slow_recordings(calls)
      local seen = {}
      local task = assert(client:spawn(function()
        return client:recordings { calls = calls, dir = dir, progress = function(p) seen[#seen + 1] = p.id end }
      end))
      local turns = 0
      while not task:done() do
        client:poll(0.02)
        turns = turns + 1
      end
      local s = assert(task:result())
      assert.are.equal(3, s.downloaded)
      assert.are.equal(3, #seen)
      -- Each file takes several 60 ms steps of the server's: a loop blocked by the downloads
      -- would have turned once.
      assert.is_true(turns >= 5, "the loop turned " .. turns .. " times")
      for _, c in ipairs(calls) do assert.are.equal(wav_size(c), proc.file_size(dir .. "/" .. c.id .. ".wav")) end
    end)
  end)

  describe("on a disk that cannot take the file", function()
    local mounted

    -- A tmpfs of `opts` over `dir`; nil when this process may not mount.
    local function mount(opts)
      local _, status = proc.run("mount -t tmpfs -o " .. opts .. " ravan-spec " .. proc.quote(dir))
      mounted = status == 0
      return mounted
    end

    after_each(function()
      if mounted then proc.run("umount " .. proc.quote(dir)) end
      mounted = false
    end)

    it("is an io error when the disk is full, and leaves nothing behind", function()
      local call = calls_on("main")[10]
      assert.is_true(wav_size(call) > 512 * 1024)
      if not mount("size=512k") then
        pending("mounting a tmpfs is not allowed here")
        return
      end
      local s, err = client:recordings { calls = { call }, dir = dir }
      assert.is_nil(s)
      assert.are.equal("io", err.kind)
      assert.matches("no space left", err.message)
      assert.are.same({}, listing(dir))
    end)

    it("is an io error when the directory is read-only, and sends nothing", function()
      local call = calls_on("main")[1]
      if not mount("ro,size=1m") then
        pending("mounting a tmpfs is not allowed here")
        return
      end
      local r, err = client:recording(call, { dir = dir })
      assert.is_nil(r)
      assert.are.equal("io", err.kind)
      assert.matches("permission denied", err.message)
      assert.are.same({}, recording_records(call.id))
      assert.are.same({}, listing(dir))
    end)
  end)
end)
