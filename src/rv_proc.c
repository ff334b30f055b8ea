/* ravan.core's process utilities: the monotonic clock and sleeping, the terminal, and the
 * signals the CLI handles. */
#include <signal.h>
#include <unistd.h>

#include "rv_binding.h"
#include "rv_time.h"

static int core_now(lua_State *L)
{
    lua_pushnumber(L, rv_now());
    return 1;
}

static int core_sleep(lua_State *L)
{
    rv_sleep(luaL_checknumber(L, 1));
    return 0;
}

/* core.trap_signals() makes SIGINT and SIGTERM set a flag instead of ending the process, and
 * core.signalled() reads it (the signal number, or nil): the CLI's sync stops after the page in
 * hand, with its summary. A second signal of either kind ends the process as usual. */
static volatile sig_atomic_t caught_signal;

static void on_signal(int sig)
{
    caught_signal = sig;
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
}

static int core_trap_signals(lua_State *L)
{
    (void)L;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    return 0;
}

static int core_signalled(lua_State *L)
{
    if (!caught_signal)
        return 0;
    lua_pushinteger(L, caught_signal);
    return 1;
}

/* core.isatty(fd): lets the CLI show progress on a terminal only, without a shell round trip. */
static int core_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)) == 1);
    return 1;
}

/* core.default_sigint(): the CLI dies at once on Ctrl-C, as the shell expects (status 130, no
 * output). lua.c's own handler only raises "interrupted!" at the next Lua instruction: after the
 * request in flight has ended, with a traceback. */
static int core_default_sigint(lua_State *L)
{
    (void)L;
    signal(SIGINT, SIG_DFL);
    return 0;
}

static const luaL_Reg proc_functions[] = {
    {"now", core_now},
    {"sleep", core_sleep},
    {"isatty", core_isatty},
    {"trap_signals", core_trap_signals},
    {"signalled", core_signalled},
    {"default_sigint", core_default_sigint},
    {NULL, NULL},
};

void rv_open_proc(lua_State *L)
{
    rv_setfuncs(L, proc_functions);
}
