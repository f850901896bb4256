-- Issue 11 §4.4: the reference consumer keeps each room's state hash by
-- adding and subtracting changed entries (roomstate.state_hash_update);
-- on seeded random inputs that hash always equals roomstate.state_hash over
-- the consumer's whole copy, and the store's hash when nothing was missed.
local roomstate = require "roomstate"
local Consumer = require "roomstate.consumer"
local G = require "streams"

local SEEDS = os.getenv("ROOMSTATE_SPEC_LIGHT") and 20 or 200

local function entries_of(set)
  local out = {}
  for k, ev in pairs(set) do
    out[#out + 1] = { type = "m.t" .. (k % 3), state_key = tostring(k), event_id = ev }
  end
  return out
end

describe("roomstate.state_hash_update", function()
  it("equals the hash of the whole state after random changes", function()
    for seed = 1, 300 do
      math.randomseed(seed)
      local set, hex, n = {}, roomstate.state_hash({}), 0
      for _ = 1, 30 do
        local gone, came = {}, {}
        for _ = 1, math.random(0, 6) do
          local k = math.random(1, 12)
          if set[k] then
            gone[#gone + 1] = entries_of({ [k] = set[k] })[1]
            set[k] = nil
          end
          if math.random() < 0.7 then
            n = n + 1
            set[k] = ("$e%d_%d"):format(seed, n)
            came[#came + 1] = entries_of({ [k] = set[k] })[1]
          end
        end
        hex = roomstate.state_hash_update(hex, gone, came)
        assert.equal(roomstate.state_hash(entries_of(set)), hex,
                     ("seed %d: incremental hash differs"):format(seed))
      end
    end
  end)

  it("takes either case and raises on caller mistakes, naming the argument", function()
    local e = { type = "m.room.topic", state_key = "", event_id = "$t" }
    local h = roomstate.state_hash({ e })
    assert.equal(h, roomstate.state_hash_update(h:upper(), {}, {}))
    assert.equal("0000000000000000", roomstate.state_hash_update(h, { e }, {}))
    local ok, err = pcall(function() local x = roomstate.state_hash_update("12", {}, {}); return x end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'state_hash_update'", err, 1, true)
    ok, err = pcall(function() local x = roomstate.state_hash_update(h, {}, { { type = "t" } }); return x end)
    assert.is_false(ok)
    assert.matches("bad argument #3 to 'state_hash_update'", err, 1, true)
    assert.has_error(function() roomstate.state_hash_update(h, nil, {}) end)
  end)
end)

describe("the reference consumer's kept hash", function()
  it("equals state_hash over its copy after every output (" .. SEEDS .. " seeds)", function()
    local checked, resynced = 0, 0
    for seed = 5001, 5000 + SEEDS do
      local store = assert(roomstate.open(":memory:"))
      local consumer = Consumer.new(store)
      -- every fifth seed the consumer misses one output that changes the
      -- state (the first from position 20), so its next mismatch resyncs
      -- the room from the store
      local miss = seed % 5 == 0 and 20 or nil
      local missed = false
      local failure
      store:subscribe("c", function(o)
        local ne = o.new_room_event
        if miss and not missed and o.position >= miss and ne and not ne.rewrites_state
           and #(ne.adds_state_event_ids or {}) + #(ne.removes_state_event_ids or {}) > 0 then
          missed = true
          return
        end
        consumer:apply(o)
        if o.type ~= "new_room_event" or failure then return end
        local rid = o.new_room_event.event.room_id
        local full = roomstate.state_hash(consumer:entries(rid))
        checked = checked + 1
        if consumer.hashes[rid] ~= full then
          failure = ("seed %d, output %d: kept %s, whole copy %s"):format(
            seed, o.position, tostring(consumer.hashes[rid]), full)
        elseif not miss and full ~= store:state_hash(rid) then
          failure = ("seed %d, output %d: copy hash differs from the store's"):format(seed, o.position)
        end
      end)
      assert.is_nil(G.run(store, seed, 50))
      assert.is_nil(failure)
      resynced = resynced + #consumer.resyncs
      if not miss then assert.same({}, consumer.resyncs) end
      store:close()
    end
    assert.is_true(checked > SEEDS * 40)
    assert.is_true(resynced > 0)
  end)
end)
