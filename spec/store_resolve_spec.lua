-- store:resolve: state resolution over a room's stored events. On seeded
-- random forks (resolve_support's random_forks), at every merge point,
-- the answer for the two branches is the same whichever form the sets
-- take (the state after an event, or its event IDs) and in whatever order
-- they come, and whether it reads the auth chain index or walks whole
-- chains (debug_walk_chains); it equals roomstate.resolve over the stored
-- events with the store's verdicts, the naive model's resolution (spec/stateres_model.lua),
-- and the state before the merge ingestion then stores. Then each failure.
local roomstate = require "roomstate"
local harness = require "roomstate.harness"
local RS = require "resolve_support"
local S = require "support"

local LIGHT = os.getenv("ROOMSTATE_SPEC_LIGHT")
local SEEDS = LIGHT and 3 or 10
local ROUNDS = 6

-- roomstate.resolve over the stored events of the sets and their chains,
-- given as the stored JSON, with the stored verdicts.
local function pure(store, version, sets)
  local texts, rejected = {}, {}
  for id in pairs(RS.events_for(store, sets)) do
    texts[id] = assert(store:event(id))
    if store:event_status(id) == "rejected" then rejected[#rejected + 1] = id end
  end
  return roomstate.resolve(version, sets, texts, { rejected = rejected })
end

local function permutations(list)
  if #list <= 1 then return { list } end
  local out = {}
  for i = 1, #list do
    local rest = {}
    for j = 1, #list do if j ~= i then rest[#rest + 1] = list[j] end end
    for _, p in ipairs(permutations(rest)) do
      table.insert(p, 1, list[i])
      out[#out + 1] = p
    end
  end
  return out
end

local function run(version, seed)
  local store = assert(roomstate.open(":memory:"))
  local h = harness.new(store, { server = "s" .. seed, version = version })
  local rng, pick = S.rng(seed), S.rng(seed + 1)
  local main = assert(h:create_room("@alice:x"))
  local rid = main.room.id
  local history, merges, expect_before = {}, 0, nil
  local function where(what) return ("v%s seed %d merge %d: %s"):format(version, seed, merges, what) end

  local function step(cursor, fn)
    local id, err = fn(cursor)
    assert(id, where(tostring(err)))
    history[#history + 1] = id
    if expect_before then
      assert.same(expect_before, RS.ids_of(assert(store:state_before(id))),
                  where("state before the merge"))
      expect_before = nil
    end
  end

  -- store:resolve, which reads the auth chain index in these versions, and
  -- the same walking whole chains (debug_walk_chains): one answer
  local function resolve(sets)
    local got = assert(store:resolve(rid, sets))
    store:debug():debug_walk_chains(true)
    local walked = assert(store:resolve(rid, sets))
    store:debug():debug_walk_chains(false)
    assert.same(walked, got, where("the index against the walk"))
    return got
  end

  local function before_merge(a_cur, b_cur)
    merges = merges + 1
    local a, b = a_cur.head[1], b_cur.head[1]
    local sa, sb = RS.ids_of(assert(store:state_after(a))), RS.ids_of(assert(store:state_after(b)))
    local got = resolve({ a, b })
    assert.same(got, resolve({ sa, sb }), where("as ID lists"))
    assert.same(got, resolve({ b, sa }), where("mixed, reversed"))
    assert.same(got, assert(pure(store, version, { sa, sb })), where("roomstate.resolve"))
    assert.same(got, RS.ids_of_map(RS.resolve(store, version, { sa, sb })), where("model"))
    -- three states, one of them earlier: every order gives one answer
    local c = history[pick(#history)]
    local sets = { a, sb, c }
    local three = resolve(sets)
    for _, p in ipairs(permutations(sets)) do
      assert.same(three, resolve(p), where("order of three sets"))
    end
    local sc = store:state_after(c) and RS.ids_of(store:state_after(c))
    if sc then
      assert.same(three, RS.ids_of_map(RS.resolve(store, version, { sa, sb, sc })),
                  where("model, three sets"))
    end
    expect_before = got
  end

  RS.random_forks(main, rng, ROUNDS, step, before_merge)
  assert.equal(ROUNDS, merges)
  store:close()
end

describe("store:resolve", function()
  for _, version in ipairs({ "10", "11", "12" }) do
    it("agrees with roomstate.resolve, the model and ingestion on random forks, v"
       .. version .. " (" .. SEEDS .. " seeds)", function()
      for seed = 1, SEEDS do run(version, seed * 104729) end
    end)
  end

  -- A room with a fork: main and side each change the topic.
  local function forked(store, opts)
    local h = harness.new(store, { server = "x", version = opts and opts.version })
    local main = assert(h:create_room("@alice:x", opts))
    assert(main:join("@bob:x"))
    local side = main:at(main.head[1])
    local a = assert(main:state("m.room.topic", "", { topic = "a" }))
    local b = assert(side:state("m.room.name", "", { name = "b" }))
    local c = assert(side:state("m.room.topic", "", { topic = "c" }))
    return main.room.id, a, c, h, main, b
  end

  it("answers the one state when the sets agree, and nothing for no sets", function()
    local store = assert(roomstate.open(":memory:"))
    local rid, a = forked(store)
    local want = RS.ids_of(store:state_after(a))
    assert.same(want, assert(store:resolve(rid, { a })))
    assert.same(want, assert(store:resolve(rid, { a, want, a })))
    assert.same({}, assert(store:resolve(rid, {})))
    store:close()
  end)

  it("resolves a real conflict: both topics, the name of one side", function()
    local store = assert(roomstate.open(":memory:"))
    local rid, a, c, _, _, b = forked(store)
    local got = assert(store:resolve(rid, { a, c }))
    local has = {}
    for _, id in ipairs(got) do has[id] = true end
    assert.is_true(has[b]) -- unconflicted
    assert.is_true(has[a] ~= has[c]) -- one topic wins
    assert.same(got, assert(store:resolve(rid, { c, a })))
    store:close()
  end)

  it("reads the store's verdicts: an event marked rejected is never admitted", function()
    local dir = S.tmpdir()
    local path = dir .. "/v.db"
    local store = assert(roomstate.open(path))
    local rid, a, c = forked(store)
    local sa, sc = RS.ids_of(store:state_after(a)), RS.ids_of(store:state_after(c))
    local accepted = assert(store:resolve(rid, { a, c }))
    assert.same(accepted, assert(pure(store, "10", { sa, sc })))
    local has = {}
    for _, id in ipairs(accepted) do has[id] = true end
    assert.is_true(has[c]) -- the later topic wins while c is accepted
    store:close()
    -- no ingest stores a rejected event in a state: the file is edited so,
    -- as one of schema 6 (the next open sums the rows as edited)
    S.sql_as_schema6(path, ("UPDATE events SET status = 1 WHERE event_id = '%s'"):format(c))
    store = assert(roomstate.open(path))
    assert.equal("rejected", store:event_status(c))
    local got = assert(store:resolve(rid, { a, c }))
    assert.same(got, assert(pure(store, "10", { sa, sc })))
    assert.same(got, RS.ids_of_map(RS.resolve(store, "10", { sa, sc })))
    has = {}
    for _, id in ipairs(got) do has[id] = true end
    assert.is_true(has[a])
    assert.is_nil(has[c])
    store:close()
    S.rmdir(dir)
  end)

  it("writes nothing and serves a read-only store", function()
    local dir = S.tmpdir()
    local path = dir .. "/r.db"
    local store = assert(roomstate.open(path))
    local rid, a, c = forked(store)
    local before, runs = S.counts(store), store:debug():debug_counts().resolutions
    local got = assert(store:resolve(rid, { a, c }))
    assert.same(before, S.counts(store))
    assert.equal(runs + 1, store:debug():debug_counts().resolutions)
    store:close()
    local ro = assert(roomstate.open(path, { readonly = true }))
    assert.same(got, assert(ro:resolve(rid, { a, c })))
    assert.same(got, assert(ro:resolve(rid, { RS.ids_of(ro:state_after(c)), a })))
    ro:close()
    S.rmdir(dir)
  end)

  local function fails(code, pattern, ...)
    local res, err, got = ...
    assert.is_nil(res)
    assert.equal(code, got)
    assert.equal(code .. ":", err:sub(1, #code + 1))
    if pattern then assert.matches(pattern, err, 1, true) end
  end

  it("fails for an unknown room and for events it cannot use", function()
    local store = assert(roomstate.open(":memory:"))
    local rid, a, c, h, main = forked(store)
    local other = assert(h:create_room("@carol:x"))
    local msg = assert(main:send("hi"))
    local outlier = assert(main:state("m.room.topic", "", { topic = "o" }, { kind = "outlier" }))
    local rejected = assert(main:state("m.room.topic", "", { topic = "r" }, { sender = "@bob:x" }))
    assert.equal("rejected", store:event_status(rejected))
    local sa = RS.ids_of(store:state_after(a))
    local function with(id) local s = { id } for _, e in ipairs(sa) do s[#s + 1] = e end return s end
    local function drop_create(s) local out = {} for _, e in ipairs(s) do if e ~= main.room.create_id then out[#out + 1] = e end end return out end

    fails("NOT_FOUND", "unknown room !nowhere:x", store:resolve("!nowhere:x", { a, c }))
    -- the state after an event
    fails("NOT_FOUND", "state_sets[2]: unknown event $ghost:x", store:resolve(rid, { a, "$ghost:x" }))
    fails("NO_STATE", "state_sets[1]: event " .. outlier, store:resolve(rid, { outlier, a }))
    fails("BAD_STATE", "of another room", store:resolve(rid, { a, other.head[1] }))
    -- a set of event IDs, checked as a state list
    fails("BAD_STATE", "state_sets[2]: the state list has unknown events: $ghost:x",
          store:resolve(rid, { a, with("$ghost:x") }))
    fails("BAD_STATE", "events of another room", store:resolve(rid, { a, with(other.head[1]) }))
    fails("BAD_STATE", "non-state events: " .. msg, store:resolve(rid, { a, with(msg) }))
    fails("BAD_STATE", "rejected event: " .. rejected, store:resolve(rid, { with(rejected), c }))
    fails("BAD_STATE", "two events for one key", store:resolve(rid, { with(c), c }))
    fails("BAD_STATE", "no create event", store:resolve(rid, { drop_create(sa), c }))
    fails("BAD_STATE", "empty", store:resolve(rid, { {}, c }))
    store:close()
  end)

  it("fails MISSING_AUTH naming auth events that are not stored", function()
    local store = assert(roomstate.open(":memory:", { authorize = false }))
    local h = harness.new(store, { server = "x" })
    local main = assert(h:create_room("@alice:x"))
    local side = main:at(main.head[1])
    local _, pdu = main:state("m.room.topic", "", { topic = "a" }, { ingest = false })
    pdu.auth_events[#pdu.auth_events + 1] = "$ghost:x"
    assert(store:ingest(pdu))
    -- old: a new event would merge the extremities, and fail so itself
    local c = assert(side:state("m.room.topic", "", { topic = "c" }, { kind = "old" }))
    fails("MISSING_AUTH", "$ghost:x", store:resolve(main.room.id, { pdu.event_id, c }))
    -- sets that agree need no resolution, nor its chains
    assert(store:resolve(main.room.id, { pdu.event_id, pdu.event_id }))
    store:close()
  end)

  it("fails STATE_CONFLICT where a room of an older file has an unknown version", function()
    local dir = S.tmpdir()
    local path = dir .. "/legacy.db"
    local store = assert(roomstate.open(path))
    local rid, a, c = forked(store, { room_id = "!old:x" })
    store:close()
    S.sql_as_schema6(path, "UPDATE rooms SET version='banana' WHERE room_id='!old:x'")
    store = assert(roomstate.open(path))
    fails("STATE_CONFLICT", '(m.room.topic, "")', store:resolve(rid, { a, c }))
    assert.same(RS.ids_of(store:state_after(a)), assert(store:resolve(rid, { a, a })))
    store:close()
    S.rmdir(dir)
  end)

  it("raises on caller mistakes, naming the argument", function()
    local store = assert(roomstate.open(":memory:"))
    local rid, a = forked(store)
    local function raises(pattern, ...)
      local ok, err = pcall(store.resolve, store, ...)
      assert.is_false(ok)
      assert.matches(pattern, err, 1, true)
    end
    raises("bad argument #1 to 'resolve' (room ID string expected, got number)", 7, { a })
    raises("bad argument #2 to 'resolve' (array of state sets expected, got \"$", rid, a)
    raises("bad argument #2 to 'resolve' (state_sets[2]: event ID or array of event IDs expected, got number)",
           rid, { a, 3 })
    raises("bad argument #2 to 'resolve' (state_sets[1][2]: event ID expected, got boolean)",
           rid, { { a, true } })
    store:close()
    raises("'resolve' called on a closed store", rid, { a })
  end)
end)
