/* lua_event.c - an event given to core.resolve as a Lua table, read into
 * the rules' typed fields (auth.h) without a JSON text in between.
 *
 * The verdicts must be those of the text path it replaces: roomstate.auth
 * encoded the table with lua-cjson (roomstate.event's instance: depth 64,
 * numbers as %.14g, an empty table as {}), and the core parsed that text
 * with jansson (valid UTF-8, NUL allowed in values). So a table is first
 * checked against a subset whose text is known exactly: strings of valid
 * UTF-8 (no NUL in keys), integers of magnitude below 10^14 (printed as
 * themselves, parsed back as JSON integers), booleans, cjson.null, and
 * tables that are objects (string keys, or empty) or dense arrays, at
 * most 64 deep. Anything else (a real number, a sparse array, a number
 * key, a function) is not read here: the caller falls back to the text
 * path, so what cjson refuses still raises as it did.
 *
 * An event whose rules read its JSON (create, power levels, third-party
 * invites, redactions, members with a third_party_invite or a
 * join_authorised_via_users_server, a member without state key, one whose
 * ID must be hashed) is converted to the jansson tree the text would
 * parse to. Any other has its fields read from the table; its strings
 * point into the Lua strings, which the caller's tables anchor for the
 * call. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "lauxlib.h"
#include "lua.h"
#include "lua_event.h"

#define MAX_DEPTH 64          /* roomstate.event: json.encode_max_depth(64) */
#define MAX_EXACT_INT 1e14    /* below it, %.14g prints an integral number as itself */

/* RFC 3629 UTF-8, as jansson checks it: no overlong forms, surrogates, or
 * code points past U+10FFFF. */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i + 8 <= n) { /* ASCII eight bytes at a time */
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ULL)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        unsigned c = s[i];
        size_t len;
        unsigned lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            lo = c == 0xE0 ? 0xA0 : 0x80;
            hi = c == 0xED ? 0x9F : 0xBF;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            lo = c == 0xF0 ? 0x90 : 0x80;
            hi = c == 0xF4 ? 0x8F : 0xBF;
        } else {
            return 0;
        }
        if (i + len > n || s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k < len; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return 0;
        i += len;
    }
    return 1;
}

static int exact_int(lua_Number x)
{
    return x > -MAX_EXACT_INT && x < MAX_EXACT_INT && x == (lua_Number)(int64_t)x;
}

static int value_simple(lua_State *L, int idx, int depth);

/* The table at idx (absolute) is an object or a dense array of simple
 * values. */
static int table_simple(lua_State *L, int idx, int depth)
{
    size_t nstr = 0, nint = 0;
    lua_Number max = 0;
    if (depth > MAX_DEPTH || !lua_checkstack(L, 4))
        return 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        int ok;
        if (lua_type(L, -2) == LUA_TSTRING) {
            size_t len;
            const char *k = lua_tolstring(L, -2, &len);
            ok = !memchr(k, 0, len) && utf8_valid((const unsigned char *)k, len);
            nstr++;
        } else {
            lua_Number k = lua_type(L, -2) == LUA_TNUMBER ? lua_tonumber(L, -2) : 0;
            ok = k >= 1 && exact_int(k);
            max = k > max ? k : max;
            nint++;
        }
        if (!ok || !value_simple(L, lua_gettop(L), depth)) {
            lua_pop(L, 2);
            return 0;
        }
        lua_pop(L, 1);
    }
    return !(nstr && nint) && max == (lua_Number)nint;
}

static int value_simple(lua_State *L, int idx, int depth)
{
    size_t len;
    const char *s;
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &len);
        return utf8_valid((const unsigned char *)s, len);
    case LUA_TNUMBER:
        return exact_int(lua_tonumber(L, idx));
    case LUA_TBOOLEAN:
        return 1;
    case LUA_TLIGHTUSERDATA:
        return lua_touserdata(L, idx) == NULL; /* cjson.null */
    case LUA_TTABLE:
        return table_simple(L, idx, depth + 1);
    default:
        return 0;
    }
}

/* A simple table is an array when its first key is a number. */
static int is_array(lua_State *L, int idx)
{
    lua_pushnil(L);
    if (!lua_next(L, idx))
        return 0;
    int array = lua_type(L, -2) == LUA_TNUMBER;
    lua_pop(L, 2);
    return array;
}

/* ---- the jansson tree of a simple value ---- */

static json_t *tree_of(lua_State *L, int idx);

static json_t *table_tree(lua_State *L, int idx)
{
    if (is_array(L, idx)) {
        size_t n = lua_objlen(L, idx);
        json_t *a = json_array();
        for (size_t i = 1; a && i <= n; i++) {
            lua_rawgeti(L, idx, (int)i);
            json_t *x = tree_of(L, lua_gettop(L));
            lua_pop(L, 1);
            if (!x || json_array_append_new(a, x)) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    json_t *o = json_object();
    lua_pushnil(L);
    while (o && lua_next(L, idx)) {
        size_t klen;
        const char *k = lua_tolstring(L, -2, &klen);
        json_t *x = tree_of(L, lua_gettop(L));
        if (!x || json_object_setn_new_nocheck(o, k, klen, x)) {
            lua_pop(L, 2);
            json_decref(o);
            return NULL;
        }
        lua_pop(L, 1);
    }
    return o;
}

/* NULL only when out of memory (the value is simple). */
static json_t *tree_of(lua_State *L, int idx)
{
    size_t len;
    const char *s;
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &len);
        return json_stringn_nocheck(s, len);
    case LUA_TNUMBER:
        return json_integer((json_int_t)lua_tonumber(L, idx));
    case LUA_TBOOLEAN:
        return json_boolean(lua_toboolean(L, idx));
    case LUA_TTABLE:
        return lua_checkstack(L, 4) ? table_tree(L, idx) : NULL;
    default:
        return json_null();
    }
}

/* ---- the fields of a plain event, straight from the table ---- */

static const char *const key_names[RS_LUA_NKEYS] = {
    "event_id", "room_id", "sender", "type", "state_key", "content", "auth_events",
    "prev_events", "origin_server_ts", "depth", "membership", "join_rule",
    "third_party_invite", "join_authorised_via_users_server"};

enum {
    K_EVENT_ID, K_ROOM_ID, K_SENDER, K_TYPE, K_STATE_KEY, K_CONTENT, K_AUTH_EVENTS,
    K_PREV_EVENTS, K_TS, K_DEPTH, K_MEMBERSHIP, K_JOIN_RULE, K_TPI, K_AUTH_VIA
};

int rs_lua_event_keys(lua_State *L)
{
    luaL_checkstack(L, RS_LUA_NKEYS + 8, "resolve");
    int base = lua_gettop(L) + 1;
    for (int k = 0; k < RS_LUA_NKEYS; k++)
        lua_pushstring(L, key_names[k]);
    return base;
}

/* Pushes t[key] (raw: cjson reads no metamethods); keys: the base index
 * of rs_lua_event_keys' strings, interned once per call. */
static int get(lua_State *L, int keys, int t, int key)
{
    lua_pushvalue(L, keys + key);
    lua_rawget(L, t);
    return lua_type(L, -1);
}

/* t[key] as rs_str when a string, else absent. */
static rs_str str_field(lua_State *L, int keys, int t, int key)
{
    rs_str r = {NULL, 0};
    if (get(L, keys, t, key) == LUA_TSTRING)
        r.s = lua_tolstring(L, -1, &r.len);
    lua_pop(L, 1);
    return r;
}

static int has_field(lua_State *L, int keys, int t, int key)
{
    int present = get(L, keys, t, key) != LUA_TNIL;
    lua_pop(L, 1);
    return present;
}

static double number_field(lua_State *L, int keys, int t, int key)
{
    double x = get(L, keys, t, key) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
    lua_pop(L, 1);
    return x;
}

/* prev_events' and auth_events' entries: an ID, or an [ID, hashes] pair. */
static rs_str ref_at(lua_State *L, int list, size_t i)
{
    rs_str r = {NULL, 0};
    lua_rawgeti(L, list, (int)i + 1);
    if (lua_type(L, -1) == LUA_TTABLE && is_array(L, lua_gettop(L))) {
        lua_rawgeti(L, -1, 1);
        lua_remove(L, -2);
    }
    if (lua_type(L, -1) == LUA_TSTRING)
        r.s = lua_tolstring(L, -1, &r.len);
    lua_pop(L, 1);
    return r;
}

/* The length of t[key] when it is a JSON array, else 0; pushes t[key]. */
static size_t array_field(lua_State *L, int keys, int t, int key)
{
    if (get(L, keys, t, key) != LUA_TTABLE || !is_array(L, lua_gettop(L)))
        return 0;
    return lua_objlen(L, -1);
}

/* Whether the rules read this event's JSON (see the top). content: the
 * index of its content when an object, else 0. */
static int needs_tree(lua_State *L, int keys, int t, int content, rs_str type, int has_id)
{
    static const char *const types[] = {"m.room.create", "m.room.power_levels",
                                        "m.room.third_party_invite", "m.room.redaction"};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (rs__str_is(type, types[i]))
            return 1;
    if (!has_id && !str_field(L, keys, t, K_EVENT_ID).s) /* its ID is its hash */
        return 1;
    if (!rs__str_is(type, "m.room.member"))
        return 0;
    if (!str_field(L, keys, t, K_STATE_KEY).s)
        return 1;
    return content && (has_field(L, keys, content, K_TPI) ||
                       has_field(L, keys, content, K_AUTH_VIA));
}

/* The event's own allocation, with room for its cited IDs after it. */
static rs_auth_event *event_alloc(size_t nauth)
{
    size_t head = (sizeof(rs_auth_event) + sizeof(rs_str) - 1) / sizeof(rs_str) * sizeof(rs_str);
    rs_auth_event *e = calloc(1, head + (nauth ? nauth : 1) * sizeof(rs_str));
    if (e) {
        e->refs = 1;
        e->auth_refs = (const rs_str *)((char *)e + head);
        e->nauth_refs = nauth;
    }
    return e;
}

/* The plain event's fields: as fields_of_root in auth_event.c reads them. */
static int plain_event(lua_State *L, int keys, int t, int content, rs_auth_event **out)
{
    int top = lua_gettop(L);
    size_t nauth = array_field(L, keys, t, K_AUTH_EVENTS);
    rs_auth_event *e = *out = event_alloc(nauth);
    if (!e)
        return RS_ENOMEM;
    rs_str *refs = (rs_str *)e->auth_refs;
    for (size_t i = 0; i < nauth; i++)
        refs[i] = ref_at(L, top + 1, i);
    e->nprev = array_field(L, keys, t, K_PREV_EVENTS);
    if (e->nprev)
        e->prev0 = ref_at(L, top + 2, 0);
    lua_settop(L, top);
    e->event_id = str_field(L, keys, t, K_EVENT_ID);
    e->room_id = str_field(L, keys, t, K_ROOM_ID);
    e->sender = str_field(L, keys, t, K_SENDER);
    e->type = str_field(L, keys, t, K_TYPE);
    e->state_key = str_field(L, keys, t, K_STATE_KEY);
    int bad_sk = !e->state_key.s && has_field(L, keys, t, K_STATE_KEY);
    e->format_fault = rs__format_fault(e, bad_sk, content != 0, (rs_str){NULL, 0});
    e->ts = number_field(L, keys, t, K_TS);
    e->depth = number_field(L, keys, t, K_DEPTH);
    if (content && rs__str_is(e->type, "m.room.member")) {
        e->has_membership = has_field(L, keys, content, K_MEMBERSHIP);
        e->membership = str_field(L, keys, content, K_MEMBERSHIP);
    }
    if (content && e->state_key.s && rs__str_is(e->type, "m.room.join_rules"))
        e->join_rule = str_field(L, keys, content, K_JOIN_RULE);
    return RS_OK;
}

int rs_lua_event_simple(lua_State *L, int idx)
{
    return table_simple(L, idx > 0 ? idx : lua_gettop(L) + idx + 1, 1);
}

int rs_lua_event_read(lua_State *L, const rs_room_version *v, int idx, int keys, int has_id,
                      rs_auth_event **out, char *err, size_t errlen)
{
    int top = lua_gettop(L), t = idx > 0 ? idx : top + idx + 1;
    *out = NULL;
    if (!table_simple(L, t, 1))
        return RS_LUA_EVENT_NOT_SIMPLE;
    int content = get(L, keys, t, K_CONTENT) == LUA_TTABLE && !is_array(L, lua_gettop(L))
                      ? lua_gettop(L)
                      : 0;
    rs_str type = str_field(L, keys, t, K_TYPE);
    int rc;
    if (needs_tree(L, keys, t, content, type, has_id)) {
        json_t *root = tree_of(L, t);
        rc = root ? rs__auth_event_of_tree(v, root, 0, out, err, errlen) : RS_ENOMEM;
    } else {
        rc = plain_event(L, keys, t, content, out);
    }
    lua_settop(L, top);
    return rc;
}
