-- Defects found in review, kept fixed.
local roomstate = require "roomstate"
local harness = require "roomstate.harness"
local M = require "model"
local S = require "support"

describe("regressions", function()
  -- issue 14 §1.1: a purge freed event IDs that the next events took, and a
  -- reading handle served its cached strings for them: room A's event IDs
  -- as room B's state
  it("a reading handle never serves a purged room's event IDs as another room's", function()
    local dir = S.tmpdir()
    local path = dir .. "/reuse.db"
    local r = assert(roomstate.open(path))
    local w = assert(roomstate.open(path))
    local ha = harness.new(w, { server = "a" })
    local room_a = assert(ha:create_room("@a:x", { room_id = "!a:x" }))
    assert(room_a:state("m.room.topic", "", { topic = "A" }))
    -- the reader caches room A's IDs
    local a_ids = assert(r:current_state("!a:x")):event_ids()
    assert.is_true(#a_ids > 0)
    assert(w:purge_room("!a:x"))
    local hb = harness.new(w, { server = "b" })
    local room_b = assert(hb:create_room("@b:x", { room_id = "!b:x" }))
    local topic = assert(room_b:state("m.room.topic", "", { topic = "B" }))
    local st = assert(r:current_state("!b:x"))
    assert.equal(topic, st:get("m.room.topic", ""))
    local seen = {}
    for _, id in ipairs(a_ids) do seen[id] = true end
    for _, id in ipairs(st:event_ids()) do
      assert.is_nil(seen[id], "room A's " .. id .. " served as room B's")
      assert.is_string(w:event(id))
    end
    assert.same(w:latest_events("!b:x"), r:latest_events("!b:x"))
    assert.is_true(r:check())
    r:close()
    w:close()
    S.rmdir(dir)
  end)

  it("another handle's purge does not make this handle lose events", function()
    local dir = S.tmpdir()
    local path = dir .. "/two.db"
    local a = assert(roomstate.open(path))
    local b = assert(roomstate.open(path))
    local ha = harness.new(a, { server = "h" })
    local room = assert(ha:create_room("@a:x", { room_id = "!shared:x" }))
    local m = assert(room:send("cached in a"))
    -- b purges the room and builds it again with other events
    assert(b:purge_room("!shared:x"))
    local hb = harness.new(b, { server = "other" })
    local room_b = assert(hb:create_room("@b:x", { room_id = "!shared:x" }))
    local m2 = assert(room_b:send("from b"))
    -- a ingests an event whose ID it had cached before the purge, sent by
    -- the new room's member
    local id, pdu = ha:emit(room.room, { m2 }, { type = "m.room.message", content = {},
                                                sender = "@b:x" },
                            { ingest = false, event_id = m })
    assert.equal(m, id)
    local res, err = a:ingest(pdu)
    assert(res, err)
    assert.is_string(a:event(m))
    assert.same({ m }, a:latest_events("!shared:x"))
    assert.is_true(a:check())
    a:close()
    b:close()
    S.rmdir(dir)
  end)

  it("refuses a prev event of another room and writes nothing", function()
    local store = assert(roomstate.open(":memory:"))
    local h = harness.new(store)
    local r1 = assert(h:create_room("@a:x"))
    local r2 = assert(h:create_room("@b:x"))
    for _, kind in ipairs({ "new", "old" }) do
      local c0 = S.counts(store)
      local _, pdu = h:emit(r2.room, { r1.head[1] }, { type = "m.room.topic", state_key = "",
        content = { topic = "t" } }, { ingest = false })
      local res, err, code = store:ingest(pdu, { kind = kind })
      assert.is_nil(res)
      assert.equal("EVENT_MISMATCH", code)
      assert.matches(r1.head[1], err, 1, true)
      assert.same(c0, S.counts(store))
    end
    store:close()
  end)

  it("rewrites the room even when a backfilled event already points at the join", function()
    local store = assert(roomstate.open(":memory:"))
    local h = harness.new(store)
    local room = assert(h:create_room("@a:x"))
    local rid = room.room.id
    local remote_prev = { h:next_id("remote") }
    -- the remote state: the room's create event and its join rules
    local create = room.room.create_id
    local rules = store:current_state(rid):get("m.room.join_rules", "")
    -- build the join, and a backfilled child of it, before the join arrives
    local join, jpdu = h:emit(room.room, remote_prev, { type = "m.room.member", state_key = "@j:x",
      content = { membership = "join" }, sender = "@j:x" }, { ingest = false })
    local _, cpdu = h:emit(room.room, { join }, { type = "m.room.message", content = {} },
                           { ingest = false })
    assert(store:ingest(cpdu, { kind = "old" }))
    local res = assert(store:ingest(jpdu, { state = { create, rules } }))
    assert.is_true(res.rewrote)
    assert.is_nil(res.rejected)
    assert.same({ join }, store:latest_events(rid))
    assert.same({ ["m.room.create\0"] = create, ["m.room.join_rules\0"] = rules,
                  ["m.room.member\0@j:x"] = join },
                M.from_state(store:current_state(rid)))
    assert.is_true(store:check())
    store:close()
  end)

  it("keeps a room's extremities when a new event's only child was backfilled", function()
    local store = assert(roomstate.open(":memory:"))
    local h = harness.new(store)
    local room = assert(h:create_room("@a:x"))
    local rid = room.room.id
    local nxt, npdu = h:emit(room.room, room.head, { type = "m.room.message", content = {} },
                             { ingest = false })
    local _, cpdu = h:emit(room.room, { nxt }, { type = "m.room.message", content = {} },
                           { ingest = false })
    assert(store:ingest(cpdu, { kind = "old" }))
    assert(store:ingest(npdu))
    assert.same({ nxt }, store:latest_events(rid))
    assert.is_true(store:check())
    store:close()
  end)

  it("raises on numbers that are not integers in range", function()
    local store = assert(roomstate.open(":memory:"))
    assert.has_error(function() store:outputs(0 / 0) end)
    assert.has_error(function() store:outputs(1, -1) end)
    assert.has_error(function() store:outputs(1.5) end)
    assert.has_error(function() store:try_lease("n", "o", 0 / 0) end)
    assert.has_error(function() roomstate.open(":memory:", { busy_timeout = 1 / 0 }) end)
    assert.has_error(function() store:debug():ingest({}, "new") end)
    store:close()
  end)
end)
