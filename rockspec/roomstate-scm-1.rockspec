rockspec_format = "3.0"
package = "roomstate"
version = "scm-1"
source = {
   url = "git+https://example.invalid/roomstate.git",
}
description = {
   summary = "Room state store for Matrix homeservers: a C core on SQLite with a Lua binding",
   detailed = [[
roomstate keeps the state of every Matrix room before and after every event,
in deduplicated packed blocks on SQLite, tracks forward extremities and the
current state, and emits outputs (with full-state rewrites) to subscribers.
It needs lua-cjson at run time (Debian: lua-cjson), and to build SQLite 3,
jansson and libsodium (libsqlite3-dev, libjansson-dev, libsodium-dev), found
with pkg-config.
]],
   license = "Apache-2.0",
}
dependencies = {
   "lua >= 5.1, < 5.2",
   "lua-cjson",
}
build = {
   type = "cmake",
   variables = {
      CMAKE_BUILD_TYPE = "Release",
      ROOMSTATE_TESTS = "OFF",
      ROOMSTATE_WERROR = "OFF",
      LUA_INCDIR = "$(LUA_INCDIR)",
      LUA_LIBDIR = "$(LUA_LIBDIR)",
      LIBDIR = "$(LIBDIR)",
      LUADIR = "$(LUADIR)",
      BINDIR = "$(BINDIR)",
   },
}
