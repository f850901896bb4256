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
 * An event whose rules read its JSON (create, third-party invites,
 * redactions, members with a third_party_invite or a
 * join_authorised_via_users_server, a member without state key, one whose
 * ID must be hashed) is converted to the jansson tree the text would
 * parse to. Any other has its fields read from the table, a power levels
 * event's levels too (lua_power.c); its strings point into the Lua
 * strings, which the caller's tables anchor for the call. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "lauxlib.h"
#include "lua.h"
#include "lua_event.h"

#define MAX_DEPTH 64          /* roomstate.event: json.encode_max_depth(64) */
#define MAX_EXACT_INT 1e14    /* below it, %.14g prints an integral number as itself */

static const char *const key_names[RS_LUA_K_FIELDS] = {
    "event_id", "room_id", "sender", "type", "state_key", "content", "auth_events",
    "prev_events", "origin_server_ts", "depth", "membership", "join_rule",
    "third_party_invite", "join_authorised_via_users_server"};

enum {
    K_EVENT_ID, K_ROOM_ID, K_SENDER, K_TYPE, K_STATE_KEY, K_CONTENT, K_AUTH_EVENTS,
    K_PREV_EVENTS, K_TS, K_DEPTH, K_MEMBERSHIP, K_JOIN_RULE, K_TPI, K_AUTH_VIA,
    K_TOP = K_DEPTH + 1 /* the top-level fields come first */
};


/* RFC 3629 UTF-8, as jansson checks it: no overlong forms, surrogates, or
 * code points past U+10FFFF; NUL only with nul_ok (jansson allows it in
 * values, never in keys). */
static int utf8_valid(const unsigned char *s, size_t n, int nul_ok)
{
    size_t i = 0;
    while (i < n) {
        while (i + 8 <= n) { /* ASCII eight bytes at a time, NUL among them or not */
            uint64_t w;
            memcpy(&w, s + i, 8);
            if ((w & 0x8080808080808080ULL) ||
                (!nul_ok && ((w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL)))
                break;
            i += 8;
        }
        if (i >= n)
            break;
        unsigned c = s[i];
        size_t len;
        unsigned lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            if (!c && !nul_ok)
                return 0;
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

/* Strings are interned and the events anchor them for the call, so a
 * string seen valid (without NUL) is the same pointer when met again:
 * keys and types repeat in every event. seen may be NULL. */
static size_t seen_slot(const char *s)
{
    uintptr_t p = (uintptr_t)s;
    return ((p >> 4) ^ (p >> 17)) & (RS_LUA_SEEN - 1);
}

static int seen_before(const rs_lua_keys *seen, const char *s)
{
    return seen && seen->seen[seen_slot(s)] == s;
}

/* The len bytes at s, a string not seen before, in the subset. */
static int bytes_simple(rs_lua_keys *seen, const char *s, size_t len, int nul_ok)
{
    if (utf8_valid((const unsigned char *)s, len, 0)) {
        if (seen)
            seen->seen[seen_slot(s)] = s;
        return 1;
    }
    return nul_ok && utf8_valid((const unsigned char *)s, len, 1);
}

/* The string at idx: its bytes when it is in the subset, else NULL; the
 * caller reuses them rather than asking Lua again. */
static const char *string_simple(lua_State *L, int idx, int nul_ok, rs_lua_keys *seen)
{
    size_t len;
    /* the pointer alone, without its length, reads nothing of the string:
     * a string seen before costs no cache miss on it */
    const char *s = lua_tolstring(L, idx, NULL);
    if (seen_before(seen, s))
        return s;
    lua_tolstring(L, idx, &len);
    return bytes_simple(seen, s, len, nul_ok) ? s : NULL;
}

static int table_simple(lua_State *L, int idx, int depth, rs_lua_keys *seen);

enum { CAP_REFS = 1, CAP_CONTENT, CAP_COUNT /* only n, entries, array */ };
#define CAP_MAX_REFS 16

/* What the check of content, auth_events or prev_events takes on the way,
 * so that reading the fields afterwards asks Lua nothing more. */
typedef struct capture {
    int kind;
    int array;                  /* the table has number keys (so, in the subset, an array) */
    size_t n;                   /* its number keys */
    size_t entries;             /* all its entries */
    int complex;                /* refs: an entry is not a string, or there are too many */
    rs_str ref[CAP_MAX_REFS];
    int has_membership, has_tpi, has_via;
    rs_str membership, join_rule;
    rs_lua_maps maps;           /* content: its power levels maps */
} capture;

/* The value at idx, of Lua type `type`, in the subset. */
static int value_simple(lua_State *L, int idx, int type, int depth, rs_lua_keys *seen)
{
    switch (type) {
    case LUA_TSTRING:
        return string_simple(L, idx, 1, seen) != NULL;
    case LUA_TNUMBER:
        return exact_int(lua_tonumber(L, idx));
    case LUA_TBOOLEAN:
        return 1;
    case LUA_TLIGHTUSERDATA:
        return lua_touserdata(L, idx) == NULL; /* cjson.null */
    case LUA_TTABLE:
        return table_simple(L, idx, depth + 1, seen);
    default:
        return 0;
    }
}

/* The table at idx (absolute) is an object or a dense array of simple
 * values. The key and value stand at fixed places while lua_next runs. */
static int walk(lua_State *L, int idx, int depth, rs_lua_keys *seen, capture *cap);

static int table_simple(lua_State *L, int idx, int depth, rs_lua_keys *seen)
{
    return walk(L, idx, depth, seen, NULL);
}

static rs_str str_at(lua_State *L, int idx)
{
    rs_str r = {NULL, 0};
    if (lua_type(L, idx) == LUA_TSTRING)
        r.s = lua_tolstring(L, idx, &r.len);
    return r;
}

/* One entry of a captured table other than a string reference: key
 * (its string name, or NULL for a number) and val. */
static void take_entry(lua_State *L, capture *cap, const rs_lua_keys *keys, const char *name,
                       int val)
{
    if (cap->kind == CAP_REFS) { /* not a string (ref_simple took those): read by ref_at */
        cap->complex = 1;
        return;
    }
    if (!name)
        return;
    if (name == keys->name[K_MEMBERSHIP]) {
        cap->has_membership = 1;
        cap->membership = str_at(L, val);
    } else if (name == keys->name[K_JOIN_RULE]) {
        cap->join_rule = str_at(L, val);
    } else if (name == keys->name[K_TPI]) {
        cap->has_tpi = 1;
    } else if (name == keys->name[K_AUTH_VIA]) {
        cap->has_via = 1;
    }
}

/* A string entry of auth_events or prev_events (key k, 0 unless a
 * number), checked and taken with one call to Lua. */
static int ref_simple(lua_State *L, capture *cap, rs_lua_keys *seen, int val, lua_Number k)
{
    rs_str r;
    r.s = lua_tolstring(L, val, &r.len);
    if (!seen_before(seen, r.s) && !bytes_simple(seen, r.s, r.len, 1))
        return 0;
    if (k >= 1 && k <= CAP_MAX_REFS)
        cap->ref[(size_t)k - 1] = r;
    else
        cap->complex = 1;
    return 1;
}

/* A table in a content, at val under key name: checked, and when it is
 * one of the power levels' maps, its shape kept for lua_power.c. */
static int content_table(lua_State *L, capture *cap, rs_lua_keys *keys, const char *name,
                         int val, int depth)
{
    capture sub = {.kind = CAP_COUNT};
    if (!walk(L, val, depth + 1, keys, &sub))
        return 0;
    for (int i = 0; i < 3; i++) {
        if (name == keys->name[RS_LUA_K_USERS + i]) {
            cap->maps.known[i] = 1;
            cap->maps.array[i] = sub.array;
            cap->maps.n[i] = sub.entries;
        }
    }
    take_entry(L, cap, keys, name, val);
    return 1;
}

static int walk(lua_State *L, int idx, int depth, rs_lua_keys *seen, capture *cap)
{
    size_t nstr = 0, nint = 0;
    lua_Number max = 0;
    if (depth > MAX_DEPTH || !lua_checkstack(L, 4))
        return 0;
    int key = lua_gettop(L) + 1, val = key + 1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        const char *name = NULL;
        lua_Number k = 0; /* a number key, or 0 */
        int ok, ktype = lua_type(L, key), vtype = lua_type(L, val);
        if (ktype == LUA_TSTRING) {
            ok = (name = string_simple(L, key, 0, seen)) != NULL;
            nstr++;
        } else {
            k = ktype == LUA_TNUMBER ? lua_tonumber(L, key) : 0;
            ok = k >= 1 && exact_int(k);
            max = k > max ? k : max;
            nint++;
        }
        if (cap && cap->kind == CAP_REFS && vtype == LUA_TSTRING)
            ok = ok && ref_simple(L, cap, seen, val, k);
        else if (cap && cap->kind == CAP_CONTENT && vtype == LUA_TTABLE && name)
            ok = ok && content_table(L, cap, seen, name, val, depth);
        else if ((ok = ok && value_simple(L, val, vtype, depth, seen)) && cap &&
                 cap->kind != CAP_COUNT)
            take_entry(L, cap, seen, name, val);
        if (!ok) {
            lua_settop(L, key - 1);
            return 0;
        }
        lua_settop(L, key);
    }
    if (cap) {
        cap->array = nint > 0;
        cap->n = nint;
        cap->entries = nstr + nint;
        cap->complex |= nint > CAP_MAX_REFS;
    }
    return !(nstr && nint) && max == (lua_Number)nint;
}

int rs_lua_is_array(lua_State *L, int idx)
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
    if (rs_lua_is_array(L, idx)) {
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

void rs_lua_event_keys(lua_State *L, rs_lua_keys *keys)
{
    luaL_checkstack(L, RS_LUA_NKEYS + 8, "resolve");
    keys->base = lua_gettop(L) + 1;
    memset(keys->seen, 0, sizeof keys->seen);
    for (int k = 0; k < RS_LUA_NKEYS; k++) {
        if (k < RS_LUA_K_FIELDS)
            lua_pushstring(L, key_names[k]);
        else if (k < RS_LUA_K_USERS)
            lua_pushstring(L, rs__power_field_name(k - RS_LUA_K_FIELDS));
        else
            lua_pushstring(L, k == RS_LUA_K_USERS    ? "users"
                              : k == RS_LUA_K_EVENTS ? "events"
                                                     : "notifications");
        keys->name[k] = lua_tostring(L, -1);
    }
}

/* The top-level fields the rules read, taken while the event is checked:
 * strings as rs_str (absent unless strings), numbers, what the checks of
 * content, auth_events and prev_events took, and those tables kept at
 * slot + 0, 1, 2 (nil when not tables). */
typedef struct top_fields {
    rs_str str[K_STATE_KEY + 1];
    int has_state_key;
    double num[2];              /* origin_server_ts, depth; 0 unless numbers */
    int slot;
    capture cap[3];             /* content, auth_events, prev_events; kind 0: not a table */
} top_fields;

/* The field a top-level key names, or -1. Strings are interned (every
 * string in Lua 5.1 and LuaJIT, short ones in later Luas, and the names
 * are short), so an equal key is the same string as the name pushed by
 * rs_lua_event_keys. */
static int top_key(const rs_lua_keys *keys, const char *k)
{
    for (int i = 0; i < K_TOP; i++)
        if (keys->name[i] == k)
            return i;
    return -1;
}

/* The value at val of the top-level field `key` checked, and taken: a
 * string or number field asks Lua for its value once. */
static int take_field(lua_State *L, rs_lua_keys *keys, top_fields *f, int key, int val,
                      int type)
{
    if (key >= K_CONTENT && key <= K_PREV_EVENTS && type == LUA_TTABLE) {
        capture *c = &f->cap[key - K_CONTENT];
        c->kind = key == K_CONTENT ? CAP_CONTENT : CAP_REFS;
        lua_pushvalue(L, val);
        lua_replace(L, f->slot + key - K_CONTENT);
        return walk(L, val, 2, keys, c);
    }
    if (key >= 0 && key <= K_STATE_KEY && type == LUA_TSTRING) {
        rs_str *r = &f->str[key];
        r->s = lua_tolstring(L, val, &r->len);
        if (!seen_before(keys, r->s) && !bytes_simple(keys, r->s, r->len, 1))
            return 0;
    } else if (type == LUA_TNUMBER) {
        lua_Number x = lua_tonumber(L, val);
        if (!exact_int(x))
            return 0;
        if (key == K_TS || key == K_DEPTH)
            f->num[key - K_TS] = x;
    } else if (!value_simple(L, val, type, 1, keys)) {
        return 0;
    }
    if (key == K_STATE_KEY)
        f->has_state_key = 1;
    return 1;
}

/* The event table t checked as table_simple does (an object at the top),
 * its fields taken on the way; 0: not simple. */
static int top_simple(lua_State *L, rs_lua_keys *keys, int t, top_fields *f)
{
    memset(f, 0, sizeof *f);
    if (!lua_checkstack(L, 8))
        return 0;
    f->slot = lua_gettop(L) + 1;
    lua_pushnil(L), lua_pushnil(L), lua_pushnil(L);
    int key = f->slot + 3, val = key + 1;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        int field = -1, type = lua_type(L, val);
        const char *k = lua_type(L, key) == LUA_TSTRING ? lua_tolstring(L, key, NULL) : NULL;
        /* a key that is one of the names is the name's string, valid
         * UTF-8 without NUL: only other keys need the check */
        int ok = k && ((field = top_key(keys, k)) >= 0 || string_simple(L, key, 0, keys));
        if (!ok || !take_field(L, keys, f, field, val, type)) {
            lua_settop(L, key - 1);
            return 0;
        }
        lua_settop(L, key);
    }
    lua_settop(L, key - 1);
    return 1;
}

/* prev_events' and auth_events' entries, when the check took none: an
 * ID, or an [ID, hashes] pair. */
static rs_str ref_at(lua_State *L, int list, size_t i)
{
    rs_str r = {NULL, 0};
    lua_rawgeti(L, list, (int)i + 1);
    if (lua_type(L, -1) == LUA_TTABLE && rs_lua_is_array(L, lua_gettop(L))) {
        lua_rawgeti(L, -1, 1);
        lua_remove(L, -2);
    }
    if (lua_type(L, -1) == LUA_TSTRING)
        r.s = lua_tolstring(L, -1, &r.len);
    lua_pop(L, 1);
    return r;
}

static rs_str ref_of(lua_State *L, const capture *c, int list, size_t i)
{
    return c->complex ? ref_at(L, list, i) : c->ref[i];
}

/* Whether the rules read this event's JSON (see the top). */
static int needs_tree(const top_fields *f, const capture *content, int has_id)
{
    static const char *const types[] = {"m.room.create", "m.room.third_party_invite",
                                        "m.room.redaction"};
    rs_str type = f->str[K_TYPE];
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (rs__str_is(type, types[i]))
            return 1;
    if (!has_id && !f->str[K_EVENT_ID].s) /* its ID is its hash */
        return 1;
    if (!rs__str_is(type, "m.room.member"))
        return 0;
    return !f->str[K_STATE_KEY].s || (content && (content->has_tpi || content->has_via));
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

/* The plain event's fields: as fields_of_root in auth_event.c reads them.
 * content: its capture when an object, else NULL. */
static int plain_event(lua_State *L, const rs_room_version *v, const rs_lua_keys *keys,
                       const top_fields *f, const capture *content, rs_auth_event **out)
{
    const capture *auth = &f->cap[K_AUTH_EVENTS - K_CONTENT];
    const capture *prev = &f->cap[K_PREV_EVENTS - K_CONTENT];
    size_t nauth = auth->array ? auth->n : 0;
    rs_auth_event *e = *out = event_alloc(nauth);
    if (!e)
        return RS_ENOMEM;
    rs_str *refs = (rs_str *)e->auth_refs;
    for (size_t i = 0; i < nauth; i++)
        refs[i] = ref_of(L, auth, f->slot + 1, i);
    e->nprev = prev->array ? prev->n : 0;
    if (e->nprev)
        e->prev0 = ref_of(L, prev, f->slot + 2, 0);
    e->event_id = f->str[K_EVENT_ID];
    e->room_id = f->str[K_ROOM_ID];
    e->sender = f->str[K_SENDER];
    e->type = f->str[K_TYPE];
    e->state_key = f->str[K_STATE_KEY];
    e->format_fault = rs__format_fault(e, f->has_state_key && !e->state_key.s, content != NULL,
                                       (rs_str){NULL, 0});
    e->ts = f->num[0];
    e->depth = f->num[1];
    if (content && rs__str_is(e->type, "m.room.member")) {
        e->has_membership = content->has_membership;
        e->membership = content->membership;
    }
    if (content && e->state_key.s && rs__str_is(e->type, "m.room.join_rules"))
        e->join_rule = content->join_rule;
    if (content && rs__str_is(e->type, "m.room.power_levels")) { /* by type, as the rule */
        e->is_power = 1;
        if (rs_lua_power_decode(L, v, f->slot, keys, &content->maps, &e->power)) {
            rs_auth_event_free(e);
            *out = NULL;
            return RS_ENOMEM;
        }
    }
    return RS_OK;
}

int rs_lua_event_simple(lua_State *L, int idx)
{
    return table_simple(L, idx > 0 ? idx : lua_gettop(L) + idx + 1, 1, NULL);
}

int rs_lua_event_read(lua_State *L, const rs_room_version *v, int idx, rs_lua_keys *keys,
                      int has_id, rs_auth_event **out, char *err, size_t errlen)
{
    int top = lua_gettop(L), t = idx > 0 ? idx : top + idx + 1;
    top_fields f;
    *out = NULL;
    if (!top_simple(L, keys, t, &f)) {
        lua_settop(L, top);
        return RS_LUA_EVENT_NOT_SIMPLE;
    }
    const capture *content = f.cap[0].kind && !f.cap[0].array ? &f.cap[0] : NULL;
    int rc;
    if (needs_tree(&f, content, has_id)) {
        json_t *root = tree_of(L, t);
        rc = root ? rs__auth_event_of_tree(v, root, 0, out, err, errlen) : RS_ENOMEM;
    } else {
        rc = plain_event(L, v, keys, &f, content, out);
    }
    lua_settop(L, top);
    return rc;
}
