-- The main example: a room with members and state, a fork that merges, a
-- federated-join rewrite, and a subscriber that keeps its own copy of the
-- state and checks it against state_hash after every output.
--
--   luajit examples/quickstart.lua [database-file]
local roomstate = require "roomstate"
local harness = require "roomstate.harness"
local Consumer = require "roomstate.consumer"

local path = arg and arg[1]
if not path then
  path = os.tmpname()  -- a fresh file each run
  os.remove(path)
  path = path .. ".db"
end
local store = assert(roomstate.open(path))

-- A downstream component (say a sync API) subscribes by name; its position
-- is kept in the database, so a restarted process continues where it was.
local sync = Consumer.new(store)
store:subscribe("sync-api", sync:callback())

-- Script a room: create it, let people in, set some state.
local h = harness.new(store, { server = "example.org" })
local room = assert(h:create_room("@alice:example.org"))
local rid = room.room.id
assert(room:join("@bob:example.org"))
assert(room:join("@carol:example.org"))
assert(room:state("m.room.topic", "", { topic = "roomstate demo" }))
assert(room:send("hello, world"))
print(("room %s: %d state entries, members: %s"):format(
  rid, store:current_state(rid):count(), table.concat(store:members(rid), ", ")))

-- A fork: two servers each send a message on the same event, then a third
-- event merges both branches. Their states agree, so the merge is exact.
local side = room:at(room.head[1])
assert(room:send("from server A"))
assert(side:send("from server B"))
print("extremities during the fork: " .. #store:latest_events(rid))
assert(room:merge(side))
print("extremities after the merge: " .. #store:latest_events(rid))

-- State at any point: the state before an earlier event.
local topic_event = store:current_state(rid):get("m.room.topic", "")
print("topic set by " .. topic_event .. "; before it the room had "
      .. store:state_before(topic_event):count() .. " state entries")

-- A federated join: the state from the remote server arrives as outliers,
-- then the join replaces the room's state wholesale.
local join, res = room:rewrite({
  { type = "m.room.create", state_key = "", content = { creator = "@alice:example.org", room_version = "10" } },
  { type = "m.room.member", state_key = "@alice:example.org", content = { membership = "join" } },
  { type = "m.room.member", state_key = "@dave:remote.org", content = { membership = "join" },
    sender = "@dave:remote.org" },
  { type = "m.room.join_rules", state_key = "", content = { join_rule = "public" } },
}, "@erin:example.org")
assert(join, res)
local out = res.outputs[1].new_room_event
print(("rewrite: rewrites_state=%s, adds=%d (the whole new state), removes=%d"):format(
  tostring(out.rewrites_state), #out.adds_state_event_ids, #out.removes_state_event_ids))
print("members now: " .. table.concat(store:members(rid), ", "))

-- The subscriber's copy matches the store, and it never had to resync.
local mine = sync:hash(rid)
print(("subscriber hash %s, store hash %s, resyncs %d, outputs applied %d"):format(
  mine, store:state_hash(rid), #sync.resyncs, sync.applied))
assert(mine == store:state_hash(rid) and #sync.resyncs == 0)
assert(store:check())
store:close()
print("database: " .. path)
