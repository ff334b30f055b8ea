/* ravan.core.download: recordings to files (rv_download.c) for ravan.recordings. The items live
 * in a userdata with __gc, so a memory error anywhere leaves nothing unowned; the progress
 * function runs under lua_pcall, so nothing it does can jump over the transfers. */
#include <stdlib.h>
#include <string.h>

#include "rv_binding.h"
#include "rv_download.h"

#define BATCH_MT "ravan.core.downloads"

typedef struct batch {
    rv_dl_item *items;
    size_t n;
} batch;

static void free_items(batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free((char *)b->items[i].url);
        free((char *)b->items[i].dir);
        free((char *)b->items[i].stem);
        free((char *)b->items[i].file);
    }
    free(b->items);
    b->items = NULL;
    b->n = 0;
}

static int batch_gc(lua_State *L)
{
    free_items(luaL_checkudata(L, 1, BATCH_MT));
    return 0;
}

static char *field_copy(lua_State *L, int t, const char *key)
{
    const char *value = rv_lua_opt_string(L, t, key);
    return value ? strdup(value) : NULL;
}

/* The table of one item's outcome, on top of the stack. */
static void push_item(lua_State *L, const rv_dl_item *item)
{
    static const char *const outcomes[] = {"pending", "downloaded", "skipped", "failed"};
    lua_createtable(L, 0, 10);
    rv_lua_set_string(L, "outcome", outcomes[item->outcome]);
    rv_lua_set_string(L, "error", rv_error_name(item->error));
    if (item->status)
        rv_lua_set_integer(L, "status", item->status);
    rv_lua_set_string(L, "message", item->message[0] ? item->message : NULL);
    rv_lua_set_string(L, "name", item->name[0] ? item->name : NULL);
    rv_lua_set_string(L, "sha256", item->sha256[0] ? item->sha256 : NULL);
    rv_lua_set_integer(L, "bytes", (lua_Integer)item->bytes);
    rv_lua_set_integer(L, "received", (lua_Integer)item->received);
    lua_pushboolean(L, item->resumed);
    lua_setfield(L, -2, "resumed");
}

/* progress(index, outcome), protected: [1] the function, [2] the index, [3] the item. */
static int call_progress(lua_State *L)
{
    const rv_dl_item *item = lua_touserdata(L, 3);
    lua_settop(L, 2);
    push_item(L, item);
    lua_call(L, 2, 0);
    return 0;
}

typedef struct progress_ctx {
    lua_State *L;
    int fn;
} progress_ctx;

static void on_progress(void *ud, size_t index, const rv_dl_item *item)
{
    progress_ctx *ctx = ud;
    lua_State *L = ctx->L;
    lua_pushcfunction(L, call_progress);
    lua_pushvalue(L, ctx->fn);
    lua_pushinteger(L, (lua_Integer)index + 1);
    lua_pushlightuserdata(L, (void *)item);
    /* The caller's progress function reports; its error must not stop the downloads. */
    if (lua_pcall(L, 3, 0, 0) != 0)
        lua_pop(L, 1);
}

/* download(client, items, concurrency[, progress]) -> outcomes[, kind, message]: each item is
 * {url =, dir =, stem =[, file =]}; the kind and message are the error that stopped the run. */
static int core_download(lua_State *L)
{
    rv_client *client = rv_lua_check_client(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    int concurrency = (int)luaL_checkinteger(L, 3);
    int has_progress = !lua_isnoneornil(L, 4);
    if (has_progress)
        luaL_checktype(L, 4, LUA_TFUNCTION);
    size_t n = (size_t)rv_rawlen(L, 2);

    batch *b = lua_newuserdata(L, sizeof *b);
    b->items = NULL;
    b->n = 0;
    luaL_getmetatable(L, BATCH_MT);
    lua_setmetatable(L, -2);
    b->items = calloc(n ? n : 1, sizeof *b->items);
    if (!b->items)
        return luaL_error(L, "ravan.core: out of memory");
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 2, (lua_Integer)i + 1);
        luaL_checktype(L, -1, LUA_TTABLE);
        int t = lua_gettop(L);
        rv_dl_item *item = &b->items[i];
        b->n = i + 1;
        item->url = field_copy(L, t, "url");
        item->dir = field_copy(L, t, "dir");
        item->stem = field_copy(L, t, "stem");
        item->file = field_copy(L, t, "file");
        lua_pop(L, 1);
        if (!item->url || !item->dir || (!item->stem && !item->file))
            return luaL_error(L, "ravan.core: item %d needs url, dir and stem or file", (int)i + 1);
    }

    char err[512];
    progress_ctx ctx = {L, 4};
    rv_error fatal = rv_download_run(client, b->items, n, concurrency,
                                     has_progress ? on_progress : NULL, &ctx, err, sizeof err);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        push_item(L, &b->items[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    if (fatal == RV_OK)
        return 1;
    lua_pushstring(L, rv_error_name(fatal));
    lua_pushstring(L, err);
    return 3;
}

static const luaL_Reg recordings_functions[] = {
    {"download", core_download},
    {NULL, NULL},
};

void rv_open_recordings(lua_State *L)
{
    rv_lua_gc_metatable(L, BATCH_MT, batch_gc);
    lua_pop(L, 1);
    rv_setfuncs(L, recordings_functions);
}
