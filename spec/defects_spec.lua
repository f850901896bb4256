-- Issue 11 §5: defects found in review, each kept fixed by a spec here.
local roomstate = require "roomstate"
local harness = require "roomstate.harness"
local S = require "support"

describe("issue 11 defects", function()
  it("a raising ingest_batch does not leave the store in batch mode", function()
    local store = assert(roomstate.open(":memory:"))
    assert.has_error(function() store:ingest_batch({ { event = S.pdu() }, 42 }) end)
    local res, err, code = store:ingest("{")
    assert.is_nil(res)
    assert.equal("NOT_JSON", code)
    assert.not_matches("item 1", err, 1, true)
    store:close()
  end)

  it("two default harnesses on one store make different rooms and events", function()
    local store = assert(roomstate.open(":memory:"))
    local a = assert(harness.new(store):create_room("@a:x"))
    local b, err = harness.new(store):create_room("@a:x")
    assert(b, err)
    assert.not_equal(a.room.id, b.room.id)
    assert.not_equal(a.room.create_id, b.room.create_id)
    assert.equal(2, #store:rooms())
    assert.equal(5, #store:current_state(b.room.id):event_ids())
    store:close()
  end)

  it("a harness given a seed or a server makes the same IDs every time", function()
    local function ids(opts)
      local store = assert(roomstate.open(":memory:"))
      local room = assert(harness.new(store, opts):create_room("@a:x"))
      local out = { room.room.id, room.room.create_id, room.head[1] }
      store:close()
      return out
    end
    assert.same(ids({ seed = "s1" }), ids({ seed = "s1" }))
    assert.not_same(ids({ seed = "s1" }), ids({ seed = "s2" }))
    assert.same({ "!room1:h", "$1-create:h", "$5-state:h" }, ids({ server = "h" }))
  end)
end)
