/* ravan.core.valid_query: the usual query, valid, checked in one pass in C. Every blocking
 * call checks its query, and the checks in Lua (ravan.validate's QUERY) cost a tenth of the
 * call beyond what any Lua client pays. This accepts exactly what those checks accept and
 * returns what they return; anything else (a bad value, an unknown key, no phone) is nil, and
 * the Lua checks then say what is wrong. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "rv_binding.h"
#include "rv_limits.h"

/* '+' then a digit 1-9 then at least one more digit, 3 to 16 bytes in all: E.164. */
static int is_phone(lua_State *L, int i)
{
    if (lua_type(L, i) != LUA_TSTRING)
        return 0;
    size_t len;
    const char *s = lua_tolstring(L, i, &len);
    if (len < 3 || len > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9')
        return 0;
    for (size_t k = 2; k < len; k++)
        if (s[k] < '0' || s[k] > '9')
            return 0;
    return 1;
}

/* An integral number from lo to hi, pushed as an integer where Lua has them (as the Lua
 * check's math.tointeger makes it); 0, nothing pushed, otherwise. */
static int push_integer_in(lua_State *L, int i, lua_Integer lo, lua_Integer hi)
{
    if (lua_type(L, i) != LUA_TNUMBER)
        return 0;
#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, i)) {
        lua_Integer v = lua_tointeger(L, i);
        if (v < lo || v > hi)
            return 0;
        lua_pushinteger(L, v);
        return 1;
    }
#endif
    lua_Number v = lua_tonumber(L, i);
    /* NaN fails both comparisons. */
    if (!(v >= (lua_Number)lo && v <= (lua_Number)hi) || v != floor(v))
        return 0;
#if LUA_VERSION_NUM >= 503
    lua_pushinteger(L, (lua_Integer)v);
#else
    lua_pushnumber(L, v);
#endif
    return 1;
}

/* Pushes the checked value of field `name` (at index i), or returns 0 for anything the Lua
 * checks would refuse or do not know. */
static int push_checked(lua_State *L, const char *name, size_t len, int i)
{
    if (len == 5 && memcmp(name, "phone", 5) == 0) {
        if (!is_phone(L, i))
            return 0;
    } else if (len == 4 && memcmp(name, "page", 4) == 0) {
        return push_integer_in(L, i, 1, INT_MAX);
    } else if (len == 9 && memcmp(name, "page_size", 9) == 0) {
        return push_integer_in(L, i, 1, RV_MAX_PAGE_SIZE);
    } else if (len == 19 && memcmp(name, "include_transcripts", 19) == 0) {
        if (lua_type(L, i) != LUA_TBOOLEAN)
            return 0;
    } else if (len == 8 && memcmp(name, "deadline", 8) == 0) {
        if (lua_type(L, i) != LUA_TNUMBER)
            return 0;
        lua_Number v = lua_tonumber(L, i);
        if (!(v > 0 && v <= RV_MAX_SECONDS))
            return 0;
    } else {
        return 0;
    }
    lua_pushvalue(L, i);
    return 1;
}

/* valid_query(q) -> a new table of q's checked fields, or nil (for a q that is no table too).
 * Raw reads only, as the Lua checks make: a metatable of the caller's is never run. */
static int core_valid_query(lua_State *L)
{
    lua_settop(L, 1);
    if (!lua_istable(L, 1))
        goto refuse;
    lua_createtable(L, 0, 4);
    int has_phone = 0;
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        /* Checked before lua_tolstring, which would turn a number key into a string. */
        if (lua_type(L, -2) != LUA_TSTRING)
            goto refuse;
        size_t len;
        const char *name = lua_tolstring(L, -2, &len);
        if (!push_checked(L, name, len, lua_gettop(L)))
            goto refuse;
        has_phone |= len == 5; /* "phone": no other name it accepts has 5 bytes */
        lua_pushvalue(L, -3);
        lua_insert(L, -2);
        lua_rawset(L, 2);
        lua_pop(L, 1);
    }
    if (has_phone)
        return 1;
refuse:
    lua_pushnil(L);
    return 1;
}

void rv_open_query(lua_State *L)
{
    lua_pushcfunction(L, core_valid_query);
    lua_setfield(L, -2, "valid_query");
}
