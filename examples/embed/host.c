/* ravan-embed: a small C host embedding Lua 5.4 with ravan's C module linked in statically.
 *
 *   make embed
 *   build/embed/ravan-embed SCRIPT [ARG...]
 *   build/embed/ravan-embed --frames SCRIPT [ARG...]
 *
 * With --frames the host is a game loop: SCRIPT returns a function, which the host calls once per
 * frame at 60 Hz with the frame number until it returns true (or a minute passes); the script
 * starts requests and calls client:poll(0) in it. The host then prints how long its frames spent
 * in Lua (and so in ravan): p50, p99 and max, in milliseconds.
 *
 * The host links build/embed/libravan.a (the files of src/ compiled for Lua 5.4) and registers
 * luaopen_ravan_core in package.preload, so `require "ravan"` never searches package.cpath for a
 * core.so: nothing of ravan is loaded with dlopen. ravan's Lua files come from package.path
 * (RAVAN_LUA_DIR, fixed at build time); a host that ships one file can preload those too, from
 * chunks compiled into it. lua-cjson stays an ordinary C module found through package.cpath; a host
 * without a dynamic loader compiles it in and preloads luaopen_cjson and luaopen_cjson_safe the
 * same way as ravan.core below. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#ifndef RAVAN_LUA_DIR
#define RAVAN_LUA_DIR "lua"
#endif

int luaopen_ravan_core(lua_State *L);

#define FRAME_HZ 60
#define MAX_FRAMES (FRAME_HZ * 60)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double when)
{
    double left = when - now_s();
    if (left <= 0)
        return;
    struct timespec ts;
    ts.tv_sec = (time_t)left;
    ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The frame function is on top of the stack. Calls it at 60 Hz until it returns true; an error it
 * raises ends the loop as the script's error. */
static int frame_loop(lua_State *L)
{
    luaL_checktype(L, -1, LUA_TFUNCTION);
    int fn = lua_gettop(L);
    double *spent = lua_newuserdata(L, MAX_FRAMES * sizeof *spent);
    double start = now_s(), next = start;
    int frames = 0, finished = 0;
    while (!finished && frames < MAX_FRAMES) {
        double t0 = now_s();
        lua_pushvalue(L, fn);
        lua_pushinteger(L, frames + 1);
        lua_call(L, 1, 1);
        finished = lua_toboolean(L, -1);
        lua_pop(L, 1);
        spent[frames++] = (now_s() - t0) * 1000.0;
        next += 1.0 / FRAME_HZ;
        sleep_until(next);
    }
    double total = now_s() - start;
    qsort(spent, (size_t)frames, sizeof *spent, by_value);
    int p99 = (int)(0.99 * (frames - 1) + 0.5);
    printf("frames=%d finished=%s seconds=%.3f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n", frames,
           finished ? "yes" : "no", total, spent[(frames - 1) / 2], spent[p99], spent[frames - 1]);
    if (!finished)
        return luaL_error(L, "the frame function did not finish within %d frames", MAX_FRAMES);
    return 0;
}

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
    int frames = argc > 2 && strcmp(argv[1], "--frames") == 0;
    if (frames) {
        argc--;
        argv++;
    }
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
    if (lua_pcall(L, argc - 2, frames ? 1 : 0, -(argc - 2) - 2) != LUA_OK)
        return lua_error(L);
    if (frames) {
        lua_pushcfunction(L, frame_loop);
        lua_insert(L, -2);
        if (lua_pcall(L, 1, 0, -3) != LUA_OK)
            return lua_error(L);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s [--frames] SCRIPT [ARG...]\n", argv[0]);
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
