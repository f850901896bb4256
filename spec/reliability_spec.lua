-- Issue 14: defects an adversarial pass found; each kept fixed by a spec.
local roomstate = require "roomstate"
local harness = require "roomstate.harness"
local S = require "support"

local function open()
  local store = assert(roomstate.open(":memory:"))
  return store, harness.new(store, { seed = "rel" })
end

describe("issue 14 §1.2: edges count only within a room", function()
  it("an old event of room B citing $victim does not hide it in room A", function()
    local store, h = open()
    local a = assert(h:create_room("@alice:example.org"))
    local b = assert(h:create_room("@bob:example.org"))
    -- a fork, so room A keeps an extremity the new event does not cover
    local side = a:at(a.head[1])
    local side_id = assert(side:send("on the side"))
    -- room B backfills an event that names $victim, not stored yet
    assert(b:send("from B", { prev = { "$victim" }, kind = "old" }))
    -- $victim arrives in room A as a new event (a message: a topic on one
    -- branch of a fork would be a STATE_CONFLICT, state resolution being
    -- not implemented)
    local id, res = a:send("in A", { event_id = "$victim" })
    assert.equal("$victim", id, res)
    local want = { "$victim", side_id }
    table.sort(want)
    assert.same(want, store:latest_events(a.room.id))
    assert(store:check())
    store:close()
  end)
end)
