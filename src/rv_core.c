/* ravan.core: the Lua face of the transport. Thin on purpose: validation, errors and decoding
 * live in Lua; this file turns tables into C structs and responses into tables. Anything C
 * allocates is owned by a userdata with __gc before a Lua call that can raise is made. */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "rv_compat.h"
#include "rv_engine.h"
#include "rv_time.h"
#include "rv_transport.h"

#define CLIENT_MT "ravan.core.client"
#define RESPONSE_MT "ravan.core.response"
#define JOB_MT "ravan.core.job"
#define STRIP_DEPTH_LIMIT 1000

/* The engine is made on first use: a client used only for blocking calls has no thread. */
typedef struct client_box {
    rv_client *client;
    rv_engine *engine;
    int max_concurrency;
} client_box;

typedef struct job_box {
    rv_job *job;
} job_box;

static const char *opt_string(lua_State *L, int t, const char *key)
{
    lua_getfield(L, t, key);
    const char *value = NULL;
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "ravan.core: '%s' must be a string", key);
        value = lua_tostring(L, -1);
    }
    /* The string stays alive: the config table still holds it. */
    lua_pop(L, 1);
    return value;
}

static double opt_number(lua_State *L, int t, const char *key, double fallback)
{
    lua_getfield(L, t, key);
    double value = fallback;
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "ravan.core: '%s' must be a number", key);
        value = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return value;
}

static int opt_boolean(lua_State *L, int t, const char *key, int fallback)
{
    lua_getfield(L, t, key);
    int value = lua_isnil(L, -1) ? fallback : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return value;
}

static int core_new(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    client_box *box = lua_newuserdata(L, sizeof *box);
    box->client = NULL;
    box->engine = NULL;
    box->max_concurrency = 0;
    luaL_getmetatable(L, CLIENT_MT);
    lua_setmetatable(L, -2);

    rv_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.base_url = opt_string(L, 1, "base_url");
    if (!cfg.base_url)
        return luaL_error(L, "ravan.core: 'base_url' is required");
    cfg.api_key = opt_string(L, 1, "api_key");
    cfg.token = opt_string(L, 1, "token");
    cfg.user_agent = opt_string(L, 1, "user_agent");
    cfg.ca_file = opt_string(L, 1, "ca_file");
    cfg.ca_path = opt_string(L, 1, "ca_path");
    cfg.insecure = opt_boolean(L, 1, "insecure", 0);
    cfg.connect_timeout = opt_number(L, 1, "connect_timeout", 10);
    cfg.timeout = opt_number(L, 1, "timeout", 60);
    cfg.low_speed_limit = (long)opt_number(L, 1, "low_speed_limit", 1);
    cfg.low_speed_time = (long)opt_number(L, 1, "low_speed_time", 30);
    cfg.max_response_bytes = (size_t)opt_number(L, 1, "max_response_bytes", 64.0 * 1024 * 1024);
    cfg.retry.max_retries = (int)opt_number(L, 1, "max_retries", 2);
    cfg.retry.base = opt_number(L, 1, "retry_base", 0.5);
    cfg.retry.cap = opt_number(L, 1, "retry_cap", 8);
    cfg.retry.max_retry_after = opt_number(L, 1, "max_retry_after", 60);

    int max_concurrency = (int)opt_number(L, 1, "max_concurrency", 8);
    if (max_concurrency < 1 || max_concurrency > RV_MAX_CONCURRENCY)
        return luaL_error(L, "ravan.core: 'max_concurrency' must be from 1 to %d",
                          RV_MAX_CONCURRENCY);

    char err[256];
    box->max_concurrency = max_concurrency;
    box->client = rv_client_new(&cfg, err, sizeof err);
    if (!box->client)
        return luaL_error(L, "ravan.core: %s", err);
    return 1;
}

static client_box *check_box(lua_State *L)
{
    client_box *box = luaL_checkudata(L, 1, CLIENT_MT);
    if (!box->client)
        luaL_error(L, "ravan.core: the client is closed");
    return box;
}

static rv_client *check_client(lua_State *L)
{
    return check_box(L)->client;
}

static void set_string(lua_State *L, const char *key, const char *value)
{
    if (value) {
        lua_pushstring(L, value);
        lua_setfield(L, -2, key);
    }
}

static void set_number(lua_State *L, const char *key, double value)
{
    lua_pushnumber(L, value);
    lua_setfield(L, -2, key);
}

static void set_integer(lua_State *L, const char *key, lua_Integer value)
{
    lua_pushinteger(L, value);
    lua_setfield(L, -2, key);
}

static void push_events(lua_State *L, const rv_response *resp)
{
    lua_createtable(L, (int)resp->n_events, 0);
    for (size_t i = 0; i < resp->n_events; i++) {
        const rv_event *ev = &resp->events[i];
        lua_createtable(L, 0, 7);
        set_integer(L, "attempt", ev->attempt);
        if (ev->status)
            set_integer(L, "status", ev->status);
        set_string(L, "error", rv_error_name(ev->error));
        if (ev->curl_code)
            set_integer(L, "curl_code", ev->curl_code);
        set_number(L, "elapsed_ms", ev->elapsed_ms);
        if (ev->wait_ms > 0)
            set_number(L, "wait_ms", ev->wait_ms);
        if (ev->retry_after >= 0)
            set_number(L, "retry_after", ev->retry_after);
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_setfield(L, -2, "events");
}

/* Leaves the result table on the stack. */
static void push_response(lua_State *L, const rv_response *resp)
{
    lua_createtable(L, 0, 14);
    if (resp->status)
        set_integer(L, "status", resp->status);
    if (resp->error == RV_OK || resp->error == RV_ERR_REDIRECT) {
        lua_pushlstring(L, resp->body.data ? resp->body.data : "", resp->body.len);
        lua_setfield(L, -2, "body");
    }
    set_string(L, "error", rv_error_name(resp->error));
    if (resp->error != RV_OK) {
        set_string(L, "curl_message", resp->message);
        if (resp->curl_code)
            set_integer(L, "curl_code", resp->curl_code);
    }
    set_string(L, "content_type", resp->content_type);
    set_string(L, "request_id", resp->request_id);
    set_string(L, "location", resp->location);
    set_string(L, "url", resp->url);
    if (resp->retry_after >= 0)
        set_number(L, "retry_after", resp->retry_after);
    int has_ratelimit = 0;
    for (int i = 0; i < RV_RATELIMIT_FIELDS; i++)
        has_ratelimit |= resp->ratelimit[i] != NULL;
    if (has_ratelimit) {
        lua_createtable(L, 0, RV_RATELIMIT_FIELDS);
        for (int i = 0; i < RV_RATELIMIT_FIELDS; i++)
            set_string(L, rv_ratelimit_names[i], resp->ratelimit[i]);
        lua_setfield(L, -2, "ratelimit");
    }
    lua_pushboolean(L, rv_is_transient(resp->error, resp->status));
    lua_setfield(L, -2, "retryable");
    set_integer(L, "attempts", resp->attempts);
    set_number(L, "elapsed", resp->elapsed);
    push_events(L, resp);
}

static int response_gc(lua_State *L)
{
    rv_response_free(luaL_checkudata(L, 1, RESPONSE_MT));
    return 0;
}

static void check_query(lua_State *L, int t, rv_query *query)
{
    luaL_checktype(L, t, LUA_TTABLE);
    query->phone = opt_string(L, t, "phone");
    if (!query->phone)
        luaL_error(L, "ravan.core: 'phone' is required");
    query->page = (long)opt_number(L, t, "page", 0);
    query->page_size = (long)opt_number(L, t, "page_size", 0);
    lua_getfield(L, t, "include_transcripts");
    query->include_transcripts = lua_isnil(L, -1) ? -1 : lua_toboolean(L, -1);
    lua_pop(L, 1);
    query->deadline = opt_number(L, t, "deadline", 0);
}

/* The response lives in a userdata, so a memory error while building the table frees it. */
static rv_response *new_response(lua_State *L)
{
    rv_response *resp = lua_newuserdata(L, sizeof *resp);
    rv_response_init(resp);
    luaL_getmetatable(L, RESPONSE_MT);
    lua_setmetatable(L, -2);
    return resp;
}

static int client_request(lua_State *L)
{
    rv_client *client = check_client(L);
    rv_query query;
    check_query(L, 2, &query);
    rv_response *resp = new_response(L);
    rv_client_fetch(client, &query, resp);
    push_response(L, resp);
    rv_response_free(resp);
    return 1;
}

/* The client's engine, made now if need be; NULL with `err` filled when it cannot be used. */
static rv_engine *engine_of(client_box *box, char *err, size_t errlen)
{
    if (!box->engine)
        box->engine = rv_engine_new(box->client, box->max_concurrency, err, errlen);
    if (box->engine && rv_engine_usable(box->engine, err, errlen))
        return NULL;
    return box->engine;
}

static int fail(lua_State *L, const char *err)
{
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
}

/* client:start(query) -> job, id: the request runs on the engine's thread. nil, message when the
 * engine cannot run it here. The job box is made first, so a memory error leaks nothing. */
static int client_start(lua_State *L)
{
    client_box *box = check_box(L);
    rv_query query;
    check_query(L, 2, &query);
    job_box *jb = lua_newuserdata(L, sizeof *jb);
    jb->job = NULL;
    luaL_getmetatable(L, JOB_MT);
    lua_setmetatable(L, -2);
    char err[256];
    rv_engine *engine = engine_of(box, err, sizeof err);
    if (engine)
        jb->job = rv_engine_start(engine, &query, err, sizeof err);
    if (!jb->job)
        return fail(L, err);
    lua_pushinteger(L, (lua_Integer)rv_job_id(jb->job));
    return 2;
}

/* client:take() -> id, result of the next finished job; nil when none; nil, message when the
 * engine cannot be used here. */
static int client_take(lua_State *L)
{
    client_box *box = check_box(L);
    if (!box->engine)
        return 0;
    char err[256];
    if (rv_engine_usable(box->engine, err, sizeof err))
        return fail(L, err);
    rv_response *resp = new_response(L);
    uint64_t id = rv_engine_take(box->engine, resp);
    if (!id)
        return 0;
    lua_pushinteger(L, (lua_Integer)id);
    push_response(L, resp);
    rv_response_free(resp);
    return 2;
}

/* client:wait([seconds]) -> whether a job is ready to take; no limit without seconds. */
static int client_wait(lua_State *L)
{
    client_box *box = check_box(L);
    double seconds = luaL_optnumber(L, 2, -1);
    char err[256];
    rv_engine *engine = engine_of(box, err, sizeof err);
    if (!engine) {
        lua_pushboolean(L, 0);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushboolean(L, rv_engine_wait(engine, seconds));
    return 1;
}

static int client_fd(lua_State *L)
{
    char err[256];
    rv_engine *engine = engine_of(check_box(L), err, sizeof err);
    if (!engine)
        return fail(L, err);
    lua_pushinteger(L, rv_engine_fd(engine));
    return 1;
}

static int client_set_ready(lua_State *L)
{
    client_box *box = check_box(L);
    if (box->engine)
        rv_engine_set_ready(box->engine, lua_toboolean(L, 2));
    return 0;
}

/* job:cancel() -> the cancelled result, or nothing when the job was already taken. */
static int job_cancel(lua_State *L)
{
    job_box *jb = luaL_checkudata(L, 1, JOB_MT);
    rv_response *resp = new_response(L);
    if (!jb->job || !rv_job_cancel(jb->job, resp))
        return 0;
    push_response(L, resp);
    rv_response_free(resp);
    return 1;
}

static int job_gc(lua_State *L)
{
    job_box *jb = luaL_checkudata(L, 1, JOB_MT);
    if (jb->job)
        rv_job_release(jb->job);
    jb->job = NULL;
    return 0;
}

static int client_close(lua_State *L)
{
    client_box *box = luaL_checkudata(L, 1, CLIENT_MT);
    rv_engine_release(box->engine);
    box->engine = NULL;
    rv_client_release(box->client);
    box->client = NULL;
    return 0;
}

static int client_tostring(lua_State *L)
{
    client_box *box = luaL_checkudata(L, 1, CLIENT_MT);
    if (box->client)
        lua_pushfstring(L, "ravan.core.client (%s)", rv_client_base_url(box->client));
    else
        lua_pushliteral(L, "ravan.core.client (closed)");
    return 1;
}

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

static const luaL_Reg client_methods[] = {
    {"request", client_request},
    {"start", client_start},
    {"take", client_take},
    {"wait", client_wait},
    {"fd", client_fd},
    {"set_ready", client_set_ready},
    {"close", client_close},
    {NULL, NULL},
};

static const luaL_Reg client_meta[] = {
    {"__gc", client_close},
#if RV_HAS_CLOSE
    {"__close", client_close},
#endif
    {"__tostring", client_tostring},
    {NULL, NULL},
};

static const luaL_Reg job_methods[] = {
    {"cancel", job_cancel},
    {NULL, NULL},
};

static const luaL_Reg core_functions[] = {
    {"new", core_new},
    {"strip_nulls", core_strip_nulls},
    {"now", core_now},
    {"sleep", core_sleep},
    {"isatty", core_isatty},
    {"trap_signals", core_trap_signals},
    {"signalled", core_signalled},
    {NULL, NULL},
};

int luaopen_ravan_core(lua_State *L)
{
    if (rv_global_init())
        return luaL_error(L, "ravan.core: libcurl could not be initialised");
    luaL_newmetatable(L, CLIENT_MT);
    rv_setfuncs(L, client_meta);
    lua_newtable(L);
    rv_setfuncs(L, client_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    luaL_newmetatable(L, JOB_MT);
    lua_pushcfunction(L, job_gc);
    lua_setfield(L, -2, "__gc");
    lua_newtable(L);
    rv_setfuncs(L, job_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    luaL_newmetatable(L, RESPONSE_MT);
    lua_pushcfunction(L, response_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);

    lua_newtable(L);
    rv_setfuncs(L, core_functions);
    lua_pushliteral(L, RV_VERSION);
    lua_setfield(L, -2, "VERSION");
    lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
    lua_setfield(L, -2, "CURL_VERSION");
    return 1;
}
