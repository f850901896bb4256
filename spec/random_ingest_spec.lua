-- Issue 3 §6: seeded random rooms; after every event, state_before,
-- state_after and current_state equal a naive replay.
local roomstate = require "roomstate"
local G = require "streams"
local M = require "model"

local SEEDS = os.getenv("ROOMSTATE_SPEC_LIGHT") and 10 or 60

describe("random streams against the naive model", function()
  it("agree on every state, at every event (" .. SEEDS .. " seeds, 150 events each)", function()
    for seed = 1, SEEDS do
      local store = assert(roomstate.open(":memory:"))
      local failure = G.run(store, seed, 150, function(id, kind, model, room_id)
        if kind == "outlier" then return true end
        local want_b, want_a = model.before[id], model.after[id]
        if want_b then
          local got = M.from_state(assert(store:state_before(id)))
          if not M.same(want_b, got) then return false, "state_before: " .. M.describe_diff(want_b, got) end
          got = M.from_state(assert(store:state_after(id)))
          if not M.same(want_a, got) then return false, "state_after: " .. M.describe_diff(want_a, got) end
        end
        local cur = model.rooms[room_id].current
        local got = M.from_state(assert(store:current_state(room_id)))
        if not M.same(cur, got) then return false, "current: " .. M.describe_diff(cur, got) end
        local ext = {}
        for e in pairs(model.rooms[room_id].ext) do ext[#ext + 1] = e end
        table.sort(ext)
        local latest = store:latest_events(room_id)
        if table.concat(ext, ",") ~= table.concat(latest, ",") then
          return false, "extremities: want " .. table.concat(ext, ",") .. " got " .. table.concat(latest, ",")
        end
        return true
      end)
      assert.is_nil(failure)
      local ok, err = store:check()
      assert.is_true(ok, err)
      store:close()
    end
  end)
end)

describe("bounded caches", function()
  it("give the same answers when they hold almost nothing", function()
    for seed = 61, 64 do
      local tiny = assert(roomstate.open(":memory:", { id_cache_entries = 2, block_cache_bytes = 300 }))
      local failure = G.run(tiny, seed, 200, function(id, kind, model, room_id)
        if kind == "outlier" then return true end
        local cur = model.rooms[room_id].current
        local got = M.from_state(assert(tiny:current_state(room_id)))
        if not M.same(cur, got) then return false, "current: " .. M.describe_diff(cur, got) end
        if model.after[id] then
          got = M.from_state(assert(tiny:state_after(id)))
          if not M.same(model.after[id], got) then return false, "after: " .. M.describe_diff(model.after[id], got) end
        end
        return true
      end)
      assert.is_nil(failure)
      assert.is_true(tiny:check())
      tiny:close()
    end
  end)
end)
