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

describe("issue 14 §1.3: cyclic prev events are refused", function()
  local function refused(store, err, code, ids)
    assert.equal("BAD_EVENT", code)
    for _, id in ipairs(ids) do assert.matches(id, err, 1, true) end
    assert.matches("cycle", err, 1, true)
  end

  it("an event that lists itself, at every kind", function()
    local store, h = open()
    local a = assert(h:create_room("@alice:example.org"))
    local state = assert(store:current_state(a.room.id)):event_ids()
    local before = S.counts(store)
    for _, o in ipairs({ { kind = "old", state = state }, { kind = "new", state = state },
                         { kind = "old" }, { kind = "new" }, { kind = "outlier" } }) do
      o.event_id, o.prev = "$self", { "$self", a.head[1] }
      local id, err, code = a:send("me", o)
      assert.is_nil(id)
      refused(store, err, code, { "$self" })
      assert.same(before, S.counts(store))
    end
    store:close()
  end)

  it("A lists B, then B lists A (B not stored when A came)", function()
    local store, h = open()
    local a = assert(h:create_room("@alice:example.org"))
    local head = a.head[1]
    local state = assert(store:current_state(a.room.id)):event_ids()
    assert(a:send("A", { event_id = "$A", prev = { "$B" }, kind = "old", state = state }))
    local before = S.counts(store)
    for _, kind in ipairs({ "new", "old" }) do
      local id, err, code = a:send("B", { event_id = "$B", prev = { "$A" }, kind = kind })
      assert.is_nil(id)
      refused(store, err, code, { "$A", "$B" })
      assert.same(before, S.counts(store))
    end
    assert.same({ head }, store:latest_events(a.room.id))
    store:close()
  end)

  it("a longer cycle: A lists C, C lists B, B lists A", function()
    local store, h = open()
    local a = assert(h:create_room("@alice:example.org"))
    local state = assert(store:current_state(a.room.id)):event_ids()
    assert(a:send("A", { event_id = "$A", prev = { "$C" }, kind = "old", state = state }))
    assert(a:send("C", { event_id = "$C", prev = { "$B" }, kind = "old", state = state }))
    local before = S.counts(store)
    local id, err, code = a:send("B", { event_id = "$B", prev = { "$A" } })
    assert.is_nil(id)
    refused(store, err, code, { "$A", "$B" })
    assert.same(before, S.counts(store))
    store:close()
  end)
end)
