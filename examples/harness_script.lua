-- A scripted test harness: build a room's history in a few lines and check
-- what the store says about it, as a homeserver's integration test would.
--
--   luajit examples/harness_script.lua
local roomstate = require "roomstate"
local harness = require "roomstate.harness"

local store = assert(roomstate.open(":memory:"))
local h = harness.new(store)
local room = assert(h:create_room("@owner:test", { join_rule = "invite" }))
local rid = room.room.id

-- members come and go
for i = 1, 5 do assert(room:invite(("@guest%d:test"):format(i), { by = "@owner:test" })) end
for i = 1, 3 do assert(room:join(("@guest%d:test"):format(i))) end
assert(room:ban("@guest2:test", { by = "@owner:test" }))
local joined = store:members(rid)
local invited = store:members(rid, "invite")
print("joined: " .. table.concat(joined, ", "))
print("invited: " .. table.concat(invited, ", "))
assert(#joined == 3 and #invited == 2)

-- a fork whose branches disagree is merged by state resolution: both
-- names cite the same power levels, so the later one (B) wins
local base = room.head[1]
local name_a = assert(room:state("m.room.name", "", { name = "A" }))
local side = room:at(base)
local name_b = assert(side:state("m.room.name", "", { name = "B" }, { kind = "old" }))
assert(room:merge(side))
local name = store:current_state(rid):get("m.room.name", "")
assert(name == name_b and name ~= name_a)
print("merge resolved: the name is " .. name)

-- backfilled history does not move the current state
assert(room:at(base):send("an old message", { kind = "old" }))
assert(store:current_state(rid):get("m.room.name", "") == name)
print("ok: " .. tostring(store:current_state(rid)))
store:close()
