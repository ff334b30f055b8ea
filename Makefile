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

TRANSPORT_SRC := src/rv_buf.c src/rv_time.c src/rv_policy.c src/rv_transport.c src/rv_prefetch.c
BINDING_SRC := src/rv_core.c
OBJ := $(patsubst src/%.c,$(OUT)/obj/%.o,$(TRANSPORT_SRC) $(BINDING_SRC))
HEADERS := $(wildcard src/*.h)
MODULE := $(OUT)/ravan/core.so

ROOT := $(abspath .)

.PHONY: all deps env test demo memcheck clean help

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

test: deps
	@$(MAKE) --no-print-directory all
	@LUA=$(LUA) OUT=$(OUT) mock/server run spec/run

demo: deps
	@$(MAKE) --no-print-directory all
	@LUA=$(LUA) OUT=$(OUT) mock/server run examples/demo.sh

memcheck: deps
	@$(MAKE) --no-print-directory all
	@LUA=$(LUA) OUT=$(OUT) MEMCHECK=1 mock/server run spec/run

clean:
	rm -rf build

help:
	@echo 'make            build $(MODULE)'
	@echo 'make demo       start the local server and show a call history with the CLI'
	@echo 'make test       install what is missing, build, run the specs against the local server'
	@echo 'make memcheck   the specs under valgrind (no errors, nothing definitely lost)'
	@echo 'eval "$$(make -s env)"   LUA_PATH/LUA_CPATH for using the checkout'
	@echo 'LUA=lua5.1|lua5.2|lua5.3|lua5.4|luajit selects the Lua'
