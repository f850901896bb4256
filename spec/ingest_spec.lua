-- Issue 3: ingesting events, state before/after, extremities, rewrites.
local roomstate = require "roomstate"
local harness = require "roomstate.harness"
local M = require "model"
local S = require "support"
local RS = require "resolve_support"

local function state_of(st) return M.from_state(st) end

describe("ingest", function()
  local store, h
  before_each(function()
    store = assert(roomstate.open(":memory:"))
    h = harness.new(store)
  end)
  after_each(function() store:close() end)

  it("tracks a linear room: state after each event, current state, extremities", function()
    local room = assert(h:create_room("@alice:x", { minimal = true }))
    local rid = room.room.id
    local create = room.room.create_id
    local want = { ["m.room.create\0"] = create }
    assert.same(want, state_of(store:state_after(create)))
    assert.same({}, state_of(store:state_before(create)))
    local steps = {
      { "m.room.member", "@alice:x", { membership = "join" } },
      { "m.room.power_levels", "", { users = { ["@alice:x"] = 100 } } },
      { "m.room.join_rules", "", { join_rule = "public" } },
      { "m.room.history_visibility", "", { history_visibility = "shared" } },
    }
    for _, s in ipairs(steps) do
      local before = M.copy(want)
      local id = assert(room:state(s[1], s[2], s[3]))
      want[s[1] .. "\0" .. s[2]] = id
      assert.same(before, state_of(store:state_before(id)))
      assert.same(want, state_of(store:state_after(id)))
      assert.same(want, state_of(store:current_state(rid)))
      assert.same({ id }, store:latest_events(rid))
    end
    assert.same({ "@alice:x" }, store:members(rid))
    assert.equal("10", store:room_version(rid))
    assert.same({ rid }, store:rooms())
    assert.is_true(store:check())
  end)

  it("replaces a state event: before has the old, after the new", function()
    local room = assert(h:create_room("@alice:x"))
    local old = store:current_state(room.room.id):get("m.room.join_rules", "")
    local new = assert(room:state("m.room.join_rules", "", { join_rule = "invite" }))
    assert.equal(old, store:state_before(new):get("m.room.join_rules", ""))
    assert.equal(new, store:state_after(new):get("m.room.join_rules", ""))
    assert.equal(new, store:current_state(room.room.id):get("m.room.join_rules", ""))
  end)

  it("gives a run of messages one before-state and writes no state rows", function()
    local room = assert(h:create_room("@alice:x"))
    local first = assert(room:send("m0"))
    local c0 = S.counts(store)
    local ids = {}
    for i = 1, 20 do ids[i] = assert(room:send("m" .. i)) end
    local c1 = S.counts(store)
    assert.equal(c0.snapshots, c1.snapshots)
    assert.equal(c0.blocks, c1.blocks)
    local snap = store:debug():debug_snapshot(store:state_before(first)).id
    for i = 1, 20 do
      assert.equal(snap, store:debug():debug_snapshot(store:state_before(ids[i])).id)
    end
  end)

  it("keeps at most 64 blocks through 200 state changes in a room of 5,000 members", function()
    local room = assert(h:create_room("@alice:x"))
    local model = state_of(store:current_state(room.room.id))
    local items = {}
    local prev = room.head[1]
    for i = 1, 5000 do
      local user = ("@u%d:x"):format(i)
      local id, pdu = h:emit(room.room, { prev }, { type = "m.room.member", state_key = user,
        content = { membership = "join" }, sender = user }, { ingest = false })
      items[#items + 1] = { event = pdu }
      model["m.room.member\0" .. user] = id
      prev = id
    end
    assert(store:ingest_batch(items))
    room.head = { prev }
    local rng = S.rng(5)
    local left = {}
    for i = 1, 200 do
      local user = ("@u%d:x"):format(rng(6000))
      -- only a member can leave: the auth rules reject a stranger's leave
      local joined = model["m.room.member\0" .. user] ~= nil and left[user] == nil
      local m = joined and rng(3) == 1 and "leave" or "join"
      left[user] = m == "leave" or nil
      local id = assert(room:state("m.room.member", user, { membership = m }, { sender = user }))
      model["m.room.member\0" .. user] = id
      local st = store:state_after(id)
      local snap = store:debug():debug_snapshot(st)
      assert.is_true(#snap.blocks <= 64)
      if i % 20 == 0 or i == 200 then
        local got = state_of(st)
        assert.is_true(M.same(model, got), M.describe_diff(model, got))
      end
    end
    assert.same(model, state_of(store:current_state(room.room.id)))
  end)

  it("rewrites the state on a federated join", function()
    local room = assert(h:create_room("@alice:x"))
    assert(room:join("@bob:x"))
    assert(room:send("before the join"))
    local rid = room.room.id
    assert.equal(1, #store:latest_events(rid))
    local remote = {
      { type = "m.room.create", state_key = "", content = { creator = "@carol:y", room_version = "10" } },
      { type = "m.room.member", state_key = "@carol:y", content = { membership = "join" }, sender = "@carol:y" },
      { type = "m.room.member", state_key = "@alice:x", content = { membership = "join" } },
      { type = "m.room.join_rules", state_key = "", content = { join_rule = "public" } },
    }
    local join, res, ids = room:rewrite(remote, "@dave:x")
    assert(join, res)
    assert.is_true(res.rewrote)
    assert.same({ join }, store:latest_events(rid))
    local want = {}
    for i, s in ipairs(remote) do want[s.type .. "\0" .. s.state_key] = ids[i] end
    assert.same(want, state_of(store:state_before(join)))
    want["m.room.member\0@dave:x"] = join
    assert.same(want, state_of(store:current_state(rid)))
    local members = store:members(rid)
    table.sort(members)
    assert.same({ "@alice:x", "@carol:y", "@dave:x" }, members) -- bob is gone
    assert.is_true(store:check())
  end)

  it("does not move current state or extremities for old events", function()
    local room = assert(h:create_room("@alice:x"))
    local rid = room.room.id
    local base = room.head[1]
    local latest = store:latest_events(rid)
    local cur = state_of(store:current_state(rid))
    local old = assert(room:at(base):state("m.room.name", "", { name = "old" }, { kind = "old" }))
    assert.same(latest, store:latest_events(rid))
    assert.same(cur, state_of(store:current_state(rid)))
    assert.equal(old, store:state_after(old):get("m.room.name", ""))
    -- an old event whose prevs are unknown is stored without state
    local id, pdu = h:emit(room.room, { "$unknown:x" }, { type = "m.room.message", content = {} },
                           { ingest = false })
    local res = assert(store:ingest(pdu, { kind = "old" }))
    assert.is_false(res.state_known)
    local st, err, code = store:state_before(id)
    assert.is_nil(st)
    assert.equal("NO_STATE", code)
    assert.matches(id, err, 1, true)
  end)

  it("merges a fork whose branches have equal state", function()
    local room = assert(h:create_room("@alice:x"))
    local rid = room.room.id
    local side = room:at(room.head[1])
    assert(room:send("main"))
    assert(side:send("side"))
    local latest = store:latest_events(rid)
    assert.equal(2, #latest)
    local cur = state_of(store:current_state(rid))
    local merged = assert(room:merge(side))
    assert.same({ merged }, store:latest_events(rid))
    assert.same(cur, state_of(store:state_before(merged)))
    assert.is_true(store:check())
  end)

  it("resolves forks that differ: the merge's state before is the model's resolution", function()
    for _, variant in ipairs({ "value", "absent" }) do
      local room = assert(h:create_room("@alice:x"))
      local rid = room.room.id
      local side = room:at(room.head[1])
      -- the side branch arrives by backfill, so it is no extremity
      if variant == "value" then
        assert(room:state("m.room.name", "", { name = "A" }))
        assert(side:state("m.room.name", "", { name = "B" }, { kind = "old" }))
      else
        assert(room:state("m.room.topic", "", { topic = "only here" }))
        assert(side:send("nothing", { kind = "old" }))
      end
      local want = RS.resolve_after(store, store:room_version(rid), { room.head[1], side.head[1] })
      local id = assert(room:merge(side))
      assert.same(want, state_of(store:state_before(id)))
      assert.same(want, state_of(store:current_state(rid)))
      assert.same({ id }, store:latest_events(rid))
      assert.is_true(store:check())
    end
  end)

  it("resolves a new branch tip that disagrees with another extremity", function()
    local room = assert(h:create_room("@alice:x"))
    local rid = room.room.id
    local side = room:at(room.head[1])
    assert(room:state("m.room.name", "", { name = "main" }))
    local id = assert(side:state("m.room.name", "", { name = "side" }))
    local want = RS.resolve_after(store, store:room_version(rid), { room.head[1], id })
    assert.same(want, state_of(store:current_state(rid)))
    assert.equal(2, #store:latest_events(rid))
    assert.is_true(store:check())
  end)

  it("treats re-ingest as a duplicate that writes nothing", function()
    local room = assert(h:create_room("@alice:x"))
    local id = assert(room:send("once"))
    local pdu = h.events[id]
    local c0 = S.counts(store)
    local res = assert(store:ingest(pdu))
    assert.is_true(res.duplicate)
    assert.same({}, res.outputs)
    res = assert(store:ingest(pdu, { kind = "old" }))
    assert.is_true(res.duplicate)
    res = assert(store:ingest(require("cjson").encode(pdu), { kind = "outlier" }))
    assert.is_true(res.duplicate)
    assert.same(c0, S.counts(store))
  end)

  it("computes state for an outlier later ingested as new", function()
    local room = assert(h:create_room("@alice:x"))
    local id, pdu = h:emit(room.room, room.head, { type = "m.room.topic", state_key = "",
      content = { topic = "t" } }, { ingest = false })
    assert(store:ingest(pdu, { kind = "outlier" }))
    local st, _, code = store:state_before(id)
    assert.is_nil(st)
    assert.equal("NO_STATE", code)
    local res = assert(store:ingest(pdu))
    assert.is_false(res.duplicate)
    assert.equal(id, store:current_state(room.room.id):get("m.room.topic", ""))
  end)

  it("fails MISSING_PREV for unknown or outlier prevs and writes nothing", function()
    local room = assert(h:create_room("@alice:x"))
    local oid, opdu = h:emit(room.room, room.head, { type = "m.room.message", content = {} },
                             { ingest = false })
    assert(store:ingest(opdu, { kind = "outlier" }))
    local c0 = S.counts(store)
    local _, pdu = h:emit(room.room, { "$nowhere:x", oid }, { type = "m.room.message", content = {} },
                          { ingest = false })
    local res, err, code = store:ingest(pdu)
    assert.is_nil(res)
    assert.equal("MISSING_PREV", code)
    assert.matches("$nowhere:x", err, 1, true)
    assert.matches(oid, err, 1, true)
    assert.same(c0, S.counts(store))
  end)

  it("fails UNKNOWN_ROOM for a room without a create event", function()
    local c0 = S.counts(store)
    local res, err, code = store:ingest(S.pdu({ room_id = "!nowhere:x" }))
    assert.is_nil(res)
    assert.equal("UNKNOWN_ROOM", code)
    assert.matches("!nowhere:x", err, 1, true)
    assert.same(c0, S.counts(store))
  end)

  it("checks an explicit state list and writes nothing when it is bad", function()
    local room = assert(h:create_room("@alice:x"))
    local other = assert(h:create_room("@bob:x"))
    local msg = assert(room:send("a message"))
    local foreign = store:current_state(other.room.id):get("m.room.member", "@bob:x")
    local j1 = store:current_state(room.room.id):get("m.room.join_rules", "")
    local j2 = assert(room:state("m.room.join_rules", "", { join_rule = "invite" }))
    local cases = {
      { { "$unknown:x" }, "$unknown:x" },
      { { msg }, msg },
      { { foreign }, foreign },
      { { j1, j2 }, j2 },
    }
    for _, c in ipairs(cases) do
      local c0 = S.counts(store)
      local id, err, code = room:join("@eve:x", { state = c[1] })
      assert.is_nil(id)
      assert.equal("BAD_STATE", code)
      assert.matches(c[2], err, 1, true)
      assert.same(c0, S.counts(store))
    end
    -- the same event twice is fine (a list holds the create event: issue 14 §2.8)
    assert(room:join("@eve:x", { state = { room.room.create_id, j2, j2 } }))
  end)

  it("applies a batch all or nothing, naming the failing item", function()
    local room = assert(h:create_room("@alice:x"))
    local a, pa = h:emit(room.room, room.head, { type = "m.room.message", content = {} }, { ingest = false })
    local _, pb = h:emit(room.room, { a }, { type = "m.room.message", content = {} }, { ingest = false })
    local c0 = S.counts(store)
    local bad = S.pdu({ event_id = "nope" })
    local res, err, code = store:ingest_batch({ { event = pa }, { event = pb }, { event = bad } })
    assert.is_nil(res)
    assert.equal("BAD_EVENT", code)
    assert.matches("item 3", err, 1, true)
    assert.same(c0, S.counts(store))
    res = assert(store:ingest_batch({ { event = pa }, { event = pb } }))
    assert.equal(2, #res)
    assert.equal(a, res[1].event_id)
  end)

  it("accepts both prev_events shapes, as the room version says", function()
    local room = assert(h:create_room("@alice:x", { version = "1" }))
    local id = assert(room:send("v1 room"))
    assert.is_table(h.events[id].prev_events[1])
    -- a v1 room refuses the later shape
    local _, pdu = h:emit(room.room, room.head, { type = "m.room.message", content = {} }, { ingest = false })
    pdu.prev_events = { pdu.prev_events[1][1] }
    local res, err, code = store:ingest(pdu)
    assert.is_nil(res)
    assert.equal("BAD_EVENT", code)
    assert.matches("room version", err, 1, true)
  end)

  it("stores JSON byte for byte", function()
    local room = assert(h:create_room("@alice:x"))
    local text = ('{"type":"m.room.message","room_id":"%s","sender":"@alice:x","event_id":"$bytes:x",'
      .. '"content":{"body":"caf\\u00e9  spaced"},"prev_events":["%s"],"auth_events":[],"depth":9,'
      .. '"origin_server_ts":1}'):format(room.room.id, room.head[1])
    assert(store:ingest(text))
    assert.equal(text, store:event("$bytes:x"))
  end)
end)
