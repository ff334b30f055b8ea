-- The IoT targets: ravan.core and the embed host cross-built for each ARM architecture
-- (`make cross ARCH=...`, which `make test` runs first) and run under qemu-user against the local
-- server on loopback. Every figure checked here is measured by the ARM host itself.
local host = require "spec.support.host"
local mock = require "spec.support.mock"
local proc = require "spec.support.proc"

local NATIVE_HOST = proc.root .. "/build/embed/ravan-embed"
local ENV = mock.env()

-- `machine` is the ELF e_machine; `sysroot`, where the Makefile unpacks that architecture's
-- libraries rather than installing them next to the machine's (qemu-user then reads the guest's
-- files there first: -L).
local TARGETS = {
  { arch = "arm64", qemu = "qemu-aarch64", machine = 183, triplet = "aarch64-linux-gnu", bits = 64 },
  { arch = "armhf", qemu = "qemu-arm", machine = 40, triplet = "arm-linux-gnueabihf", bits = 32, sysroot = true },
}

-- The ELF machine field (e_machine, little-endian, at byte 18).
local function elf_machine(path)
  local f = assert(io.open(path, "rb"))
  local head = f:read(20)
  f:close()
  assert(head and head:sub(1, 4) == "\127ELF", path .. " is not an ELF file")
  return head:byte(19) + 256 * head:byte(20)
end

local function field(out, key)
  return tonumber(out:match(key .. "=([%d.]+)"))
end

for _, target in ipairs(TARGETS) do
  local arch = target.arch
  local build = proc.root .. "/build/" .. arch
  local HOST = build .. "/embed/ravan-embed"
  local sysroot = target.sysroot and build .. "/sysroot" or nil
  local make = ("`make cross ARCH=%s`"):format(arch)

  local needs = {
    { command = target.qemu, by = make .. " installs qemu-user" },
    { file = HOST, by = make .. " (make test runs it)" },
    sysroot and { file = sysroot .. "/.unpacked", by = make .. " unpacks it" } or nil,
  }

  host.describe("the " .. arch .. " build under qemu-user", "the cross-built host is Lua 5.4 whatever runs busted",
    needs, function(ctx)
    local function run_arm(args)
      local qemu = proc.quote(ctx.paths[1]) .. (sysroot and " -L " .. proc.quote(sysroot) or "")
      return proc.run(qemu .. " " .. proc.quote(HOST) .. " " .. args, ENV)
    end

    it("is built for " .. arch .. ": the module and the host", function()
      assert.are.equal(target.machine, elf_machine(build .. "/ravan/core.so"))
      assert.are.equal(target.machine, elf_machine(HOST))
    end)

    it("loads the " .. arch .. " ravan.core with dlopen too, as a Lua 5.4 on the board would", function()
      local script = ctx.tmp .. "/load.lua"
      local f = assert(io.open(script, "w"))
      f:write([[
        local open = assert(package.loadlib(arg[1], "luaopen_ravan_core"))
        local core = open()
        print(type(core.new), core.VERSION, core.CURL_VERSION)
      ]])
      f:close()
      local out, status = run_arm(proc.quote(script) .. " " .. proc.quote(build .. "/ravan/core.so"))
      assert.are.equal(0, status, out)
      assert.matches("^function\t%d+%.%d+%.%d+\t%d+%.%d+", out)
    end)

    it("runs the 60 Hz frame loop against 200 ms of latency, polling once per frame", function()
      mock.reset()
      mock.config { latency_ms = 200 }
      local n = 20
      local out, status = run_arm("--frames examples/embed/frames.lua " .. n)
      local got = mock.requests()
      mock.reset()
      assert.are.equal(0, status, out)
      assert.truthy(out:find(("requests=%d ok=%d failed=0"):format(n, n), 1, true), out)
      assert.truthy(out:find("finished=yes", 1, true), out)
      -- Every call the ARM host made reached the server, each one once.
      assert.are.equal(n, #got, out)
      local pages = {}
      for _, r in ipairs(got) do
        assert.are.equal(200, r.status, out)
        pages[#pages + 1] = tonumber(r.query:match("page=(%d+)"))
      end
      table.sort(pages)
      for i = 1, n do assert.are.equal(i, pages[i], out) end
      -- The replies took 200 ms, about 12 frames at 60 Hz, and the loop kept turning meanwhile:
      -- the host counts its frames. The typical frame spends under a millisecond in ravan, even
      -- emulated; frame 1, which starts every request, is the slow one.
      assert.is_true(field(out, "frames") >= 12, out)
      assert.is_true(field(out, "p50_ms") <= 1, out)
      print(("# %s frame loop (qemu-user): %s"):format(arch, out:match("frames=[^\n]*")))
    end)

    it("measures the lean profile inside the host: an idle client, and pages of 10 and 100 calls", function()
      local cases = { "idle", "10", "10 transcripts", "100", "100 transcripts" }
      local arm, x86 = {}, {}
      local function measure(run, case)
        local out, status = run("examples/embed/footprint.lua " .. (case == "idle" and "20" or "page " .. case))
        assert.are.equal(0, status, out)
        if case == "idle" then
          return { heap = field(out, "client_idle_heap_kb"), rss = field(out, "client_idle_kb"), line = out }, out
        end
        return { heap = field(out, "heap_kb"), rss = field(out, "rss_kb"), line = out }, out
      end
      local function run_x86(args)
        return proc.run(proc.quote(NATIVE_HOST) .. " " .. args, ENV)
      end
      -- The guest's own view of its mappings: the ARM libcurl, not the machine's.
      local libcurl = ("libcurl=%s/usr/lib/%s/libcurl"):format(sysroot or "", target.triplet)
      for _, case in ipairs(cases) do
        local out
        arm[case], out = measure(run_arm, case)
        assert.truthy(out:find(libcurl, 1, true), out)
        x86[case] = measure(run_x86, case)
        print(("# footprint %-15s %s heap %6.1f KiB rss %6.1f KiB | x86-64 heap %6.1f KiB rss %6.1f KiB"):format(
          case, arch, arm[case].heap, arm[case].rss, x86[case].heap, x86[case].rss))
      end
      for _, case in ipairs(cases) do
        if target.bits == 64 then
          -- 64-bit Lua 5.4 either way: the same page decodes into the same heap, within rounding.
          assert.is_true(math.abs(arm[case].heap - x86[case].heap) <= 1, arm[case].line)
        else
          -- 32-bit pointers: smaller tables and string headers, the same characters.
          local ratio = arm[case].heap / x86[case].heap
          assert.is_true(ratio < 1 and ratio > 0.5, arm[case].line)
        end
      end
      -- A page costs in proportion to what it holds, and an idle client next to nothing.
      assert.is_true(arm.idle.heap < 4 and arm.idle.rss < 64, arm.idle.line)
      assert.is_true(arm["10"].heap < arm["10 transcripts"].heap, arm["10"].line)
      assert.is_true(arm["100"].heap < arm["100 transcripts"].heap, arm["100"].line)
      assert.is_true(arm["100"].heap > 5 * arm["10"].heap, arm["100"].line)
      assert.is_true(arm["100 transcripts"].heap < 1024, arm["100 transcripts"].line)
      assert.is_true(arm["100 transcripts"].rss < 4096, arm["100 transcripts"].line)
    end)
  end)
end
