-- roomstate.resolve, the C state resolution (csrc/state_res*.c), against
-- every vector of spec/stateres_model_spec.lua (spec/stateres_vectors.lua)
-- and against the naive model (spec/stateres_model.lua) on each of its
-- answers, with the model using the Lua auth rules and the C ones; seeded
-- random forks where the two must agree; missing events; argument errors.
local R = require "stateres_model"
local V = require "stateres_vectors"
local roomstate = require "roomstate"
local cjson = require "cjson"

local sorted, map_of_ids = V.sorted, V.map_of_ids

local function c_resolve(v, sets, events, opts)
  local out, err = roomstate.resolve(v, sets, events, opts)
  assert(out, err)
  return out
end

-- The C answer, checked against the model under both auth rules (the
-- light run, under valgrind in CI: the C rules only).
local compared = 0
local MODEL_RULES = V.LIGHT and { V.RULES[2] } or V.RULES
local function c_and_model(v, sets, events)
  local got = c_resolve(v, sets, events)
  for _, rules in ipairs(MODEL_RULES) do
    local want, err = R.resolve(v, sets, events, rules[2])
    assert(want, err)
    assert.same(want, got, "C against the model with " .. rules[1])
  end
  compared = compared + 1
  return got
end
V.set_resolver(c_and_model)

describe("roomstate.resolve on the state resolution vectors", function()
  for _, vec in ipairs(V.VECTORS) do
    it(vec[1], function() vec[2](nil) end)
  end
  for _, case in ipairs(V.OWN) do
    it("our own case: " .. case[1], case[2])
  end
  it("compared every answer with the model", function()
    assert.is_true(compared > 100, "compared " .. compared)
  end)
end)

describe("roomstate.resolve against the model over seeded random forks", function()
  local SEEDS = V.LIGHT and 10 or 50
  for _, v in ipairs({ "1", "2", "6", "10", "11", "12" }) do
    it("agrees for room version " .. v, function()
      local conflicted = 0
      for seed = 1, SEEDS do
        local sets, events = V.random_forks(v, seed * 104729 + tonumber(v))
        local where = ("v%s seed %d"):format(v, seed)
        local got = c_resolve(v, sets, events)
        local want = assert(R.resolve(v, sets, events, V.c_auth))
        assert.same(want, got, where)
        assert.same(got, c_resolve(v, V.reorder(sets, V.rng(seed)), events), where)
        for _, s in ipairs(sets) do assert.same(sorted(s), c_resolve(v, { s }, events), where) end
        local ids = {}
        for _, s in ipairs(sets) do
          for _, id in ipairs(s) do ids[id] = (ids[id] or 0) + 1 end
        end
        for _, n in pairs(ids) do
          if n < #sets then conflicted = conflicted + 1; break end
        end
      end
      assert.is_true(conflicted >= SEEDS / 2, "conflicted in " .. conflicted .. " of " .. SEEDS)
    end)
  end
end)

describe("roomstate.resolve's inputs", function()
  local ruma = V.ruma
  local events = V.events_of_rows(ruma.problem_B_v11, "11", "!room:example.com")
  local states = ruma.cases[12].states

  it("takes the events as a map, an array, or JSON text, alike", function()
    local want = c_resolve("11", states, events)
    local list, texts = {}, {}
    for _, ev in pairs(events) do
      list[#list + 1] = ev
      texts[#texts + 1] = cjson.encode(ev)
    end
    assert.same(want, c_resolve("11", states, list))
    assert.same(want, c_resolve("11", states, texts))
    local mixed = { list[1] }
    for i = 2, #texts do mixed[i] = texts[i] end
    assert.same(want, c_resolve("11", states, mixed))
  end)

  it("resolves no sets to the empty state", function()
    assert.same({}, c_resolve("11", {}, events))
    assert.same({}, c_resolve("1", {}, {}))
  end)

  it("names the events it needs and was not given", function()
    -- the second is only in auth chains
    local gone = { ["$00-m-room-member-join-bob"] = true, ["$01-m-room-power_levels"] = true }
    local partial = {}
    for id, ev in pairs(events) do partial[id] = not gone[id] and ev or nil end
    for _, v in ipairs({ "1", "11" }) do
      local out, err, code = roomstate.resolve(v, states, partial)
      assert.is_nil(out)
      assert.equal("MISSING_EVENTS", code)
      assert.equal(select(2, R.resolve(v, states, partial)), err)
      assert.equal("MISSING_EVENTS: $00-m-room-member-join-bob, $01-m-room-power_levels", err)
    end
  end)

  it("v12: needs the create event the room ID names", function()
    local e12 = V.events_of_rows(ruma.problem_B_v12, "12")
    e12["$00-m-room-create"] = nil
    local out, err, code = roomstate.resolve("12", { { "$00-m-room-member-join-alice" } }, e12)
    assert.is_nil(out)
    assert.equal("MISSING_EVENTS", code)
    assert.equal("MISSING_EVENTS: $00-m-room-create", err)
  end)

  it("names at most 20 missing events, and how many in all", function()
    local set = {}
    for i = 1, 25 do set[i] = ("$m%02d"):format(i) end
    local _, err = roomstate.resolve("11", { set }, {})
    assert.matches("^MISSING_EVENTS: %$m01, %$m02, .*%$m20, %.%.%. %(25 in all%)$", err)
  end)

  it("marks rejected events by the table's field or opts.rejected", function()
    local got = c_resolve("11", states, events)
    local pl = map_of_ids(got, events)["m.room.power_levels\0"]
    assert.is_not_nil(pl)
    local texts = {}
    for id, ev in pairs(events) do texts[id] = cjson.encode(ev) end
    local by_opt = c_resolve("11", states, texts, { rejected = { pl } })
    local marked = {}
    for id, ev in pairs(events) do marked[id] = ev end
    local copy = {}
    for k, v in pairs(events[pl]) do copy[k] = v end
    copy.rejected = true
    marked[pl] = copy
    assert.same(by_opt, c_resolve("11", states, marked))
    assert.are_not.equal(pl, map_of_ids(by_opt, events)["m.room.power_levels\0"])
  end)

  it("refuses a set that holds a non-state event or two events for one key", function()
    local msg = { event_id = "$msg", type = "m.room.message", sender = "@alice:example.com",
                  room_id = "!room:example.com", content = { body = "hi" }, auth_events = {} }
    local with = { ["$msg"] = msg }
    for id, ev in pairs(events) do with[id] = ev end
    local out, err, code = roomstate.resolve("11", { { "$msg" } }, with)
    assert.is_nil(out)
    assert.equal("BAD_STATE", code)
    assert.matches("%$msg", err)
    out, err, code = roomstate.resolve("11",
      { { "$01-m-room-power_levels", "$02-m-room-power_levels" } }, events)
    assert.is_nil(out)
    assert.equal("BAD_STATE", code)
    assert.matches("for one key", err)
  end)

  it("refuses an event that is not JSON, or whose key is not its ID", function()
    local out, err, code = roomstate.resolve("11", {}, { "{nope" })
    assert.is_nil(out)
    assert.equal("BAD_EVENT", code)
    assert.matches("events%[1%]", err)
    out, err, code = roomstate.resolve("11", {}, { ["$other"] = events["$00-m-room-create"] })
    assert.is_nil(out)
    assert.equal("BAD_EVENT", code)
    assert.matches("%$other", err)
    out, _, code = roomstate.resolve("2", { { "$x" } }, { cjson.encode({ type = "m.room.create",
      state_key = "", sender = "@a:b", content = {} }) })
    assert.is_nil(out)
    assert.equal("BAD_EVENT", code) -- v2 IDs are not hashes: an event without one has none
  end)

  it("raises on a wrong argument, naming the function and the argument", function()
    local function raises(pattern, ...)
      local args = { ... }
      local ok, err = pcall(function() return roomstate.resolve(unpack(args, 1, 4)) end)
      assert.is_false(ok)
      assert.matches(pattern, err)
    end
    raises("bad argument #1 to 'resolve'", 11, {}, {})
    raises("bad argument #1 to 'resolve' %(unknown room version", "13", {}, {})
    raises("bad argument #2 to 'resolve'", "11", nil, {})
    raises("bad argument #2 to 'resolve' %(state_sets%[1%]", "11", { "$a" }, {})
    raises("bad argument #2 to 'resolve' %(state_sets%[1%]%[2%]", "11", { { "$a", 5 } }, {})
    raises("bad argument #3 to 'resolve'", "11", {}, "events")
    raises("bad argument #3 to 'resolve' %(events%[1%]", "11", {}, { 5 })
    raises("bad argument #4 to 'resolve'", "11", {}, {}, 5)
    raises("bad argument #4 to 'resolve' %(opts.rejected", "11", {}, {}, { rejected = "$a" })
  end)
end)
