/* lua_power.c - the power levels of an m.room.power_levels event read
 * from its content's Lua table, as rs__power_decode (power_levels.c)
 * reads the jansson tree of that table's cjson text, without building the
 * tree: building it was half the cost of reading such an event.
 *
 * The table is in lua_event.c's subset, so its numbers are exact
 * integers (JSON integers), its strings valid UTF-8 with no NUL in keys,
 * and a table is a JSON array exactly when its first key is a number.
 * jansson keeps an object's entries in the order they were set, which is
 * lua_next's order here; the maps are read in that order, so a content
 * with two faults names the same one as the text path. The levels' keys
 * point into the Lua strings, which the caller's tables anchor. */
#include "auth.h"
#include "lauxlib.h"
#include "lua.h"
#include "lua_event.h"

_Static_assert(RS_LUA_K_USERS - RS_LUA_K_FIELDS == RS_PL_NFIELDS,
               "lua_event.h names the power levels' fields");

/* The level of the value at idx, as level_of reads its JSON value. */
static int level_at(lua_State *L, const rs_room_version *v, int idx, int64_t *out)
{
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        return rs__level_int(v, (int64_t)lua_tonumber(L, idx), out);
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        return rs__level_string(v, s, len, out);
    }
    default:
        return -1; /* true, false, null, an object or an array */
    }
}

static size_t entries(lua_State *L, int t)
{
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        n++;
    }
    return n;
}

/* The map at idx (absent: nil); -1 when out of memory. known, array, n:
 * what the content's check saw of it (known 0: walk it here to tell). */
static int map_at(lua_State *L, const rs_room_version *v, int idx, int users, rs_level_map *m,
                  rs_power *p, int known, int array, size_t n)
{
    if (lua_isnil(L, idx))
        return 0;
    int object = known ? !array : lua_type(L, idx) == LUA_TTABLE && !rs_lua_is_array(L, idx);
    n = object ? (known ? n : entries(L, idx)) : 0;
    if (rs__power_map_open(p, m, users, object, n))
        return -1;
    if (!m->e)
        return 0;
    lua_pushnil(L);
    /* n is the table's entries (nothing runs between the check and this
     * read to change it); the bound keeps m->e's room even so */
    for (size_t i = 0; i < n && lua_next(L, idx); i++) {
        size_t klen;
        const char *key = lua_tolstring(L, -2, &klen);
        int64_t level = 0;
        int rc = level_at(L, v, lua_gettop(L), &level);
        rs__power_map_add(p, m, users, key, klen, rc, level);
        lua_pop(L, 1);
    }
    lua_settop(L, idx);
    rs__power_map_close(m);
    return 0;
}

int rs_lua_power_decode(lua_State *L, const rs_room_version *v, int content,
                        const rs_lua_keys *keys, const rs_lua_maps *maps, rs_power *p)
{
    static const int map_keys[] = {RS_LUA_K_USERS, RS_LUA_K_EVENTS, RS_LUA_K_NOTIFICATIONS};
    int top = lua_gettop(L), rc = 0;
    rs__power_start(p);
    if (!lua_checkstack(L, 4))
        return -1;
    for (int i = 0; i < RS_PL_NFIELDS; i++) {
        lua_pushvalue(L, keys->base + RS_LUA_K_FIELDS + i);
        lua_rawget(L, content);
        int64_t level = 0;
        if (!lua_isnil(L, -1)) {
            int rc = level_at(L, v, top + 1, &level); /* before level is read */
            rs__power_field(p, i, rc, level);
        }
        lua_settop(L, top);
    }
    rs_level_map *m[] = {&p->users, &p->events, &p->notifications};
    for (int i = 0; i < 3 && !rc; i++) {
        if (i == 2 && !v->notifications_power) /* v6: before, the rules never read it */
            break;
        lua_pushvalue(L, keys->base + map_keys[i]);
        lua_rawget(L, content);
        rc = map_at(L, v, top + 1, i == 0, m[i], p, maps && maps->known[i],
                    maps && maps->array[i], maps ? maps->n[i] : 0);
        lua_settop(L, top);
    }
    if (rc)
        rs__power_free(p);
    return rc;
}
