-- The state resolution vectors and generators that spec/stateres_model_spec.lua
-- (the naive model) and spec/stateres_c_spec.lua (roomstate.resolve, held
-- against the model) share: the published cases of Synapse and Ruma
-- (spec/fixtures/stateres/*.lua, each naming its source), our own cases,
-- and seeded random forks. Each vector resolves through the function given
-- to V.set_resolver, resolve(room_version, sets, events, auth, opts) -> the
-- sorted IDs (asserting success), so either implementation can run them.
local R = require "stateres_model"
local A = require "auth_model"
local roomstate = require "roomstate"
local assert = require "luassert"

local V = {}

local synapse = dofile("spec/fixtures/stateres/synapse_v2.lua")
local synapse21 = dofile("spec/fixtures/stateres/synapse_v21.lua")
local ruma = dofile("spec/fixtures/stateres/ruma.lua")
V.ruma = ruma

-- The C rules, with the model's signature (v12: the create event is among
-- the auth events the resolution hands over, as roomstate.auth_check asks).
local function c_auth(v, ev, list) return roomstate.auth_check(v, ev, list) end

local RULES = { { "the Lua auth rules", R.model_auth }, { "the C auth rules", c_auth } }

local function key_of(ev) return R.key(ev.type, ev.state_key) end

local function as_set(list)
  local s = {}
  for _, id in ipairs(list) do s[id] = true end
  return s
end

local function sorted(list)
  local c = {}
  for i, v in ipairs(list) do c[i] = v end
  table.sort(c)
  return c
end

local function ids_of_map(m)
  local out = {}
  for _, id in pairs(m) do out[#out + 1] = id end
  table.sort(out)
  return out
end

local function map_of_ids(ids, events)
  local m = {}
  for _, id in ipairs(ids) do m[key_of(events[id])] = id end
  return m
end

local resolver
local function resolve_ok(v, sets, events, auth, opts)
  return resolver(v, sets, events, auth, opts)
end
function V.set_resolver(fn) resolver = fn end


-- Every vector, as { name, check(auth) }, for the runs below.
local VECTORS = {}
local function vector(name, check) VECTORS[#VECTORS + 1] = { name, check } end

-- An event of our fixtures' rows: { event_id, sender, type, state_key,
-- content, auth = ..., prev = ..., ts = ... }.
local function event_of_row(row, room_id)
  return {
    event_id = row[1], sender = row[2], type = row[3], state_key = row[4], content = row[5],
    auth_events = row.auth or {}, prev_events = row.prev or {}, origin_server_ts = row.ts or 0,
    room_id = room_id,
  }
end

local function room_of(version, create_id, fallback)
  if version == "12" then return "!" .. create_id:sub(2) end
  return fallback
end

---------------------------------------------------------------------------
-- Synapse's DAG harness (test_v2.py build_event_graph), see synapse_v2.lua

local function synapse_graph(fx, extra_events, edges, version, auth)
  version = version or fx.version
  local rows, parents = {}, {}
  for _, row in ipairs(fx.initial) do rows[row[1]] = row; parents[row[1]] = {} end
  for _, row in ipairs(extra_events) do rows[row[1]] = row; parents[row[1]] = {} end
  local function chain(list)
    for i = 1, #list - 1 do parents[list[i]][list[i + 1]] = true end
  end
  chain(fx.initial_edges)
  for _, list in ipairs(edges) do chain(list) end
  local function id_of(node) return "$" .. node .. ":" .. fx.domain end
  local room_id = version == "12" and "!CREATE:" .. fx.domain or fx.room_id
  -- smallest node first among those whose prevs are all done
  local done, order = {}, {}
  while true do
    local best
    for node in pairs(rows) do
      if not done[node] then
        local ready = true
        for p in pairs(parents[node]) do
          if not done[p] then ready = false end
        end
        if ready and (best == nil or node < best) then best = node end
      end
    end
    if not best then break end
    done[best] = true
    order[#order + 1] = best
  end
  local events, state_after = {}, {}
  for ts, node in ipairs(order) do
    local row = rows[node]
    local prevs = {}
    for p in pairs(parents[node]) do prevs[#prevs + 1] = p end
    table.sort(prevs)
    local before
    if #prevs == 0 then
      before = {}
    elseif #prevs == 1 then
      before = state_after[prevs[1]]
    else
      local sets = {}
      for i, p in ipairs(prevs) do sets[i] = ids_of_map(state_after[p]) end
      -- Synapse resolves the merges on the way with room version 2
      before = map_of_ids(resolve_ok(version == "12" and "12" or "2", sets, events, auth), events)
    end
    local ev = {
      event_id = id_of(node), sender = row[2], type = row[3], state_key = row[4], content = row[5],
      room_id = (row[3] ~= "m.room.create" or version ~= "12") and room_id or nil,
      origin_server_ts = ts, prev_events = {}, auth_events = {},
    }
    for i, p in ipairs(prevs) do ev.prev_events[i] = id_of(p) end
    for _, t in ipairs(A.auth_types(version, ev)) do
      local id = before[R.key(t[1], t[2])]
      if id then ev.auth_events[#ev.auth_events + 1] = id end
    end
    events[ev.event_id] = ev
    local after = {}
    for k, v in pairs(before) do after[k] = v end
    if ev.state_key ~= nil then after[key_of(ev)] = ev.event_id end
    state_after[node] = after
  end
  return events, state_after, id_of
end

do
    for _, case in ipairs(synapse.cases) do
      vector(case.name .. " (" .. case.source .. ")", function(auth)
        local events, state_after, id_of = synapse_graph(synapse, case.events, case.edges, nil, auth)
        local expected = {}
        for _, node in ipairs(case.expect) do
          local ev = events[id_of(node)]
          expected[key_of(ev)] = ev.event_id
        end
        local start, final = state_after.START, state_after.END
        local got = {}
        for k, v in pairs(final) do
          if expected[k] or start[k] ~= v then got[k] = v end
        end
        assert.same(expected, got)
      end)
    end

    for _, case in ipairs(synapse.cache.cases) do
      for _, v in ipairs(case.versions or { case.version }) do
        vector(case.name .. " (" .. case.source .. ", room version " .. v .. ")", function(auth)
          local events, state_after, id_of = synapse_graph(synapse, synapse.cache.events,
            synapse.cache.edges, v, auth)
          local function state(nodes)
            local m = {}
            for k, id in pairs(state_after.START) do m[k] = id end
            for _, node in ipairs(nodes) do
              local ev = events[id_of(node)]
              m[key_of(ev)] = ev.event_id
            end
            return m
          end
          local function resolve(states, drop)
            local sets = {}
            for i, nodes in ipairs(states) do
              local m = state(nodes)
              if drop then m[drop] = nil end
              sets[i] = ids_of_map(m)
            end
            return map_of_ids(resolve_ok(v, sets, events, auth), events)
          end
          local got = resolve(case.states)
          for _, k in ipairs(case.absent or {}) do assert.is_nil(got[k], k) end
          for _, k in ipairs(case.present or {}) do assert.is_not_nil(got[k], k) end
          for k, node in pairs(case.node_at or {}) do assert.equal(id_of(node), got[k]) end
          if case.drop_key then
            assert.is_not_nil(got[case.drop_key])
            local without = resolve(case.states, case.drop_key)
            got[case.drop_key] = nil
            assert.same(got, without)
          end
          if case.other then
            local other = resolve(case.other.states)
            for k, node in pairs(case.other.not_node_at) do
              assert.is_not_nil(other[k])
              assert.are_not.equal(id_of(node), other[k])
            end
          end
        end)
      end
    end
end

---------------------------------------------------------------------------
-- Given states over given events (Synapse's test_v21.py, MSC4297's problems)

local function events_of_rows(rows, version, fallback_room)
  local create_id
  for _, row in ipairs(rows) do
    if row[3] == "m.room.create" then create_id = row[1] end
  end
  local room_id = room_of(version, create_id, fallback_room)
  local events = {}
  for _, row in ipairs(rows) do
    local ev = event_of_row(row, room_id)
    if ev.type == "m.room.create" and version == "12" then ev.room_id = nil end
    events[ev.event_id] = ev
  end
  return events
end

do
    for _, case in ipairs(synapse21.cases) do
      vector(case.name .. " (" .. case.source .. ")", function(auth)
        local events = events_of_rows(case.events, case.version)
        assert.same(sorted(case.expect), resolve_ok(case.version, case.states, events, auth))
        if case.create_not_in_full_conflicted_set then
          local maps = {}
          for i, set in ipairs(case.states) do maps[i] = map_of_ids(set, events) end
          local _, conflicted = R.unconflicted_and_conflicted(maps)
          local full = R.full_conflicted_set(conflicted, R.auth_difference(maps, events, R.READINGS),
            R.conflicted_state_subgraph(conflicted, events))
          assert.is_nil(full["$e01-create"])
        end
      end)
    end
end

---------------------------------------------------------------------------
-- Ruma's resolve fixtures

local function version_of_rows(rows)
  for _, row in ipairs(rows) do
    if row[3] == "m.room.create" then return row[5].room_version or "1" end
  end
end

-- Ruma's test_resolve_batches, iteratively: see ruma.lua.
local function ruma_iterative(version, events, order, auth)
  local after, followed = {}, {}
  for _, id in ipairs(order) do
    local ev = events[id]
    local sets = {}
    for _, p in ipairs(ev.prev_events) do
      sets[#sets + 1] = assert(after[p], "prev event " .. p .. " comes later")
      followed[p] = true
    end
    local before = resolve_ok(version, sets, events, auth)
    local with = map_of_ids(before, events)
    with[key_of(ev)] = id
    after[id] = resolve_ok(version, { before, ids_of_map(with) }, events, auth)
  end
  local leaves = {}
  for _, id in ipairs(order) do
    if not followed[id] then leaves[#leaves + 1] = after[id] end
  end
  return resolve_ok(version, leaves, events, auth)
end

-- ... and atomically: each event a one-entry state of its own.
local function ruma_atomic(version, events, order, auth)
  local sets = {}
  for i, id in ipairs(order) do sets[i] = { id } end
  return resolve_ok(version, sets, events, auth)
end

do
    for _, case in ipairs(ruma.cases) do
      vector(case.name .. " (" .. case.source .. ")", function(auth)
        if case.batches then
          local rows = {}
          for _, b in ipairs(case.batches) do
            for _, row in ipairs(ruma.batches[b]) do rows[#rows + 1] = row end
          end
          local version = version_of_rows(rows)
          local events = events_of_rows(rows, version, "!room:example.com")
          local order = {}
          for i, row in ipairs(rows) do order[i] = row[1] end
          assert.same(sorted(case.expect), ruma_iterative(version, events, order, auth))
          assert.same(sorted(case.expect), ruma_atomic(version, events, order, auth))
        else
          local rows = ruma[case.pdus]
          local version = version_of_rows(rows)
          local events = events_of_rows(rows, version, "!room:example.com")
          assert.same(sorted(case.expect), resolve_ok(version, case.states, events, auth))
        end
      end)
    end
end
---------------------------------------------------------------------------
-- Seeded random rooms: a common history, then forks of random state
-- changes by senders of different power, each change kept only when the
-- auth rules allow it on its branch. What the spec guarantees of any
-- resolution is checked on the forks' states.

-- A small LCG of our own, so a seed means the same room under every Lua.
local function rng(seed)
  local s = seed
  return function(n)
    s = (s * 1103515245 + 12345) % 2147483648
    return s % n + 1
  end
end

local USERS = { "@alice:a.org", "@bob:a.org", "@carol:b.org", "@dave:b.org", "@erin:c.org" }

local function random_forks(v, seed)
  local pick = rng(seed)
  local events, ts = {}, 0
  local create_id = "$create" .. seed .. ":a.org"
  local room_id = v == "12" and "!" .. create_id:sub(2) or "!room:a.org"
  local function add(state, depth, prev, ty, sk, sender, content)
    ts = ts + 1
    local ev = {
      event_id = ty == "m.room.create" and create_id or ("$e" .. ts .. ":a.org"),
      type = ty, state_key = sk, sender = sender, content = content,
      room_id = not (v == "12" and ty == "m.room.create") and room_id or nil,
      origin_server_ts = ts - (pick(3) - 1), -- ties and inversions too
      depth = depth, prev_events = prev and { prev } or {}, auth_events = {},
    }
    local list = {}
    for _, t in ipairs(A.auth_types(v, ev)) do
      local id = state[R.key(t[1], t[2])]
      if id then
        ev.auth_events[#ev.auth_events + 1] = id
        list[#list + 1] = events[id]
      end
    end
    if v == "12" and ty ~= "m.room.create" then list[#list + 1] = events[create_id] end
    if not R.model_auth(v, ev, list) then return nil end
    events[ev.event_id] = ev
    local after = {}
    for k, id in pairs(state) do after[k] = id end
    after[key_of(ev)] = ev.event_id
    return after, ev.event_id
  end
  local alice = USERS[1]
  local state, last = {}, nil
  local depth = 0
  local function step(ty, sk, sender, content)
    depth = depth + 1
    local s2, id = add(state, depth, last, ty, sk, sender, content)
    if s2 then state, last = s2, id end
  end
  local create = { room_version = v }
  if tonumber(v) <= 10 then create.creator = alice end
  step("m.room.create", "", alice, create)
  step("m.room.member", alice, alice, { membership = "join" })
  local users = { [USERS[2]] = 50, [USERS[3]] = 50 }
  if v ~= "12" then users[alice] = 100 end
  step("m.room.power_levels", "", alice, { users = users })
  step("m.room.join_rules", "", alice, { join_rule = "public" })
  for i = 2, 4 do step("m.room.member", USERS[i], USERS[i], { membership = "join" }) end
  -- forks from the common history
  local base, base_last, base_depth = state, last, depth
  local sets = {}
  for b = 1, 1 + pick(3) do
    state, last, depth = base, base_last, base_depth
    for _ = 1, pick(5) do
      local who, target = USERS[pick(#USERS)], USERS[pick(#USERS)]
      local r = pick(8)
      if r == 1 then
        step("m.room.topic", "", who, { topic = "t" .. pick(100) })
      elseif r == 2 then
        step("m.room.name", "", who, { name = "n" .. pick(100) })
      elseif r == 3 then
        local u = {}
        for id, lvl in pairs(users) do u[id] = lvl end
        if target ~= alice or v ~= "12" then u[target] = ({ 0, 50, 100 })[pick(3)] end
        step("m.room.power_levels", "", who, { users = u })
      elseif r == 4 then
        step("m.room.member", target, who, { membership = ({ "ban", "leave" })[pick(2)] })
      elseif r == 5 then
        step("m.room.member", who, who, { membership = ({ "join", "leave" })[pick(2)] })
      elseif r == 6 then
        step("m.room.join_rules", "", who, { join_rule = ({ "public", "invite" })[pick(2)] })
      elseif r == 7 then
        step("m.room.member", target, who, { membership = "invite" })
      else
        step("m.room.member", who, who, { membership = "join", displayname = "d" .. pick(100) })
      end
    end
    sets[b] = ids_of_map(state)
  end
  return sets, events
end

local function reorder(sets, pick)
  local c = {}
  for i, s in ipairs(sets) do c[i] = s end
  for i = #c, 2, -1 do
    local j = pick(i)
    c[i], c[j] = c[j], c[i]
  end
  return c
end
---------------------------------------------------------------------------
-- Our own cases for what no published vector decides: v1's orderings, and
-- an event marked rejected.

V.OWN = {}
do
  local function it(name, fn) V.OWN[#V.OWN + 1] = { name, fn } end
  -- Ruma's public chat (alice 100, bob 50), every event's depth its
  -- origin_server_ts, plus the events of each case.
  local function room(v, extra)
    local rows = {}
    for _, row in ipairs(ruma.batches["bootstrap-public-chat"]) do rows[#rows + 1] = row end
    for _, row in ipairs(extra) do rows[#rows + 1] = row end
    local events = events_of_rows(rows, v, "!room:example.com")
    for _, ev in pairs(events) do ev.depth = ev.origin_server_ts end
    local base = {}
    for _, row in ipairs(ruma.batches["bootstrap-public-chat"]) do
      local ev = events[row[1]]
      -- the power levels alice replaced at once
      if ev.event_id ~= "$00-m-room-power_levels" then base[#base + 1] = ev.event_id end
    end
    return events, base
  end
  local function with(base, ...)
    local s = {}
    for _, id in ipairs(base) do s[#s + 1] = id end
    for _, id in ipairs({ ... }) do s[#s + 1] = id end
    return s
  end
  local ALICE, BOB, CAROL = "@alice:example.com", "@bob:example.com", "@carol:example.com"
  local CITES = { "$00-m-room-create", "$01-m-room-power_levels" }
  local function topic(id, who, ts, member)
    return { id, who, "m.room.topic", "", { topic = id }, auth = { CITES[1], CITES[2], member }, ts = ts }
  end

  it("v1: the deepest allowed event of a non-auth key, passing over a deeper refused one", function()
    local events, base = room("1", {
      topic("$t-alice", ALICE, 8, "$00-m-room-member-join-alice"),
      -- carol never joined: refused in R, though the deepest
      topic("$t-carol", CAROL, 9, "$00-m-room-member-join-alice"),
    })
    local got = map_of_ids(resolve_ok("1", { with(base, "$t-alice"), with(base, "$t-carol") }, events), events)
    assert.equal("$t-alice", got["m.room.topic\0"])
  end)

  it("v1: equal depth goes to the lowest sha1(event_id)", function()
    local events, base = room("1", {
      topic("$t-one", ALICE, 8, "$00-m-room-member-join-alice"),
      topic("$t-two", BOB, 8, "$00-m-room-member-join-bob"),
    })
    local want = R.sha1_hex("$t-one") < R.sha1_hex("$t-two") and "$t-one" or "$t-two"
    local got = map_of_ids(resolve_ok("1", { with(base, "$t-one"), with(base, "$t-two") }, events), events)
    assert.equal(want, got["m.room.topic\0"])
  end)

  it("v1: power levels from the shallowest, then each deeper one while allowed", function()
    local function pl(id, who, ts, users, member)
      return { id, who, "m.room.power_levels", "", { users = users },
        auth = { CITES[1], CITES[2], member }, ts = ts }
    end
    local events, base = room("1", {
      -- alice raises bob; bob, still at 50, tries to raise himself to 100
      pl("$pl-a", ALICE, 8, { [ALICE] = 100, [BOB] = 75 }, "$00-m-room-member-join-alice"),
      pl("$pl-b", BOB, 9, { [ALICE] = 100, [BOB] = 100 }, "$00-m-room-member-join-bob"),
      pl("$pl-c", ALICE, 10, { [ALICE] = 100, [BOB] = 0 }, "$00-m-room-member-join-alice"),
    })
    local others = {}
    for _, id in ipairs(base) do
      if id ~= "$01-m-room-power_levels" then others[#others + 1] = id end
    end
    local sets = { with(others, "$pl-a"), with(others, "$pl-b"), with(others, "$pl-c") }
    -- $pl-a first, unchecked; bob at 75 may not make himself 100: stop
    assert.equal("$pl-a", map_of_ids(resolve_ok("1", sets, events), events)["m.room.power_levels\0"])
  end)

  it("v2 and v2.1: an event marked rejected is never admitted", function()
    for _, v in ipairs({ "11", "12" }) do
      local events, base = room(v, {
        topic("$t-old", ALICE, 8, "$00-m-room-member-join-alice"),
        topic("$t-new", ALICE, 9, "$00-m-room-member-join-alice"),
      })
      local sets = { with(base, "$t-old"), with(base, "$t-new") }
      local got = map_of_ids(resolve_ok(v, sets, events), events)
      assert.equal("$t-new", got["m.room.topic\0"], v)
      events["$t-new"].rejected = true
      got = map_of_ids(resolve_ok(v, sets, events), events)
      assert.equal("$t-old", got["m.room.topic\0"], v)
    end
  end)
end

V.VECTORS, V.RULES, V.c_auth = VECTORS, RULES, c_auth
V.key_of, V.sorted, V.ids_of_map, V.map_of_ids = key_of, sorted, ids_of_map, map_of_ids
V.events_of_rows, V.rng, V.random_forks, V.reorder = events_of_rows, rng, random_forks, reorder
V.LIGHT = os.getenv("ROOMSTATE_SPEC_LIGHT")

return V
