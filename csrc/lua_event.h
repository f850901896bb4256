/* lua_event.h - an event given as a Lua table, read without JSON text
 * (lua_event.c). */
#ifndef RS_LUA_EVENT_H
#define RS_LUA_EVENT_H
#include "lua.h"
#include "roomstate.h"

/* The table holds what this reader does not know the JSON text of
 * exactly: the caller must take the text path (encode it) instead. */
#define RS_LUA_EVENT_NOT_SIMPLE (-1)
/* The names in rs_lua_keys: the event's fields (lua_event.c), then the
 * power levels' seven top-level fields in auth.h's order and their maps. */
#define RS_LUA_K_FIELDS 14
#define RS_LUA_K_USERS (RS_LUA_K_FIELDS + 7)
#define RS_LUA_K_EVENTS (RS_LUA_K_USERS + 1)
#define RS_LUA_K_NOTIFICATIONS (RS_LUA_K_USERS + 2)
#define RS_LUA_NKEYS (RS_LUA_K_USERS + 3)

#define RS_LUA_SEEN 4096

/* The field names the reader looks up, pushed once per call (keep them
 * on the stack while reading): base is the index of the first. seen:
 * strings found valid in this call (lua_event.c). */
typedef struct rs_lua_keys {
    int base;
    const char *name[RS_LUA_NKEYS];
    const char *seen[RS_LUA_SEEN];
} rs_lua_keys;
void rs_lua_event_keys(lua_State *L, rs_lua_keys *keys);

/* Whether the table at idx, in the subset, is an array (its first key is
 * a number) rather than an object. */
int rs_lua_is_array(lua_State *L, int idx);

/* What the check of a content saw of its tables users, events and
 * notifications (in that order), so that reading the levels need not
 * walk them again: known[i], the value was a table, then whether it has
 * number keys (in the subset: an array) and its entries. */
typedef struct rs_lua_maps {
    int known[3];
    int array[3];
    size_t n[3];
} rs_lua_maps;

/* The power levels of the content table at idx (absolute, in the
 * subset), as rs__power_decode reads its text's tree (lua_power.c);
 * maps: what its check saw, or NULL. 0, or -1 when out of memory. */
struct rs_power;
int rs_lua_power_decode(lua_State *L, const rs_room_version *v, int idx,
                        const rs_lua_keys *keys, const rs_lua_maps *maps, struct rs_power *p);

/* Whether the table at idx holds only what this reader knows the JSON
 * text of exactly (see lua_event.c). */
int rs_lua_event_simple(lua_State *L, int idx);

/* The event of the table at idx, read as its lua-cjson text would parse
 * (see lua_event.c); keys from rs_lua_event_keys; has_id: the caller
 * knows its ID. RS_OK; RS_LUA_EVENT_NOT_SIMPLE; RS_EBAD_EVENT or RS_ENOMEM
 * with err filled. The event's strings may point into the table's: use
 * it while the table lives, unchanged. */
int rs_lua_event_read(lua_State *L, const rs_room_version *v, int idx, rs_lua_keys *keys,
                      int has_id, rs_auth_event **out, char *err, size_t errlen);
#endif
