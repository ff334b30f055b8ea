# ravan — build, test, demo. `make help` lists the targets.
LUA ?= lua5.4
CC ?= cc
PKG_CONFIG ?= pkg-config

# lua5.4 builds into build/ (what LUA_CPATH from `make env` points at); other Luas get their own dir.
ifeq ($(LUA),lua5.4)
OUT := build
else
OUT := build/$(LUA)
endif
LUA_PC := $(LUA)

LUA_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(LUA_PC) 2>/dev/null)
CURL_CFLAGS = $(shell $(PKG_CONFIG) --cflags libcurl 2>/dev/null)
CURL_LIBS = $(shell $(PKG_CONFIG) --libs libcurl 2>/dev/null || echo -lcurl)
# libcrypto (OpenSSL, which Debian's libcurl is built on) hashes the recordings.
CRYPTO_CFLAGS = $(shell $(PKG_CONFIG) --cflags libcrypto 2>/dev/null)
CRYPTO_LIBS = $(shell $(PKG_CONFIG) --libs libcrypto 2>/dev/null || echo -lcrypto)

CFLAGS ?= -O2 -g
WARNINGS := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
ALL_CFLAGS = -std=c99 -D_POSIX_C_SOURCE=200809L -fPIC $(WARNINGS) $(CFLAGS) $(CURL_CFLAGS) \
	$(CRYPTO_CFLAGS) $(LUA_CFLAGS)
LDLIBS = $(CURL_LIBS) $(CRYPTO_LIBS) -pthread -lm

TRANSPORT_SRC := src/rv_buf.c src/rv_time.c src/rv_policy.c src/rv_headers.c src/rv_transport.c \
	src/rv_engine.c src/rv_download.c
BINDING_SRC := src/rv_core.c src/rv_wire.c src/rv_query.c src/rv_proc.c src/rv_json.c src/rv_recordings.c
OBJ := $(patsubst src/%.c,$(OUT)/obj/%.o,$(TRANSPORT_SRC) $(BINDING_SRC))
HEADERS := $(wildcard src/*.h)
MODULE := $(OUT)/ravan/core.so

ROOT := $(abspath .)

# `make test` runs the suite on every Lua, 5.4 first, unless LUA was named on the command line.
ifeq ($(origin LUA),command line)
LUAS ?= $(LUA)
else
LUAS ?= lua5.4 lua5.1 lua5.2 lua5.3 luajit
endif

# The C host of examples/embed: Lua 5.4 with ravan.core linked in from a static library.
EMBED_LUA := lua5.4
EMBED_OUT := build/embed
EMBED_OBJ := $(patsubst src/%.c,$(EMBED_OUT)/obj/%.o,$(TRANSPORT_SRC) $(BINDING_SRC))
EMBED_LIB := $(EMBED_OUT)/libravan.a
EMBED_BIN := $(EMBED_OUT)/ravan-embed
EMBED_CFLAGS = -std=c99 -D_POSIX_C_SOURCE=200809L $(WARNINGS) $(CFLAGS) $(CURL_CFLAGS) $(CRYPTO_CFLAGS) \
	$(shell $(PKG_CONFIG) --cflags $(EMBED_LUA) 2>/dev/null)
EMBED_LIBS = $(shell $(PKG_CONFIG) --libs $(EMBED_LUA) 2>/dev/null) $(LDLIBS)

.PHONY: all deps test-deps env lint test demo memcheck embed cross docs bench bench-wire bench-openresty \
	bench-report bench-recordings bench-converge openresty tsan fuzz clean help rock rock-install dist

all: $(MODULE)

$(OUT)/obj/%.o: src/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(MODULE): $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(OBJ) $(LDFLAGS) $(LDLIBS)

# For LuaRocks (the rockspec's `make` build), which passes CC, CFLAGS, LIBFLAG, LUA_INCDIR,
# CURL_INCDIR, CURL_LIBDIR, OPENSSL_INCDIR, OPENSSL_LIBDIR and INST_LIBDIR: one command compiles
# and links ravan.core straight into the rock's tree, so nothing is written into the checkout.
ROCK_CFLAGS = -std=c99 -D_POSIX_C_SOURCE=200809L $(CFLAGS) -I$(LUA_INCDIR) -I$(CURL_INCDIR) \
	-I$(OPENSSL_INCDIR)

rock:
	$(CC) $(ROCK_CFLAGS) -fsyntax-only $(TRANSPORT_SRC) $(BINDING_SRC)

rock-install:
	mkdir -p $(INST_LIBDIR)/ravan
	$(CC) $(ROCK_CFLAGS) $(LIBFLAG) $(TRANSPORT_SRC) $(BINDING_SRC) -o $(INST_LIBDIR)/ravan/core.so \
		-L$(CURL_LIBDIR) -L$(OPENSSL_LIBDIR) -lcurl -lcrypto -pthread -lm

# The release's rock: the checkout installed by its rockspec for Lua 5.4 into a scratch tree,
# then packed from there as a binary rock (build/dist/ravan-VERSION.linux-ARCH.rock), which
# `luarocks install` takes offline, lua-cjson named by luarocks-provided.lua (docs/usage.md).
dist: deps
	@rm -rf build/dist && mkdir -p build/dist
	@LUAROCKS_CONFIG=luarocks-provided.lua luarocks --lua-version=5.4 make --tree=build/dist/tree \
		$(wildcard ravan-*.rockspec) >/dev/null
	@cd build/dist && LUAROCKS_CONFIG=../../luarocks-provided.lua luarocks --lua-version=5.4 \
		--tree=tree pack ravan >/dev/null
	@rm -rf build/dist/tree
	@ls build/dist/*.rock

deps:
	@bash .ci/deps

# Each Lua finds its own build whatever `lua` is: 5.2, 5.3 and 5.4 read LUA_CPATH_5_x before
# LUA_CPATH, which only 5.1 and LuaJIT (one ABI) read. bin/ravan-history knows the same layout.
ifeq ($(LUA),luajit)
ABI51 := build/luajit build/lua5.1
else
ABI51 := build/lua5.1 build/luajit
endif

env:
	@echo 'export LUA_PATH="$(ROOT)/lua/?.lua;$(ROOT)/lua/?/init.lua;;"'
	@echo 'export LUA_CPATH="$(ROOT)/$(word 1,$(ABI51))/?.so;$(ROOT)/$(word 2,$(ABI51))/?.so;;"'
	@echo 'export LUA_CPATH_5_2="$(ROOT)/build/lua5.2/?.so;;"'
	@echo 'export LUA_CPATH_5_3="$(ROOT)/build/lua5.3/?.so;;"'
	@echo 'export LUA_CPATH_5_4="$(ROOT)/build/?.so;;"'
	@echo 'export PATH="$(ROOT)/bin:$$PATH"'

# luacheck over every Lua file of the project (.luacheckrc), cppcheck over the C. `make test` runs
# it first, so a new warning fails CI.
LINT_LUA := lua bin/ravan-history spec mock bench examples
CPPCHECK := cppcheck --quiet --std=c99 --enable=warning,performance,portability --inline-suppr \
	--error-exitcode=1 -Isrc

lint: deps
	@luacheck --quiet --formatter plain $(LINT_LUA)
	@$(CPPCHECK) src examples/embed bench/raw_libcurl.c bench/lua_floor.c fuzz

# LuaJIT's build is always made: the OpenResty spec loads it into nginx whichever Lua runs busted.
# One `apt-get update` and one install for all that the suite needs, the ARM hosts' included.
test-deps:
	@bash .ci/deps $(sort $(foreach arch,$(CROSS_ARCHES),$(call cross_packages,$(arch))))

test: test-deps lint
	@for lua in $(LUAS) luajit; do $(MAKE) --no-print-directory all LUA=$$lua || exit 1; done
	@$(MAKE) --no-print-directory $(EMBED_BIN)
	@for arch in $(CROSS_ARCHES); do $(MAKE) --no-print-directory cross ARCH=$$arch || exit 1; done
	@LUAS="$(LUAS)" spec/run

demo: deps
	@$(MAKE) -s --no-print-directory all
	@$(MAKE) -s --no-print-directory $(EMBED_BIN) >/dev/null
	@LUA=$(LUA) OUT=$(OUT) mock/server run examples/demo.sh

memcheck:
	@bash .ci/deps valgrind
	@$(MAKE) --no-print-directory all
	@LUA=$(LUA) MEMCHECK=1 spec/run

# ThreadSanitizer over the specs whose code crosses threads. The C host, built with the core in
# build/tsan, runs busted in place of `lua`: the sanitizer is then in the executable itself, and
# the programs the specs start (the server's control, `ls` of /proc, a Lua killed mid-download) run
# without it, with the checkout's modules on their paths.
TSAN_SPECS ?= spec/async_spec.lua spec/pager_spec.lua spec/recordings_spec.lua

tsan:
	@bash .ci/deps libtsan2
	@$(MAKE) --no-print-directory embed EMBED_OUT=build/tsan CFLAGS="-O1 -g -fsanitize=thread" \
		LDFLAGS=-fsanitize=thread
	@eval "$$($(MAKE) -s --no-print-directory env)"; TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 $$TSAN_OPTIONS" \
		mock/server run build/tsan/ravan-embed "$$(command -v busted)" -o TAP $(TSAN_SPECS)

$(EMBED_OUT)/obj/%.o: src/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(EMBED_CFLAGS) -c $< -o $@

$(EMBED_LIB): $(EMBED_OBJ)
	$(AR) rcs $@ $(EMBED_OBJ)

$(EMBED_BIN): examples/embed/host.c $(EMBED_LIB) $(HEADERS)
	$(CC) $(EMBED_CFLAGS) -Isrc -DRAVAN_LUA_DIR='"$(ROOT)/lua"' examples/embed/host.c \
		$(EMBED_LIB) $(LDFLAGS) $(EMBED_LIBS) -o $@

embed: $(EMBED_BIN)
	@echo 'Built $(EMBED_BIN): Lua 5.4 with ravan linked in. Run a script in it, e.g. against the local server:'
	@echo '  mock/server run sh -c '"'"'RAVAN_BASE_URL=$$RAVAN_MOCK_URL RAVAN_API_KEY=rk_test_local \'
	@echo '    $(EMBED_BIN) examples/embed/history.lua +919876543210'"'"

# IoT boards: `make cross ARCH=arm64` (or armhf) builds ravan.core and the embed host with Debian's
# cross toolchain against that architecture's libcurl and Lua 5.4, into build/ARCH/. pkg-config
# reads that architecture's .pc files only. The host runs under qemu-user where binfmt is not set
# up: qemu-aarch64 build/arm64/embed/ravan-embed SCRIPT (qemu-arm -L build/armhf/sysroot for armhf).
CROSS_ARCHES := arm64 armhf
CROSS_TRIPLET_arm64 := aarch64-linux-gnu
CROSS_TRIPLET_armhf := arm-linux-gnueabihf
CROSS_TRIPLET = $(CROSS_TRIPLET_$(ARCH))
# What the build needs of the target: the headers and .pc files, and what runs on the board.
CROSS_DEV := libcurl4-openssl-dev libssl-dev liblua5.4-dev
CROSS_RUNTIME := libcurl4 liblua5.4-0 lua-cjson
# The target's libraries come one of two ways. Multiarch (arm64) installs them next to the
# machine's own, which needs the Multi-Arch: same ones (libc6, libssl3, libcurl4...) at the very
# version the machine has: a mirror whose ARCH indexes lag or fail (armhf's security index does,
# and then every `apt-get update` on the machine fails with it) cannot give that. A sysroot
# (.ci/sysroot: the packages unpacked under build/ARCH/sysroot with an apt state of its own) asks
# nothing of the machine's dpkg, so the architectures listed here use one.
CROSS_SYSROOT_ARCHES ?= armhf
cross_sysroot = $(if $(filter $(1),$(CROSS_SYSROOT_ARCHES)),$(ROOT)/build/$(1)/sysroot)
cross_packages = crossbuild-essential-$(1) qemu-user \
	$(if $(call cross_sysroot,$(1)),,$(addsuffix :$(1),$(CROSS_DEV) $(CROSS_RUNTIME)))
CROSS_SYSROOT = $(call cross_sysroot,$(ARCH))
comma := ,

# Unpacked again only when the packages or the script change.
$(ROOT)/build/%/sysroot/.unpacked: .ci/sysroot Makefile
	@bash .ci/sysroot $* build/$* "$(CROSS_DEV)" $(CROSS_RUNTIME)
	@touch $@

# With a sysroot, pkg-config prefixes its paths to what the .pc files say, and the linker finds
# the libraries that libcurl needs in turn there (-rpath-link) rather than in the machine's.
cross:
	@test -n "$(CROSS_TRIPLET)" || { echo 'usage: make cross ARCH=arm64|armhf' >&2; exit 2; }
	@bash .ci/deps $(call cross_packages,$(ARCH))
	@$(if $(CROSS_SYSROOT),$(MAKE) --no-print-directory $(CROSS_SYSROOT)/.unpacked,:)
	@$(MAKE) --no-print-directory all build/$(ARCH)/embed/ravan-embed OUT=build/$(ARCH) EMBED_OUT=build/$(ARCH)/embed \
		CC=$(CROSS_TRIPLET)-gcc AR=$(CROSS_TRIPLET)-ar \
		PKG_CONFIG="PKG_CONFIG_SYSROOT_DIR=$(CROSS_SYSROOT) PKG_CONFIG_LIBDIR=$(CROSS_SYSROOT)/usr/lib/$(CROSS_TRIPLET)/pkgconfig:$(CROSS_SYSROOT)/usr/share/pkgconfig pkg-config" \
		$(if $(CROSS_SYSROOT),LDFLAGS=-Wl$(comma)-rpath-link$(comma)$(CROSS_SYSROOT)/usr/lib/$(CROSS_TRIPLET))

# The raw libcurl reference row of benchmark (a).
BENCH_RAW := build/bench/raw_libcurl

$(BENCH_RAW): bench/raw_libcurl.c bench/keep_body.h
	@mkdir -p $(dir $@)
	$(CC) -std=c99 -D_POSIX_C_SOURCE=200809L $(WARNINGS) -O2 $(CURL_CFLAGS) $< -o $@ $(CURL_LIBS)

# The Lua floor of benchmark (a): a bare libcurl binding.
BENCH_LUA_FLOOR := build/bench/lua_floor.so
$(BENCH_LUA_FLOOR): bench/lua_floor.c bench/keep_body.h
	@mkdir -p $(dir $@)
	$(CC) -std=c99 -D_POSIX_C_SOURCE=200809L $(WARNINGS) -O2 -fPIC -shared $(CURL_CFLAGS) \
		$(LUA_CFLAGS) $< -o $@ $(CURL_LIBS)

# Not part of `make test`: it takes minutes, and its numbers mean something on a quiet machine.
bench: deps
	@bash .ci/deps lua-socket lua-sec python3 valgrind
	@$(MAKE) --no-print-directory all $(BENCH_RAW) $(BENCH_LUA_FLOOR) LUA=lua5.4
	@bench/run

# client:sync's benchmarks (i: many phones under a rate limit, j: 100,000 calls into SQLite and
# PostgreSQL). Not part of `make test`: it takes a few minutes.
bench-sync: deps
	@$(MAKE) --no-print-directory all LUA=lua5.4
	@bench/sync_run

# Benchmark k: a sync and a pager over TLS (HTTP/2, and HTTP/1.1) against plain HTTP: connections,
# handshakes, resumptions and time. Not part of `make test`: it takes a few minutes.
bench-wire: deps
	@$(MAKE) --no-print-directory all LUA=lua5.4
	@bench/wire_run

# Benchmark p: ravan.report over a million calls in SQLite and PostgreSQL, against one SQL query.
# Not part of `make test`: it takes minutes.
bench-report: deps
	@$(MAKE) --no-print-directory all LUA=lua5.4
	@bench/report_run

# Benchmark o: 200 recordings of 1 to 10 MB by client:recordings and by curl -P8 in the same run.
bench-recordings: deps
	@$(MAKE) --no-print-directory all LUA=lua5.4
	@bench/recordings_run

# Benchmarks m (what convergence costs: lookback, reconciliation) and n (workers on one
# PostgreSQL). Not part of `make test`: it takes a few minutes.
bench-converge: deps
	@$(MAKE) --no-print-directory all LUA=lua5.4
	@bench/converge_run

# Benchmark h: the OpenResty example under wrk at +100 ms, against nginx's own proxy_pass.
bench-openresty: deps
	@bash .ci/deps wrk
	@bench/openresty

# examples/openresty/nginx.conf from this checkout on http://127.0.0.1:8080, against the local
# server, until Ctrl-C.
openresty: deps
	@examples/openresty/run

# libFuzzer over the parsing of what servers send (Retry-After forms, retry decisions, the bounded
# body buffer, response header lines), with ASan and UBSan. Not part of `make test`: it runs for
# FUZZ_SECONDS.
FUZZ_SECONDS ?= 60
FUZZ_BIN := build/fuzz/fuzz_policy

FUZZ_SRC := fuzz/fuzz_policy.c src/rv_policy.c src/rv_buf.c src/rv_headers.c

$(FUZZ_BIN): $(FUZZ_SRC) $(HEADERS)
	@mkdir -p $(dir $@)/corpus
	clang -std=c99 -D_POSIX_C_SOURCE=200809L -g -O1 -fsanitize=fuzzer,address,undefined \
		$(WARNINGS) -Isrc $(CURL_CFLAGS) $(FUZZ_SRC) $(CURL_LIBS) -lm -o $@

fuzz:
	@bash .ci/deps clang libclang-rt-14-dev
	@$(MAKE) --no-print-directory $(FUZZ_BIN)
	@$(FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) $(dir $(FUZZ_BIN))corpus

# LDoc says which config it read whatever -q says: only its warnings (on stderr) are worth showing.
DOC_DIR ?= doc
docs: deps
	@ldoc -q -d $(DOC_DIR) . >/dev/null
	@# The topics' pictures, beside the topics' pages that show them.
	@cp docs/*.png $(DOC_DIR)/topics/
	@echo 'The manual and the API reference: $(DOC_DIR)/index.html'

clean:
	rm -rf build doc

help:
	@echo 'make            build ravan.core for $(LUA): $(MODULE)'
	@echo 'make demo       start the local Ravan server and show call histories with the CLI'
	@echo 'make test       install what is missing, lint, build, run the specs on every Lua'
	@echo 'make lint       luacheck over the Lua, cppcheck over the C'
	@echo 'make memcheck   the specs under valgrind (no errors, nothing definitely lost)'
	@echo 'make tsan       the async, pager and recordings specs with the core under ThreadSanitizer'
	@echo 'make embed      $(EMBED_BIN): a C host with Lua 5.4 and ravan linked in statically'
	@echo 'make cross ARCH=arm64|armhf  ravan.core and the embed host for an ARM board, in build/ARCH'
	@echo 'make bench      request overhead, decoding, the pager, memory, frame loop, async (bench/RESULTS.md)'
	@echo 'make bench-openresty  wrk against examples/openresty at +100 ms, vs proxy_pass (bench/RESULTS.md)'
	@echo 'make openresty  the OpenResty example on http://127.0.0.1:8080 against the local server'
	@echo 'make bench-recordings  200 recordings vs curl -P8, peak RSS, a re-run of nothing new'
	@echo 'make bench-sync client:sync under a rate limit, and 100,000 calls into each database'
	@echo 'make bench-wire a sync and a pager over TLS (HTTP/2, resumption) against plain HTTP'
	@echo 'make bench-report  a report over 1,000,000 calls in each database, vs one SQL query'
	@echo 'make bench-converge  what lookback and reconciliation cost; workers on one PostgreSQL'
	@echo 'make docs       the manual and the API reference in doc/ (LDoc)'
	@echo 'make dist       the release rock, build/dist/ravan-VERSION.linux-ARCH.rock (luarocks install)'
	@echo 'make fuzz       libFuzzer (ASan, UBSan) over Retry-After parsing and the body buffer'
	@echo 'make clean      remove build/ and doc/'
	@echo 'eval "$$(make -s env)"   LUA_PATH, LUA_CPATH and PATH for using the checkout from any Lua'
	@echo 'LUA=lua5.1|lua5.2|lua5.3|lua5.4|luajit selects the Lua (make test: all five unless given)'
