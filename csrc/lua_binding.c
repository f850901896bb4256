/* lua_binding.c - roomstate.core: with lua_json.c, the only file that includes
 * Lua headers.
 *
 * It turns the C API into two userdata types, roomstate.Store and
 * roomstate.State, speaking string IDs only. Numeric IDs appear solely in
 * the debug_* methods, which exist for tests and tools.
 * Caller mistakes raise; runtime and data failures return
 * nil, "CODE: message", "CODE". No C globals: all state hangs off userdata. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lauxlib.h"
#include "lua.h"
#include "auth.h"
#include "crypto.h"
#include "lua_event.h"
#include "lua_json.h"
#include "roomstate.h"

#define STORE_MT "roomstate.Store"
#define STATE_MT "roomstate.State"

typedef struct lstore {
    rs_db *db;
} lstore;

typedef struct lstate {
    rs_nid snap;
} lstate;

/* ---- C memory held while building Lua values ----
 * Pushing a value can raise (out of memory) and longjmp past our frees, so
 * arrays from the core go into a box first: a userdata whose __gc frees
 * them. The box is made before the core call, when nothing is held yet. */

#define BOX_MT "roomstate.Box"

static void **new_box(lua_State *L)
{
    void **box = lua_newuserdata(L, 2 * sizeof *box);
    box[0] = box[1] = NULL;
    luaL_getmetatable(L, BOX_MT);
    lua_setmetatable(L, -2);
    return box;
}

static int box_gc(lua_State *L)
{
    void **box = lua_touserdata(L, 1);
    free(box[0]);
    free(box[1]);
    box[0] = box[1] = NULL;
    return 0;
}

/* ---- numbers from Lua ---- */

/* An integer argument in [lo, hi]; NaN, fractions and overflow raise. */
static int64_t check_int(lua_State *L, int idx, double lo, double hi)
{
    lua_Number v = luaL_checknumber(L, idx);
    if (!(v >= lo && v <= hi) || v != (lua_Number)(int64_t)v)
        luaL_argerror(L, idx, lua_pushfstring(L, "integer in [%f, %f] expected, got %f",
                                              lo, hi, v));
    return (int64_t)v;
}

#define MAX_POSITION 9007199254740991.0 /* 2^53 - 1: exact in a double */

/* ---- clocks ---- */

/* roomstate.core.clock() -> seconds on a monotonic clock, for timing */
static int l_clock(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
    return 1;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* roomstate.core.time_ms() -> wall-clock milliseconds, as leases use */
static int l_time_ms(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)wall_ms());
    return 1;
}

/* ---- errors ---- */

static int push_fail(lua_State *L, rs_db *db, int code)
{
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", rs_code_name(code), rs_errmsg(db));
    lua_pushstring(L, rs_code_name(code));
    return 3;
}

/* ---- stores ---- */

static lstore *check_store_any(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, STORE_MT);
}

static rs_db *check_db(lua_State *L, int idx)
{
    lstore *s = check_store_any(L, idx);
    if (!s->db)
        luaL_argerror(L, idx, "the store is closed");
    /* a Lua error may have unwound past an rs_read_end: no call of ours is
     * re-entered, so any read still open belongs to a call that is over */
    rs_read_abandon(s->db);
    return s->db;
}

static size_t opt_size(lua_State *L, int t, const char *field, size_t dflt,
                       double max)
{
    lua_getfield(L, t, field);
    size_t v = dflt;
    if (!lua_isnil(L, -1)) {
        lua_Number n = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || !(n >= 0 && n <= max) ||
            n != (lua_Number)(int64_t)n)
            luaL_error(L, "bad option '%s' (integer from 0 to %f expected)", field, max);
        v = (size_t)n;
    }
    lua_pop(L, 1);
    return v;
}

static int l_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    rs_options o = {0, 0, 0, 0, 0, 0};
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_getfield(L, 2, "synchronous");
        if (!lua_isnil(L, -1)) {
            const char *s = lua_tostring(L, -1);
            if (!s || (strcmp(s, "full") && strcmp(s, "normal")))
                luaL_argerror(L, 2, "synchronous must be \"normal\" or \"full\"");
            o.synchronous_full = strcmp(s, "full") == 0;
        }
        lua_pop(L, 1);
        o.busy_timeout_ms = (int)opt_size(L, 2, "busy_timeout", 0, 86400000.0);
        o.id_cache_entries = opt_size(L, 2, "id_cache_entries", 0, 1e9);
        o.block_cache_bytes = opt_size(L, 2, "block_cache_bytes", 0, 1e12);
        lua_getfield(L, 2, "authorize");
        if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
            luaL_argerror(L, 2, "authorize must be a boolean");
        o.skip_auth = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
        lua_pop(L, 1);
        lua_getfield(L, 2, "readonly");
        if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
            luaL_argerror(L, 2, "readonly must be a boolean");
        o.readonly = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    lstore *s = lua_newuserdata(L, sizeof *s);
    s->db = NULL;
    luaL_getmetatable(L, STORE_MT);
    lua_setmetatable(L, -2);
    char err[512];
    int rc = rs_open(path, &o, &s->db, err, sizeof err);
    if (rc != RS_OK) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", rs_code_name(rc), err);
        lua_pushstring(L, rs_code_name(rc));
        return 3;
    }
    return 1;
}

static int l_close(lua_State *L)
{
    lstore *s = check_store_any(L, 1);
    rs_close(s->db);
    s->db = NULL;
    return 0;
}

static int l_is_closed(lua_State *L)
{
    lua_pushboolean(L, check_store_any(L, 1)->db == NULL);
    return 1;
}

static int l_store_tostring(lua_State *L)
{
    lstore *s = check_store_any(L, 1);
    lua_pushfstring(L, "roomstate.Store (%s)", s->db ? "open" : "closed");
    return 1;
}

static int number_or_fail(lua_State *L, rs_db *db, int rc, int64_t v)
{
    if (rc != RS_OK)
        return push_fail(L, db, rc);
    lua_pushnumber(L, (lua_Number)v);
    return 1;
}

static int ok_or_fail(lua_State *L, rs_db *db, int rc)
{
    if (rc != RS_OK)
        return push_fail(L, db, rc);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_begin(lua_State *L)
{
    rs_db *db = check_db(L, 1);
    return ok_or_fail(L, db, rs_begin(db));
}

static int l_commit(lua_State *L)
{
    rs_db *db = check_db(L, 1);
    return ok_or_fail(L, db, rs_commit(db));
}

static int l_rollback(lua_State *L)
{
    rs_db *db = check_db(L, 1);
    return ok_or_fail(L, db, rs_in_transaction(db) ? rs_rollback(db) : RS_OK);
}

static int l_in_transaction(lua_State *L)
{
    lua_pushboolean(L, rs_in_transaction(check_db(L, 1)));
    return 1;
}

/* ---- states ---- */

static void push_state(lua_State *L, int store_idx, rs_nid snap)
{
    lstate *st = lua_newuserdata(L, sizeof *st);
    st->snap = snap;
    luaL_getmetatable(L, STATE_MT);
    lua_setmetatable(L, -2);
    /* the environment table keeps the store alive as long as the state */
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, store_idx);
    lua_rawseti(L, -2, 1);
    lua_setfenv(L, -2);
}

/* Raises for argument idx of the method `method` of a userdata (idx 1 is
 * self), naming both. luaL_argerror names a function only from the call's
 * debug info, and says '?' when the method was reached by a tail call,
 * as the Lua layer and many callers reach it. */
static int method_argerror(lua_State *L, int idx, const char *method, const char *msg)
{
    if (idx == 1)
        return luaL_error(L, "calling '%s' on bad self (%s)", method, msg);
    return luaL_error(L, "bad argument #%d to '%s' (%s)", idx - 1, method, msg);
}

static const char *type_got(lua_State *L, int idx)
{
    return lua_isnone(L, idx) ? "no value" : luaL_typename(L, idx);
}

/* The same for a plain function of roomstate.core, whose name Lua cannot
 * give either when it is reached by a tail call (roomstate.state_hash). */
static int func_argerror(lua_State *L, int idx, const char *fname, const char *msg)
{
    return luaL_error(L, "bad argument #%d to '%s' (%s)", idx, fname, msg);
}

/* A typed argument of a plain function, named on a mistake. */
static void check_arg_type(lua_State *L, int idx, int type, const char *fname,
                           const char *what)
{
    if (lua_type(L, idx) != type)
        func_argerror(L, idx, fname, lua_pushfstring(L, "%s expected, got %s", what,
                                                     type_got(L, idx)));
}

/* A string argument of a method: no number coerced to a type or key. */
static const char *check_string_arg(lua_State *L, int idx, const char *method,
                                    const char *what, size_t *len)
{
    if (lua_type(L, idx) != LUA_TSTRING)
        method_argerror(L, idx, method, lua_pushfstring(L, "%s string expected, got %s",
                                                        what, type_got(L, idx)));
    return lua_tolstring(L, idx, len);
}

/* The state at idx and its store's handle; raises, naming `method`, if it
 * is no State or its store is closed. */
static lstate *check_state(lua_State *L, int idx, rs_db **db, const char *method)
{
    lstate *st = lua_touserdata(L, idx);
    int is_state = 0;
    if (st && lua_getmetatable(L, idx)) {
        luaL_getmetatable(L, STATE_MT);
        is_state = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
    }
    if (!is_state)
        method_argerror(L, idx, method, lua_pushfstring(L, STATE_MT " expected, got %s",
                                                        type_got(L, idx)));
    lua_getfenv(L, idx);
    lua_rawgeti(L, -1, 1);
    lstore *s = lua_touserdata(L, -1);
    lua_pop(L, 2);
    if (!s || !s->db)
        method_argerror(L, idx, method, "the state's store is closed");
    rs_read_abandon(s->db);
    *db = s->db;
    return st;
}

/* An ID the store holds (a state's entry): one without a row is CORRUPT. */
static int push_id_string(lua_State *L, rs_db *db, rs_idkind kind, rs_nid id)
{
    const char *s;
    size_t n;
    int rc = rs_id_render(db, kind, id, &s, &n);
    if (rc == RS_OK)
        lua_pushlstring(L, s, n);
    return rc;
}

/* Pushes the event IDs of entries (held in a box) as an array. */
static int push_event_ids(lua_State *L, rs_db *db, const rs_entry *e, size_t n)
{
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        int rc = push_id_string(L, db, RS_ID_EVENT, e[i].event);
        if (rc) {
            lua_pop(L, 1);
            return rc;
        }
        lua_rawseti(L, -2, (int)i + 1);
    }
    return RS_OK;
}

static int l_state_get(lua_State *L)
{
    rs_db *db;
    lstate *st = check_state(L, 1, &db, "get");
    size_t tl, kl;
    const char *t = check_string_arg(L, 2, "get", "type", &tl);
    const char *k = check_string_arg(L, 3, "get", "state_key", &kl);
    rs_nid type, key, ev = 0;
    rs_read_begin(db); /* one read transaction for the three lookups */
    int rc = rs_id_lookup(db, RS_ID_TYPE, t, tl, &type);
    if (rc == RS_OK)
        rc = rs_id_lookup(db, RS_ID_KEY, k, kl, &key);
    if (rc == RS_ENOTFOUND) {
        rs_read_end(db);
        lua_pushnil(L); /* a type or key never seen is in no state */
        return 1;
    }
    if (rc == RS_OK)
        rc = rs_snapshot_get(db, st->snap, type, key, &ev);
    rs_read_end(db);
    if (rc)
        return push_fail(L, db, rc);
    if (!ev) {
        lua_pushnil(L);
        return 1;
    }
    if ((rc = push_id_string(L, db, RS_ID_EVENT, ev)))
        return push_fail(L, db, rc);
    return 1;
}

static int l_state_count(lua_State *L)
{
    rs_db *db;
    lstate *st = check_state(L, 1, &db, "count");
    size_t nb, ne;
    int rc = rs_snapshot_info(db, st->snap, &nb, &ne);
    if (rc)
        return push_fail(L, db, rc);
    lua_pushinteger(L, (lua_Integer)ne);
    return 1;
}

static int l_state_event_ids(lua_State *L)
{
    rs_db *db;
    lstate *st = check_state(L, 1, &db, "event_ids");
    void **box = new_box(L);
    size_t n;
    rs_read_begin(db);
    int rc = rs_snapshot_load(db, st->snap, (rs_entry **)&box[0], &n);
    if (rc == RS_OK)
        rc = push_event_ids(L, db, box[0], n);
    rs_read_end(db);
    if (rc)
        return push_fail(L, db, rc);
    return 1;
}

static int entries_next(lua_State *L)
{
    lua_Integer i = lua_tointeger(L, lua_upvalueindex(2)) + 1;
    lua_pushinteger(L, i);
    lua_replace(L, lua_upvalueindex(2));
    lua_rawgeti(L, lua_upvalueindex(1), (int)(3 * i - 2));
    if (lua_isnil(L, -1))
        return 1;
    lua_rawgeti(L, lua_upvalueindex(1), (int)(3 * i - 1));
    lua_rawgeti(L, lua_upvalueindex(1), (int)(3 * i));
    return 3;
}

/* st:entries() -> iterator of type, state_key, event_id in key order */
static int l_state_entries(lua_State *L)
{
    rs_db *db;
    lstate *st = check_state(L, 1, &db, "entries");
    void **box = new_box(L);
    size_t n;
    rs_read_begin(db);
    int rc = rs_snapshot_load(db, st->snap, (rs_entry **)&box[0], &n);
    if (rc) {
        rs_read_end(db);
        return push_fail(L, db, rc);
    }
    const rs_entry *e = box[0];
    lua_createtable(L, (int)(3 * n), 0);
    for (size_t i = 0; i < n && !rc; i++) {
        if ((rc = push_id_string(L, db, RS_ID_TYPE, e[i].type)))
            break;
        lua_rawseti(L, -2, (int)(3 * i + 1));
        if ((rc = push_id_string(L, db, RS_ID_KEY, e[i].key)))
            break;
        lua_rawseti(L, -2, (int)(3 * i + 2));
        if ((rc = push_id_string(L, db, RS_ID_EVENT, e[i].event)))
            break;
        lua_rawseti(L, -2, (int)(3 * i + 3));
    }
    rs_read_end(db);
    if (rc)
        return push_fail(L, db, rc);
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, entries_next, 2);
    return 1;
}

/* st:diff(other) -> removed, added (event IDs ordered by type, state key) */
static int l_state_diff(lua_State *L)
{
    rs_db *db, *db2;
    lstate *a = check_state(L, 1, &db, "diff");
    lstate *b = check_state(L, 2, &db2, "diff");
    if (db != db2)
        method_argerror(L, 2, "diff", "the states belong to different stores");
    void **box = new_box(L);
    size_t nrem, nadd;
    rs_read_begin(db);
    int rc = rs_snapshot_diff(db, a->snap, b->snap, (rs_entry **)&box[0], &nrem,
                              (rs_entry **)&box[1], &nadd);
    if (rc == RS_OK)
        rc = push_event_ids(L, db, box[0], nrem);
    if (rc == RS_OK && (rc = push_event_ids(L, db, box[1], nadd)))
        lua_pop(L, 1);
    rs_read_end(db);
    if (rc)
        return push_fail(L, db, rc);
    return 2;
}

static int l_state_tostring(lua_State *L)
{
    lstate *st = luaL_checkudata(L, 1, STATE_MT);
    lua_getfenv(L, 1);
    lua_rawgeti(L, -1, 1);
    lstore *s = lua_touserdata(L, -1);
    size_t nb = 0, ne = 0;
    if (s && s->db && rs_snapshot_info(s->db, st->snap, &nb, &ne) == RS_OK)
        lua_pushfstring(L, "roomstate.State (%d entries in %d blocks)", (int)ne,
                        (int)nb);
    else
        lua_pushstring(L, "roomstate.State (store closed)");
    return 1;
}

/* ---- ingest ---- */

static rs_str field_str(lua_State *L, int t, const char *name, int required)
{
    rs_str s = {NULL, 0};
    lua_pushstring(L, name);
    lua_rawget(L, t);
    if (lua_type(L, -1) == LUA_TSTRING)
        s.s = lua_tolstring(L, -1, &s.len);
    else if (required || !lua_isnil(L, -1))
        luaL_error(L, "ingest: field '%s' must be a string", name);
    lua_pop(L, 1); /* the string stays alive: the table holds it */
    return s;
}

static rs_str *str_array(lua_State *L, int t, size_t *n, const char *what)
{
    *n = lua_objlen(L, t);
    rs_str *a = lua_newuserdata(L, (*n ? *n : 1) * sizeof *a); /* freed by GC */
    for (size_t i = 0; i < *n; i++) {
        lua_rawgeti(L, t, (int)i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "ingest: %s[%d] must be a string", what, (int)i + 1);
        a[i].s = lua_tolstring(L, -1, &a[i].len);
        lua_pop(L, 1);
    }
    return a;
}

static rs_str *field_array(lua_State *L, int t, const char *name, size_t *n)
{
    lua_getfield(L, t, name);
    if (!lua_istable(L, -1))
        luaL_error(L, "ingest: field '%s' must be an array of event IDs", name);
    return str_array(L, lua_gettop(L), n, name);
}

/* An integer field; an optional one may be absent (0). Room versions 1-5
 * allow floats in events, so a timestamp is taken in whole milliseconds
 * (roomstate.event has checked that it is a number in range). */
static int64_t field_int(lua_State *L, int t, const char *name, int required, int whole)
{
    lua_getfield(L, t, name);
    lua_Number v = lua_tonumber(L, -1);
    if ((required || !lua_isnil(L, -1)) &&
        (lua_type(L, -1) != LUA_TNUMBER || !(v >= -MAX_POSITION && v <= MAX_POSITION) ||
         (whole && v != (lua_Number)(int64_t)v)))
        luaL_error(L, "ingest: field '%s' must be an integer", name);
    lua_pop(L, 1);
    return (int64_t)v;
}

/* The event fields roomstate.event decoded, into the core's struct. The
 * strings and arrays stay alive on the stack and in the table. */
static void event_from_table(lua_State *L, int t, rs_event *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->event_id = field_str(L, t, "event_id", 0); /* the core computes it, or says why not */
    ev->room_id = field_str(L, t, "room_id", 0);
    ev->sender = field_str(L, t, "sender", 1);
    ev->type = field_str(L, t, "type", 1);
    ev->state_key = field_str(L, t, "state_key", 0);
    ev->json = field_str(L, t, "json", 1);
    ev->depth = field_int(L, t, "depth", 1, 1);
    if (ev->depth < 0)
        luaL_error(L, "ingest: field 'depth' must be a non-negative integer");
    ev->origin_server_ts = field_int(L, t, "origin_server_ts", 0, 0);
    ev->prev = field_array(L, t, "prev_events", &ev->nprev);
    ev->auth = field_array(L, t, "auth_events", &ev->nauth);
    lua_getfield(L, t, "pairs_shape");
    ev->ref_shape = lua_isnil(L, -1)       ? RS_REFS_NONE
                    : lua_toboolean(L, -1) ? RS_REFS_PAIRS
                                           : RS_REFS_IDS;
    lua_pop(L, 1);
    ev->redacts = field_str(L, t, "redacts", 0);
    ev->membership = field_str(L, t, "membership", 0);
    ev->room_version = field_str(L, t, "room_version", 0);
    ev->creator = field_str(L, t, "creator", 0);
    lua_getfield(L, t, "no_federate");
    ev->no_federate = lua_toboolean(L, -1);
    lua_pop(L, 1);
    ev->join_rule = field_str(L, t, "join_rule", 0);
    ev->authorised_via = field_str(L, t, "authorised_via", 0);
    ev->invite_token = field_str(L, t, "invite_token", 0);
    lua_getfield(L, t, "auth_plain");
    ev->auth_plain = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, t, "tree"); /* the table keeps it alive for the call */
    ev->json_tree = rs_lua_json_tree(L, -1);
    lua_pop(L, 1);
}

/* store:ingest(fields, kind [, state]) with fields already validated */
static int l_ingest(lua_State *L)
{
    rs_db *db = check_db(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    static const char *const kinds[] = {"outlier", "old", "new", NULL};
    int kind = luaL_checkoption(L, 3, "new", kinds) + 1;
    rs_event ev;
    event_from_table(L, 2, &ev);
    rs_str *state = NULL;
    size_t nstate = 0;
    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TTABLE);
        state = str_array(L, 4, &nstate, "state");
    }
    if (!rs_in_transaction(db))
        luaL_error(L, "ingest must run between begin() and commit()");
    rs_ingest_result r;
    int rc = rs_ingest(db, &ev, (rs_kind)kind, state, nstate, &r);
    if (rc)
        return push_fail(L, db, rc);
    lua_createtable(L, 0, 6);
    lua_pushlstring(L, r.event_id.s, r.event_id.len);
    lua_setfield(L, -2, "event_id");
    lua_pushlstring(L, r.room_id.s, r.room_id.len);
    lua_setfield(L, -2, "room_id");
    lua_pushboolean(L, r.duplicate);
    lua_setfield(L, -2, "duplicate");
    lua_pushboolean(L, r.rewrote);
    lua_setfield(L, -2, "rewrote");
    lua_pushboolean(L, r.state_known);
    lua_setfield(L, -2, "state_known");
    lua_pushnumber(L, (lua_Number)r.position);
    lua_setfield(L, -2, "position");
    if (r.status != RS_STATUS_ACCEPTED) {
        lua_pushstring(L, r.reason ? r.reason : "");
        lua_setfield(L, -2, r.status == RS_STATUS_REJECTED ? "rejected" : "soft_failed");
    }
    return 1;
}

/* ---- canonical JSON, signatures and event hashes: test and tool helpers ----
 * Thin wrappers over crypto.h so that specs can hold the C code against
 * other implementations (spec/crypto_spec.lua). Not part of roomstate's
 * own API: they live on roomstate.core only. */

#define JSON_MT "roomstate.Json"

/* A parsed value owned by a userdata on the stack, so a push that raises
 * cannot leak it. */
static json_t **new_json_box(lua_State *L)
{
    json_t **box = lua_newuserdata(L, sizeof *box);
    *box = NULL;
    luaL_getmetatable(L, JSON_MT);
    lua_setmetatable(L, -2);
    return box;
}

static int json_box_gc(lua_State *L)
{
    json_t **box = lua_touserdata(L, 1);
    json_decref(*box);
    *box = NULL;
    return 0;
}

static int data_fail(lua_State *L, const char *code, const char *msg)
{
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", code, msg);
    lua_pushstring(L, code);
    return 3;
}

/* The JSON text at idx, parsed; NULL after pushing nil, "NOT_JSON: ...". */
static json_t *json_arg(lua_State *L, int idx)
{
    size_t n;
    const char *s = luaL_checklstring(L, idx, &n);
    json_t **box = new_json_box(L);
    json_error_t err;
    *box = rs__json_parse(s, n, &err);
    if (!*box)
        data_fail(L, "NOT_JSON", lua_pushfstring(L, "%s (line %d, column %d)", err.text,
                                                 err.line, err.column));
    return *box;
}

/* The room version argument: an unknown one is a caller mistake. */
static const rs_room_version *check_version(lua_State *L, int idx, const char *fname)
{
    size_t n;
    check_arg_type(L, idx, LUA_TSTRING, fname, "room version string");
    const char *id = lua_tolstring(L, idx, &n);
    const rs_room_version *v = rs_room_version_find(id, n);
    if (!v)
        func_argerror(L, idx, fname, lua_pushfstring(L, "unknown room version \"%s\"", id));
    return v;
}


static int crypto_fail(lua_State *L, int rc)
{
    if (rc == RS_ENOMEM)
        return data_fail(L, rs_code_name(rc), "out of memory");
    return data_fail(L, "NOT_CANONICAL",
                     "a real, or an integer outside [-(2^53)+1, 2^53-1], has no canonical JSON");
}

static int push_canonical(lua_State *L, const json_t *v, unsigned flags)
{
    void **mem = new_box(L);
    rs_buf b = {0};
    int rc = rs__canonical_json_ex(v, flags, NULL, &b);
    mem[0] = b.p;
    if (rc != RS_OK)
        return crypto_fail(L, rc);
    lua_pushlstring(L, (const char *)b.p, b.len);
    return 1;
}

/* core.canonical_json(text) -> the canonical JSON of text */
static int l_canonical_json(lua_State *L)
{
    json_t *v = json_arg(L, 1);
    return v ? push_canonical(L, v, 0) : 3;
}

/* core.redact(version, text) -> the redacted event, as canonical JSON */
static int l_redact(lua_State *L)
{
    const rs_room_version *rv = check_version(L, 1, "redact");
    json_t *v = json_arg(L, 2);
    if (!v)
        return 3;
    json_t **red = new_json_box(L);
    int rc = rs__redact(v, rv, red);
    if (rc == RS_EINVAL)
        return data_fail(L, "BAD_EVENT", "an event is a JSON object");
    return rc == RS_OK ? push_canonical(L, *red, rs__canonical_flags(rv)) : crypto_fail(L, rc);
}

/* core.reference_hash(version, text) -> its SHA-256, unpadded standard base64 */
static int l_reference_hash(lua_State *L)
{
    const rs_room_version *rv = check_version(L, 1, "reference_hash");
    json_t *v = json_arg(L, 2);
    if (!v)
        return 3;
    unsigned char h[RS_SHA256_BYTES];
    char out[RS_B64_LEN(RS_SHA256_BYTES) + 1];
    int rc = rs__reference_hash(v, rv, h);
    if (rc != RS_OK)
        return crypto_fail(L, rc);
    rs__b64_encode(h, sizeof h, RS_B64_STD, out);
    lua_pushstring(L, out);
    return 1;
}

/* core.event_id(version, text) -> "$" and the reference hash (v3 and later);
 * core.room_id(version, create_text) -> "!" and it (v12 and later) */
static int hash_id(lua_State *L, int room)
{
    const rs_room_version *rv = check_version(L, 1, room ? "room_id" : "event_id");
    if (room ? !rv->room_id_from_create : rv->event_id_format == RS_EVENT_ID_SENDER)
        luaL_argerror(L, 1, room ? "room IDs of this version are not hashes"
                                 : "event IDs of this version are not hashes");
    json_t *v = json_arg(L, 2);
    if (!v)
        return 3;
    char out[RS_HASH_ID_LEN + 1];
    int rc = room ? rs__room_id_from_create(v, rv, out) : rs__event_id(v, rv, out);
    if (rc == RS_EINVAL && room)
        return data_fail(L, "BAD_EVENT", "not an m.room.create event, or no canonical JSON");
    if (rc != RS_OK)
        return crypto_fail(L, rc);
    lua_pushstring(L, out);
    return 1;
}

static int l_event_id(lua_State *L)
{
    return hash_id(L, 0);
}

static int l_room_id(lua_State *L)
{
    return hash_id(L, 1);
}

/* The arguments of verify_json and sign_json: (text, entity, key_id,
 * key_b64), the key 32 bytes of unpadded base64 (a malformed one raises).
 * 0 after pushing nil, "NOT_JSON: ..." when the text does not parse. */
typedef struct signing_args {
    const char *entity, *key_id;
    unsigned char key[32];
    json_t *obj;
} signing_args;

static int check_signing_args(lua_State *L, signing_args *a)
{
    size_t len, got;
    a->entity = luaL_checkstring(L, 2);
    a->key_id = luaL_checkstring(L, 3);
    const char *k = luaL_checklstring(L, 4, &len);
    if (rs__b64_decode(k, len, RS_B64_STD, a->key, sizeof a->key, &got) != RS_OK ||
        got != sizeof a->key)
        luaL_argerror(L, 4, "unpadded base64 of 32 bytes expected");
    a->obj = json_arg(L, 1);
    return a->obj != NULL;
}

/* core.verify_json(text, entity, key_id, pubkey_b64) -> true, or
 * nil, "MISMATCH: ...", "MISMATCH" (also MISSING, ALGORITHM, MALFORMED,
 * NOT_CANONICAL) */
static int l_verify_json(lua_State *L)
{
    signing_args a;
    if (!check_signing_args(L, &a))
        return 3;
    rs_sig r = rs__verify_signed(a.obj, a.entity, a.key_id, a.key);
    if (r != RS_SIG_OK)
        return data_fail(L, rs__sig_name(r),
                         lua_pushfstring(L, "the signature of %s with %s", a.entity, a.key_id));
    lua_pushboolean(L, 1);
    return 1;
}

/* obj[name], made an empty object if it is not one; NULL out of memory */
static json_t *object_at(json_t *obj, const char *name)
{
    json_t *o = json_object_get(obj, name);
    if (json_is_object(o))
        return o;
    return json_object_set_new(obj, name, json_object()) == 0 ? json_object_get(obj, name)
                                                               : NULL;
}

/* core.sign_json(text, entity, key_id, seed_b64) -> the object signed, as
 * canonical JSON */
static int l_sign_json(lua_State *L)
{
    signing_args a;
    if (!check_signing_args(L, &a))
        return 3;
    char sig[RS_ED25519_SIG_B64 + 1];
    int rc = rs__sign_json(a.obj, a.key, sig);
    if (rc != RS_OK)
        return crypto_fail(L, rc);
    json_t *mine = object_at(object_at(a.obj, "signatures"), a.entity);
    if (!mine || json_object_set_new(mine, a.key_id, json_string(sig)) != 0)
        return crypto_fail(L, RS_ENOMEM);
    return push_canonical(L, a.obj, 0);
}

/* ---- room versions ---- */

static void push_flag(lua_State *L, const char *name, int on)
{
    lua_pushboolean(L, on);
    lua_setfield(L, -2, name);
}

/* roomstate.core.room_version(id) -> a table of the version's rules, or nil */
static int l_room_version(lua_State *L)
{
    static const char *const id_formats[] = {"", "sender", "hash", "hash_url"};
    static const char *const state_res[] = {"", "v1", "v2", "v2.1"};
    size_t n;
    check_arg_type(L, 1, LUA_TSTRING, "room_version", "room version string");
    const char *id = lua_tolstring(L, 1, &n);
    const rs_room_version *v = rs_room_version_find(id, n);
    if (!v) {
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, 0, 22);
    lua_pushstring(L, v->id);
    lua_setfield(L, -2, "id");
    lua_pushstring(L, id_formats[v->event_id_format]);
    lua_setfield(L, -2, "event_id_format");
    lua_pushstring(L, state_res[v->state_res]);
    lua_setfield(L, -2, "state_res");
    push_flag(L, "ref_pairs", v->ref_pairs);
    push_flag(L, "key_validity", v->key_validity);
    push_flag(L, "redaction_rule", v->redaction_rule);
    push_flag(L, "aliases_rule", v->aliases_rule);
    push_flag(L, "strict_json", v->strict_json);
    push_flag(L, "notifications_power", v->notifications_power);
    push_flag(L, "knocking", v->knocking);
    push_flag(L, "restricted_join", v->restricted_join);
    push_flag(L, "knock_restricted", v->knock_restricted);
    push_flag(L, "integer_power", v->integer_power);
    push_flag(L, "creator_is_sender", v->creator_is_sender);
    push_flag(L, "redacts_in_content", v->redacts_in_content);
    push_flag(L, "room_id_from_create", v->room_id_from_create);
    push_flag(L, "privileged_creators", v->privileged_creators);
    push_flag(L, "redact_keeps_aliases", v->redact_keeps_aliases);
    push_flag(L, "redact_keeps_restricted", v->redact_keeps_restricted);
    push_flag(L, "redact_drops_origin", v->redact_drops_origin);
    push_flag(L, "redact_keeps_auth_keys", v->redact_keeps_auth_keys);
    return 1;
}

/* roomstate.core.room_versions() -> the known version IDs, oldest first */
static int l_room_versions(lua_State *L)
{
    size_t n;
    const rs_room_version *v = rs_room_versions(&n);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, v[i].id);
        lua_rawseti(L, -2, (int)i + 1);
    }
    return 1;
}

/* ---- authorization ---- */

/* Parses JSON text at idx; on a malformed one pushes nil and a reason
 * naming `what`. The parsed events live in an auth_box (below), freed by
 * its __gc even if a push raises. */
static int parse_into(lua_State *L, const rs_room_version *v, int idx, rs_auth_event **out,
                      const char *what)
{
    size_t len;
    char err[200];
    const char *json = lua_tolstring(L, idx, &len);
    if (rs_auth_event_parse(v, json, len, out, err, sizeof err) == RS_OK)
        return 1;
    lua_pushnil(L);
    lua_pushfstring(L, "BAD_FORMAT: %s: %s", what, err);
    return 0;
}

#define AUTH_BOX_MT "roomstate.AuthBox"

typedef struct auth_box {
    rs_auth_event *ev;
    rs_auth_event **auth;
    size_t nauth;
} auth_box;

static int auth_box_gc(lua_State *L)
{
    auth_box *b = lua_touserdata(L, 1);
    rs_auth_event_free(b->ev);
    for (size_t i = 0; i < b->nauth; i++)
        rs_auth_event_free(b->auth[i]);
    free(b->auth);
    memset(b, 0, sizeof *b);
    return 0;
}

static auth_box *new_auth_box(lua_State *L)
{
    auth_box *b = lua_newuserdata(L, sizeof *b);
    memset(b, 0, sizeof *b);
    luaL_getmetatable(L, AUTH_BOX_MT);
    lua_setmetatable(L, -2);
    return b;
}

/* core.auth_check(version, event_json, { auth_json, ... }) -> true | nil, reason */
static int l_auth_check(lua_State *L)
{
    const rs_room_version *v = check_version(L, 1, "auth_check");
    check_arg_type(L, 2, LUA_TSTRING, "auth_check", "event JSON text");
    check_arg_type(L, 3, LUA_TTABLE, "auth_check", "array of auth events");
    size_t n = lua_objlen(L, 3);
    auth_box *b = new_auth_box(L);
    if (!(b->auth = calloc(n ? n : 1, sizeof *b->auth)))
        return luaL_error(L, "auth_check: out of memory");
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 3, (int)i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "bad argument #3 to 'auth_check' (auth_events[%d] is not JSON text)",
                       (int)i + 1);
        char what[32];
        snprintf(what, sizeof what, "auth_events[%d]", (int)i + 1);
        int ok = parse_into(L, v, -1, &b->auth[i], what);
        if (!ok)
            return 2;
        b->nauth++;
        lua_pop(L, 1);
    }
    if (!parse_into(L, v, 2, &b->ev, "the event"))
        return 2;
    char reason[300];
    if (rs_auth_check(v, b->ev, (const rs_auth_event *const *)b->auth, b->nauth, reason,
                      sizeof reason)) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushnil(L);
    lua_pushstring(L, reason);
    return 2;
}

/* core.auth_types(version, event_json) -> { {type, state_key}, ... } | nil, reason */
static int l_auth_types(lua_State *L)
{
    const rs_room_version *v = check_version(L, 1, "auth_types");
    check_arg_type(L, 2, LUA_TSTRING, "auth_types", "event JSON text");
    auth_box *b = new_auth_box(L);
    if (!parse_into(L, v, 2, &b->ev, "the event"))
        return 2;
    rs_auth_type t[RS_AUTH_TYPES_MAX];
    size_t n;
    rs_auth_types(v, b->ev, t, &n);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_createtable(L, 2, 0);
        lua_pushstring(L, t[i].type);
        lua_rawseti(L, -2, 1);
        lua_pushlstring(L, t[i].state_key.s, t[i].state_key.len);
        lua_rawseti(L, -2, 2);
        lua_rawseti(L, -2, (int)i + 1);
    }
    return 1;
}

/* ---- state resolution ---- */

#define RESOLVE_BOX_MT "roomstate.ResolveBox"

/* What core.resolve allocates, freed by __gc even if a push raises. */
typedef struct resolve_box {
    rs_auth_event **ev;
    size_t nev;
    unsigned char *rejected;
    rs_str *set_ids;
    size_t *set_len;
    size_t from_tables;     /* events read from tables without text */
    rs_resolved res;
} resolve_box;

static int resolve_box_gc(lua_State *L)
{
    resolve_box *b = lua_touserdata(L, 1);
    for (size_t i = 0; i < b->nev; i++)
        rs_auth_event_free(b->ev[i]);
    free(b->ev);
    free(b->rejected);
    free(b->set_ids);
    free(b->set_len);
    rs_resolved_free(&b->res);
    memset(b, 0, sizeof *b);
    return 0;
}

static int resolve_fail(lua_State *L, int code, const char *msg)
{
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", rs_code_name(code), msg);
    lua_pushstring(L, rs_code_name(code));
    return 3;
}

/* The state sets (argument 2) as one array of IDs and their counts; the
 * strings stay in the caller's tables. */
static void resolve_sets(lua_State *L, resolve_box *b, size_t *nsets)
{
    size_t n = lua_objlen(L, 2), total = 0;
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 2, (int)i + 1);
        if (lua_type(L, -1) != LUA_TTABLE)
            luaL_error(L, "bad argument #2 to 'resolve' (state_sets[%d] is not a table)", (int)i + 1);
        total += lua_objlen(L, -1);
        lua_pop(L, 1);
    }
    b->set_ids = malloc((total ? total : 1) * sizeof *b->set_ids);
    b->set_len = malloc((n ? n : 1) * sizeof *b->set_len);
    if (!b->set_ids || !b->set_len)
        luaL_error(L, "resolve: out of memory");
    for (size_t i = 0, k = 0; i < n; i++) {
        lua_rawgeti(L, 2, (int)i + 1);
        b->set_len[i] = lua_objlen(L, -1);
        for (size_t j = 0; j < b->set_len[i]; j++, k++) {
            lua_rawgeti(L, -1, (int)j + 1);
            if (lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "bad argument #2 to 'resolve' (state_sets[%d][%d] is not an event ID)",
                           (int)i + 1, (int)j + 1);
            b->set_ids[k].s = lua_tolstring(L, -1, &b->set_ids[k].len);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    *nsets = n;
}

/* The ID of parsed event e: ids[i] (argument 4) when given, which a
 * stated event_id must equal; else the stated one, or the reference hash
 * from v3. Pushes a failure and returns 3, or returns 0. */
static int resolve_id(lua_State *L, const rs_room_version *v, rs_auth_event *e, size_t i)
{
    char msg[300], hash[RS_HASH_ID_LEN + 1];
    size_t len = 0;
    lua_rawgeti(L, 4, (int)i + 1);
    const char *id = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
    lua_pop(L, 1); /* the string stays in argument 4 */
    if (id && e->event_id.s && !rs__str_eq(e->event_id, (rs_str){id, len})) {
        snprintf(msg, sizeof msg, "events[\"%s\"] states event_id %.*s", id,
                 (int)e->event_id.len, e->event_id.s);
        return resolve_fail(L, RS_EBAD_EVENT, msg);
    }
    if (!id && !e->event_id.s && v->event_id_format != RS_EVENT_ID_SENDER) {
        int rc = rs__event_id(e->root, v, hash);
        if (rc == RS_ENOMEM)
            luaL_error(L, "resolve: out of memory");
        id = rc == RS_OK ? hash : NULL;
        len = id ? strlen(id) : 0;
    }
    if (rs__auth_event_set_id(e, id, len))
        luaL_error(L, "resolve: out of memory");
    return 0;
}

/* events[i] (argument 3: JSON text, or a table read as its text would
 * parse) parsed, named and marked rejected when argument 5 holds its ID.
 * Pushes a failure and returns 3, or returns RS_LUA_EVENT_NOT_SIMPLE, or
 * 0. */
static int resolve_event(lua_State *L, const rs_room_version *v, resolve_box *b, size_t i,
                         rs_lua_keys *keys, int any_rejected)
{
    char err[200], msg[300];
    size_t len;
    int rc;
    lua_rawgeti(L, 3, (int)i + 1);
    if (lua_type(L, -1) == LUA_TTABLE) {
        lua_rawgeti(L, 4, (int)i + 1);
        int has_id = lua_type(L, -1) == LUA_TSTRING;
        lua_pop(L, 1);
        rc = rs_lua_event_read(L, v, -1, keys, has_id, &b->ev[i], err, sizeof err);
        b->from_tables += rc == RS_OK;
    } else if (lua_type(L, -1) == LUA_TSTRING) {
        const char *json = lua_tolstring(L, -1, &len);
        rc = rs_auth_event_parse(v, json, len, &b->ev[i], err, sizeof err);
    } else {
        return luaL_error(L, "bad argument #3 to 'resolve' (events[%d] is neither JSON text "
                          "nor a table)", (int)i + 1);
    }
    lua_pop(L, 1);
    if (rc == RS_LUA_EVENT_NOT_SIMPLE)
        return rc;
    if (rc == RS_ENOMEM)
        luaL_error(L, "resolve: out of memory");
    if (rc != RS_OK) {
        snprintf(msg, sizeof msg, "events[%d]: %s", (int)i + 1, err);
        return resolve_fail(L, rc, msg);
    }
    b->nev++;
    if ((rc = resolve_id(L, v, b->ev[i], i)) || !b->ev[i]->event_id.s)
        return rc;
    if (any_rejected) {
        lua_pushlstring(L, b->ev[i]->event_id.s, b->ev[i]->event_id.len);
        lua_rawget(L, 5);
        b->rejected[i] = (unsigned char)lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    return 0;
}

/* Whether the tables of argument 3 from `from` on can be read without
 * their text; else the caller encodes them all, so every verdict is the
 * text path's (which encoded every table before parsing any event). */
static int resolve_tables_simple(lua_State *L, size_t from, size_t n)
{
    for (size_t i = from; i < n; i++) {
        lua_rawgeti(L, 3, (int)i + 1);
        int ok = lua_type(L, -1) != LUA_TTABLE || rs_lua_event_simple(L, -1);
        lua_pop(L, 1);
        if (!ok)
            return 0;
    }
    return 1;
}

/* "MISSING_EVENTS: a, b, c": the first 20, then how many in all. */
static int resolve_missing(lua_State *L, const rs_resolved *r)
{
    luaL_Buffer buf;
    lua_pushnil(L);
    luaL_buffinit(L, &buf);
    luaL_addstring(&buf, "MISSING_EVENTS: ");
    for (size_t i = 0; i < r->nmissing && i < 20; i++) {
        if (i)
            luaL_addstring(&buf, ", ");
        luaL_addlstring(&buf, r->missing[i].s, r->missing[i].len);
    }
    if (r->nmissing > 20) {
        char more[48];
        snprintf(more, sizeof more, ", ... (%zu in all)", r->nmissing);
        luaL_addstring(&buf, more);
    }
    luaL_pushresult(&buf);
    lua_pushstring(L, "MISSING_EVENTS");
    return 3;
}

/* core.resolve(version, state_sets, { json or table, ... }, ids, rejected)
 * -> { event_id, ... }, walked, gathered, from_tables | nil, err, code |
 * false. ids[i]:
 * events[i]'s ID when the caller knows it (false otherwise); rejected: a
 * set of event IDs. false: a table holds what only its JSON text can say
 * (lua_event.c); call again with the tables encoded. walked and gathered:
 * the events the walks visited, in the steps and finding missing ones;
 * from_tables: the events read from tables without text. */
static int l_resolve(lua_State *L)
{
    const rs_room_version *v = check_version(L, 1, "resolve");
    check_arg_type(L, 2, LUA_TTABLE, "resolve", "array of state sets");
    check_arg_type(L, 3, LUA_TTABLE, "resolve", "array of events");
    check_arg_type(L, 4, LUA_TTABLE, "resolve", "array of event IDs");
    check_arg_type(L, 5, LUA_TTABLE, "resolve", "set of rejected event IDs");
    size_t n = lua_objlen(L, 3), nsets;
    resolve_box *b = lua_newuserdata(L, sizeof *b);
    memset(b, 0, sizeof *b);
    luaL_getmetatable(L, RESOLVE_BOX_MT);
    lua_setmetatable(L, -2);
    b->ev = calloc(n ? n : 1, sizeof *b->ev);
    b->rejected = calloc(n ? n : 1, 1);
    if (!b->ev || !b->rejected)
        return luaL_error(L, "resolve: out of memory");
    resolve_sets(L, b, &nsets);
    rs_lua_keys keys;
    rs_lua_event_keys(L, &keys);
    lua_pushnil(L);
    int any_rejected = lua_next(L, 5) != 0;
    lua_settop(L, keys.base + RS_LUA_NKEYS - 1);
    for (size_t i = 0; i < n; i++) {
        int rc = resolve_event(L, v, b, i, &keys, any_rejected);
        if (rc == RS_LUA_EVENT_NOT_SIMPLE || (rc && !resolve_tables_simple(L, i + 1, n))) {
            lua_pushboolean(L, 0);
            return 1;
        }
        if (rc)
            return rc;
    }
    char err[200];
    rs_resolve_in in = {.events = (const rs_auth_event *const *)b->ev, .rejected = b->rejected,
                        .nevents = n, .set_ids = b->set_ids, .set_len = b->set_len,
                        .nsets = nsets, .ids_shared = 2 * b->from_tables >= n};
    int rc = rs_state_resolve(v, &in, &b->res, err, sizeof err);
    if (rc == RS_EMISSING_EVENTS)
        return resolve_missing(L, &b->res);
    if (rc == RS_ENOMEM)
        return luaL_error(L, "resolve: out of memory");
    if (rc != RS_OK)
        return resolve_fail(L, rc, err);
    lua_createtable(L, (int)b->res.n, 0);
    for (size_t i = 0; i < b->res.n; i++) {
        lua_pushlstring(L, b->res.ids[i].s, b->res.ids[i].len);
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_pushnumber(L, (lua_Number)b->res.walked);
    lua_pushnumber(L, (lua_Number)b->res.gathered);
    lua_pushnumber(L, (lua_Number)b->from_tables);
    return 4;
}

/* ---- queries ---- */

static int l_current_state(lua_State *L)
{
    rs_db *db = check_db(L, 1);
    size_t n;
    const char *room = luaL_checklstring(L, 2, &n);
    rs_room_info info;
    int rc = rs_room_info_get(db, room, n, &info);
    if (rc)
        return push_fail(L, db, rc);
    push_state(L, 1, info.current);
    return 1;
}

static int event_state(lua_State *L, int after)
{
    rs_db *db = check_db(L, 1);
    size_t n;
    const char *id = luaL_checklstring(L, 2, &n);
    rs_nid b, a;
    int rc = rs_event_state(db, id, n, &b, &a);
    if (rc)
        return push_fail(L, db, rc);
    push_state(L, 1, after ? a : b);
    return 1;
}

static int l_state_before(lua_State *L)
{
    return event_state(L, 0);
}

static int l_state_after(lua_State *L)
{
    return event_state(L, 1);
}

/* A list from the core: its two allocations go into a box at once. */
static int push_strlist(lua_State *L, rs_db *db, int rc, rs_strlist *l, void **box)
{
    if (rc)
        return push_fail(L, db, rc);
    box[0] = l->items;
    box[1] = l->buf;
    lua_createtable(L, (int)l->n, 0);
    for (size_t i = 0; i < l->n; i++) {
        lua_pushlstring(L, l->items[i].s, l->items[i].len);
        lua_rawseti(L, -2, (int)i + 1);
    }
    return 1;
}

static int l_latest_events(lua_State *L)
{
    rs_db *db = check_db(L, 1);
    size_t n;
    const char *room = luaL_checklstring(L, 2, &n);
    rs_strlist l;
    void **box = new_box(L);
    return push_strlist(L, db, rs_room_latest(db, room, n, &l), &l, box);
}

static int l_members(lua_State *L)
{
    rs_db *db = check_db(L, 1);
    size_t n, ml;
    const char *room = luaL_checklstring(L, 2, &n);
    const char *m = luaL_optlstring(L, 3, "join", &ml);
    rs_strlist l;
    void **box = new_box(L);
    return push_strlist(L, db, rs_room_members(db, room, n, m, ml, &l), &l, box);
}

static int l_rooms(lua_State *L)
{
    rs_db *db = check_db(L, 1);
    rs_strlist l;
    void **box = new_box(L);
    return push_strlist(L, db, rs_rooms(db, &l), &l, box);
}

/* store:event_status(event_id) -> "accepted" | "rejected" | "soft_failed", reason */
/* store:resolve(room_id, state_sets) -> { event_id, ... } | nil, err, code.
 * Each set is an event ID (the state after it) or an array of event IDs;
 * store.lua has checked their types, the strings stay in argument 3. */
static int l_resolve_stored(lua_State *L)
{
    rs_db *db = check_db(L, 1);
    size_t rlen, n, total = 0;
    const char *room = luaL_checklstring(L, 2, &rlen);
    luaL_checktype(L, 3, LUA_TTABLE);
    n = lua_objlen(L, 3);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 3, (int)i + 1);
        total += lua_type(L, -1) == LUA_TTABLE ? lua_objlen(L, -1) : 0;
        lua_pop(L, 1);
    }
    /* one userdata holds both arrays, collected with the call's values */
    rs_state_set *sets = lua_newuserdata(L, (n ? n : 1) * sizeof *sets +
                                                (total ? total : 1) * sizeof(rs_str));
    rs_str *ids = (rs_str *)(void *)(sets + (n ? n : 1));
    for (size_t i = 0, k = 0; i < n; i++) {
        rs_state_set *st = &sets[i];
        memset(st, 0, sizeof *st);
        lua_rawgeti(L, 3, (int)i + 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            st->after = lua_tolstring(L, -1, &st->after_len);
        } else if (lua_type(L, -1) == LUA_TTABLE) {
            st->ids = ids + k;
            st->n = lua_objlen(L, -1);
            for (size_t j = 0; j < st->n; j++, k++) {
                lua_rawgeti(L, -1, (int)j + 1);
                if (lua_type(L, -1) != LUA_TSTRING)
                    return luaL_error(L, "bad argument #2 to 'resolve' (state_sets[%d][%d] is "
                                      "not an event ID)", (int)i + 1, (int)j + 1);
                ids[k].s = lua_tolstring(L, -1, &ids[k].len);
                lua_pop(L, 1);
            }
        } else {
            return luaL_error(L, "bad argument #2 to 'resolve' (state_sets[%d] is neither an "
                              "event ID nor an array of them)", (int)i + 1);
        }
        lua_pop(L, 1);
    }
    rs_strlist l;
    void **box = new_box(L);
    return push_strlist(L, db, rs_resolve_stored(db, room, rlen, sets, n, &l), &l, box);
}

static int l_event_status(lua_State *L)
{
    static const char *const names[] = {"accepted", "rejected", "soft_failed"};
    rs_db *db = check_db(L, 1);
    size_t n;
    const char *id = check_string_arg(L, 2, "event_status", "event ID", &n);
    rs_status st;
    const char *reason;
    int rc = rs_event_status(db, id, n, &st, &reason);
    if (rc)
        return push_fail(L, db, rc);
    lua_pushstring(L, names[st <= RS_STATUS_SOFT_FAILED ? st : 0]);
    if (!reason)
        return 1;
    lua_pushstring(L, reason);
    return 2;
}

static int l_event(lua_State *L)
{
    rs_db *db = check_db(L, 1);
    size_t n, jl;
    const char *id = luaL_checklstring(L, 2, &n);
    const char *json;
    int rc = rs_event_json(db, id, n, &json, &jl);
    if (rc)
        return push_fail(L, db, rc);
    lua_pushlstring(L, json, jl);
    return 1;
}

static void push_hex(lua_State *L, uint64_t h)
{
    char hex[24];
    snprintf(hex, sizeof hex, "%016" PRIx64, h);
    lua_pushstring(L, hex);
}

/* store:room_info(room) -> { version=, state_hash= } */
static int l_room_info(lua_State *L)
{
    rs_db *db = check_db(L, 1);
    size_t n;
    const char *room = luaL_checklstring(L, 2, &n);
    rs_room_info info;
    int rc = rs_room_info_get(db, room, n, &info);
    if (rc)
        return push_fail(L, db, rc);
    lua_createtable(L, 0, 2);
    lua_pushlstring(L, info.version, info.version_len);
    lua_setfield(L, -2, "version");
    push_hex(L, info.state_hash);
    lua_setfield(L, -2, "state_hash");
    return 1;
}

/* ---- outbox ---- */

/* store:outputs(from, limit) -> { JSON text of each output, ... } */
static int l_outputs(lua_State *L)
{
    rs_db *db = check_db(L, 1);
    int64_t from = check_int(L, 2, 0, MAX_POSITION);
    int64_t limit = lua_isnoneornil(L, 3) ? 1000 : check_int(L, 3, 0, MAX_POSITION);
    void **box = new_box(L);
    rs_outputs o;
    int rc = rs_outputs_read(db, from, (size_t)limit, &o);
    if (rc)
        return push_fail(L, db, rc);
    box[0] = o.items;
    box[1] = o.buf;
    lua_createtable(L, (int)o.n, 0);
    for (size_t i = 0; i < o.n; i++) {
        lua_pushlstring(L, o.items[i].json.s, o.items[i].json.len);
        lua_rawseti(L, -2, (int)i + 1);
    }
    return 1;
}

static int l_outputs_last(lua_State *L)
{
    rs_db *db = check_db(L, 1);
    int64_t last = 0;
    int rc = rs_outputs_last(db, &last);
    return number_or_fail(L, db, rc, last);
}

static int l_consumer_get(lua_State *L)
{
    rs_db *db = check_db(L, 1);
    size_t n;
    const char *name = luaL_checklstring(L, 2, &n);
    int64_t next;
    int found;
    int rc = rs_consumer_get(db, name, n, &next, &found);
    if (rc)
        return push_fail(L, db, rc);
    if (found)
        lua_pushnumber(L, (lua_Number)next);
    else
        lua_pushboolean(L, 0);
    return 1;
}

static int l_consumer_set(lua_State *L)
{
    rs_db *db = check_db(L, 1);
    size_t n;
    const char *name = luaL_checklstring(L, 2, &n);
    int64_t next = check_int(L, 3, 1, MAX_POSITION);
    return ok_or_fail(L, db, rs_consumer_set(db, name, n, next));
}

/* The position the consumer has once registered (its old one if it was). */
static int l_consumer_add(lua_State *L)
{
    rs_db *db = check_db(L, 1);
    size_t n;
    const char *name = luaL_checklstring(L, 2, &n);
    int64_t next = check_int(L, 3, 1, MAX_POSITION), stored;
    int rc = rs_consumer_add(db, name, n, next, &stored);
    if (rc)
        return push_fail(L, db, rc);
    lua_pushnumber(L, (lua_Number)stored);
    return 1;
}

static int l_lease(lua_State *L)
{
    rs_db *db = check_db(L, 1);
    size_t n, ol;
    const char *name = luaL_checklstring(L, 2, &n);
    const char *owner = luaL_checklstring(L, 3, &ol);
    int64_t ttl = check_int(L, 4, -1e12, 1e12); /* below 0: give the lease up */
    int64_t now = lua_isnoneornil(L, 5) ? wall_ms() : check_int(L, 5, 0, MAX_POSITION);
    int got;
    int rc = rs_consumer_lease(db, name, n, owner, ol, now, ttl, &got);
    if (rc)
        return push_fail(L, db, rc);
    lua_pushboolean(L, got);
    return 1;
}

static int l_trim_outputs(lua_State *L)
{
    rs_db *db = check_db(L, 1);
    int64_t deleted = 0;
    int rc = rs_outputs_trim(db, &deleted);
    return number_or_fail(L, db, rc, deleted);
}

static int l_purge_room(lua_State *L)
{
    rs_db *db = check_db(L, 1);
    size_t n;
    const char *room = luaL_checklstring(L, 2, &n);
    if (rs_in_transaction(db))
        luaL_error(L, "purge_room cannot run inside a batch");
    int64_t pos = 0;
    int rc = rs_room_purge(db, room, n, &pos);
    return number_or_fail(L, db, rc, pos);
}

static int l_check(lua_State *L)
{
    rs_db *db = check_db(L, 1);
    return ok_or_fail(L, db, rs_check(db));
}

/* ---- state hash ---- */

/* The sum of the entry hashes of the entries table at idx, as the core
 * sums a room's state; raises naming the argument on a malformed entry. */
static uint64_t entries_hash(lua_State *L, int idx, const char *fname)
{
    check_arg_type(L, idx, LUA_TTABLE, fname, "entries table");
    uint64_t sum = 0;
    size_t n = lua_objlen(L, idx);
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, (int)i);
        if (!lua_istable(L, -1))
            func_argerror(L, idx, fname, "entries must be tables");
        size_t tl, kl, el;
        lua_getfield(L, -1, "type");
        lua_getfield(L, -2, "state_key");
        lua_getfield(L, -3, "event_id");
        if (lua_type(L, -3) != LUA_TSTRING || lua_type(L, -2) != LUA_TSTRING ||
            lua_type(L, -1) != LUA_TSTRING)
            func_argerror(L, idx, fname, "each entry needs string type, state_key and event_id");
        const char *t = lua_tolstring(L, -3, &tl);
        const char *k = lua_tolstring(L, -2, &kl);
        const char *e = lua_tolstring(L, -1, &el);
        sum += rs_state_hash_entry(t, tl, k, kl, e, el);
        lua_pop(L, 4);
    }
    return sum;
}

/* roomstate.core.state_hash({ {type=, state_key=, event_id=}, ... }) */
static int l_state_hash(lua_State *L)
{
    push_hex(L, entries_hash(L, 1, "state_hash"));
    return 1;
}

/* A hash as push_hex prints it (either case accepted). */
static uint64_t check_hex(lua_State *L, int idx, const char *fname)
{
    size_t n;
    check_arg_type(L, idx, LUA_TSTRING, fname, "state hash string");
    const char *s = lua_tolstring(L, idx, &n);
    if (n != 16)
        func_argerror(L, idx, fname, "state hash of 16 hex digits expected");
    uint64_t h = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            d = (c | 0x20) - 'a' + 10;
        else
            return (uint64_t)func_argerror(L, idx, fname, "state hash of 16 hex digits expected");
        h = h << 4 | (uint64_t)d;
    }
    return h;
}

/* roomstate.core.state_hash_update(hex, removed, added) -> hex
 * The sum is taken mod 2^64 in C: Lua numbers are doubles and would lose
 * the low bits, so a consumer cannot do this arithmetic itself. */
static int l_state_hash_update(lua_State *L)
{
    uint64_t h = check_hex(L, 1, "state_hash_update");
    uint64_t removed = entries_hash(L, 2, "state_hash_update");
    uint64_t added = entries_hash(L, 3, "state_hash_update");
    push_hex(L, h - removed + added);
    return 1;
}

/* ---- debug surface (tests and tools only) ---- */

static const char *const id_kinds[] = {"room", "type", "state_key", "event", NULL};

static int l_debug_id(lua_State *L)
{
    rs_db *db = check_db(L, 1);
    int kind = luaL_checkoption(L, 2, NULL, id_kinds);
    size_t n;
    const char *s = luaL_checklstring(L, 3, &n);
    int create = lua_toboolean(L, 4);
    rs_nid id;
    int rc = create ? rs_id_get_or_create(db, (rs_idkind)kind, s, n, &id)
                    : rs_id_lookup(db, (rs_idkind)kind, s, n, &id);
    return number_or_fail(L, db, rc, id);
}

static int l_debug_id_string(lua_State *L)
{
    rs_db *db = check_db(L, 1);
    int kind = luaL_checkoption(L, 2, NULL, id_kinds);
    rs_nid id = (rs_nid)luaL_checknumber(L, 3);
    const char *s;
    size_t n;
    int rc = rs_id_string(db, (rs_idkind)kind, id, &s, &n);
    if (rc)
        return push_fail(L, db, rc);
    lua_pushlstring(L, s, n);
    return 1;
}

static int l_debug_counts(lua_State *L)
{
    rs_db *db = check_db(L, 1);
    rs_counts c;
    int rc = rs_debug_counts(db, &c);
    if (rc)
        return push_fail(L, db, rc);
    lua_createtable(L, 0, 9);
    const char *names[] = {"events", "snapshots", "blocks", "block_bytes",
                           "snapshot_bytes", "outputs", "rooms", "types", "keys",
                           "state_events"};
    int64_t vals[] = {c.events, c.snapshots, c.blocks, c.block_bytes,
                      c.snapshot_bytes, c.outputs, c.rooms, c.types, c.keys,
                      c.state_events};
    for (int i = 0; i < 10; i++) {
        lua_pushnumber(L, (lua_Number)vals[i]);
        lua_setfield(L, -2, names[i]);
    }
    lua_pushnumber(L, (lua_Number)rs_debug_entries_written(db));
    lua_setfield(L, -2, "entries_written");
    lua_pushnumber(L, (lua_Number)rs_debug_json_parses(db));
    lua_setfield(L, -2, "json_parses");
    lua_pushnumber(L, (lua_Number)rs_debug_resolutions(db));
    lua_setfield(L, -2, "resolutions");
    lua_pushnumber(L, (lua_Number)rs_debug_resolution_hits(db));
    lua_setfield(L, -2, "resolution_hits");
    lua_pushnumber(L, (lua_Number)rs_debug_resolve_events(db));
    lua_setfield(L, -2, "resolve_events");
    lua_pushnumber(L, (lua_Number)rs_debug_chain_rows(db));
    lua_setfield(L, -2, "chain_rows");
    lua_pushnumber(L, (lua_Number)rs_debug_current_hits(db));
    lua_setfield(L, -2, "current_hits");
    rs_diff_walk w;
    rs_debug_difference_walk(db, &w);
    const char *walk_names[] = {"differences", "difference_events", "difference_rows",
                                "difference_cover_rows"};
    int64_t walk_vals[] = {w.differences, w.events, w.rows, w.cover_rows};
    for (int i = 0; i < 4; i++) {
        lua_pushnumber(L, (lua_Number)walk_vals[i]);
        lua_setfield(L, -2, walk_names[i]);
    }
    return 1;
}

static int l_debug_keep_difference(lua_State *L)
{
    rs_debug_keep_difference(check_db(L, 1), lua_toboolean(L, 2));
    return 0;
}

/* The kept difference's event IDs, or false when none is kept. */
static int l_debug_last_difference(lua_State *L)
{
    rs_db *db = check_db(L, 1);
    void **box = new_box(L);
    rs_strlist l;
    int kept;
    int rc = rs_debug_last_difference(db, &l, &kept);
    if (rc == RS_OK && !kept) {
        lua_pushboolean(L, 0);
        return 1;
    }
    return push_strlist(L, db, rc, &l, box);
}

static int l_debug_walk_chains(lua_State *L)
{
    rs_debug_walk_chains(check_db(L, 1), lua_toboolean(L, 2));
    return 0;
}

static int l_debug_force_collisions(lua_State *L)
{
    rs_debug_force_hash_collisions(check_db(L, 1), lua_toboolean(L, 2));
    return 0;
}

/* store:debug_snapshot(state) -> { id=, blocks={ids...}, entries= } */
static int l_debug_snapshot(lua_State *L)
{
    check_db(L, 1);
    rs_db *db;
    lstate *st = check_state(L, 2, &db, "debug_snapshot");
    void **box = new_box(L);
    size_t n, nb, ne;
    int rc = rs_debug_snapshot_blocks(db, st->snap, (rs_nid **)&box[0], &n);
    if (rc || (rc = rs_snapshot_info(db, st->snap, &nb, &ne)))
        return push_fail(L, db, rc);
    const rs_nid *blocks = box[0];
    lua_createtable(L, 0, 3);
    lua_pushnumber(L, (lua_Number)st->snap);
    lua_setfield(L, -2, "id");
    lua_pushinteger(L, (lua_Integer)ne);
    lua_setfield(L, -2, "entries");
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushnumber(L, (lua_Number)blocks[i]);
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_setfield(L, -2, "blocks");
    return 1;
}

/* store:debug_apply(room, base_state_or_nil, { {type, key, event_or_false}, ... })
 * -> State. IDs are created as needed; run inside begin/commit. */
static int l_debug_apply(lua_State *L)
{
    rs_db *db = check_db(L, 1);
    size_t rl;
    const char *room_id = luaL_checklstring(L, 2, &rl);
    rs_nid base = RS_EMPTY_SNAPSHOT;
    if (!lua_isnil(L, 3)) {
        rs_db *db2;
        base = check_state(L, 3, &db2, "debug_apply")->snap;
        if (db2 != db)
            luaL_argerror(L, 3, "the state belongs to another store");
    }
    luaL_checktype(L, 4, LUA_TTABLE);
    size_t n = lua_objlen(L, 4);
    rs_entry *ch = lua_newuserdata(L, (n ? n : 1) * sizeof *ch);
    rs_nid room;
    int rc = rs_id_get_or_create(db, RS_ID_ROOM, room_id, rl, &room);
    for (size_t i = 0; i < n && !rc; i++) {
        lua_rawgeti(L, 4, (int)i + 1);
        luaL_checktype(L, -1, LUA_TTABLE);
        size_t tl, kl, el;
        lua_rawgeti(L, -1, 1);
        lua_rawgeti(L, -2, 2);
        lua_rawgeti(L, -3, 3);
        const char *t = luaL_checklstring(L, -3, &tl);
        const char *k = luaL_checklstring(L, -2, &kl);
        if (lua_type(L, -1) != LUA_TSTRING &&
            !(lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)))
            luaL_argerror(L, 4, "each change is {type, key, event_id or false}");
        const char *e = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &el) : NULL;
        if ((rc = rs_id_get_or_create(db, RS_ID_TYPE, t, tl, &ch[i].type)) ||
            (rc = rs_id_get_or_create(db, RS_ID_KEY, k, kl, &ch[i].key)))
            break;
        ch[i].event = 0;
        if (e && (rc = rs_id_get_or_create(db, RS_ID_EVENT, e, el, &ch[i].event)))
            break;
        lua_pop(L, 4);
    }
    rs_nid out;
    if (rc || (rc = rs_snapshot_apply(db, room, base, ch, n, &out)))
        return push_fail(L, db, rc);
    push_state(L, 1, out);
    return 1;
}

/* ---- registration ---- */

static const luaL_Reg store_methods[] = {
    {"close", l_close},
    {"is_closed", l_is_closed},
    {"begin", l_begin},
    {"commit", l_commit},
    {"rollback", l_rollback},
    {"in_transaction", l_in_transaction},
    {"ingest", l_ingest},
    {"current_state", l_current_state},
    {"state_before", l_state_before},
    {"state_after", l_state_after},
    {"latest_events", l_latest_events},
    {"members", l_members},
    {"rooms", l_rooms},
    {"event", l_event},
    {"event_status", l_event_status},
    {"resolve", l_resolve_stored},
    {"room_info", l_room_info},
    {"outputs", l_outputs},
    {"outputs_last", l_outputs_last},
    {"consumer_get", l_consumer_get},
    {"consumer_set", l_consumer_set},
    {"consumer_add", l_consumer_add},
    {"lease", l_lease},
    {"trim_outputs", l_trim_outputs},
    {"purge_room", l_purge_room},
    {"check", l_check},
    {"debug_id", l_debug_id},
    {"debug_id_string", l_debug_id_string},
    {"debug_counts", l_debug_counts},
    {"debug_force_collisions", l_debug_force_collisions},
    {"debug_walk_chains", l_debug_walk_chains},
    {"debug_keep_difference", l_debug_keep_difference},
    {"debug_last_difference", l_debug_last_difference},
    {"debug_snapshot", l_debug_snapshot},
    {"debug_apply", l_debug_apply},
    {NULL, NULL}};

static const luaL_Reg state_methods[] = {
    {"get", l_state_get},
    {"count", l_state_count},
    {"entries", l_state_entries},
    {"event_ids", l_state_event_ids},
    {"diff", l_state_diff},
    {NULL, NULL}};

static void new_class(lua_State *L, const char *name, const luaL_Reg *methods,
                      lua_CFunction tostring, lua_CFunction gc, lua_CFunction eq)
{
    if (luaL_newmetatable(L, name)) {
        lua_newtable(L);
        luaL_register(L, NULL, methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, tostring);
        lua_setfield(L, -2, "__tostring");
        if (gc) {
            lua_pushcfunction(L, gc);
            lua_setfield(L, -2, "__gc");
        }
        if (eq) {
            lua_pushcfunction(L, eq);
            lua_setfield(L, -2, "__eq");
        }
        lua_pushstring(L, name);
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
}

/* A metatable for a box type: only its __gc, which frees what it holds. */
static void new_box_type(lua_State *L, const char *name, lua_CFunction gc)
{
    if (luaL_newmetatable(L, name)) {
        lua_pushcfunction(L, gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
}

int luaopen_roomstate_core(lua_State *L)
{
    static const luaL_Reg functions[] = {
        {"open", l_open},
        {"state_hash", l_state_hash},
        {"state_hash_update", l_state_hash_update},
        {"clock", l_clock},
        {"room_version", l_room_version},
        {"room_versions", l_room_versions},
        {"auth_check", l_auth_check},
        {"auth_types", l_auth_types},
        {"resolve", l_resolve},
        {"time_ms", l_time_ms},
        {NULL, NULL}};
    new_box_type(L, BOX_MT, box_gc);
    new_box_type(L, AUTH_BOX_MT, auth_box_gc);
    new_box_type(L, RESOLVE_BOX_MT, resolve_box_gc);
    new_box_type(L, JSON_MT, json_box_gc);
    new_class(L, STORE_MT, store_methods, l_store_tostring, l_close, NULL);
    new_class(L, STATE_MT, state_methods, l_state_tostring, NULL, NULL);
    lua_createtable(L, 0, 20);
    luaL_register(L, NULL, functions);
    static const luaL_Reg crypto_helpers[] = {
        {"canonical_json", l_canonical_json}, {"redact", l_redact},
        {"reference_hash", l_reference_hash}, {"event_id", l_event_id},
        {"room_id", l_room_id},               {"verify_json", l_verify_json},
        {"sign_json", l_sign_json},           {NULL, NULL}};
    luaL_register(L, NULL, crypto_helpers);
    rs_lua_json_register(L);
    luaL_getmetatable(L, STORE_MT);
    lua_getfield(L, -1, "__index");
    lua_setfield(L, -3, "Store");
    lua_pop(L, 1);
    luaL_getmetatable(L, STATE_MT);
    lua_getfield(L, -1, "__index");
    lua_setfield(L, -3, "State");
    lua_pop(L, 1);
    return 1;
}
