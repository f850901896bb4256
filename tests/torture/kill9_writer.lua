-- The writer of kill9.sh: ingests into a fresh database until it is
-- killed, and appends "A <event_id>" to the log for each event only after
-- the call that stored it returned (the event is acknowledged).
-- args: db log seed synchronous
local db, log_path, seed, mode = arg[1], arg[2], tonumber(arg[3]), arg[4]
local roomstate = require "roomstate"
local harness = require "roomstate.harness"
local S = require "support"

local rng_state = seed
local function rng(n)
  rng_state = (rng_state * 16807) % 2147483647
  return 1 + rng_state % n
end

local log = assert(io.open(log_path, "a"))
local function ack(id) log:write("A ", id, "\n"); log:flush() end

local store = assert(roomstate.open(db, { synchronous = mode }))
local h = harness.new(store, { seed = "k" .. seed })
local room = assert(h:create_room("@alice:example.org"))
for id in pairs(h.events) do ack(id) end
log:write("ROOM ", room.room.id, "\n")
local users = 0
for _ = 1, 1e6 do
  if rng(4) == 1 then
    -- a state event in a transaction of its own
    users = users + 1
    ack(assert(room:join(("@u%d:example.org"):format(users))))
  else
    -- a batch of messages in one transaction (ingest_batch)
    local items, ids, prev = S.message_batch(room, rng(8))
    assert(store:ingest_batch(items))
    room.head = prev
    for i = 1, #ids do ack(ids[i]) end
  end
end
