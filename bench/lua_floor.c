/* The floor for a Lua client in benchmark (a): the least a binding can do. One function, get(),
 * makes the GET of bench/raw_libcurl.c (one reused easy handle, the same headers, gzip) and
 * returns the body as a Lua string: no query building, no checks, no retries, no errors, no
 * response table. bench/http_client.lua times it bare and with cjson.decode after it, which
 * separates what any Lua client of this API pays from what ravan adds. CA_FILE, for an https
 * URL, is the certificate to trust; the connection is kept as over plain HTTP.
 *
 *   local get = require("lua_floor").open(URL, API_KEY [, CA_FILE])  -- get() -> body, or raises */
#include <curl/curl.h>
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "keep_body.h"

#define FLOOR_MT "bench.lua_floor"

typedef struct floor_handle {
    CURL *easy;
    struct curl_slist *headers;
    body body;
} floor_handle;

static int get(lua_State *L)
{
    floor_handle *f = luaL_checkudata(L, lua_upvalueindex(1), FLOOR_MT);
    long status = 0;
    f->body.len = 0;
    CURLcode rc = curl_easy_perform(f->easy);
    curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || status != 200)
        return luaL_error(L, "lua_floor: %s (HTTP %d)", curl_easy_strerror(rc), (int)status);
    lua_pushlstring(L, f->body.data ? f->body.data : "", f->body.len);
    return 1;
}

static int floor_gc(lua_State *L)
{
    floor_handle *f = luaL_checkudata(L, 1, FLOOR_MT);
    curl_easy_cleanup(f->easy);
    curl_slist_free_all(f->headers);
    free(f->body.data);
    memset(f, 0, sizeof *f);
    return 0;
}

static int open_floor(lua_State *L)
{
    const char *url = luaL_checkstring(L, 1);
    const char *key = luaL_checkstring(L, 2);
    const char *ca_file = luaL_optstring(L, 3, NULL);
    floor_handle *f = lua_newuserdata(L, sizeof *f);
    memset(f, 0, sizeof *f);
    luaL_getmetatable(L, FLOOR_MT);
    lua_setmetatable(L, -2);
    lua_pushfstring(L, "X-Api-Key: %s", key);
    f->headers = curl_slist_append(NULL, "Accept: application/json");
    f->headers = curl_slist_append(f->headers, lua_tostring(L, -1));
    lua_pop(L, 1);
    f->easy = curl_easy_init();
    if (!f->easy || !f->headers)
        return luaL_error(L, "lua_floor: out of memory");
    curl_easy_setopt(f->easy, CURLOPT_URL, url);
    curl_easy_setopt(f->easy, CURLOPT_HTTPHEADER, f->headers);
    curl_easy_setopt(f->easy, CURLOPT_USERAGENT, "lua-floor-bench");
    curl_easy_setopt(f->easy, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(f->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(f->easy, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(f->easy, CURLOPT_WRITEDATA, &f->body);
    if (ca_file)
        curl_easy_setopt(f->easy, CURLOPT_CAINFO, ca_file);
    lua_pushcclosure(L, get, 1);
    return 1;
}

int luaopen_lua_floor(lua_State *L)
{
    luaL_newmetatable(L, FLOOR_MT);
    lua_pushcfunction(L, floor_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushcfunction(L, open_floor);
    lua_setfield(L, -2, "open");
    return 1;
}
