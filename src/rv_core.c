/* ravan.core: the Lua face of the transport. Thin on purpose: validation, errors and decoding
 * live in Lua; this file turns tables into C structs and responses into tables. Anything C
 * allocates is owned by a userdata with __gc before a Lua call that can raise is made. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rv_compat.h"
#include "rv_engine.h"
#include "rv_time.h"
#include "rv_transport.h"

#define CLIENT_MT "ravan.core.client"
#define RESPONSE_MT "ravan.core.response"
#define JOB_MT "ravan.core.job"
#define URL_MT "ravan.core.url"
#define STRIP_DEPTH_LIMIT 1000
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
static void check_policy(lua_State *L, int t, rv_retry_policy *policy)
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
    cfg.base_url = opt_string(L, 1, "base_url");
    if (!cfg.base_url)
        return luaL_error(L, "ravan.core: 'base_url' is required");
    cfg.api_key = opt_string(L, 1, "api_key");
    cfg.token = opt_string(L, 1, "token");
    cfg.user_agent = opt_string(L, 1, "user_agent");
    cfg.ca_file = opt_string(L, 1, "ca_file");
    cfg.ca_path = opt_string(L, 1, "ca_path");
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
    check_policy(L, 1, &cfg.retry);

    int max_concurrency = (int)need_number(L, 1, "max_concurrency");
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

/* Leaves the result table on the stack. The record of the attempts (`events`, with `url` and
 * `elapsed`) is built only when `detailed`: only a log or an observer reads it, and building it
 * for every response was a good part of a blocking call's cost. */
static void push_response(lua_State *L, const rv_response *resp, int detailed)
{
    lua_createtable(L, 0, detailed ? 16 : 8);
    if (resp->status)
        set_integer(L, "status", resp->status);
    if (resp->error == RV_OK || resp->error == RV_ERR_SERVER) {
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
    set_string(L, "origin", resp->origin);
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
    if (rv_is_transient(resp->error, resp->status)) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "retryable");
    }
    set_integer(L, "attempts", resp->attempts);
    if (detailed) {
        set_string(L, "url", resp->url);
        set_number(L, "elapsed", resp->elapsed);
        push_events(L, resp);
    }
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
    check_query(L, 2, &query);
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

/* client:take([detailed]) -> id, result of the next finished job; nil when none; nil, message
 * when the engine cannot be used here. */
static int client_take(lua_State *L)
{
    client_box *box = check_box(L);
    if (!box->engine)
        return 0;
    char err[256];
    if (rv_engine_usable(box->engine, err, sizeof err))
        return fail(L, err);
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

/* core.parse_url: libcurl's URL parser as it is used by the client, so validation and the
 * transport cannot disagree on what a URL is. The parts live in a userdata until they are
 * pushed, so a memory error on the way frees them. */
enum { URL_SCHEME, URL_HOST, URL_PORT, URL_PATH, URL_QUERY, URL_FRAGMENT, URL_USER, URL_PARTS };

typedef struct url_box {
    CURLU *url;
    char *parts[URL_PARTS];
} url_box;

static int url_gc(lua_State *L)
{
    url_box *box = luaL_checkudata(L, 1, URL_MT);
    for (int i = 0; i < URL_PARTS; i++) {
        curl_free(box->parts[i]);
        box->parts[i] = NULL;
    }
    curl_url_cleanup(box->url);
    box->url = NULL;
    return 0;
}

/* The box also holds strings of ours (malloc'd): its curl_free is free() as long as libcurl's
 * allocator is the default one, and ravan never calls curl_global_init_mem. */
static url_box *new_url_box(lua_State *L)
{
    url_box *box = lua_newuserdata(L, sizeof *box);
    memset(box, 0, sizeof *box);
    luaL_getmetatable(L, URL_MT);
    lua_setmetatable(L, -2);
    return box;
}

static int core_parse_url(lua_State *L)
{
    size_t len;
    const char *s = lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &len) : NULL;
    if (!s)
        return fail(L, "not a string");
    if (strlen(s) != len)
        return fail(L, "contains a NUL byte");
    url_box *box = new_url_box(L);
    box->url = curl_url();
    if (!box->url)
        return fail(L, "out of memory");
    /* Any scheme parses, so the caller can say which ones it takes. */
    CURLUcode rc = curl_url_set(box->url, CURLUPART_URL, s, CURLU_NON_SUPPORT_SCHEME);
    if (rc != CURLUE_OK)
        return fail(L, curl_url_strerror(rc));
    static const CURLUPart which[URL_PARTS] = {CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT,
                                               CURLUPART_PATH, CURLUPART_QUERY,
                                               CURLUPART_FRAGMENT, CURLUPART_USER};
    for (int i = 0; i < URL_PARTS; i++)
        if (curl_url_get(box->url, which[i], &box->parts[i], 0) != CURLUE_OK)
            box->parts[i] = NULL;
    if (!box->parts[URL_SCHEME] || !box->parts[URL_HOST] || !box->parts[URL_PATH])
        return fail(L, "no scheme or host");
    /* Host names are case-insensitive: one spelling for comparisons and for tostring. */
    for (char *c = box->parts[URL_HOST]; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    lua_createtable(L, 0, 8);
    set_string(L, "scheme", box->parts[URL_SCHEME]);
    set_string(L, "host", box->parts[URL_HOST]);
    if (box->parts[URL_PORT])
        set_integer(L, "port", (lua_Integer)strtol(box->parts[URL_PORT], NULL, 10));
    set_string(L, "path", box->parts[URL_PATH]);
    set_string(L, "query", box->parts[URL_QUERY]);
    set_string(L, "fragment", box->parts[URL_FRAGMENT]);
    /* Whether there is userinfo, never what it is: it may be a password. */
    lua_pushboolean(L, box->parts[URL_USER] != NULL);
    lua_setfield(L, -2, "userinfo");
    /* The API root as the client will use it: no userinfo, query or trailing slash. */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, box->parts[URL_SCHEME]);
    luaL_addstring(&b, "://");
    luaL_addstring(&b, box->parts[URL_HOST]);
    if (box->parts[URL_PORT]) {
        luaL_addchar(&b, ':');
        luaL_addstring(&b, box->parts[URL_PORT]);
    }
    luaL_addlstring(&b, box->parts[URL_PATH], rv_path_trimmed_len(box->parts[URL_PATH]));
    luaL_pushresult(&b);
    lua_setfield(L, -2, "base");
    return 1;
}

/* What a transport written in Lua (ravan.openresty's cosockets) needs of the core, so the
 * request it sends, the redirects it follows and its retry decisions are the C client's own. */


/* core.endpoint(base_url): the API endpoint's URL under base_url, as the C client requests it
 * (without the query); nil and a message when base_url is not a URL. */
static int core_endpoint(lua_State *L)
{
    const char *base_url = luaL_checkstring(L, 1);
    url_box *box = new_url_box(L);
    char err[256];
    box->url = rv_endpoint_new(base_url, err, sizeof err);
    if (!box->url)
        return fail(L, err);
    if (curl_url_get(box->url, CURLUPART_URL, &box->parts[0], 0) != CURLUE_OK)
        return fail(L, "base_url has no scheme or host");
    lua_pushstring(L, box->parts[0]);
    return 1;
}

/* core.query_string(query): the query string exactly as the C transport sends it. */
static int core_query_string(lua_State *L)
{
    rv_query query;
    check_query(L, 1, &query);
    url_box *box = new_url_box(L);
    box->parts[0] = rv_query_string(&query);
    if (!box->parts[0])
        return luaL_error(L, "ravan.core: out of memory");
    lua_pushstring(L, box->parts[0]);
    return 1;
}

/* core.redirect(url, location, home, redirects, status): rv_redirect_decide. true and the
 * target to follow; or false, why not, and the other origin it pointed at (when it did). */
static int core_redirect(lua_State *L)
{
    const char *url = luaL_checkstring(L, 1);
    const char *location = luaL_optstring(L, 2, NULL);
    const char *home = luaL_checkstring(L, 3);
    int redirects = (int)luaL_checkinteger(L, 4);
    long status = (long)luaL_checkinteger(L, 5);
    url_box *box = new_url_box(L);
    char message[CURL_ERROR_SIZE];
    int follow = rv_redirect_decide(url, location, home, redirects, status, &box->parts[0],
                                    &box->parts[1], message, sizeof message);
    lua_pushboolean(L, follow);
    if (follow) {
        lua_pushstring(L, box->parts[0]);
        return 2;
    }
    lua_pushstring(L, message);
    if (box->parts[1])
        lua_pushstring(L, box->parts[1]);
    else
        lua_pushnil(L);
    return 3;
}

/* core.is_redirect(status): whether core.redirect has to decide about this answer. */
static int core_is_redirect(lua_State *L)
{
    lua_pushboolean(L, rv_is_redirect((long)luaL_checkinteger(L, 1)));
    return 1;
}

/* An outcome as Lua names it: an HTTP status (a number) or an error kind (a string). */
static void check_outcome(lua_State *L, int i, rv_error *error, long *status)
{
    *error = RV_OK;
    *status = 0;
    if (lua_type(L, i) == LUA_TNUMBER) {
        *status = (long)lua_tonumber(L, i);
        return;
    }
    const char *name = luaL_checkstring(L, i);
    for (int e = RV_OK + 1; e < RV_ERR_COUNT; e++) {
        if (strcmp(rv_error_name((rv_error)e), name) == 0) {
            *error = (rv_error)e;
            return;
        }
    }
    luaL_argerror(L, i, "not a status or an error kind");
}

/* core.is_transient(status_or_kind): whether that outcome is ever retried. */
static int core_is_transient(lua_State *L)
{
    rv_error error;
    long status;
    check_outcome(L, 1, &error, &status);
    lua_pushboolean(L, rv_is_transient(error, status));
    return 1;
}

/* core.parse_retry_after(retry_after_ms, retry_after[, now]): seconds, or nil. */
static int core_parse_retry_after(lua_State *L)
{
    const char *ms = luaL_optstring(L, 1, NULL);
    const char *text = luaL_optstring(L, 2, NULL);
    time_t now = lua_isnoneornil(L, 3) ? time(NULL) : (time_t)luaL_checknumber(L, 3);
    double wait = rv_parse_retry_after(ms, text, now);
    if (wait < 0)
        return 0;
    lua_pushnumber(L, wait);
    return 1;
}

/* core.decide(policy, attempt, status_or_kind, server_wait, time_left) -> retry, wait,
 * refused_wait: rv_decide. `policy` holds the client options max_retries, retry_base,
 * retry_cap, max_retry_after (validated, defaults filled in); a nil wait or time left means none. The jitter's state is this
 * function's upvalue: one per Lua state, which only one thread runs. */
static int core_decide(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    rv_retry_policy policy;
    check_policy(L, 1, &policy);
    int attempt = (int)luaL_checkinteger(L, 2);
    rv_error error;
    long status;
    check_outcome(L, 3, &error, &status);
    double server_wait = luaL_optnumber(L, 4, -1);
    double time_left = luaL_optnumber(L, 5, -1);
    uint64_t *rng = lua_touserdata(L, lua_upvalueindex(1));
    rv_verdict verdict = rv_decide(&policy, attempt, error, status, server_wait, time_left, rng);
    lua_pushboolean(L, verdict.retry);
    lua_pushnumber(L, verdict.wait);
    if (verdict.refused_wait >= 0)
        lua_pushnumber(L, verdict.refused_wait);
    else
        lua_pushnil(L);
    return 3;
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

/* core.default_sigint(): the CLI dies at once on Ctrl-C, as the shell expects (status 130, no
 * output). lua.c's own handler only raises "interrupted!" at the next Lua instruction: after the
 * request in flight has ended, with a traceback. */
static int core_default_sigint(lua_State *L)
{
    (void)L;
    signal(SIGINT, SIG_DFL);
    return 0;
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
    {"strip_nulls", core_strip_nulls},
    {"parse_url", core_parse_url},
    {"now", core_now},
    {"sleep", core_sleep},
    {"isatty", core_isatty},
    {"trap_signals", core_trap_signals},
    {"signalled", core_signalled},
    {"default_sigint", core_default_sigint},
    {"endpoint", core_endpoint},
    {"query_string", core_query_string},
    {"redirect", core_redirect},
    {"is_redirect", core_is_redirect},
    {"is_transient", core_is_transient},
    {"parse_retry_after", core_parse_retry_after},
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

    luaL_newmetatable(L, URL_MT);
    lua_pushcfunction(L, url_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);

    luaL_newmetatable(L, RESPONSE_MT);
    lua_pushcfunction(L, response_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);

    lua_newtable(L);
    rv_setfuncs(L, core_functions);
    /* The kinds in the order of the list they come from, so ravan.errors cannot drift. */
    lua_newtable(L);
    for (int kind = RV_OK + 1; kind < RV_ERR_COUNT; kind++) {
        lua_pushstring(L, rv_error_name((rv_error)kind));
        lua_rawseti(L, -2, kind);
    }
    lua_setfield(L, -2, "KINDS");
    /* The request id headers, lower-cased: as a Lua transport's header table has them. */
    lua_newtable(L);
    for (int i = 0; rv_request_id_headers[i]; i++) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (const char *c = rv_request_id_headers[i]; *c; c++)
            luaL_addchar(&b, (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c));
        luaL_pushresult(&b);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "REQUEST_ID_HEADERS");
    /* Limits the Lua transports must share with this one: libcurl refuses a response header
     * line of this size, so the cosocket reader does too. */
    lua_newtable(L);
    lua_pushinteger(L, CURL_MAX_HTTP_HEADER);
    lua_setfield(L, -2, "header_bytes");
    lua_setfield(L, -2, "LIMITS");
    uint64_t *rng = lua_newuserdata(L, sizeof *rng);
    *rng = rv_seed(rng);
    lua_pushcclosure(L, core_decide, 1);
    lua_setfield(L, -2, "decide");
    lua_pushliteral(L, RV_VERSION);
    lua_setfield(L, -2, "VERSION");
    lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
    lua_setfield(L, -2, "CURL_VERSION");
    return 1;
}
