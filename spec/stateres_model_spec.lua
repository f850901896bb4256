-- The naive state resolution model (spec/stateres_model.lua) against the
-- published cases of Synapse and Ruma (spec/fixtures/stateres/*.lua, each
-- naming its source), with the Lua auth rules and with the C ones, and
-- seeded random rooms for what the spec guarantees of any resolution. The
-- vectors and generators are in spec/stateres_vectors.lua, shared with
-- spec/stateres_c_spec.lua.
local R = require "stateres_model"
local V = require "stateres_vectors"

local ruma, LIGHT, RULES, VECTORS = V.ruma, V.LIGHT, V.RULES, V.VECTORS
local c_auth, sorted, map_of_ids = V.c_auth, V.sorted, V.map_of_ids
local events_of_rows, rng, random_forks, reorder = V.events_of_rows, V.rng, V.random_forks, V.reorder

-- The readings (stateres_model.lua READINGS) a vector is being run under;
-- nil: the model's defaults.
local readings

local function resolve_ok(v, sets, events, auth, opts)
  local out, err = R.resolve(v, sets, events, auth, opts or readings)
  assert(out, err)
  return out
end
V.set_resolver(resolve_ok)

describe("state resolution vectors", function()
  for _, rules in ipairs(RULES) do
    for _, v in ipairs(VECTORS) do
      it(v[1] .. ", " .. rules[1], function() v[2](rules[2]) end)
    end
  end
end)

---------------------------------------------------------------------------
-- The readings of ambiguous text (stateres_model.lua READINGS): every
-- vector under every combination, and which ones a reading fails. The
-- literal v2 step 1 ("the union of their auth chains", every auth chain
-- event replayed) gives other answers to MSC4297's v2 cases than Synapse and
-- Ruma do; whether a state's own events count in its full auth chain
-- decides none of the vectors.

describe("state resolution readings", function()
  local function run(opts)
    local failed = {}
    readings = opts
    for _, v in ipairs(VECTORS) do
      local ok = pcall(v[2], R.model_auth)
      if not ok then failed[#failed + 1] = v[1] end
    end
    readings = nil
    return failed
  end
  local MSC4297_V2 = {
    "MSC4297 problem A under v2: the join rules are lost (ruma-state-res tests/it/resolve.rs msc4297_problem_a_state_res_v2_0)",
    "MSC4297 problem B under v2: the power levels reset to the first (ruma-state-res tests/it/resolve.rs msc4297_problem_b_state_res_v2_0)",
  }
  for _, itself in ipairs({ false, true }) do
    it("every vector passes with the auth chains of the full conflicted set, own events counted: "
        .. tostring(itself), function()
      assert.same({}, run({ auth_chain_of_state_includes_itself = itself, power_auth_chains = "conflicted" }))
    end)
    it("the literal v2 step 1 fails exactly MSC4297's v2 cases, own events counted: " .. tostring(itself), function()
      assert.same(MSC4297_V2, run({ auth_chain_of_state_includes_itself = itself, power_auth_chains = "all" }))
    end)
  end
end)

---------------------------------------------------------------------------
-- Missing events and the pieces

describe("the state resolution model", function()
  local rows = ruma.problem_B_v11
  local events = events_of_rows(rows, "11", "!room:example.com")
  local states = ruma.cases[12].states

  it("names the events it needs and was not given", function()
    for _, v in ipairs({ "1", "11" }) do
      local partial = {}
      for id, ev in pairs(events) do partial[id] = ev end
      partial["$00-m-room-member-join-bob"] = nil
      partial["$01-m-room-power_levels"] = nil -- only in auth chains
      local out, err = R.resolve(v, states, partial)
      assert.is_nil(out)
      assert.equal("MISSING_EVENTS: $00-m-room-member-join-bob, $01-m-room-power_levels", err)
    end
  end)

  it("v12: the create event the room ID names is needed", function()
    local e12 = events_of_rows(ruma.problem_B_v12, "12")
    e12["$00-m-room-create"] = nil
    local out, err = R.resolve("12", { { "$00-m-room-member-join-alice" } }, e12)
    assert.is_nil(out)
    assert.equal("MISSING_EVENTS: $00-m-room-create", err)
  end)

  it("refuses an unknown room version", function()
    assert.has_error(function() R.resolve("13", {}, {}) end)
  end)

  it("computes SHA-1 (v1's sha1(event_id))", function()
    assert.equal("da39a3ee5e6b4b0d3255bfef95601890afd80709", R.sha1_hex(""))
    assert.equal("a9993e364706816aba3e25717850c26c9cd0d89d", R.sha1_hex("abc"))
    assert.equal("84983e441c3bd26ebaae4aa1f95129e5e54670f1",
      R.sha1_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))
  end)

  it("mainline position: the first power levels of an event's chain on the mainline", function()
    local line = R.mainline("$02-m-room-power_levels", events)
    assert.same({ "$02-m-room-power_levels", "$01-m-room-power_levels", "$00-m-room-power_levels" }, line)
    assert.equal(0, R.mainline_position("$00-m-room-member-join-zara", line, events))
    assert.equal(2, R.mainline_position("$01-m-room-power_levels", line, events))
    assert.equal(math.huge, R.mainline_position("$00-m-room-power_levels", line, events))
  end)

  it("sender power from the event's own auth events", function()
    -- bob's promotion of charlie cites the power levels that gave him 50
    assert.equal(50, R.sender_power_level("11", events["$02-m-room-power_levels"], events))
    assert.equal(100, R.sender_power_level("11", events["$01-m-room-power_levels"], events))
    -- the create event cites nothing: nobody is a creator there
    assert.equal(0, R.sender_power_level("11", events["$00-m-room-create"], events))
    local e12 = events_of_rows(ruma.problem_B_v12, "12")
    assert.equal(math.huge, R.sender_power_level("12", e12["$01-m-room-power_levels"], e12))
  end)
end)

describe("state resolution properties over seeded random forks", function()
  local SEEDS = LIGHT and 8 or 40
  for _, v in ipairs({ "1", "2", "6", "10", "11", "12" }) do
    it("hold for room version " .. v, function()
      local conflicted_cases = 0
      for seed = 1, SEEDS do
        local sets, events = random_forks(v, seed * 7919 + tonumber(v))
        local where = ("v%s seed %d"):format(v, seed)
        local got = resolve_ok(v, sets, events)
        -- a single state, or a state with itself, resolves to itself
        for _, s in ipairs(sets) do
          assert.same(sorted(s), resolve_ok(v, { s }, events), where)
          assert.same(sorted(s), resolve_ok(v, { s, s }, events), where)
        end
        -- nothing depends on the order of the states, nor on a state given twice
        assert.same(got, resolve_ok(v, reorder(sets, rng(seed)), events), where)
        local twice = reorder(sets, rng(seed + 1))
        twice[#twice + 1] = sets[1]
        assert.same(got, resolve_ok(v, twice, events), where)
        -- the unconflicted state map survives step 5 (v2, v2.1); in v1 R
        -- starts with every non-conflicting entry and later passes only
        -- touch conflicted keys
        local maps = {}
        for i, s in ipairs(sets) do maps[i] = map_of_ids(s, events) end
        local unconflicted, conflicted
        if v == "1" then
          unconflicted, conflicted = R.v1_conflicts(maps)
        else
          unconflicted, conflicted = R.unconflicted_and_conflicted(maps)
        end
        if next(conflicted) then conflicted_cases = conflicted_cases + 1 end
        local result = map_of_ids(got, events)
        for k, id in pairs(unconflicted) do assert.equal(id, result[k], where .. " " .. k) end
        -- every answer is an event of a state or of a state's auth chain
        local known = {}
        for _, s in ipairs(sets) do
          for _, id in ipairs(s) do
            known[id] = true
            for a in pairs(R.auth_chain(id, events)) do known[a] = true end
          end
        end
        for _, id in ipairs(got) do assert.is_true(known[id] == true, where .. " " .. id) end
        -- the C rules resolve alike
        assert.same(got, resolve_ok(v, sets, events, c_auth), where)
      end
      -- the forks must conflict, or the checks prove little
      assert.is_true(conflicted_cases >= SEEDS / 2, "conflicted in " .. conflicted_cases .. " of " .. SEEDS)
    end)
  end
end)

describe("state resolution, our own cases", function()
  for _, case in ipairs(V.OWN) do it(case[1], case[2]) end
end)
