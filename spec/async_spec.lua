-- Requests that do not block (client:start, poll, wait, cancel, result, done, fd, pending) and
-- tasks (client:spawn) against the local server: callbacks only inside poll on the calling
-- thread, out-of-order completion, cancel mid-transfer and mid-back-off (as the server saw it),
-- collection and closing with requests in flight, the fd, max_concurrency, and errors and
-- retries identical to the blocking path for the same faults.
local core = require "ravan.core"
local socket = require "socket"
local ravan = require "ravan"
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"

local P250 = mock.phones.p250
local EXAMPLE = mock.phones.example

local client = mock.fast_client

local function wire_phone(phone)
  return "phone=" .. phone:gsub("^%+", "%%2B")
end

-- The server's records about `phone`.
local function records_of(phone)
  local out = {}
  for _, rec in ipairs(mock.requests()) do
    if ("&" .. rec.query .. "&"):find("&" .. wire_phone(phone) .. "&", 1, true) then
      out[#out + 1] = rec
    end
  end
  return out
end

-- Waits (at most 5 s) until fn() is true: the engine thread and the server act when they act.
local function eventually(fn)
  local deadline = core.now() + 5
  while not fn() and core.now() < deadline do core.sleep(0.02) end
  return fn()
end

-- Polls `c` until `done()` (at most 10 s); returns how many poll delivered in all.
local function poll_until(c, done)
  local n = 0
  local deadline = core.now() + 10
  while not done() and core.now() < deadline do
    n = n + assert(c:poll(0.05))
  end
  return n
end

-- Whether fd is readable now, through luasocket's select (any object with getfd will do).
local function readable(fd)
  local r = socket.select({ { getfd = function() return fd end, dirty = function() return false end } }, nil, 0)
  return #r > 0
end

local function page_of(rec)
  return tonumber(("&" .. rec.query):match("&page=(%d+)"))
end

describe("async requests", function()
  before_each(mock.reset)

  describe("start", function()
    it("returns a request at once and poll delivers the page to its callback", function()
      local c = client()
      local got = {}
      local req = assert(c:start({ phone = EXAMPLE }, function(page, err)
        got[#got + 1] = { page = page, err = err }
      end))
      assert.are.equal(1, c:pending())
      assert.is_true(poll_until(c, function() return #got > 0 end) == 1)
      assert.are.equal(1, #got)
      assert.is_nil(got[1].err)
      assert.are.equal(3, got[1].page.total_count)
      assert.is_true(req:done())
      assert.are.equal(got[1].page, req:result())
      assert.are.equal(0, c:pending())
      -- Delivered once: later polls find nothing.
      assert.are.equal(0, c:poll(0.05))
      assert.are.equal(1, #got)
    end)

    it("checks the query at once and sends nothing for a bad one", function()
      local c = client()
      for _, q in ipairs({ { phone = "12345" }, { phone = EXAMPLE, page = 0 }, { phone = EXAMPLE, pgae = 2 }, "x" }) do
        local req, err = c:start(q)
        assert.is_nil(req)
        assert.are.equal("invalid_argument", err.kind)
      end
      local req, err = c:start({ phone = EXAMPLE }, "not a function")
      assert.is_nil(req)
      assert.are.equal("invalid_argument", err.kind)
      assert.are.equal(0, c:pending())
      -- The engine sends in start order: once a good request started after them is answered,
      -- the server has seen all it will ever see.
      assert(assert(c:start { phone = P250 }):wait())
      local recs = mock.requests()
      assert.are.equal(1, #recs)
      assert.truthy(("&" .. recs[1].query .. "&"):find("&" .. wire_phone(P250) .. "&", 1, true))
    end)

    it("runs in the background: the request reaches the server while the caller does nothing", function()
      mock.config { latency_ms = 300 }
      local c = client()
      local req = assert(c:start { phone = EXAMPLE })
      assert.is_false(req:done())
      assert.is_nil(req:result())
      assert.is_true(eventually(function() return #mock.requests() == 1 end))
      local page = assert(req:wait())
      assert.are.equal(3, page.total_count)
    end)

    it("refuses a closed client and bad poll and wait arguments", function()
      local c = client()
      local req = assert(c:start { phone = EXAMPLE })
      for _, bad in ipairs({ -1, "1", 0 / 0 }) do
        local n, err = c:poll(bad)
        assert.is_nil(n)
        assert.are.equal("invalid_argument", err.kind)
        local res, werr = req:wait(bad)
        assert.is_nil(res)
        assert.are.equal("invalid_argument", werr.kind)
      end
      c:close()
      for _, fn in ipairs({ c.poll, c.fd, c.start }) do
        local r, err = fn(c, { phone = EXAMPLE })
        assert.is_nil(r)
        assert.are.equal("invalid_argument", err.kind)
      end
      local s, err = c:spawn(function() end)
      assert.is_nil(s)
      assert.are.equal("invalid_argument", err.kind)
    end)
  end)

  describe("callbacks", function()
    it("run only inside poll, on the calling thread, never before", function()
      local c = client()
      local ran, where = 0, nil
      assert(c:start({ phone = EXAMPLE }, function()
        ran = ran + 1
        local co, ismain = coroutine.running()
        where = (co == nil or ismain) and "main" or "coroutine"
      end))
      -- The result is in (the fd says poll has work); the callback still waits for poll.
      local fd = assert(c:fd())
      assert.is_true(eventually(function() return readable(fd) end))
      assert.are.equal(200, mock.requests()[1].status)
      assert.are.equal(0, ran)
      assert.are.equal(1, c:poll(5))
      assert.are.equal(1, ran)
      assert.are.equal("main", where)
    end)

    it("in the order requests finish, not the order they started", function()
      mock.config { page_delays = { ["1"] = 1200, ["2"] = 600 } }
      local c = client()
      local order = {}
      for p = 1, 3 do
        assert(c:start({ phone = P250, page = p, page_size = 10 }, function(page)
          order[#order + 1] = page.page
        end))
      end
      poll_until(c, function() return #order == 3 end)
      assert.are.same({ 3, 2, 1 }, order)
    end)

    it("that raise lose nothing for the others; poll returns what they raised", function()
      local raised = {}
      local c2 = client()
      local n_ok = 0
      for i = 1, 3 do
        assert(c2:start({ phone = EXAMPLE }, function()
          if i == 2 then error({ mine = i }) end
          n_ok = n_ok + 1
        end))
      end
      local delivered = 0
      local deadline = core.now() + 10
      while c2:pending() > 0 and core.now() < deadline do
        local n, errs = c2:poll(0.05)
        delivered = delivered + n
        for _, e in ipairs(errs or {}) do raised[#raised + 1] = e end
      end
      assert.are.equal(3, delivered)
      assert.are.equal(2, n_ok)
      assert.are.equal(1, #raised)
      assert.are.same({ mine = 2 }, raised[1])
    end)

    it("may wait for another request: it comes, and the others are delivered after", function()
      local c = client()
      local order = {}
      local slow
      local fast = assert(c:start({ phone = P250, page = 1, page_size = 10 }, function()
        local page = assert(slow:wait())
        order[#order + 1] = "fast saw page " .. page.page
      end))
      -- The fast one is due before the slow one starts: the poll delivers it first, whenever
      -- the slow one comes.
      assert.is_true(eventually(function() return fast:done() end))
      slow = assert(c:start({ phone = P250, page = 2, page_size = 10 }, function()
        order[#order + 1] = "slow"
      end))
      poll_until(c, function() return #order == 2 end)
      assert.are.same({ "fast saw page 2", "slow" }, order)
    end)

    it("are never re-entered: a poll inside a callback delivers nothing itself", function()
      local c = client()
      local depth, max_depth, ran = 0, 0, 0
      for _ = 1, 3 do
        assert(c:start({ phone = EXAMPLE }, function()
          depth = depth + 1
          if depth > max_depth then max_depth = depth end
          ran = ran + 1
          assert.are.equal(0, c:poll(0.2))
          depth = depth - 1
        end))
      end
      poll_until(c, function() return ran == 3 end)
      assert.are.equal(3, ran)
      assert.are.equal(1, max_depth)
    end)
  end)

  describe("where callbacks run", function()
    -- Starts a request whose callback counts its runs and raises `message`, and waits until it
    -- has finished (taken from the engine, its callback due): from then on, whatever delivers
    -- due callbacks runs it.
    local function due_raising(c, message)
      local ran = { n = 0 }
      local req = assert(c:start({ phone = EXAMPLE }, function()
        ran.n = ran.n + 1
        error(message, 0)
      end))
      assert.is_true(eventually(function() return req:done() end))
      return ran
    end

    -- The next poll delivers the due callback and returns what it raised; the one after returns
    -- nothing: each raised error reaches the caller once.
    local function raised_once(c, message)
      local n, errs = c:poll(0)
      local n2, errs2 = c:poll(0)
      assert.are.same({ 1, { message }, 0 }, { n, errs, n2 })
      assert.is_nil(errs2)
    end

    it("inside req:wait, and what they raise there is returned by the next poll, once", function()
      mock.config { page_delays = { ["2"] = 300 } }
      local c = client()
      local ran = due_raising(c, "raised in wait")
      assert(assert(c:start { phone = P250, page = 2, page_size = 10 }):wait())
      assert.are.equal(1, ran.n)
      local n, errs = c:poll(0)
      assert.are.same({ 0, { "raised in wait" } }, { n, errs })
      assert.are.same({ 0 }, { c:poll(0) })
    end)

    it("inside task:wait, and what they raise there is returned by the next poll, once", function()
      local c = client()
      local ran = due_raising(c, "raised in task:wait")
      local task = assert(c:spawn(function() return c:phone_history { phone = EXAMPLE } end))
      assert(task:wait())
      assert.are.equal(1, ran.n)
      local n, errs = c:poll(0)
      assert.are.same({ 0, { "raised in task:wait" } }, { n, errs })
    end)

    it("never inside a blocking pager loop: the next poll runs them", function()
      mock.config { latency_ms = 50 }
      local c = client()
      local ran = due_raising(c, "raised after the loop")
      local n = 0
      -- Five pages, four of them prefetched on the engine while the loop waits for them.
      for _ in c:calls { phone = P250, page_size = 50, prefetch = 2 } do n = n + 1 end
      assert.are.equal(250, n)
      assert.are.equal(0, ran.n)
      raised_once(c, "raised after the loop")
      assert.are.equal(1, ran.n)
    end)

    it("never inside a pager's steps by :next(), however many", function()
      mock.config { latency_ms = 50 }
      local c = client()
      local ran = due_raising(c, "raised after the steps")
      local pager = c:pages { phone = P250, page_size = 50, prefetch = 4 }
      local pages = 0
      while true do
        local page, err = pager:next()
        assert.is_nil(err)
        if not page then break end
        pages = pages + 1
      end
      assert.are.equal(5, pages)
      assert.are.equal(0, ran.n)
      raised_once(c, "raised after the steps")
    end)

    it("never inside client:sync: the next poll runs them", function()
      local c = client()
      local ran = due_raising(c, "raised after the sync")
      local path = os.tmpname()
      os.remove(path)
      local summary, err = c:sync { phones = { EXAMPLE, P250 }, db = "sqlite:" .. path }
      for _, suffix in ipairs { "", "-wal", "-shm" } do os.remove(path .. suffix) end
      assert(summary, tostring(err))
      assert.are.equal(253, summary.inserted)
      assert.are.equal(0, ran.n)
      raised_once(c, "raised after the sync")
    end)

    it("a client closed by a callback delivers nothing more: the rest end cancelled", function()
      local c = client()
      local ran, reqs = {}, {}
      for i = 1, 6 do
        reqs[i] = assert(c:start({ phone = EXAMPLE }, function(page)
          ran[#ran + 1] = page
          c:close()
        end))
      end
      -- All six finished and due before the one poll that delivers them.
      assert.is_true(eventually(function()
        for i = 1, 6 do if not reqs[i]:done() then return false end end
        return true
      end))
      assert.are.equal(1, c:poll(0))
      assert.are.equal(1, #ran)
      assert.are.equal(3, ran[1].total_count)
      local kinds = {}
      for i = 1, 6 do
        local page, err = reqs[i]:result()
        kinds[#kinds + 1] = page and "page" or err.kind
      end
      table.sort(kinds)
      assert.are.same({ "cancelled", "cancelled", "cancelled", "cancelled", "cancelled", "page" }, kinds)
      assert.are.equal(0, c:pending())
    end)
  end)

  describe("wait", function()
    it("blocks until done, running other callbacks meanwhile", function()
      -- A second for the awaited page: the other is answered at once, and comes during the wait.
      mock.config { page_delays = { ["2"] = 1000 } }
      local c = client()
      local other = false
      assert(c:start({ phone = P250, page = 1, page_size = 10 }, function() other = true end))
      local slow = assert(c:start { phone = P250, page = 2, page_size = 10 })
      local page = assert(slow:wait())
      assert.are.equal(2, page.page)
      assert.is_true(other)
    end)

    it("with seconds: answers as result does when they pass first", function()
      mock.fault { kind = "delay", ms = 1500, phone = EXAMPLE }
      local c = client()
      local req = assert(c:start { phone = EXAMPLE })
      local res, err = req:wait(0.1)
      assert.is_nil(res)
      assert.is_nil(err)
      assert.is_false(req:done())
      assert(req:wait())
    end)
  end)

  describe("cancel", function()
    it("mid-transfer: ends it now as cancelled, callback once, never retried", function()
      local phone = "+15550000301"
      mock.fault { kind = "delay", ms = 3000, phone = phone }
      local c = client()
      local calls = {}
      local req = assert(c:start({ phone = phone }, function(page, err)
        calls[#calls + 1] = { page = page, err = err }
      end))
      assert.is_true(eventually(function() return #records_of(phone) == 1 end))
      assert.is_true(req:cancel())
      assert.is_true(req:done())
      local res, err = req:result()
      assert.is_nil(res)
      assert.are.equal("cancelled", err.kind)
      assert.is_false(err.retryable)
      assert.is_false(req:cancel())
      assert.are.equal(1, c:poll(1))
      assert.are.equal(1, #calls)
      assert.are.equal("cancelled", calls[1].err.kind)
      -- The engine let go of the connection: the server's reply finds it closed, and no
      -- second attempt ever comes.
      assert.is_true(eventually(function()
        local recs = records_of(phone)
        return recs[1].status ~= nil and recs[1].status ~= require("cjson").null
      end))
      assert.are.equal(1, #records_of(phone))
      assert.are.equal(0, c:poll(0.1))
      assert.are.equal(1, #calls)
    end)

    it("mid-back-off: no further attempt reaches the server", function()
      local phone = "+15550000302"
      mock.fault { kind = "status", status = 503, retry_after = "1", count = 3, phone = phone }
      local c = client { max_retries = 3 }
      local req = assert(c:start { phone = phone })
      assert.is_true(eventually(function()
        local recs = records_of(phone)
        return #recs == 1 and recs[1].status == 503
      end))
      assert.is_true(req:cancel())
      local _, err = req:result()
      assert.are.equal("cancelled", err.kind)
      -- The retry was due 1 s after the first attempt: once the server's own clock is well
      -- past that (probes tell its time), it still saw only the first.
      local first = records_of(phone)[1].time
      assert.is_true(eventually(function()
        assert(c:phone_history { phone = EXAMPLE })
        local recs = mock.requests()
        return recs[#recs].time >= first + 1.5
      end))
      assert.are.equal(1, #records_of(phone))
    end)

    it("before a slot is free: the queued request never leaves", function()
      local phone = "+15550000303"
      mock.config { latency_ms = 300 }
      local c = client { max_concurrency = 1 }
      local first = assert(c:start { phone = EXAMPLE })
      local queued = assert(c:start { phone = phone })
      assert.is_true(queued:cancel())
      assert(first:wait())
      poll_until(c, function() return c:pending() == 0 end)
      -- One slot, taken in start order: a request started after it is answered only after the
      -- cancelled one would have been sent.
      assert(assert(c:start { phone = P250 }):wait())
      assert.are.same({}, records_of(phone))
      assert.are.equal(1, #records_of(P250))
    end)
  end)

  describe("max_concurrency", function()
    it("keeps at most that many in flight and queues the rest in start order", function()
      mock.config { latency_ms = 400 }
      local c = client { max_concurrency = 2 }
      local order = {}
      for p = 1, 6 do
        assert(c:start({ phone = P250, page = p, page_size = 10 }, function(page)
          order[#order + 1] = page.page
        end))
      end
      poll_until(c, function() return #order == 6 end)
      assert.are.equal(6, #order)
      -- Two in flight at most, as the server saw it: the k-th request can arrive only once k - 2
      -- have been answered, each at least the latency after it arrived.
      local recs = mock.requests()
      assert.are.equal(6, #recs)
      for k = 3, 6 do
        local gap = recs[k].time - recs[k - 2].time
        assert.is_true(gap >= 0.4 - 0.002, "request " .. k .. " arrived " .. gap .. " s after " .. k - 2)
      end
      -- Started in order: the server received 1 and 2 before 3 and 4, and those before 5 and 6.
      local arrival = {}
      for i, rec in ipairs(mock.requests()) do arrival[i] = page_of(rec) end
      for i = 1, 6 do assert.is_true(arrival[i] <= 2 * math.ceil(i / 2), table.concat(arrival, ",")) end
    end)

    it("is validated: 1 to 64", function()
      for _, bad in ipairs({ 0, 65, 1.5, "8" }) do
        local c, err = ravan.new(mock.options { max_concurrency = bad })
        assert.is_nil(c)
        assert.are.equal("invalid_argument", err.kind)
      end
    end)
  end)

  describe("fd", function()
    it("is readable exactly while poll has work", function()
      mock.config { latency_ms = 200 }
      local c = client()
      local fd = assert(c:fd())
      assert.is_false(readable(fd))
      local req = assert(c:start { phone = EXAMPLE })
      assert.is_false(readable(fd))
      assert.is_true(eventually(function() return readable(fd) end))
      -- Still readable until poll has delivered, however often it is looked at.
      assert.is_true(readable(fd))
      assert.are.equal(1, c:poll())
      assert.is_false(readable(fd))
      assert.is_true(req:done())
      -- A cancel is work too: its callback is due.
      local r2 = assert(c:start { phone = EXAMPLE })
      r2:cancel()
      assert.is_true(readable(fd))
      assert.are.equal(1, c:poll())
      assert.is_false(readable(fd))
      -- done() may take a result early; the fd stays readable until poll delivers it.
      local r3 = assert(c:start { phone = EXAMPLE })
      assert.is_true(eventually(function() return r3:done() end))
      assert.is_true(readable(fd))
      assert.are.equal(1, c:poll())
      assert.is_false(readable(fd))
    end)
  end)

  describe("lifetime", function()
    it("a collected request is cancelled and its connection closed", function()
      local phone = "+15550000304"
      mock.fault { kind = "delay", ms = 3000, phone = phone }
      local c = client()
      local before = h.fds()
      local probe = setmetatable({}, { __mode = "v" })
      -- Held until its connection is measured: a GC step while waiting for the server's record
      -- could otherwise cancel it early, and no new connection would be seen.
      local req = assert(c:start { phone = phone })
      probe[1] = req
      assert.is_true(eventually(function() return #records_of(phone) == 1 end))
      local opened = h.new_fds(before, h.fds())
      assert.is_true(#opened >= 1, "no connection was opened")
      req = nil -- luacheck: ignore 311 (the last reference, dropped for the collector)
      h.full_gc()
      assert.is_nil(probe[1])
      assert.are.equal(0, c:pending())
      assert.is_true(eventually(function()
        return #h.still_open(opened) < #opened
      end), "the cancelled transfer's connection stayed open")
      assert.are.equal(0, c:poll(0.1))
      assert.are.equal(1, #records_of(phone))
    end)

    it("a finished request that nobody polls for is not held: poll only counts it", function()
      local c = client()
      local probe = setmetatable({}, { __mode = "v" })
      do
        local req = assert(c:start { phone = EXAMPLE })
        assert.is_true(eventually(function() return req:done() end))
        assert.are.equal(3, req:result().total_count)
        probe[1] = req
      end
      h.full_gc()
      assert.is_nil(probe[1])
      assert.are.equal(1, c:pending())
      assert.is_true(readable(c:fd()))
      assert.are.equal(1, c:poll(0))
      assert.are.equal(0, c:pending())
      assert.is_false(readable(c:fd()))
    end)

    it("the pager's prefetched pages are not held once the loop has them", function()
      local c = client()
      local heap_at = {}
      local n = 0
      for _ in c:pages { phone = mock.phones.p10k, page_size = 100, prefetch = 2 } do
        n = n + 1
        -- A slow loop: every page it asks for next has already arrived.
        core.sleep(0.02)
        if n == 5 or n == 60 then
          page = nil -- luacheck: ignore
          h.full_gc()
          heap_at[n] = collectgarbage("count")
        end
        if n == 60 then break end
      end
      -- Each page's body is ~100 KiB: holding the 55 in between would be megabytes (what grows
      -- is the pager's memory of the ids it yielded, a few hundred KiB).
      assert.is_true(heap_at[60] - heap_at[5] < 1024,
        ("the heap grew by %.0f KiB over 55 pages"):format(heap_at[60] - heap_at[5]))
    end)

    it("a request with a callback is kept by its client until delivered", function()
      local c = client()
      local got
      do
        assert(c:start({ phone = EXAMPLE }, function(page) got = page end))
      end
      h.full_gc()
      assert.are.equal(1, c:pending())
      poll_until(c, function() return got ~= nil end)
      assert.are.equal(3, got.total_count)
    end)

    it("closing a client cancels what is in flight: no callback runs, results say cancelled", function()
      local phone = "+15550000305"
      mock.fault { kind = "delay", ms = 3000, phone = phone, count = 3 }
      local base = h.proc_status("Threads")
      local c = client()
      local ran = 0
      local reqs = {}
      for i = 1, 3 do reqs[i] = assert(c:start({ phone = phone }, function() ran = ran + 1 end)) end
      assert.is_true(eventually(function() return #records_of(phone) == 3 end))
      assert.are.equal(base + 1, h.proc_status("Threads"))
      c:close()
      assert.are.equal(base, h.proc_status("Threads"))
      for i = 1, 3 do
        assert.is_true(reqs[i]:done())
        local _, err = reqs[i]:result()
        assert.are.equal("cancelled", err.kind)
      end
      assert.are.equal(0, ran)
      assert.are.equal(0, c:pending())
      assert.are.equal(3, #records_of(phone))
    end)

    it("a client only making blocking calls starts no thread", function()
      local base = h.proc_status("Threads")
      local c = client()
      assert(c:phone_history { phone = EXAMPLE })
      for _ in c:calls { phone = P250, page_size = 100, prefetch = 0 } do end
      assert.are.equal(base, h.proc_status("Threads"))
      c:close()
    end)
  end)

  describe("errors and retries are the blocking path's", function()
    local cases = {
      { "503 twice, then success", { kind = "status", status = 503, count = 2 } },
      { "429 with Retry-After", { kind = "status", status = 429, retry_after = "0" } },
      { "429 outlasting max_retries", { kind = "status", status = 429, retry_after = "0", count = 3 } },
      { "401 never retried", { kind = "status", status = 401 } },
      { "a reset", { kind = "reset", count = 3 } },
      { "an empty reply, then success", { kind = "empty" } },
      { "a truncated body", { kind = "truncate", count = 3 } },
      { "malformed JSON", { kind = "malformed_json" } },
      { "an HTML 502", { kind = "html", status = 502, count = 3 } },
      { "a same-origin redirect", { kind = "redirect", target = "same" } },
      { "a cross-origin redirect", { kind = "redirect", target = "other" } },
      { "a body over max_response_bytes", { kind = "large", bytes = 200000 } },
      { "a delay past timeout", { kind = "delay", ms = 1500, count = 3 } },
    }
    local opts = { max_response_bytes = 100000, timeout = 0.5 }

    -- What the caller and the server saw: every field of the outcome but the ids that differ.
    local function outcome(page, err)
      local statuses = {}
      for i, rec in ipairs(mock.requests()) do statuses[i] = rec.status end
      if page then return { total = page.total_count, calls = #page.calls, statuses = statuses } end
      return {
        -- libcurl words a timeout with the milliseconds it measured.
        kind = err.kind, message = err.message:gsub("%d+ milliseconds", "N milliseconds"),
        status = err.status, attempts = err.attempts,
        retryable = err.retryable, retry_after = err.retry_after, statuses = statuses,
      }
    end

    for _, case in ipairs(cases) do
      it(case[1], function()
        local c = client(opts)
        mock.fault(case[2])
        local blocking = outcome(c:phone_history { phone = EXAMPLE })
        mock.reset()
        mock.fault(case[2])
        local async = outcome(assert(c:start { phone = EXAMPLE }):wait())
        assert.are.same(blocking, async)
      end)
    end
  end)

  describe("log events", function()
    it("are the blocking path's, once per request", function()
      local events = {}
      local c = client { log = function(ev) events[#events + 1] = ev.event .. ":" .. tostring(ev.attempt) end }
      mock.fault { kind = "status", status = 503 }
      assert(c:phone_history { phone = EXAMPLE })
      local blocking = events
      assert.are.same({ "request:1", "retry:1", "request:2", "response:2" }, blocking)
      events = {}
      mock.fault { kind = "status", status = 503 }
      assert(assert(c:start { phone = EXAMPLE }):wait())
      assert.are.same(blocking, events)
    end)
  end)
end)

describe("after fork()", function()
  before_each(mock.reset)
  local ok, unistd = pcall(require, "posix.unistd")
  if not ok then
    pending("lua-posix (for fork) is not packaged for " .. _VERSION)
    return
  end
  local wait = require "posix.sys.wait"

  it("a child using the parent's engine gets an error at once, never a hang", function()
    local phone = "+15550000309"
    mock.fault { kind = "delay", ms = 3000, phone = phone }
    local c = client()
    assert(assert(c:start { phone = EXAMPLE }):wait())
    local slow = assert(c:start { phone = phone })
    local pid = assert(unistd.fork())
    if pid == 0 then
      local n, perr = c:poll(5)
      local r, serr = c:start { phone = EXAMPLE }
      local w, werr = slow:wait(5)
      local fd, ferr = c:fd()
      local good = n == nil and perr.kind == "invalid_argument" and perr.message:find("fork", 1, true)
        and r == nil and serr.kind == "invalid_argument" and w == nil and werr.kind == "invalid_argument"
        and fd == nil and ferr.kind == "invalid_argument"
      unistd._exit(good and 0 or 1)
    end
    local _, how, status = wait.wait(pid)
    assert.are.same({ "exited", 0 }, { how, status })
    -- The parent's engine goes on.
    assert.is_true(slow:cancel())
    assert(assert(c:start { phone = EXAMPLE }):wait())
  end)
end)

describe("tasks", function()
  before_each(mock.reset)

  -- Every call of P250 with page_size 50, in a task, with the loop each Lua allows.
  local function count_calls(c, ids, prefetch)
    local pager = c:calls { phone = P250, page_size = 50, prefetch = prefetch }
    if _VERSION == "Lua 5.1" and not rawget(_G, "jit") then
      -- 5.1 cannot suspend a coroutine from inside a `for` iterator: step it by hand.
      while true do
        local call, err = pager:next()
        if err then error(err) end
        if not call then break end
        ids[#ids + 1] = call.id
      end
    else
      for call in pager do ids[#ids + 1] = call.id end
    end
    return #ids
  end

  it("run the pager without blocking: the loop keeps turning while pages arrive", function()
    mock.config { latency_ms = 100 }
    local c = client()
    local reference = {}
    for call in c:calls { phone = P250, page_size = 100, prefetch = 0 } do reference[#reference + 1] = call.id end
    for _, prefetch in ipairs({ 0, 2 }) do
      local ids = {}
      local task = assert(c:spawn(count_calls, c, ids, prefetch))
      local frames = 0
      while not task:done() and frames < 10000 do
        frames = frames + 1
        assert(c:poll(0.01))
      end
      assert.are.same({ 250 }, { task:result() })
      assert.are.same(reference, ids)
      -- Five pages at 100 ms each: the loop ran many frames meanwhile.
      assert.is_true(frames > 5, "frames " .. frames)
    end
  end)

  it("phone_history suspends inside a task and returns what the blocking call returns", function()
    local c = client()
    local task = assert(c:spawn(function(phone)
      local page = assert(c:phone_history { phone = phone })
      local _, err = c:phone_history { phone = "+1" }
      return page.total_count, err.kind
    end, EXAMPLE))
    assert.is_false(task:done())
    assert.is_nil(task:result())
    assert.are.same({ 3, "invalid_argument" }, { task:wait() })
  end)

  it("many tasks at once finish, each with its own result", function()
    mock.config { latency_ms = 100 }
    local c = client { max_concurrency = 4 }
    local tasks = {}
    for p = 1, 8 do
      tasks[p] = assert(c:spawn(function()
        return assert(c:phone_history { phone = P250, page = p, page_size = 10 }).page
      end))
    end
    poll_until(c, function()
      for _, t in ipairs(tasks) do if not t:done() then return false end end
      return true
    end)
    for p = 1, 8 do assert.are.equal(p, tasks[p]:result()) end
  end)

  it("report an error raised inside as nil, err", function()
    local c = client()
    local task = assert(c:spawn(function() error({ why = "mine" }) end))
    assert.is_true(task:done())
    local r, err = task:result()
    assert.is_nil(r)
    assert.are.same({ why = "mine" }, err)
    local t_nil = assert(c:spawn(function() error(nil) end))
    assert.is_true(t_nil:done())
    -- error(nil): nil, and the raised nil as the error.
    assert.are.equal(2, select("#", t_nil:result()))
    assert.is_nil((t_nil:result()))
    local t2 = assert(c:spawn(function() coroutine.yield(1) end))
    local _, err2 = t2:result()
    assert.are.equal("invalid_argument", err2.kind)
  end)

  it("cancel: the request it waits on is cancelled and it never resumes", function()
    local phone = "+15550000306"
    mock.fault { kind = "delay", ms = 3000, phone = phone }
    local c = client()
    local after = false
    local task = assert(c:spawn(function()
      c:phone_history { phone = phone }
      after = true
    end))
    assert.is_true(eventually(function() return #records_of(phone) == 1 end))
    assert.is_true(task:cancel())
    assert.is_false(task:cancel())
    local _, err = task:result()
    assert.are.equal("cancelled", err.kind)
    c:poll(0.2)
    assert.is_false(after)
    assert.are.equal(0, c:pending())
  end)

  it("a collected task cancels its request", function()
    local phone = "+15550000307"
    mock.fault { kind = "delay", ms = 3000, phone = phone }
    local c = client()
    local probe = setmetatable({}, { __mode = "v" })
    do
      probe[1] = assert(c:spawn(function() c:phone_history { phone = phone } end))
    end
    assert.is_true(eventually(function() return #records_of(phone) == 1 end))
    h.full_gc()
    assert.is_nil(probe[1])
    assert.are.equal(0, c:pending())
  end)

  it("closing the client cancels its tasks", function()
    local phone = "+15550000308"
    mock.fault { kind = "delay", ms = 3000, phone = phone }
    local c = client()
    local task = assert(c:spawn(function() return c:phone_history { phone = phone } end))
    c:close()
    assert.is_true(task:done())
    local _, err = task:result()
    assert.are.equal("cancelled", err.kind)
  end)
end)
