/* Every difference between Lua 5.1, 5.2, 5.3, 5.4 and LuaJIT that the binding meets lives here. */
#ifndef RV_COMPAT_H
#define RV_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM == 501
/* luaL_register with a NULL name fills the table on top, like luaL_setfuncs with no upvalues. */
#define rv_setfuncs(L, reg) luaL_register((L), NULL, (reg))
/* The length of an array without metamethods: 5.1's name for it. */
#define rv_rawlen(L, i) lua_objlen((L), (i))
#else
#define rv_setfuncs(L, reg) luaL_setfuncs((L), (reg), 0)
#define rv_rawlen(L, i) lua_rawlen((L), (i))
#endif

/* The length of a table, raw: what `#` gives for one without a metatable. */
#if LUA_VERSION_NUM == 501
#define rv_rawlen(L, i) lua_objlen((L), (i))
#else
#define rv_rawlen(L, i) lua_rawlen((L), (i))
#endif

/* To-be-closed variables (a `local c <close>` or a `for` loop's fourth value) exist from 5.4. */
#if LUA_VERSION_NUM >= 504
#define RV_HAS_CLOSE 1
#else
#define RV_HAS_CLOSE 0
#endif

#endif
