/* lua_json.h - strict JSON into Lua values (lua_json.c). */
#ifndef RS_LUA_JSON_H
#define RS_LUA_JSON_H
#include "lua.h"

/* Sets json_decode and json_array_mt on the table at the top of the stack. */
void rs_lua_json_register(lua_State *L);

#endif
