-- Seeded random forks that change state on both branches, ingested as
-- new events and merged (resolve_support's random_forks): bans racing
-- messages, power changes racing joins, topics on both sides. After every event the store's current state and
-- the event's state before are the naive model's resolution
-- (spec/stateres_model.lua, fed the stored events by resolve_support);
-- every output lists exactly what left and entered the current state, its
-- state-before delta gives the stored state before, and the reference
-- consumer replayed over the outputs equals the store.
local roomstate = require "roomstate"
local harness = require "roomstate.harness"
local Consumer = require "roomstate.consumer"
local M = require "model"
local RS = require "resolve_support"
local S = require "support"

local LIGHT = os.getenv("ROOMSTATE_SPEC_LIGHT")
local SEEDS = LIGHT and 4 or 20
local ROUNDS = 6

local function set_of(list)
  local s = {}
  for _, id in ipairs(list or {}) do s[id] = true end
  return s
end

-- What left (in a, not b) and what entered (in b, not a), as sets.
local function delta(a, b)
  local gone, came = {}, {}
  for k, id in pairs(a) do if b[k] ~= id then gone[id] = true end end
  for k, id in pairs(b) do if a[k] ~= id then came[id] = true end end
  return gone, came
end

local function run(version, seed)
  local store = assert(roomstate.open(":memory:"))
  local h = harness.new(store, { server = "s" .. seed, version = version })
  local rng = S.rng(seed)
  local consumer = Consumer.new(store)
  local pending = {}
  store:subscribe("oracle", function(o)
    consumer:apply(o)
    pending[#pending + 1] = o
  end)
  local main = assert(h:create_room("@alice:x"))
  local rid = main.room.id
  local prev_current = M.from_state(assert(store:current_state(rid)))
  pending = {} -- the room's setup: the consumer has applied them
  -- (in a v12 room the consumer resyncs once during the setup, before any
  -- fork: a known difference of its hash there, not of resolution)
  local setup_resyncs = #consumer.resyncs
  local failure

  local function where(id, what)
    local ev = h.events[id]
    local prevs = {}
    for i, p in ipairs(ev and ev.prev_events or {}) do
      prevs[i] = tostring(type(p) == "table" and p[1] or p) .. " " .. tostring(store:event_status(type(p) == "table" and p[1] or p))
    end
    return ("v%s seed %d, %s (%s; prevs %s): %s"):format(version, seed, id, tostring(store:event_status(id)), table.concat(prevs, ", "), what)
  end

  -- the outputs of one ingest against the store and the model
  local function check_outputs(id)
    for _, o in ipairs(pending) do
      if o.type == "new_room_event" then
        local ne = o.new_room_event
        local cur = M.from_state(assert(store:current_state(rid)))
        local gone, came = delta(prev_current, cur)
        assert.same(gone, set_of(ne.removes_state_event_ids), where(id, "removes"))
        assert.same(came, set_of(ne.adds_state_event_ids), where(id, "adds"))
        assert.equal(store:state_hash(rid), ne.state_hash, where(id, "state_hash"))
        local before = M.copy(cur)
        for _, e in ipairs(ne.state_before_removes_event_ids or {}) do
          for k, v in pairs(before) do if v == e then before[k] = nil end end
        end
        for _, e in ipairs(ne.state_before_adds_event_ids or {}) do
          local ev = RS.events_for(store, { { e } })[e]
          before[ev.type .. "\0" .. ev.state_key] = e
        end
        assert.same(M.from_state(assert(store:state_before(id))), before,
                    where(id, "state before from the output"))
        assert.same(cur, consumer.rooms[rid], where(id, "consumer"))
        assert.equal(setup_resyncs, #consumer.resyncs, where(id, "consumer resyncs"))
        prev_current = cur
      end
    end
    pending = {}
  end

  -- after every event: state before, current state, outputs
  local function check(id)
    local prevs = {}
    for i, p in ipairs(h.events[id].prev_events) do prevs[i] = type(p) == "table" and p[1] or p end
    local want_before = RS.resolve_after(store, version, prevs)
    assert.same(want_before, M.from_state(assert(store:state_before(id))), where(id, "state before"))
    local want = RS.resolve_after(store, version, assert(store:latest_events(rid)))
    assert.same(want, M.from_state(assert(store:current_state(rid))), where(id, "current state"))
    check_outputs(id)
  end

  local function step(cursor, fn)
    local id, err = fn(cursor)
    if not id then failure = where("?", tostring(err)) return false end
    check(id)
  end

  RS.random_forks(main, rng, ROUNDS, step)
  assert.is_nil(failure)
  assert.is_true(store:check())
  store:close()
end

describe("ingestion resolves random forks as the model does", function()
  for _, version in ipairs({ "10", "12" }) do
    it("room version " .. version .. " (" .. SEEDS .. " seeds)", function()
      for seed = 1, SEEDS do run(version, seed * 7919) end
    end)
  end
end)
