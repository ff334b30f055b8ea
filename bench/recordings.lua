-- Bench o (`make bench-recordings`): 200 recordings of 1 to 10 MB from the local server, by
-- client:recordings (max_concurrency 8) and by curl with `xargs -P8`, in the same run, in
-- alternating rounds; then ravan's peak RSS for those 200 against one small file, and a re-run
-- that must download 0 bytes. Each side runs in its own process (so its RSS is its own), into a
-- fresh directory. Prints markdown.
local cjson = require "cjson"
local mock = require "spec.support.mock"
local proc = require "spec.support.proc"

local N = tonumber(os.getenv("RAVAN_BENCH_N") or "200")
local ROUNDS = tonumber(os.getenv("RAVAN_BENCH_ROUNDS") or "3")
local LUA = os.getenv("RAVAN_BENCH_LUA") or "lua5.4"
local PHONE = mock.phones.p10k

mock.reset()
mock.config { recordings = true }

-- N completed calls whose recordings are 1 to 10 MB, and one small one.
local calls, small = {}, nil
for _, c in ipairs(mock.dataset(PHONE).calls) do
  local size = 44 + c.duration_sec * 16000
  if c.recording_url ~= "" then
    if size >= 1e6 and size <= 10e6 and #calls < N then calls[#calls + 1] = c end
    if size < 1e6 and not small then small = c end
  end
end
assert(#calls == N, "not enough recordings of 1 to 10 MB")
local total, least, most = 0, math.huge, 0
for _, c in ipairs(calls) do
  local size = 44 + c.duration_sec * 16000
  total, least, most = total + size, math.min(least, size), math.max(most, size)
end

local work = proc.tmpdir()
local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end
local slim = {}
for i, c in ipairs(calls) do slim[i] = { id = c.id, recording_url = c.recording_url } end
write(work .. "/calls.json", cjson.encode(slim))
write(work .. "/small.json", cjson.encode { { id = small.id, recording_url = small.recording_url } })
local urls = {}
for i, c in ipairs(calls) do urls[i] = c.recording_url .. " " .. c.id end
write(work .. "/urls.txt", table.concat(urls, "\n") .. "\n")

-- One ravan run in its own process: seconds, bytes downloaded, peak RSS (KiB).
local SCRIPT = [[
local cjson = require "cjson"
local core = require "ravan.core"
local ravan = require "ravan"
local f = assert(io.open(arg[1], "rb"))
local calls = cjson.decode(f:read("*a"))
f:close()
local c = assert(ravan.new { base_url = arg[3], api_key = arg[4], max_concurrency = 8 })
local t0 = core.now()
local s = assert(c:recordings { calls = calls, dir = arg[2] })
local t = core.now() - t0
assert(s.failed == 0 and s.downloaded + s.skipped == #calls, "a download failed")
local st = assert(io.open("/proc/self/status")):read("*a")
print(t, s.bytes, st:match("VmHWM:%s*(%d+)"))
]]
write(work .. "/run.lua", SCRIPT)

local function ravan_run(list, dir)
  local out, status = proc.run(table.concat({ LUA, proc.quote(work .. "/run.lua"), proc.quote(list),
    proc.quote(dir), proc.quote(mock.url), proc.quote(mock.api_key) }, " "))
  assert(status == 0, out)
  local t, bytes, rss = out:match("(%S+)%s+(%S+)%s+(%d+)")
  return tonumber(t), tonumber(bytes), tonumber(rss)
end

local function fresh(name)
  local dir = work .. "/" .. name
  proc.run("rm -rf " .. proc.quote(dir) .. " && mkdir " .. proc.quote(dir))
  return dir
end

local CURL = "xargs -P8 -n2 sh -c 'curl -sSf -H \"X-Api-Key: %s\" -o \"%s/$1.wav\" \"$0\"' < %s"
local function curl_run(dir)
  local t0 = require("ravan.core").now()
  local out, status = proc.run(CURL:format(mock.api_key, dir, proc.quote(work .. "/urls.txt")))
  assert(status == 0, out)
  return require("ravan.core").now() - t0
end

local rows, ratios = {}, {}
for round = 1, ROUNDS do
  -- Who goes first alternates, so neither always meets a server that is just warming up.
  local rt, bytes, rss, ct
  if round % 2 == 0 then ct = curl_run(fresh("curl")) end
  rt, bytes, rss = ravan_run(work .. "/calls.json", fresh("ravan"))
  assert(bytes == total, "ravan downloaded " .. bytes .. " of " .. total .. " bytes")
  if round % 2 == 1 then ct = curl_run(fresh("curl")) end
  rows[#rows + 1] = ("| %d | %.2f s (%.0f MB/s) | %.2f s (%.0f MB/s) | %.2f× | %d MiB |"):format(
    round, rt, total / rt / 1e6, ct, total / ct / 1e6, ct / rt, rss // 1024)
  ratios[#ratios + 1] = ct / rt
end
table.sort(ratios)

-- A re-run over the same directory: nothing new, so nothing downloaded.
local before = mock.requests()
local last = before[#before] and ("%d"):format(before[#before].seq) or nil
local _, rebytes, rerss = ravan_run(work .. "/calls.json", work .. "/ravan")
local body = 0
for _, rec in ipairs(mock.requests(last)) do body = body + (rec.body_bytes_sent or 0) end

local _, _, small_rss = ravan_run(work .. "/small.json", fresh("small"))
local _, _, big_rss = ravan_run(work .. "/calls.json", fresh("ravan"))

print(("### o. %d recordings, %.0f MB in all (%.1f to %.1f MB each), max_concurrency 8 vs curl `xargs -P8`\n")
  :format(N, total / 1e6, least / 1e6, most / 1e6))
print("| round | ravan | curl -P8 | curl time ÷ ravan time | ravan peak RSS |")
print("| --- | --- | --- | --- | --- |")
for _, r in ipairs(rows) do print(r) end
print(("\nMedian throughput ratio (ravan vs curl): %.2f×."):format(ratios[(#ratios + 1) // 2]))
print(("Peak RSS: one %.1f MB file %d KiB; the %d files %d KiB (%.2f×)."):format(
  (44 + small.duration_sec * 16000) / 1e6, small_rss, N, big_rss, big_rss / small_rss))
print(("Re-run over the complete directory: %d bytes downloaded (ravan's count), %d body bytes "
  .. "sent by the server (its 416 answers' short error bodies), peak RSS %d KiB."):format(rebytes, body, rerss))
proc.rmdir(work)
