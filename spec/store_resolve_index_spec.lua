-- What store:resolve reads from the auth chain index (csrc/resolve_index.c,
-- given the caller's sets as entries) and what it reads walking whole auth
-- chains (debug_walk_chains) on the same store: a one-key fork deep in a
-- big room reads a handful of events and index rows, where the walk reads
-- the room; a set holding an event the index could not place is resolved
-- by the walk, as ingest does. And the two agree on seeded random forks
-- (spec/store_resolve_spec.lua holds them to one answer on its own).
local roomstate = require "roomstate"
local harness = require "roomstate.harness"
local RS = require "resolve_support"
local S = require "support"

local LIGHT = os.getenv("ROOMSTATE_SPEC_LIGHT")
local SEEDS = LIGHT and 5 or 30
local MEMBERS = LIGHT and 500 or 2500 -- the big room: a join and a message each

local function counts(store)
  local c = store:debug():debug_counts()
  return c.resolve_events, c.chain_rows
end

-- store:resolve through the index and by the walk: both answers, and the
-- events each read.
local function both(store, rid, sets)
  local e0 = counts(store)
  local got = assert(store:resolve(rid, sets))
  local e1 = counts(store)
  store:debug():debug_walk_chains(true)
  local walked = assert(store:resolve(rid, sets))
  store:debug():debug_walk_chains(false)
  local e2 = counts(store)
  return got, walked, e1 - e0, e2 - e1
end

-- Seeded random forks (resolve_support's): at each merge point the two
-- branches, and with them two earlier states (an old fork, where the
-- difference's search of descendants gives up), through the index and by
-- the walk.
local function forks(version, seed)
  local store = assert(roomstate.open(":memory:"))
  local h = harness.new(store, { server = "f" .. seed, version = version })
  local rng, pick = S.rng(seed), S.rng(seed + 1)
  local main = assert(h:create_room("@alice:x"))
  local rid, seen, n = main.room.id, {}, 0
  RS.random_forks(main, rng, 6, function(cursor, fn)
    seen[#seen + 1] = assert(fn(cursor))
  end, function(a, b)
    n = n + 1
    local sets = { a.head[1], b.head[1] }
    for _, s in ipairs({ sets, { sets[1], sets[2], seen[pick(#seen)], seen[pick(#seen)] } }) do
      local got, walked, read, walk_read = both(store, rid, s)
      local what = ("v%s seed %d merge %d, %d sets"):format(version, seed, n, #s)
      assert.same(walked, got, what)
      assert.is_true(read <= walk_read, what .. ": " .. read .. " events read, " .. walk_read .. " walking")
    end
  end)
  store:close()
end

describe("store:resolve from the auth chain index", function()
  for _, version in ipairs({ "10", "11", "12" }) do
    it("answers as the walk on random forks, old states among them, v" .. version
       .. " (" .. SEEDS .. " seeds)", function()
      for seed = 1, SEEDS do forks(version, seed * 7919) end
    end)
  end

  for _, version in ipairs({ "10", "12" }) do
  it("reads a few events for a one-key fork deep in a " .. 2 * MEMBERS .. "-event room, v" .. version, function()
    local store = assert(roomstate.open(":memory:"))
    local h = harness.new(store, { server = "big", version = version })
    local main = assert(h:create_room("@alice:x"))
    local rid = main.room.id
    for i = 1, MEMBERS do assert(main:join("@m" .. i .. ":x")) end
    for i = 1, MEMBERS do assert(main:send("hi", { sender = "@m" .. i .. ":x" })) end
    local side = main:at(main.head[1])
    local a = assert(side:join("@m7:x", { displayname = "seven" }))
    local b = assert(main:send("meanwhile", { sender = "@m8:x" }))
    local rows0 = select(2, counts(store))
    local got, walked, read, walk_read = both(store, rid, { a, b })
    local rows = select(2, counts(store)) - rows0
    assert.same(walked, got)
    local want = RS.ids_of(assert(store:state_after(a)))
    assert.same(want, got) -- the new displayname wins: b changed no state
    -- the difference is @m7's old member event; its checks cite the
    -- create, power levels, join rules and the member event
    assert.is_true(read <= 10, "index: " .. read .. " events read")
    assert.is_true(rows <= 16, "index: " .. rows .. " rows read")
    assert.is_true(walk_read >= MEMBERS, "walk: " .. walk_read .. " events read")
    local sa, sb = RS.ids_of(store:state_after(a)), RS.ids_of(store:state_after(b))
    got, walked, read = both(store, rid, { sb, sa })
    assert.same(want, got)
    assert.same(want, walked)
    assert.is_true(read <= 10, "index, ID lists: " .. read .. " events read")
    store:close()
  end)
  end

  -- The sets differ in the power levels only: one holds PL1, the other
  -- PL3, which bob sent with the power PL2 gave him. Carol's join, in
  -- both, cites PL2, so PL2 is in both auth chains and not in the
  -- difference; it is on the path PL1 <- PL2 <- PL3 between the conflicted
  -- events, in v12's conflicted state subgraph. v12 starts its checks from
  -- the empty state: with PL2 checked, bob's PL3 is allowed; v11 rejects it
  -- against PL1 (MSC4297's problem B in a store).
  for _, case in ipairs({ { "11", "pl1" }, { "12", "pl3" } }) do
    local version, want = case[1], case[2]
    it("holds v" .. version .. "'s answer where the conflicted subgraph decides it", function()
      local store = assert(roomstate.open(":memory:"))
      local h = harness.new(store, { server = "x", version = version })
      local main = assert(h:create_room("@alice:x"))
      local rid = main.room.id
      assert(main:state("m.room.join_rules", "", { join_rule = "public" }))
      assert(main:join("@bob:x"))
      -- v12's creator has infinite power and is never listed
      local function levels(users)
        if version ~= "12" then users["@alice:x"] = 100 end
        return { users = users }
      end
      local pl = {}
      pl.pl1 = assert(main:state("m.room.power_levels", "", levels({ ["@bob:x"] = 0 })))
      assert(main:state("m.room.power_levels", "", levels({ ["@bob:x"] = 100 })))
      assert(main:join("@carol:x"))
      pl.pl3 = assert(main:state("m.room.power_levels", "",
                                 levels({ ["@bob:x"] = 100, ["@carol:x"] = 50 }), { sender = "@bob:x" }))
      local b = RS.ids_of(store:state_after(pl.pl3))
      local a = {}
      for i, id in ipairs(b) do a[i] = id == pl.pl3 and pl.pl1 or id end
      local got, walked, read, walk_read = both(store, rid, { a, b })
      assert.same(walked, got)
      assert.same(RS.ids_of_map(RS.resolve(store, version, { a, b })), got)
      local has = {}
      for _, id in ipairs(got) do has[id] = true end
      assert.is_true(has[pl[want]], want .. " wins")
      assert.is_true(read < walk_read, read .. " and " .. walk_read .. " events read")
      store:close()
    end)
  end

  -- A topic citing the room's first join rules among its auth events
  -- (stored without the auth rules): those join rules are in the auth
  -- difference, pass their checks, and land at a key the common part holds
  -- (the newer join rules) but that no check names, so the index path
  -- does not read the common event there. The unconflicted state is
  -- applied last: the newer join rules stay, and the key is there once.
  it("keeps the unconflicted state at a key an auth difference event lands on", function()
    local store = assert(roomstate.open(":memory:", { authorize = false }))
    local h = harness.new(store, { server = "x", version = "10" })
    local main = assert(h:create_room("@alice:x"))
    local rid = main.room.id
    local first = store:current_state(rid):get("m.room.join_rules", "")
    local newer = assert(main:state("m.room.join_rules", "", { join_rule = "invite" }))
    local _, pdu = main:state("m.room.topic", "", { topic = "z" }, { ingest = false })
    pdu.auth_events[#pdu.auth_events + 1] = first
    assert(store:ingest(pdu))
    local a, b = RS.ids_of(store:state_after(pdu.event_id)), RS.ids_of(store:state_after(newer))
    local got, walked, read, walk_read = both(store, rid, { a, b })
    assert.same(walked, got)
    assert.is_true(read < walk_read, read .. " and " .. walk_read .. " events read")
    local has = {}
    for _, id in ipairs(got) do has[id] = true end
    assert.is_true(has[newer])
    assert.is_nil(has[first])
    -- ingest's current state over the two extremities, from the index too
    assert(main:at(newer):send("meanwhile"))
    assert.same(walked, RS.ids_of(assert(store:current_state(rid))))
    assert.is_true(store:check())
    store:close()
  end)

  it("walks the chains when a set holds an event the index could not place", function()
    local store = assert(roomstate.open(":memory:", { authorize = false }))
    local h = harness.new(store, { server = "x", version = "10" })
    local main = assert(h:create_room("@alice:x"))
    local rid = main.room.id
    for i = 1, 20 do assert(main:join("@m" .. i .. ":x")) end
    local msg = assert(main:send("hi"))
    local side, other = main:at(msg), main:at(msg)
    local c = assert(side:state("m.room.topic", "", { topic = "c" }))
    -- a topic citing a message among its auth events: stored, never placed
    local _, pdu = main:state("m.room.topic", "", { topic = "a" }, { ingest = false })
    pdu.auth_events[#pdu.auth_events + 1] = msg
    assert(store:ingest(pdu))
    local a = pdu.event_id
    local got, walked, read, walk_read = both(store, rid, { a, c })
    assert.same(walked, got)
    assert.equal(walk_read, read) -- the index path read nothing and handed over
    assert.is_true(read > 20)
    -- roomstate.resolve over the stored events (the model reads no message
    -- among auth events)
    local sets, texts = { RS.ids_of(store:state_after(a)), RS.ids_of(store:state_after(c)) }, {}
    for id in pairs(RS.events_for(store, sets)) do texts[id] = assert(store:event(id)) end
    assert.same(assert(roomstate.resolve("10", sets, texts)), got)
    -- the same fork with a placed topic is resolved from the index
    local b = assert(other:state("m.room.topic", "", { topic = "b" }))
    got, walked, read, walk_read = both(store, rid, { b, c })
    assert.same(walked, got)
    assert.is_true(read < 10 and walk_read > 20, read .. " and " .. walk_read .. " events read")
    store:close()
  end)
end)
