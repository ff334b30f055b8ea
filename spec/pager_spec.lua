-- The lazy pager (client:pages, client:calls, ravan.pages, ravan.calls) against the local
-- server, which counts and records every request: laziness, limit, every end condition, a
-- lying total_count, duplicates across a shift, errors mid-iteration, early break, ordered
-- prefetch under out-of-order completion, and the N+1 bound on pages held.
local cjson = require "cjson"
local core = require "ravan.core"
local ravan = require "ravan"
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"
local proc = require "spec.support.proc"

local P250 = mock.phones.p250

local client = mock.fast_client

local function page_of(rec)
  return tonumber(("&" .. rec.query):match("&page=(%d+)"))
end

-- The page numbers the server was asked for about `phone` (default P250), in arrival order.
-- Specs that cancel transfers use phones of their own: a cancelled request may still reach
-- the server after the next spec's reset.
local function requested(phone)
  local wire = "phone=" .. (phone or P250):gsub("^%+", "%%2B")
  local pages = {}
  for _, rec in ipairs(mock.requests()) do
    if ("&" .. rec.query .. "&"):find("&" .. wire .. "&", 1, true) then
      pages[#pages + 1] = page_of(rec)
    end
  end
  return pages
end

-- Polls until the server has `n` requests about `phone` (or 5 s pass): requests the helper
-- thread sends arrive when they arrive, more so on a loaded machine or under valgrind.
local function await_requests(n, phone)
  local deadline = core.now() + 5
  while #requested(phone) < n and core.now() < deadline do core.sleep(0.02) end
  return requested(phone)
end

local function max_of(list)
  local m = 0
  for _, v in ipairs(list) do if v > m then m = v end end
  return m
end

local function collect(iter)
  local out = {}
  for item in iter do out[#out + 1] = item end
  return out
end

local function ids_of(calls)
  return h.pluck(calls, "id")
end

-- Threads of this process: a client's engine thread shows up here once it prefetches, and
-- leaves when the client is closed or collected (so collect first).
local function threads()
  h.full_gc()
  return h.proc_status("Threads")
end

-- The ids of the 250-call history, read one plain page_size=100 request at a time.
local function reference_ids(c)
  local ids = {}
  for page = 1, 3 do
    local res = assert(c:phone_history { phone = P250, page = page, page_size = 100 })
    for _, call in ipairs(res.calls) do ids[#ids + 1] = call.id end
  end
  return ids
end

describe("the pager", function()
  before_each(mock.reset)

  describe("is lazy", function()
    it("sends nothing when the iterator is made, and one page at a time with prefetch = 0", function()
      local c = client()
      local pager = c:calls { phone = P250, page_size = 10, prefetch = 0 }
      assert.are.same({}, requested())
      for _ = 1, 10 do assert.is_table(pager:next()) end
      assert.are.same({ 1 }, requested())
      assert.is_table(pager:next())
      assert.are.same({ 1, 2 }, requested())
      pager:close()
    end)

    it("after the first page asks only for the prefetch window", function()
      local c = client()
      local pager = c:calls { phone = P250, page_size = 10, prefetch = 2 }
      assert.are.same({}, requested())
      assert.is_table(pager:next())
      await_requests(3)
      core.sleep(0.1) -- time for a request too many to show up
      local pages = requested()
      table.sort(pages)
      assert.are.same({ 1, 2, 3 }, pages)
      pager:close()
    end)

    it("uses page_size 100 unless the query names one", function()
      local calls = collect(client():calls { phone = P250 })
      assert.are.equal(250, #calls)
      for _, rec in ipairs(mock.requests()) do
        assert.truthy(rec.query:find("page_size=100", 1, true), rec.query)
      end
    end)
  end)

  describe("yields", function()
    it("every call once, in server order, whatever the prefetch", function()
      local c = client()
      local want = reference_ids(c)
      for _, prefetch in ipairs({ 0, 1, 2, 5, 16 }) do
        assert.are.same(want, ids_of(collect(c:calls { phone = P250, page_size = 30, prefetch = prefetch })))
      end
    end)

    it("pages that are phone_history results, in order", function()
      local pages = collect(client():pages { phone = P250, page_size = 100, prefetch = 2 })
      assert.are.equal(3, #pages)
      for i, page in ipairs(pages) do
        assert.are.equal(i, page.page)
        assert.are.equal(250, page.total_count)
        assert.is_true(page.success)
      end
      assert.are.equal(50, #pages[3].calls)
    end)

    it("from the page the query names", function()
      local c = client()
      local want = reference_ids(c)
      local calls = collect(c:calls { phone = P250, page = 3, page_size = 100 })
      assert.are.equal(50, #calls)
      assert.are.equal(want[201], calls[1].id)
    end)

    -- The default client reads the environment, which only a child process can be given.
    local function on_the_default_client()
      local script = [[
        local ravan = require "ravan"
        local phone = os.getenv("PHONE")
        local n, pages = 0, 0
        for _ in ravan.calls { phone = phone, page_size = 100 } do n = n + 1 end
        for _ in ravan.pages { phone = phone, page_size = 100, prefetch = 0 } do pages = pages + 1 end
        local _, err = ravan.calls({ phone = "+1" }):next()
        print(n, pages, ravan.is_error(err) and err.kind)
      ]]
      local out, status = proc.run(proc.lua .. " -e " .. proc.quote(script), mock.env { PHONE = P250 })
      assert.are.equal(0, status, out)
      assert.are.equal("250\t3\tinvalid_argument\n", out)
      -- Both loops asked the server, with the environment's credential.
      assert.are.same({ 1, 2, 3, 1, 2, 3 }, requested())
      for _, rec in ipairs(mock.requests()) do
        assert.are.equal(mock.api_key, rec.headers["x-api-key"])
      end
    end
    local why = proc.skip() or package.preload["ravan.core"]
      and "the child Lua cannot load the core this host (make tsan) has built in"
    if why then
      pending("on the default client too: " .. why)
    else
      it("on the default client too (ravan.pages, ravan.calls)", on_the_default_client)
    end
  end)

  describe("limit", function()
    it("caps the calls and requests no page beyond what it needs", function()
      for _, prefetch in ipairs({ 0, 4 }) do
        mock.reset()
        local calls = collect(client():calls { phone = P250, page_size = 10, limit = 25, prefetch = prefetch })
        assert.are.equal(25, #calls)
        core.sleep(0.05)
        assert.are.equal(3, max_of(requested()))
        assert.are.equal(3, #requested())
      end
    end)

    it("trims the last page a pages iterator yields", function()
      local pages = collect(client():pages { phone = P250, page_size = 10, limit = 25 })
      assert.are.equal(3, #pages)
      assert.are.equal(5, #pages[3].calls)
    end)

    it("is validated with the query, and an unknown key names the nearest one", function()
      local c = client()
      for _, bad in ipairs({
        { phone = P250, limit = 0 }, { phone = P250, limit = 1.5 }, { phone = P250, limit = "9" },
        { phone = P250, prefetch = -1 }, { phone = P250, prefetch = 17 }, { phone = P250, prefetch = 0.5 },
        { phone = P250, page_size = 101 }, { phone = "4155550100" }, { page = 2 },
      }) do
        local ok, err = pcall(collect, c:calls(bad))
        assert.is_false(ok)
        assert.is_true(ravan.is_error(err))
        assert.are.equal("invalid_argument", err.kind)
      end
      local _, err = c:pages({ phone = P250, limt = 5 }):next()
      assert.are.equal("unknown query option 'limt' (did you mean 'limit'?)", err.message)
      _, err = c:calls("+15550000250"):next()
      assert.are.equal("invalid_argument", err.kind)
      assert.are.same({}, requested())
    end)
  end)

  describe("ends", function()
    it("when the pages cover total_count", function()
      local calls = collect(client():calls { phone = P250, page_size = 50, prefetch = 0 })
      assert.are.equal(250, #calls)
      assert.are.same({ 1, 2, 3, 4, 5 }, requested())
    end)

    it("on a short page", function()
      mock.config { total_count = { phone = P250, value = 1000 } }
      local calls = collect(client():calls { phone = P250, page_size = 100, prefetch = 0 })
      assert.are.equal(250, #calls)
      assert.are.same({ 1, 2, 3 }, requested())
    end)

    it("on an empty page", function()
      mock.config { total_count = { phone = P250, value = 1000 } }
      local calls = collect(client():calls { phone = P250, page_size = 50, prefetch = 0 })
      assert.are.equal(250, #calls)
      assert.are.same({ 1, 2, 3, 4, 5, 6 }, requested())
    end)

    it("at once for an empty history", function()
      assert.are.same({}, collect(client():pages { phone = mock.phones.none }))
      assert.are.same({ 1 }, requested(mock.phones.none))
    end)

    it("when total_count says more than there is, with prefetch cancelling what is past the end", function()
      local phone = "+15550000270"
      mock.config { total_count = { phone = phone, value = 100000 } }
      local t0 = threads()
      local calls = collect(client():calls { phone = phone, page_size = 50, prefetch = 4 })
      assert.are.equal(270, #calls)
      assert.are.equal(t0, threads())
      assert.is_true(max_of(requested(phone)) <= 6 + 4)
    end)

    it("when total_count says less than there is, at total_count", function()
      mock.config { total_count = { phone = P250, value = 30 } }
      for _, prefetch in ipairs({ 0, 3 }) do
        mock.reset()
        mock.config { total_count = { phone = P250, value = 30 } }
        local calls = collect(client():calls { phone = P250, page_size = 10, prefetch = prefetch })
        assert.are.equal(30, #calls)
        core.sleep(0.05)
        assert.are.equal(3, max_of(requested()))
      end
    end)

    it("when a full page brings nothing new (a server that ignores page)", function()
      local c = client()
      local first = assert(c:phone_history { phone = P250, page = 1, page_size = 10 })
      first.page, first.total_count = 2, 100000
      mock.reset()
      mock.fault { kind = "status", status = 200, phone = P250, page = 2, body = cjson.encode(first) }
      local calls = collect(c:calls { phone = P250, page_size = 10, prefetch = 0 })
      assert.are.equal(10, #calls)
      assert.are.same({ 1, 2 }, requested())
    end)

    it("with a decode error when the server answers another page than the one asked", function()
      local c = client()
      local first = assert(c:phone_history { phone = P250, page = 1, page_size = 10 })
      mock.reset()
      mock.fault { kind = "status", status = 200, phone = P250, page = 2, body = cjson.encode(first) }
      local ok, err = pcall(collect, c:calls { phone = P250, page_size = 10, prefetch = 0 })
      assert.is_false(ok)
      assert.are.equal("decode", err.kind)
      assert.are.equal("asked for page 2, the server answered page 1", err.message)
    end)
  end)

  describe("de-duplicates", function()
    it("nothing by an id that cannot tell calls apart (NaN, objects, booleans), without raising", function()
      local body = '{"success":true,"message":"ok","phone":"' .. P250 .. '","total_count":5,'
        .. '"page":1,"page_size":10,"calls":[{"id":NaN},{"id":NaN},{"id":{"a":1}},{"id":true},'
        .. '{"id":[1]}]}'
      mock.fault({ kind = "malformed_json", body = body })
      local pager = client():calls { phone = P250, page_size = 10, prefetch = 0 }
      local ok, calls = pcall(collect, pager)
      assert.is_true(ok, tostring(calls))
      assert.are.equal(5, #calls)
    end)


    it("calls that a shift pushes onto the next page", function()
      local c = client()
      local want = reference_ids(c)
      mock.reset()
      local calls, shifted = {}, false
      for call in c:calls { phone = P250, page_size = 10, prefetch = 0 } do
        calls[#calls + 1] = call
        if #calls == 10 and not shifted then
          -- Five calls arrive at the top of the history while page 1 is being read.
          mock.config { shift = { phone = P250, add = 5 } }
          shifted = true
        end
      end
      assert.are.same(want, ids_of(calls))
      -- total_count grew to 255, so the pager followed it to a 26th page.
      assert.are.equal(26, max_of(requested()))
    end)

    it("with prefetch, still yielding each id once", function()
      local c = client()
      local seen, n = {}, 0
      for call in c:calls { phone = P250, page_size = 10, prefetch = 3 } do
        assert.is_nil(seen[call.id], "duplicate " .. call.id)
        seen[call.id] = true
        n = n + 1
        if n == 35 then mock.config { shift = { phone = P250, add = 7 } } end
      end
      assert.are.equal(250, n)
    end)
  end)

  describe("errors mid-iteration", function()
    it("are raised from the for loop as the structured error, after the earlier pages", function()
      mock.fault { kind = "status", status = 400, phone = P250, page = 3 }
      for _, prefetch in ipairs({ 0, 2 }) do
        if prefetch > 0 then mock.fault { kind = "status", status = 400, phone = P250, page = 3 } end
        local n = 0
        local ok, err = pcall(function()
          for _ in client():calls { phone = P250, page_size = 10, prefetch = prefetch } do n = n + 1 end
        end)
        assert.is_false(ok)
        assert.is_true(ravan.is_error(err))
        assert.are.equal("bad_request", err.kind)
        assert.are.equal(400, err.status)
        assert.are.equal(20, n)
      end
    end)

    it("come from :next() as nil, err, and keep coming", function()
      mock.fault { kind = "status", status = 401, phone = P250, page = 2 }
      local pager = client():pages { phone = P250, page_size = 100 }
      assert.is_table(pager:next())
      local item, err = pager:next()
      assert.is_nil(item)
      assert.are.equal("auth", err.kind)
      local again, err2 = pager:next()
      assert.is_nil(again)
      assert.are.equal(err, err2)
    end)

    it("fail a page only after its own retries", function()
      mock.fault { kind = "status", status = 503, count = 1, phone = P250, page = 2 }
      mock.fault { kind = "status", status = 503, count = 3, phone = P250, page = 3 }
      local pager = client():pages { phone = P250, page_size = 100, prefetch = 2 }
      assert.is_table(pager:next())
      local page2 = assert(pager:next())
      assert.are.equal(2, page2.page)
      local _, err = pager:next()
      assert.are.equal("server", err.kind)
      assert.are.equal(3, err.attempts)
      local per_page = {}
      for _, p in ipairs(requested()) do per_page[p] = (per_page[p] or 0) + 1 end
      assert.are.same({ 1, 2, 3 }, per_page)
    end)

    it("include a decode failure on a later page", function()
      mock.fault { kind = "malformed_json", phone = P250, page = 2 }
      local ok, err = pcall(collect, client():calls { phone = P250, page_size = 100, prefetch = 1 })
      assert.is_false(ok)
      assert.are.equal("decode", err.kind)
    end)
  end)

  describe("breaking out", function()
    it("stops requests and frees the transfers in flight", function()
      -- Pages 3 and 4 take a minute, so they are still in flight when the loop breaks on page
      -- 2, and a close that waited for them could not be mistaken for a slow machine.
      mock.config { page_delays = { ["3"] = 60000, ["4"] = 60000 } }
      local base = threads()
      local phone = "+15550000260"
      local c = client()
      local iter, state, control, closing = c:calls { phone = phone, page_size = 10, prefetch = 3 }
      local n, during = 0, nil
      local t_break
      for _ in iter, state, control, closing do
        n = n + 1
        if n == 11 then
          during = iter:stats()
          during.threads = threads()
          t_break = core.now()
          break
        end
      end
      assert.are.equal(3, during.pending)
      assert.are.equal(base + 1, during.threads)
      if _VERSION == "Lua 5.4" then
        -- The for loop closed the pager (its fourth value) at the break.
        assert.are.equal(0, iter:stats().pending)
      else
        iter:close()
      end
      assert.is_true(core.now() - t_break < 30, "close waited for the slow pages")
      -- The engine thread is the client's: closing the client joins it.
      c:close()
      assert.are.equal(base, threads())
      -- Nothing is asked after the break; what was in flight (3, 4, and 5 if it had left
      -- by then) is all the server ever sees.
      core.sleep(0.3)
      local pages = requested(phone)
      table.sort(pages)
      assert.are.same({ 1, 2 }, { pages[1], pages[2] })
      assert.is_true(#pages <= 5 and max_of(pages) <= 5)
      assert.is_nil(iter:next())
    end)

    it("lets a dropped pager and its client be collected and the engine thread joined", function()
      local base = threads()
      do
        local pager = client():calls { phone = P250, page_size = 10, prefetch = 2 }
        assert.is_table(pager:next())
        assert.are.equal(base + 1, threads())
      end
      collectgarbage()
      collectgarbage()
      assert.are.equal(base, threads())
    end)

    it("ends when its client is closed, prefetcher and held calls included", function()
      for _, prefetch in ipairs({ 0, 2 }) do
        mock.reset()
        local base = threads()
        local c = client()
        local pager = c:calls { phone = P250, page_size = 10, prefetch = prefetch }
        for _ = 1, 12 do assert.is_table(pager:next()) end
        c:close()
        local item, err = pager:next()
        assert.is_nil(item)
        assert.are.equal("invalid_argument", err.kind)
        assert.matches("closed", err.message)
        assert.are.equal(base, threads(), "the prefetcher's thread is still there")
        assert.are.same({ nil, err }, { pager:next() })
        assert.is_table(pager:stats())
      end
    end)

    it("stops at once when the log callback closes it", function()
      for _, prefetch in ipairs({ 0, 2 }) do
        mock.reset()
        local pager
        local c = client({ log = function(ev)
          if ev.event == "response" and pager then pager:close() end
        end })
        pager = c:pages { phone = P250, page_size = 10, prefetch = prefetch }
        assert.is_nil(pager:next())
        assert.is_nil(pager:next())
        assert.are.same({ 1 }, requested())
      end
    end)

    -- lua-posix, for fork(), is packaged for Lua 5.1 to 5.3 and LuaJIT, not 5.4.
    local has_posix, unistd = pcall(require, "posix.unistd")
    local fork_it = has_posix and it or pending
    fork_it("fails at once in a child of fork(), whose copy has no helper thread", function()
      local wait, signal = require "posix.sys.wait", require "posix.signal"
      -- Page 2 is still in flight on the parent's helper thread when the child takes it.
      mock.config { page_delays = { ["2"] = 2000 } }
      local pager = client():pages { phone = P250, page_size = 10, prefetch = 2 }
      assert.is_table(pager:next())
      await_requests(2)
      local pid = assert(unistd.fork())
      if pid == 0 then
        local page, err = pager:next()
        pager:close()
        local good = page == nil and err and err.kind == "invalid_argument"
          and err.message:find("fork()", 1, true) ~= nil
        unistd._exit(good and 0 or 1)
      end
      -- A child that waits on a thread it does not have never ends: it is stopped after a while
      -- far longer than the answer takes, and that is the failure.
      -- (wait with WNOHANG answers pid 0 while the child runs.)
      local done, how, status
      for _ = 1, 300 do
        done, how, status = wait.wait(pid, wait.WNOHANG)
        if done ~= 0 then break end
        core.sleep(0.05)
      end
      if done == 0 then
        signal.kill(pid, signal.SIGKILL)
        wait.wait(pid)
        how, status = "running", "after 15 s"
      end
      assert.are.same({ "exited", 0 }, { how, status })
      -- The parent's pager goes on.
      assert.are.equal(2, pager:next().page)
      pager:close()
    end)

    it("needs no thread at all with prefetch = 0", function()
      local base = threads()
      local pager = client():calls { phone = P250, page_size = 10, prefetch = 0 }
      for _ = 1, 15 do
        local call, err = pager:next()
        assert.is_nil(err)
        assert.are.equal("table", type(call))
      end
      assert.are.same({ 1, 2 }, requested())
      assert.are.equal(base, threads())
      pager:close()
    end)
  end)

  describe("prefetch", function()
    it("yields pages in order when they complete out of order", function()
      -- Page 2 is slow, so pages 3 and 4 finish first.
      mock.config { page_delays = { ["2"] = 2500 } }
      local function answered()
        local done = {}
        for _, rec in ipairs(mock.requests()) do done[page_of(rec)] = rec.status ~= cjson.null end
        return done
      end
      local c = client()
      local order, status_seen = {}, nil
      for page in c:pages { phone = P250, page_size = 10, limit = 40, prefetch = 3 } do
        order[#order + 1] = page.page
        if page.page == 1 then
          local deadline = core.now() + 2
          repeat
            core.sleep(0.05)
            status_seen = answered()
          until (status_seen[3] and status_seen[4]) or core.now() > deadline
        end
      end
      assert.are.same({ 1, 2, 3, 4 }, order)
      -- While the loop held page 1, pages 3 and 4 were answered and page 2 was not.
      assert.are.same({ true, false, true, true }, status_seen)
    end)

    it("holds at most N+1 pages: N in the core, one in the loop", function()
      for _, n in ipairs({ 1, 2, 4 }) do
        mock.reset()
        mock.config { page_delays = { ["5"] = 150, ["9"] = 150 } }
        local pager = client():pages { phone = P250, page_size = 10, prefetch = n }
        local count = 0
        for page in pager do
          count = count + 1
          local stats = pager:stats()
          assert.is_true(stats.pending <= n, "pending " .. stats.pending .. " > " .. n)
          assert.is_true(max_of(requested()) <= page.page + n,
            "page " .. max_of(requested()) .. " asked while the loop was on " .. page.page)
        end
        assert.are.equal(25, count)
        assert.are.equal(0, pager:stats().pending)
      end
    end)

    it("reports progress through stats()", function()
      local pager = client():calls { phone = P250, page_size = 100 }
      local s = pager:stats()
      assert.are.same({ pages = 0, calls = 0, pending = 0 }, s)
      assert.is_table(pager:next())
      s = pager:stats()
      assert.are.equal(1, s.pages)
      assert.are.equal(100, s.calls)
      assert.are.equal(250, s.total_count)
      pager:close()
    end)
  end)
end)
