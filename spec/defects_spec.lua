-- Issue 11 §5: defects found in review, each kept fixed by a spec here.
local roomstate = require "roomstate"
local harness = require "roomstate.harness"
local S = require "support"

describe("issue 11 defects", function()
  it("a raising ingest_batch does not leave the store in batch mode", function()
    local store = assert(roomstate.open(":memory:"))
    assert.has_error(function() store:ingest_batch({ { event = S.pdu() }, 42 }) end)
    local res, err, code = store:ingest("{")
    assert.is_nil(res)
    assert.equal("NOT_JSON", code)
    assert.not_matches("item 1", err, 1, true)
    store:close()
  end)
end)
