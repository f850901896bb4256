/* lua_json.h - strict JSON into Lua values (lua_json.c). */
#ifndef RS_LUA_JSON_H
#define RS_LUA_JSON_H
#include "lua.h"

#define RS_JSON_TREE_MT "roomstate.json_tree"

/* Sets json_decode, json_tree_free and json_array_mt on the table at the
 * top of the stack. */
void rs_lua_json_register(lua_State *L);

/* The jansson tree boxed at idx by json_decode(text, depth, true), or NULL
 * (not such a box, or freed). */
void *rs_lua_json_tree(lua_State *L, int idx);

#endif
