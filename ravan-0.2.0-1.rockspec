rockspec_format = "3.0"
package = "ravan"
version = "0.2.0-1"

source = {
  url = "git+https://github.com/ravan-ai/ravan-lua.git",
  tag = "v0.2.0",
}

description = {
  summary = "Native Lua client for the Ravan.ai call-history API",
  detailed = [[
A phone number's call history from the Ravan.ai voice-agent API as plain Lua tables: a C module
on libcurl (connection reuse, retries with backoff, deadlines, TLS verification on) with JSON
through lua-cjson, a lazy pager with ordered concurrent prefetch, and requests and tasks
that never block the host's loop.]],
  homepage = "https://github.com/ravan-ai/ravan-lua",
  license = "MIT",
  labels = { "http", "api", "curl", "telephony" },
}

dependencies = {
  "lua >= 5.1, < 5.5",
  "lua-cjson >= 2.1",
}

external_dependencies = {
  -- The library only: on Debian and Ubuntu curl.h sits in a multiarch include directory that
  -- the compiler searches by itself but LuaRocks' header check does not. Elsewhere CURL_DIR (or
  -- CURL_INCDIR and CURL_LIBDIR) name a libcurl of one's own.
  CURL = {
    library = "curl",
  },
  -- libcrypto (OpenSSL) for the recordings' SHA-256: the library the libcurl of most systems is
  -- built on already.
  OPENSSL = {
    header = "openssl/evp.h",
    library = "crypto",
  },
}

-- Linux is where it is built and tested (POSIX threads and clocks, libcurl).
supported_platforms = { "linux" }

build = {
  -- The Makefile's `rock-install` compiles and links the C module in one command, straight into
  -- the tree, so `luarocks make` leaves no objects in the checkout (`rock` only checks that the
  -- sources compile).
  type = "make",
  build_target = "rock",
  install_target = "rock-install",
  variables = {
    CC = "$(CC)",
    CFLAGS = "$(CFLAGS)",
    LIBFLAG = "$(LIBFLAG)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    CURL_INCDIR = "$(CURL_INCDIR)",
    CURL_LIBDIR = "$(CURL_LIBDIR)",
    OPENSSL_INCDIR = "$(OPENSSL_INCDIR)",
    OPENSSL_LIBDIR = "$(OPENSSL_LIBDIR)",
    INST_LIBDIR = "$(LIBDIR)",
  },
  install = {
    lua = {
      ["ravan.async"] = "lua/ravan/async.lua",
      ["ravan.cli.args"] = "lua/ravan/cli/args.lua",
      ["ravan.cli.history"] = "lua/ravan/cli/history.lua",
      ["ravan.cli.init"] = "lua/ravan/cli/init.lua",
      ["ravan.cli.output"] = "lua/ravan/cli/output.lua",
      ["ravan.cli.recordings"] = "lua/ravan/cli/recordings.lua",
      ["ravan.cli.report"] = "lua/ravan/cli/report.lua",
      ["ravan.cli.sync"] = "lua/ravan/cli/sync.lua",
      ["ravan.client"] = "lua/ravan/client.lua",
      ["ravan.contract"] = "lua/ravan/contract.lua",
      ["ravan.decode"] = "lua/ravan/decode.lua",
      ["ravan.defaults"] = "lua/ravan/defaults.lua",
      ["ravan.errors"] = "lua/ravan/errors.lua",
      ["ravan.init"] = "lua/ravan/init.lua",
      ["ravan.interpreted"] = "lua/ravan/interpreted.lua",
      ["ravan.json"] = "lua/ravan/json.lua",
      ["ravan.loop.copas"] = "lua/ravan/loop/copas.lua",
      ["ravan.loop.cqueues"] = "lua/ravan/loop/cqueues.lua",
      ["ravan.loop.init"] = "lua/ravan/loop/init.lua",
      ["ravan.loop.luv"] = "lua/ravan/loop/luv.lua",
      ["ravan.metrics.init"] = "lua/ravan/metrics/init.lua",
      ["ravan.metrics.stats"] = "lua/ravan/metrics/stats.lua",
      ["ravan.openresty.init"] = "lua/ravan/openresty/init.lua",
      ["ravan.openresty.metrics"] = "lua/ravan/openresty/metrics.lua",
      ["ravan.openresty.net"] = "lua/ravan/openresty/net.lua",
      ["ravan.openresty.wire"] = "lua/ravan/openresty/wire.lua",
      ["ravan.pager.idwindow"] = "lua/ravan/pager/idwindow.lua",
      ["ravan.pager.init"] = "lua/ravan/pager/init.lua",
      ["ravan.recordings"] = "lua/ravan/recordings.lua",
      ["ravan.redact"] = "lua/ravan/redact.lua",
      ["ravan.report.aggregate"] = "lua/ravan/report/aggregate.lua",
      ["ravan.report.decimal"] = "lua/ravan/report/decimal.lua",
      ["ravan.report.html"] = "lua/ravan/report/html.lua",
      ["ravan.report.init"] = "lua/ravan/report/init.lua",
      ["ravan.result"] = "lua/ravan/result.lua",
      ["ravan.surface"] = "lua/ravan/surface.lua",
      ["ravan.sync.db"] = "lua/ravan/sync/db.lua",
      ["ravan.sync.init"] = "lua/ravan/sync/init.lua",
      ["ravan.sync.lease"] = "lua/ravan/sync/lease.lua",
      ["ravan.sync.rate"] = "lua/ravan/sync/rate.lua",
      ["ravan.sync.recordings"] = "lua/ravan/sync/recordings.lua",
      ["ravan.sync.store"] = "lua/ravan/sync/store.lua",
      ["ravan.validate"] = "lua/ravan/validate.lua",
    },
    bin = { ["ravan-history"] = "bin/ravan-history" },
  },
}
