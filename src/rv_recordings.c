/* Recordings to files for ravan.recordings: each one a job on the client's engine
 * (rv_download.c drives it there), taken like a request; its outcome is read from the job. */
#include "rv_binding.h"

/* core.start_recording(client, {url =, dir =, stem =[, file =]}) -> job, id; nil, message when
 * the engine cannot run it here. */
static int core_start_recording(lua_State *L)
{
    rv_lua_check_client(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    rv_dl_item spec = {0};
    spec.url = rv_lua_opt_string(L, 2, "url");
    spec.dir = rv_lua_opt_string(L, 2, "dir");
    spec.stem = rv_lua_opt_string(L, 2, "stem");
    spec.file = rv_lua_opt_string(L, 2, "file");
    if (!spec.url || !spec.dir || (!spec.stem && !spec.file))
        return luaL_error(L, "ravan.core: a recording needs url, dir and stem or file");
    rv_job **job = rv_lua_new_job(L);
    char err[256];
    rv_engine *engine = rv_lua_engine(L, 1, err, sizeof err);
    if (engine)
        *job = rv_engine_start_recording(engine, &spec, err, sizeof err);
    return rv_lua_started(L, *job, err);
}

/* core.recording_of(job) -> how a taken recording job went: {outcome =, error =, status =,
 * message =, name =, sha256 =, bytes =, received =, resumed =, attempts =, limited =,
 * retry_after =}; nil for a job that is not one, not taken, or cancelled. */
static int core_recording_of(lua_State *L)
{
    rv_job *job = rv_lua_check_job(L, 1);
    const rv_dl_item *item = job ? rv_job_recording(job) : NULL;
    if (!item)
        return 0;
    static const char *const outcomes[] = {"pending", "downloaded", "skipped", "failed"};
    lua_createtable(L, 0, 13);
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
    rv_lua_set_integer(L, "attempts", item->attempts);
    rv_lua_set_integer(L, "limited", item->limited);
    if (item->retry_after >= 0) {
        lua_pushnumber(L, item->retry_after);
        lua_setfield(L, -2, "retry_after");
    }
    return 1;
}

/* core.same_origin(url, home) -> whether `url` is on the origin of `home` (scheme, host, port),
 * as the downloads decide where the credential goes. */
static int core_same_origin(lua_State *L)
{
    lua_pushboolean(L, rv_same_origin(luaL_checkstring(L, 1), luaL_checkstring(L, 2)));
    return 1;
}

static const luaL_Reg recordings_functions[] = {
    {"same_origin", core_same_origin},
    {"start_recording", core_start_recording},
    {"recording_of", core_recording_of},
    {NULL, NULL},
};

void rv_open_recordings(lua_State *L)
{
    rv_setfuncs(L, recordings_functions);
}
