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

  describe("raises name the method and the argument", function()
    local store, st, other
    setup(function()
      store = assert(roomstate.open(":memory:"))
      local room = assert(harness.new(store):create_room("@a:x"))
      st = assert(store:current_state(room.room.id))
      other = assert(store:state_after(room.room.create_id))
    end)
    teardown(function() store:close() end)

    local function raises(want, f, ...)
      local ok, err = pcall(f, ...)
      assert.is_false(ok)
      assert.matches(want, err, 1, true)
    end

    it("in Store queries", function()
      raises("bad argument #1 to 'current_state' (room ID string expected, got nil)",
             store.current_state, store, nil)
      raises("bad argument #1 to 'state_before' (event ID string expected, got number)",
             store.state_before, store, 1)
      raises("bad argument #1 to 'state_after' (event ID string expected, got nil)",
             function() return store:state_after() end)
      raises("bad argument #1 to 'latest_events' (room ID string expected, got table)",
             store.latest_events, store, {})
      raises("bad argument #1 to 'event' (event ID string expected, got nil)", store.event, store)
      raises("bad argument #1 to 'members' (room ID string expected, got nil)", store.members, store)
      raises("bad argument #1 to 'room_version' (room ID string expected, got nil)",
             store.room_version, store)
      raises("bad argument #1 to 'state_hash' (room ID string expected, got boolean)",
             store.state_hash, store, true)
      raises("bad argument #1 to 'purge_room' (room ID string expected, got nil)",
             store.purge_room, store)
      raises("bad argument #2 to 'outputs_json' (limit (an integer >= 0) expected, got number)",
             store.outputs_json, store, 1, 0.5)
      raises("bad argument #3 to 'try_lease' (ttl_ms integer expected, got nil)",
             store.try_lease, store, "c", "me")
    end)

    it("in State methods, also when called by a tail call", function()
      raises("bad argument #2 to 'get' (state_key string expected, got no value)",
             function() return st:get("m.room.member") end)
      raises("bad argument #1 to 'get' (type string expected, got nil)", st.get, st, nil, "")
      raises("calling 'count' on bad self (roomstate.State expected, got nil)", st.count, nil)
      raises("calling 'entries' on bad self (roomstate.State expected, got table)", st.entries, {})
      raises("calling 'event_ids' on bad self (roomstate.State expected, got string)",
             st.event_ids, "x")
      raises("bad argument #1 to 'diff' (roomstate.State expected, got no value)",
             function() return st:diff() end)
      assert.same({}, (other:diff(other)))
    end)
  end)
end)
