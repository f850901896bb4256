-- The per-handle cache of resolutions (csrc/resolve.c): a merge of input
-- states already resolved is not resolved again, and a rollback or a
-- purge forgets what the cache held. debug_counts() counts the
-- resolutions run and the merges the cache answered.
local roomstate = require "roomstate"
local harness = require "roomstate.harness"
local RS = require "resolve_support"

local function counts(store)
  local c = store:debug():debug_counts()
  return c.resolutions, c.resolution_hits
end

describe("the resolution cache", function()
  it("serves a repeated merge, and is emptied by a rollback and a purge", function()
    local store = assert(roomstate.open(":memory:"))
    local h = harness.new(store, { server = "x" })
    local main = assert(h:create_room("@alice:x"))
    local room = main.room
    local side = main:at(main.head[1])
    local a = assert(main:state("m.room.topic", "", { topic = "a" }))
    local runs0, hits0 = counts(store)
    local b = assert(side:state("m.room.name", "", { name = "b" }))
    -- the two extremities' states are resolved once
    local runs, hits = counts(store)
    assert.equal(runs0 + 1, runs)
    assert.equal(hits0, hits)
    local want = assert(store:resolve(room.id, { a, b }))
    runs = runs + 1 -- store:resolve runs its own, uncached

    local function merge(tag)
      local id, pdu = h:emit(room, { a, b }, { type = "m.room.message", content = { body = tag } },
                             { ingest = false })
      return id, pdu
    end
    local function ingest_merge(tag)
      local id, pdu = merge(tag)
      assert(store:ingest(pdu))
      assert.same(want, RS.ids_of(assert(store:state_before(id))), tag)
      return counts(store)
    end

    -- two merges of the same states: neither runs a resolution again
    local r1, h1 = ingest_merge("m1")
    assert.same({ runs, hits + 1 }, { r1, h1 })
    local r2, h2 = ingest_merge("m2")
    assert.same({ runs, hits + 2 }, { r2, h2 })

    -- a batch that fails rolls back, and the cache with it
    local _, pdu = merge("in a failed batch")
    local ok, _, code = store:ingest_batch({ { event = pdu }, { event = "not json" } })
    assert.is_nil(ok)
    assert.equal("NOT_JSON", code)
    local r3, h3 = ingest_merge("m3")
    assert.equal(r2 + 1, r3)
    assert.equal(h2 + 1, h3) -- the batch's merge was answered before the rollback

    -- a purge of any room empties it too
    local r4, h4 = ingest_merge("m4")
    assert.same({ r3, h3 + 1 }, { r4, h4 })
    local other = assert(h:create_room("@carol:x"))
    assert(store:purge_room(other.room.id))
    local r5, h5 = ingest_merge("m5")
    assert.same({ r4 + 1, h4 }, { r5, h5 })
    assert.is_true(store:check())
    store:close()
  end)
end)
