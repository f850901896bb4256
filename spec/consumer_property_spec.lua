-- Issue 4 §6: 1,000 seeded random streams of 50+ events through the
-- reference consumer; after every output its copy equals the store's
-- current state and the state hash matches. The first divergence is
-- reported with its seed.
local roomstate = require "roomstate"
local Consumer = require "roomstate.consumer"
local G = require "streams"
local M = require "model"

-- Under valgrind (ROOMSTATE_SPEC_LIGHT) a tenth of the seeds run.
local SEEDS = os.getenv("ROOMSTATE_SPEC_LIGHT") and 100 or 1000

describe("the reference consumer on random streams", function()
  it("never diverges (" .. SEEDS .. " seeds x 50 events)", function()
    local outputs, rewrites = 0, 0
    for seed = 1001, 1000 + SEEDS do
      local store = assert(roomstate.open(":memory:"))
      local consumer = Consumer.new(store)
      local divergence
      store:subscribe("oracle", function(o)
        consumer:apply(o)
        outputs = outputs + 1
        if o.type ~= "new_room_event" then return end
        local ne = o.new_room_event
        if ne.rewrites_state then rewrites = rewrites + 1 end
        local rid = ne.event.room_id
        if #consumer.resyncs > 0 and not divergence then
          local r = consumer.resyncs[1]
          divergence = ("seed %d, output %d: state_hash %s, consumer had %s"):format(
            seed, r.position, r.expected, r.had)
        end
        local want = M.from_state(store:current_state(rid))
        if not divergence and not M.same(want, consumer.rooms[rid]) then
          divergence = ("seed %d, output %d: %s"):format(seed, o.position,
                                                         M.describe_diff(want, consumer.rooms[rid]))
        end
        if not divergence and ne.state_hash ~= store:state_hash(rid) then
          divergence = ("seed %d, output %d: hash differs from the store's"):format(seed, o.position)
        end
      end)
      local failure = G.run(store, seed, 50)
      assert.is_nil(failure)
      assert.is_nil(divergence)
      store:close()
    end
    print(("\n%d outputs, %d rewrites checked"):format(outputs, rewrites))
    assert.is_true(outputs > SEEDS * 40)
    assert.is_true(rewrites > SEEDS / 10)
  end)
end)
