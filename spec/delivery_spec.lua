-- Issue 11 §4.2-3: delivery acknowledges once per batch and reuses the
-- outputs ingest just read, without ever skipping or reordering one.
local roomstate = require "roomstate"
local core = require "roomstate.core"
local harness = require "roomstate.harness"
local S = require "support"

-- Counts the reads of the output log while fn runs.
local function counting_reads(fn)
  local methods, orig, reads = core.Store, core.Store.outputs, 0
  methods.outputs = function(...) reads = reads + 1; return orig(...) end
  local ok, err = pcall(fn)
  methods.outputs = orig
  assert(ok, err)
  return reads
end

describe("delivery", function()
  local dir, path
  before_each(function() dir = S.tmpdir(); path = dir .. "/d.db" end)
  after_each(function() S.rmdir(dir) end)

  it("acknowledges a batch with one write, after its last callback", function()
    local store = assert(roomstate.open(path, { deliver = false }))
    local c = store:debug()
    local stored = {}
    store:subscribe("c", function() stored[#stored + 1] = c:consumer_get("c") end)
    assert(harness.new(store):create_room("@alice:x"))
    local delivered, errors = store:deliver()
    assert.is_nil(errors)
    assert.equal(5, delivered.c)
    -- while the batch ran nothing was written; then the position moved once
    assert.same({ 1, 1, 1, 1, 1 }, stored)
    assert.equal(6, c:consumer_get("c"))
    store:close()
  end)

  it("keeps the outputs before a raising callback acknowledged; it and later ones come again", function()
    local store = assert(roomstate.open(path, { deliver = false }))
    local seen, failed = {}, false
    store:subscribe("c", function(o)
      if o.position == 3 and not failed then failed = true; error("down at 3") end
      seen[#seen + 1] = o.position
    end)
    assert(harness.new(store):create_room("@alice:x"))
    local delivered, errors = store:deliver()
    assert.equal(2, delivered.c)
    assert.equal(3, errors.c.position)
    assert.equal("CALLBACK", errors.c.code)
    assert.matches("down at 3", errors.c.error)
    assert.equal(3, store:debug():consumer_get("c"))
    -- a later process resumes at the failed output, not after it
    store:close()
    store = assert(roomstate.open(path, { deliver = false }))
    store:subscribe("c", function(o) seen[#seen + 1] = o.position end)
    delivered, errors = store:deliver()
    assert.is_nil(errors)
    assert.equal(3, delivered.c)
    assert.same({ 1, 2, 3, 4, 5 }, seen)
    store:close()
  end)

  it("after ingest, delivers from the outputs it just read", function()
    local store = assert(roomstate.open(path))
    local got = {}
    store:subscribe("c", function(o) got[#got + 1] = o.position end)
    local h = harness.new(store)
    local room = assert(h:create_room("@alice:x"))
    local res
    local reads = counting_reads(function() res = assert(room:send("hi")) end)
    -- one read for the result, one finding nothing after it: none again
    assert.equal(2, reads)
    assert.same({ 1, 2, 3, 4, 5, 6 }, got)
    store:close()
    assert(res)
  end)

  it("delivers in order to consumers at different positions, with outputs another handle wrote", function()
    local store = assert(roomstate.open(path))
    local other = assert(roomstate.open(path, { deliver = false }))
    local got = { current = {}, behind = {}, ahead = {}, b_tail = {} }
    local function rec(name) return function(o) table.insert(got[name], o.position) end end
    store:subscribe("current", rec("current"))
    local room = assert(harness.new(store):create_room("@alice:x"))          -- 1..5
    local room2 = assert(harness.new(other, { server = "other" }):create_room("@bob:x")) -- 6..10
    store:subscribe("behind", rec("behind"), { from = 3 })
    store:subscribe("ahead", rec("ahead"), { from = 13 })
    -- delivered first (by name): writes 12 from the other handle after
    -- ingest read 11, so b_tail, caught up at 11, must read 12 as well
    local wrote = false
    store:subscribe("a_writer", function(o)
      if o.position == 11 and not wrote then wrote = true; assert(room2:send("meanwhile")) end
    end, { from = 11 })
    store:subscribe("b_tail", rec("b_tail"), { from = 11 })
    assert(room:send("one"))                                                 -- 11, then 12
    assert(room:send("two"))                                                 -- 13
    local function range(a, b) local t = {} for i = a, b do t[#t + 1] = i end return t end
    assert.same(range(1, 13), got.current)
    assert.same(range(3, 13), got.behind)
    assert.same({ 13 }, got.ahead)
    assert.same(range(11, 13), got.b_tail)
    for _, name in ipairs({ "current", "behind", "ahead", "a_writer", "b_tail" }) do
      assert.equal(14, store:debug():consumer_get(name))
    end
    other:close()
    store:close()
  end)
end)
