-- Issue 14 §1.5: a database file deleted or replaced while a handle has
-- it open. Before, ingests went on into the unlinked inode, and a file
-- moved over the path got the old handle's WAL replayed onto it. Now
-- every write transaction first checks that the path still names the
-- file opened (device and inode) and fails with FILE_REPLACED.
local roomstate = require "roomstate"
local harness = require "roomstate.harness"
local S = require "support"

describe("a database file replaced while open", function()
  local dir
  before_each(function() dir = S.tmpdir() end)
  after_each(function() S.rmdir(dir) end)

  local function room_in(path, seed)
    local store = assert(roomstate.open(path))
    local room = assert(harness.new(store, { seed = seed }):create_room("@a:x"))
    return store, room
  end

  it("refuses to write after the file is deleted", function()
    local path = dir .. "/a.db"
    local store, room = room_in(path, "a")
    os.remove(path)
    local id, err, code = room:send("into an unlinked file")
    assert.is_nil(id)
    assert.equal("FILE_REPLACED", code)
    assert.matches(path, err, 1, true)
    assert.matches("deleted", err)
    store:close()
  end)

  it("refuses to write after another database is moved over it, and leaves that one whole",
     function()
    local path, other = dir .. "/a.db", dir .. "/b.db"
    local store, room = room_in(path, "a")
    assert(room:send("before"))
    local b_store = room_in(other, "b")
    local b_rooms = b_store:rooms()
    local b_hash = b_store:state_hash(b_rooms[1])
    b_store:close()
    assert(os.rename(other, path))
    local id, err, code = room:send("after the move")
    assert.is_nil(id)
    assert.equal("FILE_REPLACED", code)
    assert.matches("replaced", err)
    store:close()
    -- the moved file is as it was: the old handle wrote nothing into it
    local again = assert(roomstate.open(path))
    assert.same(b_rooms, again:rooms())
    assert.equal(b_hash, again:state_hash(b_rooms[1]))
    assert.is_true(again:check())
    again:close()
  end)

  it("leaves a file moved over it whole when the handle only closes", function()
    local path, other = dir .. "/a.db", dir .. "/b.db"
    local store, room = room_in(path, "a")
    assert(room:send("in the WAL, not yet in the file"))
    local b_store = room_in(other, "b")
    local b_rooms = b_store:rooms()
    b_store:close()
    assert(os.rename(other, path))
    store:close()
    local again = assert(roomstate.open(path))
    assert.same(b_rooms, again:rooms())
    assert.is_true(again:check())
    again:close()
  end)

  it("keeps working when nothing happened to the file", function()
    local store, room = room_in(dir .. "/a.db", "a")
    for i = 1, 3 do assert(room:send("m" .. i)) end
    store:close()
  end)
end)
