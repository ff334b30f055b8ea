/* ravan.core: the Lua face of the transport, and this unit its client and requests. Thin on
 * purpose: validation, errors and decoding live in Lua; this file turns tables into C structs
 * and responses into tables. Anything C allocates is owned by a userdata with __gc before a Lua
 * call that can raise is made. The other units of the module: rv_wire.c (what a transport
 * written in Lua needs), rv_proc.c (the process), rv_json.c (decoded JSON), rv_recordings.c (recordings to files). */
#include <string.h>

#include "rv_binding.h"
#include "rv_engine.h"
#include "rv_limits.h"

#define CLIENT_MT "ravan.core.client"
#define RESPONSE_MT "ravan.core.response"
#define JOB_MT "ravan.core.job"
/* A client keeps a body buffer up to this size from one response to the next, as a program
 * fetching page after page would keep its own; a larger one is given back at once. */
#define KEPT_BODY_BYTES 65536

/* The engine is made on first use: a client used only for blocking calls has no thread. */
typedef struct client_box {
    rv_client *client;
    rv_engine *engine;
    int max_concurrency;
    /* The response being handed to Lua: here, not on the C stack, so that a memory error while
     * its table is built leaves nothing unowned (the next response or the collector frees it). */
    rv_response resp;
} client_box;

typedef struct job_box {
    rv_job *job;
} job_box;

const char *rv_lua_opt_string(lua_State *L, int t, const char *key)
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

/* Defaults live in ravan.defaults only: the client hands every setting over explicitly. */
static double need_number(lua_State *L, int t, const char *key)
{
    lua_getfield(L, t, key);
    if (lua_type(L, -1) != LUA_TNUMBER)
        luaL_error(L, "ravan.core: '%s' must be a number", key);
    double value = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return value;
}

/* The retry options of a client's table: the C client's and core.decide's. */
void rv_lua_check_policy(lua_State *L, int t, rv_retry_policy *policy)
{
    policy->max_retries = (int)need_number(L, t, "max_retries");
    policy->base = need_number(L, t, "retry_base");
    policy->cap = need_number(L, t, "retry_cap");
    policy->max_retry_after = need_number(L, t, "max_retry_after");
}

static int core_new(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    client_box *box = lua_newuserdata(L, sizeof *box);
    box->client = NULL;
    box->engine = NULL;
    box->max_concurrency = 0;
    rv_response_init(&box->resp);
    luaL_getmetatable(L, CLIENT_MT);
    lua_setmetatable(L, -2);

    rv_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.base_url = rv_lua_opt_string(L, 1, "base_url");
    if (!cfg.base_url)
        return luaL_error(L, "ravan.core: 'base_url' is required");
    cfg.api_key = rv_lua_opt_string(L, 1, "api_key");
    cfg.token = rv_lua_opt_string(L, 1, "token");
    cfg.user_agent = rv_lua_opt_string(L, 1, "user_agent");
    cfg.ca_file = rv_lua_opt_string(L, 1, "ca_file");
    cfg.ca_path = rv_lua_opt_string(L, 1, "ca_path");
    cfg.client_cert = rv_lua_opt_string(L, 1, "client_cert");
    cfg.client_key = rv_lua_opt_string(L, 1, "client_key");
    cfg.key_password = rv_lua_opt_string(L, 1, "key_password");
    cfg.proxy = rv_lua_opt_string(L, 1, "proxy");
    cfg.no_proxy = rv_lua_opt_string(L, 1, "no_proxy");
    lua_getfield(L, 1, "insecure");
    if (lua_type(L, -1) != LUA_TBOOLEAN)
        return luaL_error(L, "ravan.core: 'insecure' must be a boolean");
    cfg.insecure = lua_toboolean(L, -1);
    lua_pop(L, 1);
    cfg.connect_timeout = need_number(L, 1, "connect_timeout");
    cfg.timeout = need_number(L, 1, "timeout");
    cfg.low_speed_limit = (long)need_number(L, 1, "low_speed_limit");
    cfg.low_speed_time = (long)need_number(L, 1, "low_speed_time");
    cfg.max_response_bytes = (size_t)need_number(L, 1, "max_response_bytes");
    rv_lua_check_policy(L, 1, &cfg.retry);
    lua_getfield(L, 1, "http2");
    if (lua_type(L, -1) != LUA_TBOOLEAN)
        return luaL_error(L, "ravan.core: 'http2' must be a boolean");
    cfg.http1 = !lua_toboolean(L, -1);
    lua_pop(L, 1);

    /* Checked by the engine, made on first use: ravan.validate has refused a bad one before. */
    box->max_concurrency = (int)need_number(L, 1, "max_concurrency");

    char err[256];
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

rv_client *rv_lua_check_client(lua_State *L, int idx)
{
    client_box *box = luaL_checkudata(L, idx, CLIENT_MT);
    if (!box->client)
        luaL_error(L, "ravan.core: the client is closed");
    return box->client;
}

void rv_lua_set_string(lua_State *L, const char *key, const char *value)
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

void rv_lua_set_integer(lua_State *L, const char *key, lua_Integer value)
{
    lua_pushinteger(L, value);
    lua_setfield(L, -2, key);
}

static void set_timings(lua_State *L, const rv_timings *t)
{
    lua_createtable(L, 0, 5);
    set_number(L, "dns", t->dns);
    set_number(L, "connect", t->connect);
    set_number(L, "tls", t->tls);
    set_number(L, "first_byte", t->first_byte);
    set_number(L, "total", t->total);
    lua_setfield(L, -2, "timings");
}

static const char *http_version_name(int version)
{
    switch (version) {
    case 10: return "1.0";
    case 11: return "1.1";
    case 20: return "2";
    case 30: return "3";
    default: return NULL;
    }
}

static void push_events(lua_State *L, const rv_response *resp)
{
    lua_createtable(L, (int)resp->n_events, 0);
    for (size_t i = 0; i < resp->n_events; i++) {
        const rv_event *ev = &resp->events[i];
        lua_createtable(L, 0, 7);
        rv_lua_set_integer(L, "attempt", ev->attempt);
        if (ev->status)
            rv_lua_set_integer(L, "status", ev->status);
        rv_lua_set_string(L, "error", rv_error_name(ev->error));
        if (ev->curl_code)
            rv_lua_set_integer(L, "curl_code", ev->curl_code);
        set_number(L, "elapsed_ms", ev->elapsed_ms);
        if (ev->wait_ms > 0)
            set_number(L, "wait_ms", ev->wait_ms);
        if (ev->retry_after >= 0)
            set_number(L, "retry_after", ev->retry_after);
        set_timings(L, &ev->measure.timings);
        rv_lua_set_string(L, "http_version", http_version_name(ev->measure.http_version));
        lua_pushboolean(L, ev->measure.reused);
        lua_setfield(L, -2, "reused");
        rv_lua_set_integer(L, "bytes", (lua_Integer)ev->measure.bytes);
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_setfield(L, -2, "events");
}

/* Leaves the result table on the stack. The record of the attempts (`events`, with `url`) is
 * built only when `detailed` or when there was more than one: only a log or an observer reads
 * every attempt, client:stats() only the retried ones, and building it for every response was
 * a good part of a blocking call's cost. `elapsed`, `bytes` and the last attempt's timings come
 * always, for the stats and an error; the timings as a list (dns, connect, tls, first byte,
 * total), which costs a third of a table with names (ravan.errors names them when needed). */
static void push_response(lua_State *L, const rv_response *resp, int detailed)
{
    lua_createtable(L, 0, detailed ? 20 : 14);
    if (resp->status)
        rv_lua_set_integer(L, "status", resp->status);
    if (resp->error == RV_OK || resp->error == RV_ERR_SERVER) {
        lua_pushlstring(L, resp->body.data ? resp->body.data : "", resp->body.len);
        lua_setfield(L, -2, "body");
    }
    rv_lua_set_string(L, "error", rv_error_name(resp->error));
    if (resp->error != RV_OK) {
        rv_lua_set_string(L, "curl_message", resp->message);
        if (resp->curl_code)
            rv_lua_set_integer(L, "curl_code", resp->curl_code);
    }
    rv_lua_set_string(L, "content_type", resp->content_type);
    rv_lua_set_string(L, "request_id", resp->request_id);
    rv_lua_set_string(L, "origin", resp->origin);
    if (resp->retry_after >= 0)
        set_number(L, "retry_after", resp->retry_after);
    int has_ratelimit = 0;
    for (int i = 0; i < RV_RATELIMIT_FIELDS; i++)
        has_ratelimit |= resp->ratelimit[i] != NULL;
    if (has_ratelimit) {
        lua_createtable(L, 0, RV_RATELIMIT_FIELDS);
        for (int i = 0; i < RV_RATELIMIT_FIELDS; i++)
            rv_lua_set_string(L, rv_ratelimit_names[i], resp->ratelimit[i]);
        lua_setfield(L, -2, "ratelimit");
    }
    if (rv_is_transient(resp->error, resp->status)) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "retryable");
    }
    rv_lua_set_integer(L, "attempts", resp->attempts);
    set_number(L, "elapsed", resp->elapsed);
    if (resp->measured) {
        const rv_timings *t = &resp->timings;
        const double phases[] = {t->dns, t->connect, t->tls, t->first_byte, t->total};
        lua_createtable(L, 5, 0);
        for (int i = 0; i < 5; i++) {
            lua_pushnumber(L, phases[i]);
            lua_rawseti(L, -2, i + 1);
        }
        lua_setfield(L, -2, "timings");
        rv_lua_set_integer(L, "bytes", (lua_Integer)resp->bytes);
    }
    if (detailed)
        rv_lua_set_string(L, "url", resp->url);
    if (detailed || resp->n_events > 1)
        push_events(L, resp);
}

static int response_gc(lua_State *L)
{
    rv_response_free(luaL_checkudata(L, 1, RESPONSE_MT));
    return 0;
}

void rv_lua_check_query(lua_State *L, int t, rv_query *query)
{
    luaL_checktype(L, t, LUA_TTABLE);
    query->phone = rv_lua_opt_string(L, t, "phone");
    if (!query->phone)
        luaL_error(L, "ravan.core: 'phone' is required");
    query->page = (long)opt_number(L, t, "page", 0);
    query->page_size = (long)opt_number(L, t, "page_size", 0);
    lua_getfield(L, t, "include_transcripts");
    query->include_transcripts = lua_isnil(L, -1) ? -1 : lua_toboolean(L, -1);
    lua_pop(L, 1);
    query->deadline = opt_number(L, t, "deadline", 0);
    query->traceparent = rv_lua_opt_string(L, t, "traceparent");
}

/* A response in a userdata, so a memory error while building its table frees it: for a job
 * cancelled from its own handle, where no client slot is at hand. */
static rv_response *new_response(lua_State *L)
{
    rv_response *resp = lua_newuserdata(L, sizeof *resp);
    rv_response_init(resp);
    luaL_getmetatable(L, RESPONSE_MT);
    lua_setmetatable(L, -2);
    return resp;
}

/* client:request(query[, detailed]) -> the result table of a blocking request. */
static int client_request(lua_State *L)
{
    client_box *box = check_box(L);
    rv_query query;
    rv_lua_check_query(L, 2, &query);
    int detailed = lua_toboolean(L, 3);
    rv_response *resp = &box->resp;
    rv_response_clear(resp, KEPT_BODY_BYTES);   /* what a raised memory error left */
    rv_client_fetch(box->client, &query, resp);
    push_response(L, resp, detailed);
    rv_response_clear(resp, KEPT_BODY_BYTES);
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

void rv_lua_gc_metatable(lua_State *L, const char *name, lua_CFunction gc)
{
    luaL_newmetatable(L, name);
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
}

int rv_lua_fail(lua_State *L, const char *err)
{
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
}

rv_engine *rv_lua_engine(lua_State *L, int idx, char *err, size_t errlen)
{
    client_box *box = luaL_checkudata(L, idx, CLIENT_MT);
    if (!box->client)
        luaL_error(L, "ravan.core: the client is closed");
    return engine_of(box, err, errlen);
}

rv_job **rv_lua_new_job(lua_State *L)
{
    job_box *jb = lua_newuserdata(L, sizeof *jb);
    jb->job = NULL;
    luaL_getmetatable(L, JOB_MT);
    lua_setmetatable(L, -2);
    return &jb->job;
}

rv_job *rv_lua_check_job(lua_State *L, int idx)
{
    return ((job_box *)luaL_checkudata(L, idx, JOB_MT))->job;
}

int rv_lua_started(lua_State *L, const rv_job *job, const char *err)
{
    if (!job)
        return rv_lua_fail(L, err);
    lua_pushinteger(L, (lua_Integer)rv_job_id(job));
    return 2;
}

/* client:start(query) -> job, id: the request runs on the engine's thread. nil, message when the
 * engine cannot run it here. */
static int client_start(lua_State *L)
{
    check_box(L);
    rv_query query;
    rv_lua_check_query(L, 2, &query);
    rv_job **job = rv_lua_new_job(L);
    char err[256];
    rv_engine *engine = rv_lua_engine(L, 1, err, sizeof err);
    if (engine)
        *job = rv_engine_start(engine, &query, err, sizeof err);
    return rv_lua_started(L, *job, err);
}

/* client:take([detailed]) -> id, result of the next finished job; nil when none; nil, message
 * when the engine cannot be used here. */
static int client_take(lua_State *L)
{
    client_box *box = check_box(L);
    if (!box->engine)
        return 0;
    char err[256];
    if (rv_engine_usable(box->engine, err, sizeof err))
        return rv_lua_fail(L, err);
    rv_response *resp = &box->resp;
    uint64_t id = rv_engine_take(box->engine, resp);
    if (!id)
        return 0;
    lua_pushinteger(L, (lua_Integer)id);
    push_response(L, resp, lua_toboolean(L, 2));
    rv_response_clear(resp, KEPT_BODY_BYTES);
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
        return rv_lua_fail(L, err);
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
    push_response(L, resp, 1);
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

/* Closing stops the engine now; its descriptor lives on (reading end-of-file) until the
 * handle is collected, so event loops still watching it wake up rather than fail. */
static int client_close(lua_State *L)
{
    client_box *box = luaL_checkudata(L, 1, CLIENT_MT);
    if (box->engine)
        rv_engine_close(box->engine);
    rv_client_release(box->client);
    box->client = NULL;
    rv_response_free(&box->resp);
    return 0;
}

static int client_gc(lua_State *L)
{
    client_box *box = luaL_checkudata(L, 1, CLIENT_MT);
    client_close(L);
    rv_engine_release(box->engine);
    box->engine = NULL;
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
    {"__gc", client_gc},
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
    {NULL, NULL},
};

/* ravan.core.LIMITS: rv_limits.h, for validation and the cosocket transport to read. */
static void push_limits(lua_State *L)
{
    lua_createtable(L, 0, 4);
    rv_lua_set_integer(L, "max_concurrency", RV_MAX_CONCURRENCY);
    rv_lua_set_integer(L, "page_size", RV_MAX_PAGE_SIZE);
    rv_lua_set_integer(L, "max_seconds", RV_MAX_SECONDS);
    rv_lua_set_integer(L, "header_bytes", RV_HEADER_BYTES);
}

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

    rv_lua_gc_metatable(L, JOB_MT, job_gc);
    lua_newtable(L);
    rv_setfuncs(L, job_methods);
    lua_setfield(L, -2, "__index");
    rv_lua_gc_metatable(L, RESPONSE_MT, response_gc);
    lua_pop(L, 2);

    lua_newtable(L);
    rv_setfuncs(L, core_functions);
    /* The kinds in the order of the list they come from, so ravan.errors cannot drift. */
    lua_newtable(L);
    for (int kind = RV_OK + 1; kind < RV_ERR_COUNT; kind++) {
        lua_pushstring(L, rv_error_name((rv_error)kind));
        lua_rawseti(L, -2, kind);
    }
    lua_setfield(L, -2, "KINDS");
    push_limits(L);
    lua_setfield(L, -2, "LIMITS");
    rv_open_wire(L);
    rv_open_query(L);
    rv_open_proc(L);
    rv_open_json(L);
    rv_open_recordings(L);
    lua_pushliteral(L, RV_VERSION);
    lua_setfield(L, -2, "VERSION");
    lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
    lua_setfield(L, -2, "CURL_VERSION");
    return 1;
}
