/* lua_json.c - strict JSON into Lua values, parsed by jansson: the one
 * JSON parser of the C code, so that what a caller's text is accepted as
 * is exactly what the core reads back from the stored bytes.
 *
 * roomstate.core.json_decode replaces lua-cjson's decoder for the JSON text
 * a caller gives (events, HTTP bodies, import lines). It refuses what cjson
 * lets through and a strict consumer then cannot read back: hex, NaN,
 * Infinity, leading zeros, a leading '+', raw control characters in
 * strings, invalid UTF-8, lone surrogates, numbers out of range and
 * duplicate keys in an object. Values are as cjson gives them (null is
 * lightuserdata NULL, cjson.null; numbers are doubles), except that arrays
 * carry a metatable, the function's upvalue, so that [] and {} can be told
 * apart. An integer beyond 64 bits is read as a real, as cjson and the
 * core's stored-event reader do.
 *
 * Building Lua values can raise (out of memory); the parsed tree is then
 * held by a userdata whose __gc frees it, so nothing leaks. */
#include <string.h>

#include <jansson.h>

#include "crypto.h"
#include "lauxlib.h"
#include "lua.h"
#include "lua_json.h"

static int push(lua_State *L, const json_t *v, int depth, int max_depth);

static int push_object(lua_State *L, const json_t *v, int depth, int max_depth)
{
    lua_createtable(L, 0, (int)json_object_size(v));
    for (void *it = json_object_iter((json_t *)v); it;
         it = json_object_iter_next((json_t *)v, it)) {
        lua_pushlstring(L, json_object_iter_key(it), json_object_iter_key_len(it));
        if (!push(L, json_object_iter_value(it), depth + 1, max_depth))
            return 0;
        lua_rawset(L, -3);
    }
    return 1;
}

static int push_array(lua_State *L, const json_t *v, int depth, int max_depth)
{
    size_t n = json_array_size(v);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        if (!push(L, json_array_get(v, i), depth + 1, max_depth))
            return 0;
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_setmetatable(L, -2);
    return 1;
}

/* Pushes v; 0 (nothing pushed beyond a partial table) when it nests
 * deeper than max_depth. */
static int push(lua_State *L, const json_t *v, int depth, int max_depth)
{
    luaL_checkstack(L, 4, "JSON nested too deeply");
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return depth < max_depth && push_object(L, v, depth, max_depth);
    case JSON_ARRAY:
        return depth < max_depth && push_array(L, v, depth, max_depth);
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(v), json_string_length(v));
        return 1;
    case JSON_INTEGER:
        lua_pushnumber(L, (lua_Number)json_integer_value(v));
        return 1;
    case JSON_REAL:
        lua_pushnumber(L, json_real_value(v));
        return 1;
    case JSON_TRUE:
    case JSON_FALSE:
        lua_pushboolean(L, json_is_true(v));
        return 1;
    default:
        lua_pushlightuserdata(L, NULL);
        return 1;
    }
}

static int tree_gc(lua_State *L)
{
    json_t **box = lua_touserdata(L, 1);
    json_decref(*box);
    *box = NULL;
    return 0;
}

static json_t *parse(const char *s, size_t len, json_error_t *err)
{
    return rs__json_load_wide(s, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
                              err);
}

/* json_decode(text [, max_depth [, keep]]) -> value [, tree] | nil,
 * "message at byte N". With keep, the parsed tree comes too, boxed: given
 * to ingest in the event's fields (`tree`), it spares the core a second
 * parse of the same text; json_tree_free drops it at once. */
static int l_json_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    int max_depth = (int)luaL_optinteger(L, 2, 64);
    int keep = lua_toboolean(L, 3);
    json_t **box = lua_newuserdata(L, sizeof *box);
    *box = NULL;
    luaL_getmetatable(L, RS_JSON_TREE_MT);
    lua_setmetatable(L, -2);
    json_error_t err;
    if (!(*box = parse(s, len, &err))) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s at byte %d", err.text, (int)err.position + 1);
        return 2;
    }
    int box_at = lua_gettop(L);
    if (!push(L, *box, 0, max_depth)) {
        lua_settop(L, box_at);
        lua_pushnil(L);
        lua_pushfstring(L, "nested deeper than %d levels", max_depth);
        return 2;
    }
    if (keep) {
        lua_pushvalue(L, box_at);
        return 2;
    }
    json_decref(*box);
    *box = NULL;
    return 1;
}

/* json_tree_free(tree): the tree's memory back now, not at the next
 * collection (a batch holds a thousand). */
static int l_json_tree_free(lua_State *L)
{
    json_t **box = luaL_checkudata(L, 1, RS_JSON_TREE_MT);
    json_decref(*box);
    *box = NULL;
    return 0;
}

/* json_tree_child(tree, index or key) -> the tree of that array element
 * (1-based) or object member, boxed, or nil: an item's event, handed on
 * to ingest when a whole request body was parsed at once. */
static int l_json_tree_child(lua_State *L)
{
    json_t **box = luaL_checkudata(L, 1, RS_JSON_TREE_MT);
    const json_t *child = NULL;
    if (*box && lua_type(L, 2) == LUA_TNUMBER)
        child = json_array_get(*box, (size_t)lua_tointeger(L, 2) - 1);
    else if (*box && lua_type(L, 2) == LUA_TSTRING)
        child = json_object_get(*box, lua_tostring(L, 2));
    if (!child) {
        lua_pushnil(L);
        return 1;
    }
    json_t **out = lua_newuserdata(L, sizeof *out);
    *out = NULL;
    luaL_getmetatable(L, RS_JSON_TREE_MT);
    lua_setmetatable(L, -2);
    *out = json_incref((json_t *)child);
    return 1;
}

void *rs_lua_json_tree(lua_State *L, int idx)
{
    json_t **box = lua_touserdata(L, idx);
    if (!box || !lua_getmetatable(L, idx))
        return NULL;
    luaL_getmetatable(L, RS_JSON_TREE_MT);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same ? *box : NULL;
}

void rs_lua_json_register(lua_State *L)
{
    luaL_newmetatable(L, RS_JSON_TREE_MT); /* the parsed tree's box */
    lua_pushcfunction(L, tree_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_json_tree_free);
    lua_setfield(L, -2, "json_tree_free");
    lua_pushcfunction(L, l_json_tree_child);
    lua_setfield(L, -2, "json_tree_child");
    lua_newtable(L); /* the array metatable */
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "json_array_mt");
    lua_pushcclosure(L, l_json_decode, 1);
    lua_setfield(L, -2, "json_decode");
}
