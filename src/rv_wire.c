/* ravan.core's wire: what a transport written in Lua (ravan.openresty's cosockets) needs of the
 * core, so the URL it requests, the head it sends, the redirects it follows and its retry
 * decisions are the C client's own, and what validation needs to read a URL as libcurl does. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rv_binding.h"

#define URL_MT "ravan.core.url"
#define HEAD_MT "ravan.core.head"

/* A URL and strings made from it live in a userdata until they are pushed, so a memory error
 * on the way frees them. */
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

/* core.parse_url: libcurl's URL parser as it is used by the client, so validation and the
 * transport cannot disagree on what a URL is. */
static int core_parse_url(lua_State *L)
{
    size_t len;
    const char *s = lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &len) : NULL;
    if (!s)
        return rv_lua_fail(L, "not a string");
    if (strlen(s) != len)
        return rv_lua_fail(L, "contains a NUL byte");
    url_box *box = new_url_box(L);
    box->url = curl_url();
    if (!box->url)
        return rv_lua_fail(L, "out of memory");
    /* Any scheme parses, so the caller can say which ones it takes. */
    CURLUcode rc = curl_url_set(box->url, CURLUPART_URL, s, CURLU_NON_SUPPORT_SCHEME);
    if (rc != CURLUE_OK)
        return rv_lua_fail(L, curl_url_strerror(rc));
    static const CURLUPart which[URL_PARTS] = {CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT,
                                               CURLUPART_PATH, CURLUPART_QUERY,
                                               CURLUPART_FRAGMENT, CURLUPART_USER};
    for (int i = 0; i < URL_PARTS; i++)
        if (curl_url_get(box->url, which[i], &box->parts[i], 0) != CURLUE_OK)
            box->parts[i] = NULL;
    if (!box->parts[URL_SCHEME] || !box->parts[URL_HOST] || !box->parts[URL_PATH])
        return rv_lua_fail(L, "no scheme or host");
    /* Host names are case-insensitive: one spelling for comparisons and for tostring. */
    for (char *c = box->parts[URL_HOST]; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    lua_createtable(L, 0, 8);
    rv_lua_set_string(L, "scheme", box->parts[URL_SCHEME]);
    rv_lua_set_string(L, "host", box->parts[URL_HOST]);
    if (box->parts[URL_PORT])
        rv_lua_set_integer(L, "port", (lua_Integer)strtol(box->parts[URL_PORT], NULL, 10));
    rv_lua_set_string(L, "path", box->parts[URL_PATH]);
    rv_lua_set_string(L, "query", box->parts[URL_QUERY]);
    rv_lua_set_string(L, "fragment", box->parts[URL_FRAGMENT]);
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

/* core.endpoint(base_url): the API endpoint's URL under base_url, as the C client requests it
 * (without the query); nil and a message when base_url is not a URL. */
static int core_endpoint(lua_State *L)
{
    const char *base_url = luaL_checkstring(L, 1);
    url_box *box = new_url_box(L);
    char err[256];
    box->url = rv_endpoint_new(base_url, err, sizeof err);
    if (!box->url)
        return rv_lua_fail(L, err);
    if (curl_url_get(box->url, CURLUPART_URL, &box->parts[0], 0) != CURLUE_OK)
        return rv_lua_fail(L, "base_url has no scheme or host");
    lua_pushstring(L, box->parts[0]);
    return 1;
}

/* core.query_string(query): the query string exactly as the C transport sends it. */
static int core_query_string(lua_State *L)
{
    rv_query query;
    rv_lua_check_query(L, 1, &query);
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
 * retry_cap, max_retry_after (validated, defaults filled in); a nil wait or time left means
 * none. The jitter's state is this function's upvalue: one per Lua state, which only one
 * thread runs. */
static int core_decide(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    rv_retry_policy policy;
    rv_lua_check_policy(L, 1, &policy);
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

/* The header lines of a request, held until they are pushed, so a memory error frees them. */
typedef struct head_box {
    char *lines[RV_HEAD_LINES];
} head_box;

static int head_gc(lua_State *L)
{
    rv_request_head_free(((head_box *)luaL_checkudata(L, 1, HEAD_MT))->lines);
    return 0;
}

/* core.request_head{ user_agent =, api_key =, token = }: the header lines the C client sends
 * with every request (rv_request_head), each ending in CR LF, for a transport that writes its
 * own request; nil and a message when a value cannot go in a header. */
static int core_request_head(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    rv_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.user_agent = rv_lua_opt_string(L, 1, "user_agent");
    cfg.api_key = rv_lua_opt_string(L, 1, "api_key");
    cfg.token = rv_lua_opt_string(L, 1, "token");
    head_box *box = lua_newuserdata(L, sizeof *box);
    memset(box, 0, sizeof *box);
    luaL_getmetatable(L, HEAD_MT);
    lua_setmetatable(L, -2);
    char err[256];
    int n = rv_request_head(&cfg, box->lines, err, sizeof err);
    if (n < 0)
        return rv_lua_fail(L, err);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 0; i < n; i++) {
        luaL_addstring(&b, box->lines[i]);
        luaL_addlstring(&b, "\r\n", 2);
    }
    luaL_pushresult(&b);
    return 1;
}

static const luaL_Reg wire_functions[] = {
    {"parse_url", core_parse_url},
    {"endpoint", core_endpoint},
    {"query_string", core_query_string},
    {"request_head", core_request_head},
    {"redirect", core_redirect},
    {"is_redirect", core_is_redirect},
    {"is_transient", core_is_transient},
    {"parse_retry_after", core_parse_retry_after},
    {NULL, NULL},
};

/* The state of core.traceparent's generator, and the process it was seeded in: nginx forks
 * its workers after the module may have been loaded, and each must draw its own ids. */
typedef struct trace_rng {
    uint64_t state;
    pid_t pid;
} trace_rng;

/* splitmix64: every output differs, which a trace id needs more than unpredictability. */
static uint64_t trace_next(trace_rng *rng)
{
    pid_t pid = getpid();
    if (rng->pid != pid) {
        rng->pid = pid;
        rng->state ^= rv_seed(rng) ^ ((uint64_t)pid << 32);
    }
    uint64_t z = (rng->state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    z ^= z >> 31;
    return z ? z : 1;   /* an all-zero trace or parent id is invalid */
}

/* core.traceparent() -> a new W3C traceparent, "00-<trace id>-<parent id>-01" (sampled). */
static int core_traceparent(lua_State *L)
{
    trace_rng *rng = lua_touserdata(L, lua_upvalueindex(1));
    uint64_t hi = trace_next(rng), lo = trace_next(rng), parent = trace_next(rng);
    char text[56];
    snprintf(text, sizeof text, "00-%016" PRIx64 "%016" PRIx64 "-%016" PRIx64 "-01", hi, lo,
             parent);
    lua_pushstring(L, text);
    return 1;
}

void rv_open_wire(lua_State *L)
{
    rv_lua_gc_metatable(L, URL_MT, url_gc);
    rv_lua_gc_metatable(L, HEAD_MT, head_gc);
    lua_pop(L, 2);
    rv_setfuncs(L, wire_functions);
    uint64_t *rng = lua_newuserdata(L, sizeof *rng);
    *rng = rv_seed(rng);
    lua_pushcclosure(L, core_decide, 1);
    lua_setfield(L, -2, "decide");
    trace_rng *trace = lua_newuserdata(L, sizeof *trace);
    trace->state = 0;
    trace->pid = 0;
    lua_pushcclosure(L, core_traceparent, 1);
    lua_setfield(L, -2, "traceparent");
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
}
