/* ravan.core.strip_nulls: what lua-cjson decodes as JSON null (its lightuserdata NULL) taken out
 * of a decoded table and all tables under it, so a field the server sent as null reads as
 * absent, as a Lua program expects. In C because it walks every page's every call. */
#include "rv_binding.h"

/* Deeper than this is no API answer: what is below is left as it is. */
#define STRIP_DEPTH_LIMIT 1000

static void strip_nulls(lua_State *L, int t, int depth)
{
    if (depth > STRIP_DEPTH_LIMIT)
        return;
    luaL_checkstack(L, 3, "ravan.core: table nested too deeply");
    lua_pushnil(L);
    while (lua_next(L, t)) {
        int type = lua_type(L, -1);
        if (type == LUA_TLIGHTUSERDATA && lua_touserdata(L, -1) == NULL) {
            /* Clearing a field that exists is allowed while lua_next walks the table. */
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lua_pushnil(L);
            lua_rawset(L, t);
        } else {
            if (type == LUA_TTABLE)
                strip_nulls(L, lua_gettop(L), depth + 1);
            lua_pop(L, 1);
        }
    }
}

static int core_strip_nulls(lua_State *L)
{
    lua_settop(L, 1);
    if (lua_type(L, 1) == LUA_TTABLE)
        strip_nulls(L, 1, 0);
    return 1;
}

void rv_open_json(lua_State *L)
{
    lua_pushcfunction(L, core_strip_nulls);
    lua_setfield(L, -2, "strip_nulls");
}
