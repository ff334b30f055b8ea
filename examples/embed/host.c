/* ravan-embed: a small C host embedding Lua 5.4 with ravan's C module linked in statically.
 *
 *   make embed
 *   build/embed/ravan-embed SCRIPT [ARG...]
 *
 * The host links build/embed/libravan.a (the files of src/ compiled for Lua 5.4) and registers
 * luaopen_ravan_core in package.preload, so `require "ravan"` never searches package.cpath for a
 * core.so: nothing of ravan is loaded with dlopen. ravan's Lua files come from package.path
 * (RAVAN_LUA_DIR, fixed at build time); a host that ships one file can preload those too, from
 * chunks compiled into it. lua-cjson stays an ordinary C module found through package.cpath; a host
 * without a dynamic loader compiles it in and preloads luaopen_cjson and luaopen_cjson_safe the
 * same way as ravan.core below. */
#include <stdio.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#ifndef RAVAN_LUA_DIR
#define RAVAN_LUA_DIR "lua"
#endif

int luaopen_ravan_core(lua_State *L);

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg)
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Everything that can raise runs inside lua_pcall, so no Lua error escapes to an unprotected
 * call (which would abort the host). */
static int run(lua_State *L)
{
    int argc = (int)lua_tointeger(L, 1);
    char **argv = lua_touserdata(L, 2);
    luaL_openlibs(L);

    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_ravan_core);
    lua_setfield(L, -2, "ravan.core");
    lua_pop(L, 1);
    lua_pushliteral(L, RAVAN_LUA_DIR "/?.lua;" RAVAN_LUA_DIR "/?/init.lua;");
    lua_getfield(L, -2, "path");
    lua_concat(L, 2);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);

    /* arg as the lua interpreter sets it: arg[0] the script, arg[1..] its arguments. */
    lua_createtable(L, argc - 2, 1);
    for (int i = 1; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - 1);
    }
    lua_setglobal(L, "arg");

    lua_pushcfunction(L, traceback);
    if (luaL_loadfile(L, argv[1]) != LUA_OK)
        return lua_error(L);
    for (int i = 2; i < argc; i++)
        lua_pushstring(L, argv[i]);
    if (lua_pcall(L, argc - 2, 0, -(argc - 2) - 2) != LUA_OK)
        return lua_error(L);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s SCRIPT [ARG...]\n", argv[0]);
        return 2;
    }
    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "%s: not enough memory for a Lua state\n", argv[0]);
        return 1;
    }
    lua_pushcfunction(L, run);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    int status = lua_pcall(L, 2, 0, 0);
    if (status != LUA_OK)
        fprintf(stderr, "%s: %s\n", argv[0], lua_tostring(L, -1));
    lua_close(L);
    return status == LUA_OK ? 0 : 1;
}
