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

CFLAGS ?= -O2 -g
WARNINGS := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
ALL_CFLAGS = -std=c99 -D_POSIX_C_SOURCE=200809L -fPIC $(WARNINGS) $(CFLAGS) $(CURL_CFLAGS) $(LUA_CFLAGS)
LDLIBS = $(CURL_LIBS) -pthread -lm

TRANSPORT_SRC := src/rv_buf.c src/rv_time.c src/rv_policy.c src/rv_transport.c src/rv_engine.c
BINDING_SRC := src/rv_core.c
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
EMBED_CFLAGS = -std=c99 -D_POSIX_C_SOURCE=200809L $(WARNINGS) $(CFLAGS) $(CURL_CFLAGS) \
	$(shell $(PKG_CONFIG) --cflags $(EMBED_LUA) 2>/dev/null)
EMBED_LIBS = $(shell $(PKG_CONFIG) --libs $(EMBED_LUA) 2>/dev/null) $(LDLIBS)

.PHONY: all deps env test demo memcheck tsan embed docs bench fuzz clean help

all: $(MODULE)

$(OUT)/obj/%.o: src/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(MODULE): $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(OBJ) $(LDFLAGS) $(LDLIBS)

deps:
	@bash .ci/deps

env:
	@echo 'export LUA_PATH="$(ROOT)/lua/?.lua;$(ROOT)/lua/?/init.lua;;"'
	@echo 'export LUA_CPATH="$(ROOT)/$(OUT)/?.so;;"'
	@echo 'export PATH="$(ROOT)/bin:$$PATH"'

# LuaJIT's build is always made: the OpenResty spec loads it into nginx whichever Lua runs busted.
test: deps
	@for lua in $(LUAS) luajit; do $(MAKE) --no-print-directory all LUA=$$lua || exit 1; done
	@$(MAKE) --no-print-directory embed
	@LUAS="$(LUAS)" mock/server run spec/run

demo: deps
	@$(MAKE) --no-print-directory all
	@LUA=$(LUA) OUT=$(OUT) mock/server run examples/demo.sh

memcheck:
	@bash .ci/deps valgrind
	@$(MAKE) --no-print-directory all
	@LUA=$(LUA) OUT=$(OUT) MEMCHECK=1 mock/server run spec/run

# ThreadSanitizer over the specs whose code crosses threads. The C host, built with the core in
# build/tsan, runs busted in place of `lua`: the sanitizer is then in the executable itself, and
# the programs the specs start (the server's control, `ls` of /proc) run without it.
TSAN_SPECS ?= spec/async_spec.lua spec/pager_spec.lua

tsan:
	@bash .ci/deps libtsan2
	@$(MAKE) --no-print-directory embed EMBED_OUT=build/tsan CFLAGS="-O1 -g -fsanitize=thread" \
		LDFLAGS=-fsanitize=thread
	@TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 $$TSAN_OPTIONS" \
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

# The raw libcurl floor of benchmark (a).
BENCH_RAW := build/bench/raw_libcurl

$(BENCH_RAW): bench/raw_libcurl.c
	@mkdir -p $(dir $@)
	$(CC) -std=c99 -D_POSIX_C_SOURCE=200809L $(WARNINGS) -O2 $(CURL_CFLAGS) $< -o $@ $(CURL_LIBS)

# Not part of `make test`: it takes minutes, and its numbers mean something on a quiet machine.
bench: deps
	@bash .ci/deps lua-socket python3
	@$(MAKE) --no-print-directory all $(BENCH_RAW) LUA=lua5.4
	@bench/run

# client:sync's benchmarks (i: many phones under a rate limit, j: 100,000 calls into SQLite and
# PostgreSQL). Not part of `make test`: it takes a few minutes.
bench-sync: deps
	@$(MAKE) --no-print-directory all LUA=lua5.4
	@bench/sync_run

# libFuzzer over the parsing of what servers send (Retry-After forms, retry decisions, the bounded
# body buffer), with ASan and UBSan. Not part of `make test`: it runs for FUZZ_SECONDS.
FUZZ_SECONDS ?= 60
FUZZ_BIN := build/fuzz/fuzz_policy

$(FUZZ_BIN): fuzz/fuzz_policy.c src/rv_policy.c src/rv_buf.c $(HEADERS)
	@mkdir -p $(dir $@)/corpus
	clang -std=c99 -D_POSIX_C_SOURCE=200809L -g -O1 -fsanitize=fuzzer,address,undefined \
		$(WARNINGS) -Isrc $(CURL_CFLAGS) fuzz/fuzz_policy.c src/rv_policy.c src/rv_buf.c \
		$(CURL_LIBS) -lm -o $@

fuzz:
	@bash .ci/deps clang libclang-rt-14-dev
	@$(MAKE) --no-print-directory $(FUZZ_BIN)
	@$(FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) $(dir $(FUZZ_BIN))corpus

docs: deps
	@ldoc -q .
	@echo 'API reference: doc/index.html'

clean:
	rm -rf build

help:
	@echo 'make            build $(MODULE)'
	@echo 'make demo       start the local server and show a call history with the CLI'
	@echo 'make test       install what is missing, build, run the specs against the local server'
	@echo 'make memcheck   the specs under valgrind (no errors, nothing definitely lost)'
	@echo 'make tsan       the async and pager specs with the core under ThreadSanitizer'
	@echo 'make embed      $(EMBED_BIN): a C host with Lua 5.4 and ravan linked in statically'
	@echo 'make bench      the benchmarks of issue 4 against the local server (bench/RESULTS.md)'
	@echo 'make bench-sync client:sync under a rate limit, and 100,000 calls into each database'
	@echo 'make docs       the API reference in doc/ (LDoc)'
	@echo 'make fuzz       libFuzzer (ASan, UBSan) over Retry-After parsing and the body buffer'
	@echo 'eval "$$(make -s env)"   LUA_PATH/LUA_CPATH for using the checkout'
	@echo 'LUA=lua5.1|lua5.2|lua5.3|lua5.4|luajit selects the Lua (make test: all five unless given)'
