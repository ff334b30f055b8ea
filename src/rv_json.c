/* ravan.core.strip_nulls: what lua-cjson decodes as JSON null (its lightuserdata NULL) taken out
 * of a decoded table and all tables under it, so a field the server sent as null reads as
 * absent, as a Lua program expects. In C because it walks every page's every call. */
#include <math.h>
#include <string.h>

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

/* Whether "null" is in the text: without it there is no null to strip, and a search of the
 * bytes costs far less than a walk of every table. 'u' is searched for, as the rarest letter of
 * the word in JSON text (the keys and values of a page are full of 'n's and 'l's). */
static int mentions_null(const char *s, size_t len)
{
    if (len < 4)
        return 0;
    /* A 'u' at p is read with p[-1], p[1] and p[2]. */
    const char *p = s + 1, *last = s + len - 2;
    while (p < last && (p = memchr(p, 'u', (size_t)(last - p))) != NULL) {
        if (p[-1] == 'n' && p[1] == 'l' && p[2] == 'l')
            return 1;
        p++;
    }
    return 0;
}

/* strip_nulls(t[, text]) -> t; given the JSON text t was decoded from, t is walked only when
 * the text has "null" in it. */
static int core_strip_nulls(lua_State *L)
{
    lua_settop(L, 2);
    size_t len = 0;
    const char *text = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &len) : NULL;
    if (lua_type(L, 1) == LUA_TTABLE && (!text || mentions_null(text, len)))
        strip_nulls(L, 1, 0);
    lua_settop(L, 1);
    return 1;
}

/* Whether the number at `i`, a field named in a record's `integers`, is integral; on Lua 5.3+ it
 * is then made an integer in field `key` of table `t`. As math.tointeger decides it there, and
 * on 5.1 as ravan.decode's stand-in for it does. */
static int integral(lua_State *L, int t, int i, int key)
{
#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, i))
        return 1;
    lua_Number v = lua_tonumber(L, i);
    /* -2^63 <= v < 2^63: what a lua_Integer holds (and NaN fails both). */
    if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0) || v != floor(v))
        return 0;
    lua_pushvalue(L, key);
    lua_pushinteger(L, (lua_Integer)v);
    lua_rawset(L, t);
    return 1;
#else
    (void)t;
    (void)key;
    lua_Number v = lua_tonumber(L, i);
    return v == floor(v) && v > -HUGE_VAL && v < HUGE_VAL;
#endif
}

/* The lists of a record's checks (ravan.decode's), by index: cheaper to reach than by name. */
enum { CHECK_INTEGERS = 1, CHECK_DECIMALS = 2, CHECK_ARRAYS = 3 };

/* Whether each field of table `t` named in list `list` of the checks at `c` is absent or holds
 * what it should: an integral number (made an integer), or a decimal's string. */
static int fields_pass(lua_State *L, int t, int c, int list)
{
    int base = lua_gettop(L);
    lua_rawgeti(L, c, list);
    int names = base + 1;
    int n = (int)rv_rawlen(L, names), pass = 1;
    for (int k = 1; pass && k <= n; k++) {
        lua_rawgeti(L, names, k);
        lua_pushvalue(L, -1);
        lua_rawget(L, t);
        int type = lua_type(L, -1);
        if (list == CHECK_INTEGERS)
            pass = type == LUA_TNIL || (type == LUA_TNUMBER && integral(L, t, -1, -2));
        else
            pass = type == LUA_TNIL || type == LUA_TSTRING;
        lua_settop(L, names);
    }
    lua_settop(L, base);
    return pass;
}

/* A record `t` by its checks at `c` (ravan.decode's: integers, decimals, and arrays as pairs of
 * a name and the items' checks), as ravan.decode's `fix` would find it, converting the integers
 * as it does. 0 for anything that is not plainly well (a wrong value, and a decimal sent as a
 * number too): decode then runs its own checks, which convert the rest and word what is
 * wrong. */
static int record_passes(lua_State *L, int t, int c, int depth)
{
    if (depth > STRIP_DEPTH_LIMIT)
        return 0;
    luaL_checkstack(L, 8, "ravan.core: table nested too deeply");
    if (!fields_pass(L, t, c, CHECK_INTEGERS) || !fields_pass(L, t, c, CHECK_DECIMALS))
        return 0;
    int base = lua_gettop(L);
    lua_rawgeti(L, c, CHECK_ARRAYS);
    int arrays = base + 1;
    int n = (int)rv_rawlen(L, arrays), pass = 1;
    for (int k = 1; pass && k + 1 <= n; k += 2) {
        lua_rawgeti(L, arrays, k);
        lua_rawget(L, t);
        int items = arrays + 1;
        if (lua_type(L, items) == LUA_TTABLE) {
            lua_rawgeti(L, arrays, k + 1);
            int item_checks = items + 1;
            /* An array, as decode's is_array sees one: empty, or with a first item. */
            lua_pushnil(L);
            if (lua_next(L, items)) {
                lua_rawgeti(L, items, 1);
                pass = !lua_isnil(L, -1);
            }
            lua_settop(L, item_checks);
            int len = (int)rv_rawlen(L, items);
            for (int j = 1; pass && j <= len; j++) {
                lua_rawgeti(L, items, j);
                pass = lua_type(L, -1) == LUA_TTABLE
                       && record_passes(L, lua_gettop(L), item_checks, depth + 1);
                lua_settop(L, item_checks);
            }
        } else {
            pass = lua_isnil(L, items);
        }
        lua_settop(L, arrays);
    }
    lua_settop(L, base);
    return pass;
}

/* record_passes(t, checks) -> boolean */
static int core_record_passes(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    lua_pushboolean(L, record_passes(L, 1, 2, 0));
    return 1;
}

void rv_open_json(lua_State *L)
{
    lua_pushcfunction(L, core_strip_nulls);
    lua_setfield(L, -2, "strip_nulls");
    lua_pushcfunction(L, core_record_passes);
    lua_setfield(L, -2, "record_passes");
}
