-- bench/difference_walk.lua - what the auth difference walks, in index rows
-- (debug_counts().difference_*), on a few fork shapes in a room of N joined
-- members, room version 10. Counts only: they are deterministic, so one run
-- is the figure. Per shape: |D| (the difference's events), the walk (rows
-- past the own events' covers) and the covers' rows.
--   luajit bench/difference_walk.lua [N] [K]
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local roomstate = require "roomstate"
local harness = require "roomstate.harness"

local N = tonumber(arg[1]) or 1000
local K = tonumber(arg[2]) or 50

local function room()
  local store = assert(roomstate.open(":memory:"))
  local h = harness.new(store, { server = "bench", version = "10" })
  local main = assert(h:create_room("@alice:x"))
  for i = 1, N do assert(main:join("@m" .. i .. ":x")) end
  return store, main
end

local function measure(store, name, fn)
  local dbg = store:debug()
  local c0 = dbg:debug_counts()
  fn()
  local c1 = dbg:debug_counts()
  local rows = c1.difference_rows - c0.difference_rows
  local cover = c1.difference_cover_rows - c0.difference_cover_rows
  print(("N=%d %-44s |D| %d walked %d cover rows %d"):format(N, name,
    c1.difference_events - c0.difference_events, rows - cover, cover))
end

do -- a member renamed on a side branch while the head gets a message
  local store, main = room()
  local base = main.head[1]
  local a = assert(main:send("m", { sender = "@alice:x" }))
  local side = main:at(base)
  local b
  measure(store, "one-key fork, the side event's ingest", function()
    b = assert(side:join("@m7:x", { displayname = "seven" }))
  end)
  measure(store, "one-key fork, store:resolve", function() assert(store:resolve(main.room.id, { a, b })) end)
end
do
  local store, main = room()
  local side = main:at(main.head[1])
  for i = 1, K do assert(main:join("@m3:x", { displayname = "d" .. i })) end
  local b = assert(side:join("@m4:x", { displayname = "four" }))
  measure(store, K .. " renames of one member, store:resolve", function()
    assert(store:resolve(main.room.id, { main.head[1], b }))
  end)
end
do
  local store, main = room()
  local side = main:at(main.head[1])
  assert(main:state("m.room.power_levels", "", { users = { ["@alice:x"] = 100, ["@m1:x"] = 50 } }))
  for i = 1, K do assert(main:state("m.room.topic", "", { topic = "t" .. i })) end
  local b = assert(side:send("meanwhile", { sender = "@m2:x" }))
  measure(store, K .. " topics after a power change, store:resolve", function()
    assert(store:resolve(main.room.id, { main.head[1], b }))
  end)
end
do
  local store = assert(roomstate.open(":memory:"))
  local h = harness.new(store, { server = "bench", version = "10" })
  local main = assert(h:create_room("@alice:x"))
  local early
  for i = 1, N do
    local id = assert(main:join("@m" .. i .. ":x"))
    if i == 10 then early = id end
  end
  measure(store, "after join 10 against after join N", function()
    assert(store:resolve(main.room.id, { early, main.head[1] }))
  end)
end
