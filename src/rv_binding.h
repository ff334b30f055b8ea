/* What the units of the binding ravan.core share. rv_core.c is the client and its requests and
 * opens the module; rv_wire.c, rv_query.c, rv_proc.c, rv_json.c and rv_recordings.c each add
 * their functions to it. Only these units know Lua: the transport under them never does. */
#ifndef RV_BINDING_H
#define RV_BINDING_H

#include "rv_compat.h"
#include "rv_engine.h"
#include "rv_transport.h"

/* The transport client of a ravan.core client at `idx`; raises when it is not one or closed. */
rv_client *rv_lua_check_client(lua_State *L, int idx);

/* The engine of the ravan.core client at `idx` (raises when it is not one or closed), made now if
 * need be; NULL with `err` filled when it cannot be used here. */
rv_engine *rv_lua_engine(lua_State *L, int idx, char *err, size_t errlen);

/* A job box (a userdata whose __gc releases its job) pushed on the stack: where to put the job.
 * Made before the job, so a memory error leaks nothing. */
rv_job **rv_lua_new_job(lua_State *L);
rv_job *rv_lua_check_job(lua_State *L, int idx);

/* job, id (the box below on the stack), or nil, err when `job` is NULL: for `return`. */
int rv_lua_started(lua_State *L, const rv_job *job, const char *err);

/* Fields of a table at index `t`: a missing one is NULL; a wrong type raises. */
const char *rv_lua_opt_string(lua_State *L, int t, const char *key);
void rv_lua_check_query(lua_State *L, int t, rv_query *query);
void rv_lua_check_policy(lua_State *L, int t, rv_retry_policy *policy);

/* Fields of the table on top of the stack; a NULL string is left out. */
void rv_lua_set_string(lua_State *L, const char *key, const char *value);
void rv_lua_set_integer(lua_State *L, const char *key, lua_Integer value);

/* Makes the metatable `name` of a userdata that `gc` frees, and leaves it on the stack. */
void rv_lua_gc_metatable(lua_State *L, const char *name, lua_CFunction gc);

/* nil, err: returns 2, for `return rv_lua_fail(L, err)`. */
int rv_lua_fail(lua_State *L, const char *err);

/* Each adds its functions (and makes its metatables) into the module table on top of the stack. */
void rv_open_wire(lua_State *L);
void rv_open_query(lua_State *L);
void rv_open_proc(lua_State *L);
void rv_open_json(lua_State *L);
void rv_open_recordings(lua_State *L);

#endif
