-- Issue 12 §3 and §4: ingest with authorize against the naive model
-- (spec/auth_model.lua), over seeded random rooms (spec/auth_streams.lua):
-- each candidate cites the auth events the selection picks from the room's
-- state and goes through store:ingest; the store must accept exactly what
-- the model accepts, reject the rest with the model's code, and its
-- current state must be the model's after every event. A v12 room's
-- create event states no room_id: the store names the room by its ID.
local roomstate = require "roomstate"
local model = require "auth_model"
local streams = require "auth_streams"

local LIGHT = os.getenv("ROOMSTATE_SPEC_LIGHT")
local SEEDS = LIGHT and 2 or 6
local STEPS = LIGHT and 40 or 120

local code_of = streams.code_of

-- v1 and v2 cite events as [id, hashes] pairs
local function shaped(v, ids)
  if v ~= "1" and v ~= "2" then return ids end
  local out = {}
  for i = 1, #ids do out[i] = { ids[i], { sha256 = "x" } } end
  return out
end

local function pdu_of(room, v, ev, list)
  local auth = {}
  for _, a in ipairs(list) do
    if a ~= room.create or v ~= "12" then auth[#auth + 1] = a.event_id end
  end
  local pdu = {}
  for k, x in pairs(ev) do pdu[k] = x end
  pdu.depth = pdu.depth or 1
  pdu.prev_events = shaped(v, ev.prev_events)
  pdu.auth_events = shaped(v, auth)
  return pdu
end

-- The store's current state against the room's: same event per key.
local function same_state(store, room)
  local st = assert(store:current_state(room.room_id))
  local n = 0
  for t, k, id in st:entries() do
    n = n + 1
    local e = room.state[streams.key(t, k)]
    assert(e and e.event_id == id, ("state %s/%s: store %s, model %s"):format(
      t, k, id, e and e.event_id or "none"))
  end
  local m = 0
  for _ in pairs(room.state) do m = m + 1 end
  assert.equal(m, n)
end

-- One candidate through the model and the store; the store must agree.
local function step(store, room, v, seed, ev)
  local list, map = room:auth_for(ev)
  local m_ok, m_reason = model.check(v, ev, map)
  local res, err = store:ingest(pdu_of(room, v, ev, list))
  assert(res, err)
  local got = code_of(res.rejected)
  assert(not res.soft_failed, res.soft_failed)
  if (got == nil) ~= (m_ok == true) or got ~= code_of(m_reason) then
    error(("v%s seed %d %s (%s by %s): store %s, model %s"):format(v, seed,
      ev.event_id, ev.type, ev.sender, tostring(res.rejected or "accepted"),
      tostring(m_reason or "accepted")))
  end
  if m_ok then room:accept(ev) end
  return m_ok
end

-- The creator's state events, enough for the room's state to pass the size
-- and the run of events after which a handle keeps a map of its current
-- state (csrc/current_index.h: 512 entries, 64 events).
local function prefill(store, room, v, seed, n)
  for i = 1, n do
    local ev = { type = "m.room.custom", state_key = "k" .. i, sender = "@u1:x",
                 room_id = room.room_id, event_id = room:next_id(),
                 prev_events = { room.last }, auth_events = {}, depth = room.n + 1,
                 content = { body = "x" } }
    assert(step(store, room, v, seed, ev), "the creator's state event is allowed")
  end
end

-- STEPS random candidates; the rejected count. The store ends as the model.
local function stream(store, room, v, seed)
  local rejected = 0
  for _ = 1, STEPS do
    if not step(store, room, v, seed, room:candidate()) then rejected = rejected + 1 end
  end
  same_state(store, room)
  assert.is_true(store:check())
  return rejected
end

describe("ingest with authorize against the naive model", function()
  for _, v in ipairs(roomstate.room_versions()) do
    it("stores every verdict the model gives, room version " .. v, function()
      local rejected = 0
      for seed = 1, SEEDS do
        local room = streams.seeded_room(v, seed * 977 + tonumber(v))
        local store = assert(roomstate.open(":memory:", { authorize = true }))
        local created = assert(store:ingest(pdu_of(room, v, room.create, {})))
        assert.equal(room.room_id, created.room_id)
        rejected = rejected + stream(store, room, v, seed)
        store:close()
      end
      assert.is_true(rejected > 0, "no event was rejected")
    end)
  end

  -- 600 events a room: the light runs (valgrind, GC stress) take two versions
  local MAPPED = LIGHT and { "10", "12" } or { "1", "6", "10", "11", "12" }
  for _, v in ipairs(MAPPED) do
    it("agrees in a room whose current state the handle maps, room version " .. v, function()
      local rejected = 0
      for seed = 1, 2 do
        local room = streams.seeded_room(v, seed * 131 + tonumber(v))
        local store = assert(roomstate.open(":memory:", { authorize = true }))
        assert(store:ingest(pdu_of(room, v, room.create, {})))
        for _ = 1, 2 do step(store, room, v, seed, room:candidate()) end
        prefill(store, room, v, seed, 600)
        local hits = store:debug():debug_counts().current_hits
        rejected = rejected + stream(store, room, v, seed)
        assert.is_true(store:debug():debug_counts().current_hits > hits,
          "the map answered the random events' lookups")
        store:close()
      end
      assert.is_true(rejected > 0, "no event was rejected")
    end)
  end
end)
