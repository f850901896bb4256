-- The auth difference from the auth chain index (csrc/auth_chain_diff.c)
-- against a naive model, and what it walks. Seeded random forks
-- (resolve_support's random_forks, v10 and v12): before each merge
-- store:resolve is asked for the two heads' states, and for them with an
-- older state besides, as event IDs or as lists. The index's difference
-- (debug_last_difference) must be the union less the intersection of the
-- sets' full auth chains, computed here as sets from the stored events'
-- auth_events.
--
-- "Walked" is difference_rows - difference_cover_rows: the index rows the
-- difference reads past the covers of the sets' own events (docs/
-- ARCHITECTURE.md, "The auth chain index"). The ranges read each
-- difference event once, so walked >= |D| always, and the random cases
-- hold that. Issue 13 asks for walked <= 2 |D|. That holds on a one-key
-- fork and on a branch of renames (below), but not in general, so the
-- random cases do not assert it: the search for the common part's reach
-- visits the difference's descendants, and those outside it (the sets' own
-- events, superseded ones) are not bounded by |D| (a shape that breaks it
-- is pinned with its counts below); and a difference that turns out empty
-- has still searched until a common event turned up.
-- ROOMSTATE_WALK_REPORT=1 prints the ratios (BENCHMARKS.md quotes them).
local roomstate = require "roomstate"
local harness = require "roomstate.harness"
local RS = require "resolve_support"
local S = require "support"

local LIGHT = os.getenv("ROOMSTATE_SPEC_LIGHT")
local REPORT = os.getenv("ROOMSTATE_WALK_REPORT")
local SEEDS = LIGHT and 5 or 30
local ROUNDS = 10
local MEMBERS = LIGHT and 200 or 1000

local function ref_id(r) return type(r) == "table" and r[1] or r end

-- The difference of the sets (arrays of event IDs) from the events' auth
-- edges; events: id -> event table with auth_events.
local function naive_difference(events, sets)
  local chains = {}
  local function chain(id)
    local c = chains[id]
    if c then return c end
    c = {}
    chains[id] = c
    for _, r in ipairs(events[id].auth_events or {}) do
      local a = ref_id(r)
      c[a] = true
      for x in pairs(chain(a)) do c[x] = true end
    end
    return c
  end
  local held = {}
  for _, set in ipairs(sets) do
    local full = {}
    for _, id in ipairs(set) do
      for x in pairs(chain(id)) do full[x] = true end
    end
    for x in pairs(full) do held[x] = (held[x] or 0) + 1 end
  end
  local d = {}
  for x, n in pairs(held) do
    if n < #sets then d[#d + 1] = x end
  end
  table.sort(d)
  return d
end

-- One call's difference and counts: fn() runs resolutions.
local function measured(store, fn)
  local dbg = store:debug()
  dbg:debug_keep_difference(true)
  local c0 = dbg:debug_counts()
  fn()
  local c1 = dbg:debug_counts()
  local got = dbg:debug_last_difference()
  dbg:debug_keep_difference(false)
  local rows = c1.difference_rows - c0.difference_rows
  local cover = c1.difference_cover_rows - c0.difference_cover_rows
  return {
    got = got, differences = c1.differences - c0.differences,
    events = c1.difference_events - c0.difference_events,
    rows = rows, cover = cover, walked = rows - cover,
  }
end

-- per kind of case (two heads, or with an older state): walked / |D|,
-- and walked where |D| = 0
local ratios, empty_walks = { heads = {}, old = {} }, { heads = {}, old = {} }

local function run(version, seed)
  local store = assert(roomstate.open(":memory:"))
  local h = harness.new(store, { server = "w" .. seed, version = version })
  local rng = S.rng(seed)
  local main = assert(h:create_room("@alice:x"))
  local rid = main.room.id
  local stored = {}
  local function step(c, fn)
    local id = fn(c)
    if id then stored[#stored + 1] = id end
    return id
  end
  local function check(where, kind, sets, form)
    local all = {}
    for i, id in ipairs(stored) do all[i] = id end
    for _, s in ipairs(sets) do for _, id in ipairs(s) do all[#all + 1] = id end end
    local events = RS.events_for(store, { all })
    local want = naive_difference(events, sets)
    local m = measured(store, function() assert(store:resolve(rid, form)) end)
    local what = ("v%s seed %d %s"):format(version, seed, where)
    local agree = true
    for i = 2, #sets do agree = agree and table.concat(sets[i], ",") == table.concat(sets[1], ",") end
    if agree then -- nothing to resolve
      assert.equal(0, m.differences, what .. ": no difference for agreeing sets")
      return
    end
    assert.equal(1, m.differences, what .. ": one difference from the index")
    assert.is_table(m.got, what .. ": the difference kept")
    table.sort(m.got)
    assert.same(want, m.got, what .. ": the index's difference is the naive one")
    assert.equal(#want, m.events, what .. ": difference_events")
    assert.is_true(m.cover >= 0 and m.cover <= m.rows, what .. ": cover rows within the rows")
    -- the ranges read each difference event once
    assert.is_true(m.walked >= #want, what .. (": walked %d < |D| %d"):format(m.walked, #want))
    local r, e = ratios[kind], empty_walks[kind]
    if #want > 0 then r[#r + 1] = m.walked / #want else e[#e + 1] = m.walked end
  end
  local merges = 0
  local function before_merge(a, b)
    merges = merges + 1
    local heads = { a.head[1], b.head[1] }
    local lists = {}
    for i, id in ipairs(heads) do lists[i] = RS.ids_of(assert(store:state_after(id))) end
    local two = S.rng(seed + merges)(2) == 1
    check("merge " .. merges .. " (heads)", "heads", lists, two and heads or lists)
    -- an older state besides: the room has moved on since
    local old = stored[rng(#stored)]
    if store:state_after(old) then
      heads[3] = old
      lists[3] = RS.ids_of(assert(store:state_after(old)))
      check("merge " .. merges .. " (with " .. old .. ")", "old", lists, two and lists or heads)
    end
  end
  RS.random_forks(main, rng, ROUNDS, step, before_merge)
  assert.is_true(merges > 0)
  store:close()
end

-- A room of n joined members.
local function big_room(n, version)
  local store = assert(roomstate.open(":memory:"))
  local h = harness.new(store, { server = "big", version = version or "10" })
  local main = assert(h:create_room("@alice:x"))
  for i = 1, n do assert(main:join("@m" .. i .. ":x")) end
  return store, main
end

describe("the auth difference's walk", function()
  for _, version in ipairs({ "10", "12" }) do
    it("the index's difference is the naive one, and it walks at least |D|, v"
       .. version .. " (" .. SEEDS .. " seeds)", function()
      for seed = 1, SEEDS do run(version, seed * 7919) end
    end)
  end

  it("walks 2 rows for a one-key fork's difference of 1, at ingest and in store:resolve", function()
    local store, main = big_room(MEMBERS)
    local base = main.head[1]
    local a = assert(main:send("meanwhile", { sender = "@m8:x" }))
    local side = main:at(base)
    local b
    -- the side event's ingest resolves the current state over two extremities
    local m = measured(store, function() b = assert(side:join("@m7:x", { displayname = "seven" })) end)
    assert.equal(1, m.differences)
    assert.equal(1, m.events) -- @m7's join, cited by the rename
    -- the search reads the rename above it, the range reads it: the
    -- issue's 2 |D| exactly (counts are deterministic: a change to the
    -- search shows here)
    assert.equal(2, m.walked, "ingest: walked")
    -- the covers of the two member events: their positions and links
    assert.equal(5, m.cover)
    m = measured(store, function() assert(store:resolve(main.room.id, { a, b })) end)
    assert.equal(1, m.events)
    assert.equal(0, m.cover) -- cached by the ingest
    assert.equal(2, m.walked, "store:resolve: walked")
    store:close()
  end)

  it("walks 2 |D| for a branch of renames of one member", function()
    local store, main = big_room(MEMBERS)
    local side = main:at(main.head[1])
    local K = 50
    for i = 1, K do assert(main:join("@m3:x", { displayname = "d" .. i })) end
    local b = assert(side:join("@m4:x", { displayname = "four" }))
    local m = measured(store, function() assert(store:resolve(main.room.id, { main.head[1], b })) end)
    assert.equal(K + 1, m.events) -- @m3's join and all but the last rename
    -- the search reads each position above the lowest, the range each
    assert.equal(2 * m.events, m.walked, "walked")
    store:close()
  end)

  -- The issue's bound fails here, and this pins by how much: a branch
  -- changes the power levels and then the topic K times. The difference is
  -- the new power levels alone (the last topic cites it; the other
  -- branch's state does not reach it), but all K topics cite it and none is
  -- common, so the search reads each topic's link and position to learn
  -- that no common event descends from it: 2 K rows, and 1 for the range.
  it("walks the branch's state events that descend from a one-event difference (the 2x does not hold)",
     function()
    local store, main = big_room(MEMBERS)
    local side = main:at(main.head[1])
    local K = 50
    assert(main:state("m.room.power_levels", "", { users = { ["@alice:x"] = 100, ["@m1:x"] = 50 } }))
    for i = 1, K do assert(main:state("m.room.topic", "", { topic = "t" .. i })) end
    local b = assert(side:send("meanwhile", { sender = "@m2:x" }))
    local m = measured(store, function() assert(store:resolve(main.room.id, { main.head[1], b })) end)
    assert.equal(1, m.events)
    assert.equal(2 * K + 1, m.walked)
    store:close()
  end)

  it("reads the own events' covers, not a walk, for an old state against the current one", function()
    local store, main = big_room(MEMBERS)
    local early = main.head[1]
    for i = 1, 100 do assert(main:join("@late" .. i .. ":x")) end
    local m = measured(store, function() assert(store:resolve(main.room.id, { early, main.head[1] })) end)
    assert.equal(0, m.events) -- the late joins are own events, cited by none
    assert.equal(200, m.cover) -- a position and a link each
    assert.equal(1, m.walked, "walked") -- the search's first row is common
    store:close()
  end)

  teardown(function()
    if not REPORT then return end
    for _, kind in ipairs({ "heads", "old" }) do
      local r, e = S.sorted(ratios[kind]), S.sorted(empty_walks[kind])
      local function med(t) return t[math.floor((#t + 1) / 2)] or 0 end
      local within = 0
      for _, x in ipairs(r) do if x <= 2 then within = within + 1 end end
      io.stderr:write(("%s: walked/|D| over %d cases with |D| > 0: median %.2f, max %.2f, "
                       .. "%d within 2; %d cases with |D| = 0: walked median %d, max %d\n"):format(
        kind, #r, med(r), r[#r] or 0, within, #e, med(e), e[#e] or 0))
    end
  end)
end)
