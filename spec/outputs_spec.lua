-- Issue 4: output events, the outbox, subscribers, state_hash, purge.
local roomstate = require "roomstate"
local harness = require "roomstate.harness"
local Consumer = require "roomstate.consumer"
local M = require "model"
local S = require "support"

local sorted = S.sorted

local function only(res)
  assert.equal(1, #res.outputs)
  return res.outputs[1]
end

-- Replays a state-before delta on the new current state.
local function apply_delta(current_ids, removes, adds)
  local set = {}
  for _, e in ipairs(current_ids) do set[e] = true end
  for _, e in ipairs(removes) do set[e] = nil end
  for _, e in ipairs(adds) do set[e] = true end
  local out = {}
  for e in pairs(set) do out[#out + 1] = e end
  table.sort(out)
  return out
end

describe("outputs", function()
  local store, h
  before_each(function()
    store = assert(roomstate.open(":memory:"))
    h = harness.new(store)
  end)
  after_each(function() store:close() end)

  local function ingest(cursor, f, ...)
    local id, res = cursor[f](cursor, ...)
    assert(id, res)
    return id, res
  end

  it("describe a linear room, field by field", function()
    local room = assert(h:create_room("@alice:x", { minimal = true }))
    local rid = room.room.id
    local outs = store:outputs(1, 10)
    assert.equal(1, #outs)
    local o = outs[1]
    assert.equal("new_room_event", o.type)
    assert.equal(1, o.position)
    local ne = o.new_room_event
    assert.equal(room.room.create_id, ne.event.event_id)
    assert.is_false(ne.rewrites_state)
    assert.same({ room.room.create_id }, ne.latest_event_ids)
    assert.same({ room.room.create_id }, ne.adds_state_event_ids)
    assert.same({}, ne.removes_state_event_ids)
    assert.equal("", ne.last_sent_event_id)
    assert.same({}, ne.state_before_adds_event_ids)
    assert.same({ room.room.create_id }, ne.state_before_removes_event_ids)
    assert.equal(store:state_hash(rid), ne.state_hash)
    assert.matches("^%x+$", ne.state_hash)
    assert.equal(16, #ne.state_hash)

    local join, res = ingest(room, "join", "@alice:x")
    o = only(res)
    assert.equal(2, o.position)
    ne = o.new_room_event
    assert.same({ join }, ne.adds_state_event_ids)
    assert.same({}, ne.removes_state_event_ids)
    assert.equal(room.room.create_id, ne.last_sent_event_id)
    assert.same({ join }, ne.latest_event_ids)
    assert.same({ join }, ne.state_before_removes_event_ids)
    assert.same({}, ne.state_before_adds_event_ids)
  end)

  it("list a replaced key in removes and adds", function()
    local room = assert(h:create_room("@alice:x"))
    local old = store:current_state(room.room.id):get("m.room.join_rules", "")
    local new, res = ingest(room, "state", "m.room.join_rules", "", { join_rule = "invite" })
    local ne = only(res).new_room_event
    assert.same({ new }, ne.adds_state_event_ids)
    assert.same({ old }, ne.removes_state_event_ids)
    assert.same({ old }, ne.state_before_adds_event_ids)
    assert.same({ new }, ne.state_before_removes_event_ids)
    -- a leave replaces the join: the old membership is removed
    local j = store:current_state(room.room.id):get("m.room.member", "@alice:x")
    local l, res2 = ingest(room, "leave", "@alice:x")
    ne = only(res2).new_room_event
    assert.same({ l }, ne.adds_state_event_ids)
    assert.same({ j }, ne.removes_state_event_ids)
    assert.same({}, store:members(room.room.id))
  end)

  it("give a message empty adds/removes and a right state-before delta", function()
    local room = assert(h:create_room("@alice:x"))
    local _, res = ingest(room, "send", "hello")
    local ne = only(res).new_room_event
    assert.same({}, ne.adds_state_event_ids)
    assert.same({}, ne.removes_state_event_ids)
    assert.same({}, ne.state_before_adds_event_ids)
    assert.same({}, ne.state_before_removes_event_ids)
  end)

  it("give a message on a side branch a state-before delta that is right", function()
    local room = assert(h:create_room("@alice:x"))
    local rid = room.room.id
    local fork_at = room.head[1]
    local topic = ingest(room, "state", "m.room.topic", "", { topic = "main" })
    -- a side message arriving by backfill-free federation: a new event whose
    -- prev is before the topic change; state differs, so it is old
    local side = room:at(fork_at)
    local sid, res = ingest(side, "send", "side", { kind = "old" })
    local o = only(res)
    assert.equal("old_room_event", o.type)
    assert.equal(sid, o.old_room_event.event.event_id)
    -- a new side message with equal state: branches of messages
    local room2 = assert(h:create_room("@bob:x"))
    local at2 = room2.head[1]
    ingest(room2, "send", "main")
    local side2 = room2:at(at2)
    local s2, res2 = ingest(side2, "send", "side")
    local ne = only(res2).new_room_event
    assert.same(sorted({ room2.head[1], s2 }), sorted(ne.latest_event_ids))
    local cur = store:current_state(room2.room.id):event_ids()
    local before = apply_delta(cur, ne.state_before_removes_event_ids, ne.state_before_adds_event_ids)
    assert.same(sorted(store:state_before(s2):event_ids()), before)
    assert(topic and rid)
  end)

  it("make a state-before delta right for an event whose before differs from the new current", function()
    -- a rewrite: before = given state, current = given + join
    local room = assert(h:create_room("@alice:x"))
    local join, res = room:rewrite({
      { type = "m.room.create", state_key = "", content = { creator = "@z:y", room_version = "10" } },
      { type = "m.room.join_rules", state_key = "", content = { join_rule = "public" } },
      { type = "m.room.member", state_key = "@z:y", content = { membership = "join" }, sender = "@z:y" },
    }, "@alice:x")
    assert(join, res)
    local ne = only(res).new_room_event
    local cur = store:current_state(room.room.id):event_ids()
    local before = apply_delta(cur, ne.state_before_removes_event_ids, ne.state_before_adds_event_ids)
    assert.same(sorted(store:state_before(join):event_ids()), before)
  end)

  it("carry the entire new state on a rewrite, never a delta (the seed bug)", function()
    local room = assert(h:create_room("@alice:x"))
    local rid = room.room.id
    for i = 1, 40 do assert(room:join(("@u%d:x"):format(i))) end
    -- the new state shares every entry but two with the old one
    local cur = store:current_state(rid)
    local keep = {}
    for t, k, e in cur:entries() do
      if not (t == "m.room.member" and (k == "@u1:x" or k == "@u2:x")) then keep[#keep + 1] = e end
    end
    local remote = h:next_id("remote")
    local extra = assert(room:state("m.room.topic", "", { topic = "remote" },
                                    { kind = "outlier", prev = { remote } }))
    keep[#keep + 1] = extra
    local consumer = Consumer.new(store)
    consumer:resync(rid)
    -- the consumer's copy is stale: it never saw some change
    consumer.rooms[rid]["m.room.member\0@u3:x"] = "$stale:x"
    local join, res = room:join("@newcomer:y", { prev = { remote }, state = keep })
    assert(join, res)
    local o = only(res)
    local ne = o.new_room_event
    assert.is_true(ne.rewrites_state)
    assert.same({}, ne.removes_state_event_ids)
    local want = store:current_state(rid):event_ids()
    assert.equal(#keep + 1, #want)
    assert.same(sorted(want), sorted(ne.adds_state_event_ids))
    consumer:apply(o)
    assert.same({}, consumer.resyncs) -- rebuilt from adds, so the hash matched
    assert.same(M.from_state(store:current_state(rid)), consumer.rooms[rid])
  end)

  it("number positions one by one and read back with outputs(from, limit)", function()
    local room = assert(h:create_room("@alice:x"))
    for i = 1, 10 do assert(room:send("m" .. i)) end
    local all = store:outputs(1, 1000)
    for i, o in ipairs(all) do assert.equal(i, o.position) end
    local part = store:outputs(4, 3)
    assert.same({ 4, 5, 6 }, { part[1].position, part[2].position, part[3].position })
    local json = store:outputs_json(1, 2)
    local decoded = require("cjson").decode(json)
    assert.equal(2, #decoded)
    assert.matches('"removes_state_event_ids":[]', json, 1, true)
  end)

  it("compute state_hash the same way as roomstate.state_hash", function()
    local room = assert(h:create_room("@alice:x"))
    local rid = room.room.id
    local entries = {}
    for t, k, e in store:current_state(rid):entries() do
      entries[#entries + 1] = { type = t, state_key = k, event_id = e }
    end
    assert.equal(store:state_hash(rid), roomstate.state_hash(entries))
    -- order does not matter
    local rev = {}
    for i = #entries, 1, -1 do rev[#rev + 1] = entries[i] end
    assert.equal(roomstate.state_hash(entries), roomstate.state_hash(rev))
    assert.equal("0000000000000000", roomstate.state_hash({}))
    assert.has_error(function() roomstate.state_hash({ { type = "t" } }) end)
  end)
end)

describe("subscribers", function()
  local dir, path
  before_each(function() dir = S.tmpdir(); path = dir .. "/o.db" end)
  after_each(function() S.rmdir(dir) end)

  it("deliver in order after ingest, and resume by name in a later process", function()
    local store = assert(roomstate.open(path))
    local h = harness.new(store)
    local got = {}
    store:subscribe("sync", function(o) got[#got + 1] = o.position end)
    local room = assert(h:create_room("@alice:x"))
    assert.same({ 1, 2, 3, 4, 5 }, got)
    store:close()
    store = assert(roomstate.open(path, { deliver = false }))
    h = harness.new(store, { server = "again" })
    local room2 = assert(h:create_room("@bob:x"))
    local later = {}
    store:subscribe("sync", function(o) later[#later + 1] = o.position end)
    assert.same({}, later) -- delivery is off
    local delivered, errors = store:deliver()
    assert.is_nil(errors)
    assert.equal(5, delivered.sync)
    assert.same({ 6, 7, 8, 9, 10 }, later)
    -- a new consumer from the end sees only what comes next
    local tail = {}
    store:subscribe("tail", function(o) tail[#tail + 1] = o.position end, { from = "end" })
    assert(room2:send("x"))
    store:deliver()
    assert.same({ 11 }, tail)
    store:close()
    assert(room)
  end)

  it("re-deliver an output whose callback raised, and never skip one", function()
    local store = assert(roomstate.open(path))
    local h = harness.new(store)
    local seen, fail_at = {}, { [3] = 2, [6] = 1 } -- position -> failures left
    store:subscribe("flaky", function(o)
      if (fail_at[o.position] or 0) > 0 then
        fail_at[o.position] = fail_at[o.position] - 1
        error("temporary failure at " .. o.position)
      end
      seen[#seen + 1] = o.position
    end)
    local healthy = {}
    store:subscribe("healthy", function(o) healthy[#healthy + 1] = o.position end)
    local room = assert(h:create_room("@alice:x"))
    for i = 1, 3 do assert(room:send("m" .. i)) end
    -- the healthy consumer was not held up
    assert.same({ 1, 2, 3, 4, 5, 6, 7, 8 }, healthy)
    local _, errors = store:deliver()
    assert.is_nil(errors)
    assert.same({ 1, 2, 3, 4, 5, 6, 7, 8 }, seen)
    store:close()
  end)

  it("report callback errors with the consumer and position", function()
    local store = assert(roomstate.open(":memory:"))
    store:subscribe("bad", function() error("boom") end)
    local h = harness.new(store, {})
    local room = assert(h:create_room("@alice:x", { minimal = true }))
    local delivered, errors = store:deliver()
    assert.equal(0, delivered.bad)
    assert.equal(1, errors.bad.position)
    assert.matches("boom", errors.bad.error)
    store:close()
    assert(room)
  end)

  it("trim only what every consumer acknowledged", function()
    local store = assert(roomstate.open(":memory:", { deliver = false }))
    local h = harness.new(store)
    local room = assert(h:create_room("@alice:x"))
    assert.equal(0, store:trim_outputs()) -- nobody registered: keep all
    store:subscribe("a", function() end)
    store:subscribe("b", function(o) if o.position > 2 then error("stop") end end)
    store:deliver()
    assert.equal(2, store:trim_outputs())
    local rest = store:outputs(1, 100)
    assert.equal(3, rest[1].position)
    assert(room:send("more"))
    assert.equal(6, store:outputs(1, 100)[#store:outputs(1, 100)].position)
    store:close()
  end)
end)

describe("registering a consumer", function()
  it("keeps the position another handle stored first (workers subscribing at once)", function()
    local dir = S.tmpdir()
    local a = assert(roomstate.open(dir .. "/c.db", { deliver = false }))
    local b = assert(roomstate.open(dir .. "/c.db", { deliver = false }))
    -- b read "not registered", then a registered and delivered up to 7
    assert.equal(false, b:debug():consumer_get("c"))
    assert.equal(1, a:debug():consumer_add("c", 1))
    assert(a:debug():consumer_set("c", 7))
    assert.equal(7, b:debug():consumer_add("c", 1))
    assert.equal(7, a:debug():consumer_get("c"))
    assert.equal(7, b:subscribe("c", function() end))
    a:close()
    b:close()
    S.rmdir(dir)
  end)
end)

describe("trim_outputs of every output", function()
  it("never gives a trimmed position again, on this handle or the next", function()
    local dir = S.tmpdir()
    local store = assert(roomstate.open(dir .. "/t.db", { deliver = false }))
    local h = harness.new(store)
    local room = assert(h:create_room("@alice:x"))
    store:subscribe("a", function() end)
    store:deliver()
    local last = store:outputs(1, 1000)
    last = last[#last].position
    assert.equal(last, store:trim_outputs())
    assert.equal(0, #store:outputs(1, 1000))
    assert(room:send("after the trim"))
    assert.equal(last + 1, store:outputs(1, 10)[1].position)
    store:deliver()
    assert.equal(1, store:trim_outputs())
    store:close()
    local again = assert(roomstate.open(dir .. "/t.db", { deliver = false }))
    local h2 = harness.new(again)
    assert(h2:create_room("@bob:x", { minimal = true }))
    assert.equal(last + 2, again:outputs(1, 10)[1].position)
    again:close()
    S.rmdir(dir)
  end)
end)

describe("purge_room", function()
  it("removes one room and leaves the others exactly as they were", function()
    local store = assert(roomstate.open(":memory:"))
    local h = harness.new(store)
    local rooms, events = {}, {}
    for r = 1, 3 do
      local room = assert(h:create_room(("@owner%d:x"):format(r)))
      for i = 1, 15 do
        local id = assert(i % 3 == 0 and room:send("m") or room:join(("@u%d:x"):format(i)))
        events[#events + 1] = { room = r, id = id }
      end
      rooms[r] = room
    end
    local function view(r)
      local v = { cur = M.from_state(store:current_state(rooms[r].room.id)),
                  latest = store:latest_events(rooms[r].room.id),
                  members = store:members(rooms[r].room.id), per = {} }
      for _, e in ipairs(events) do
        if e.room == r then v.per[e.id] = M.from_state(store:state_after(e.id)) end
      end
      return v
    end
    local before1, before3 = view(1), view(3)
    local consumer = Consumer.new(store)
    store:subscribe("c", consumer:callback())
    store:deliver()
    local pos = assert(store:purge_room(rooms[2].room.id))
    local o = store:outputs(pos, 1)[1]
    assert.equal("purge_room", o.type)
    assert.equal(rooms[2].room.id, o.purge_room.room_id)
    assert.same(before1, view(1))
    assert.same(before3, view(3))
    assert.is_nil(store:current_state(rooms[2].room.id))
    for _, e in ipairs(events) do
      if e.room == 2 then assert.is_nil(store:event(e.id)) end
    end
    assert.is_nil(consumer.rooms[rooms[2].room.id])
    local _, _, code = store:purge_room("!nowhere:x")
    assert.equal("NOT_FOUND", code)
    -- earlier outputs of the purged room still read back with their events
    local first = store:outputs(1, 1)[1]
    assert.is_table(first.new_room_event.event)
    assert.is_true(store:check())
    -- and the room can be created again from scratch
    local again = harness.new(store, { server = "again" })
    assert(again:create_room("@x:x", { room_id = rooms[2].room.id }))
    store:close()
  end)
end)
