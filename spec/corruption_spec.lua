-- Issue 14 §1.4: a corrupted row is an error, never an answer. Before
-- schema 6, a changed entry count made count() wrong without an error,
-- and a changed byte of a block or output was served as it was.
local roomstate = require "roomstate"
local harness = require "roomstate.harness"
local S = require "support"

describe("corrupted rows", function()
  local dir, path, room_id

  before_each(function()
    dir = S.tmpdir()
    path = dir .. "/c.db"
    local store = assert(roomstate.open(path))
    local room = assert(harness.new(store, { seed = "c" }):create_room("@a:x"))
    -- enough members for the state to be stored in blocks, not inline
    assert(S.join_many(store, room, 300))
    assert(room:send("hi"))
    room_id = room.room.id
    store:close()
  end)
  after_each(function() S.rmdir(dir) end)

  local function reopened(sql)
    S.sql_value(path, sql)
    return assert(roomstate.open(path))
  end

  it("a snapshot's entry count changed: count() fails, it does not miscount", function()
    local store = reopened("UPDATE snapshots SET nentries = nentries + 1 WHERE nid = " ..
                           "(SELECT current_snap FROM rooms WHERE created = 1)")
    local st = store:current_state(room_id)
    local n, err, code
    if st then n, err, code = st:count() else err, code = select(2, store:current_state(room_id)) end
    assert.is_nil(n)
    assert.equal("CORRUPT", code)
    assert.matches("checksum", err)
    store:close()
  end)

  it("a block's byte changed: the state does not load", function()
    assert.equal("1", S.sql_value(path, "SELECT count(*) > 0 FROM blocks"))
    local store = reopened("UPDATE blocks SET data = substr(data, 1, length(data) - 1) || " ..
                           "x'7f' WHERE nid = (SELECT max(nid) FROM blocks)")
    local ok, err = store:check()
    assert.is_nil(ok)
    assert.matches("content hash", err)
    store:close()
  end)

  it("an output's byte changed: outputs fail to read, naming the position", function()
    local store = reopened("UPDATE outputs SET data = substr(data, 1, length(data) - 1) || " ..
                           "x'7e' WHERE position = 3")
    local list, err, code = store:outputs_json(1, 100)
    assert.is_nil(list)
    assert.equal("CORRUPT", code)
    assert.matches("output 3", err)
    assert.is_nil((store:check()))
    store:close()
  end)

  -- Rows the corruption campaign (tests/torture/corrupt.sh) found served
  -- as they were, with check() passing.
  local function check_fails(sql, want)
    local store = reopened(sql)
    local ok, err = store:check()
    assert.is_nil(ok)
    assert.matches(want, err)
    store:close()
  end

  it("a message's state after moved to another snapshot: check() fails", function()
    check_fails("UPDATE events SET after_snap = (SELECT min(nid) FROM snapshots WHERE " ..
                "room_nid > 0) WHERE key_nid = 0 AND kind > 0",
                "non%-state event's state after is not its state before")
  end)

  it("a stored event's JSON removed: check() fails", function()
    check_fails("UPDATE events SET json = NULL WHERE nid = (SELECT max(nid) FROM events)",
                "a stored event has no JSON")
  end)

  it("a room's created flag cleared: check() fails", function()
    check_fails("UPDATE rooms SET created = 0", "events of a room that was never created")
  end)

  it("a room's version changed: check() fails", function()
    check_fails("UPDATE rooms SET version = '1' || x'1c'", "a room's version is unknown")
  end)

  -- The last event is a message, so the join before it has the same state
  -- after: only the edge tells that the join is no longer an extremity.
  it("an extremity replaced by its parent of equal state: check() fails", function()
    local last = tonumber(S.sql_value(path, "SELECT max(nid) FROM events WHERE kind = 3"))
    local parent = tonumber(S.sql_value(path, "SELECT x.nid FROM events e, events x WHERE " ..
      "e.nid = " .. last .. " AND x.event_id = json_extract(CAST(e.json AS TEXT), '$.prev_events[0]')"))
    assert.equal(S.sql_value(path, "SELECT after_snap FROM events WHERE nid = " .. last),
                 S.sql_value(path, "SELECT after_snap FROM events WHERE nid = " .. parent))
    local bytes, v = { "01" }, parent
    while v >= 0x80 do
      bytes[#bytes + 1] = string.format("%02x", v % 0x80 + 0x80)
      v = math.floor(v / 0x80)
    end
    bytes[#bytes + 1] = string.format("%02x00", v)
    -- written as into a schema-6 file, so that the row's own sum (schema 7)
    -- holds and only the extremity check can see it
    S.sql_as_schema6(path, "UPDATE rooms SET extremities = x'" .. table.concat(bytes) ..
                     "' WHERE created = 1 AND current_snap = (SELECT after_snap FROM " ..
                     "events WHERE nid = " .. last .. ")")
    local store = assert(roomstate.open(path))
    local ok, err = store:check()
    assert.is_nil(ok)
    assert.matches("an extremity has an accepted child", err)
    store:close()
  end)

  -- Schema 7: the rows that map strings to numeric IDs carry a checksum.
  -- Each change below renamed or renumbered something in every answer,
  -- every row still consistent with the others, and check() passed.
  local function fails_corrupt(store, fn)
    local ok, v, err, code = pcall(fn, store)
    assert.is_true(ok, v) -- an error return, never a raise
    assert.is_nil(v)
    assert.equal("CORRUPT", code)
    assert.matches("checksum", err)
  end
  local function entries_of(s)
    local st = assert(s:current_state(room_id))
    return st:entries()
  end
  local function sum_caught(sql, want_check, read)
    local store = reopened(sql)
    if read then fails_corrupt(store, read) end
    local ok, err = store:check()
    assert.is_nil(ok)
    assert.matches("checksum", err)
    assert.matches(want_check, err)
    store:close()
  end

  it("an event type renamed: the state does not render, check() fails", function()
    sum_caught("UPDATE event_types SET name = 'm.room.creatf' WHERE name = 'm.room.create'",
               "event type", entries_of)
  end)

  it("an event type's ID moved: the state read is CORRUPT, not a raise", function()
    local store = reopened("UPDATE event_types SET nid = 1000 WHERE name = 'm.room.member'")
    local ok, it, err, code = pcall(entries_of, store)
    assert.is_true(ok, it)
    assert.is_nil(it)
    assert.equal("CORRUPT", code)
    assert.matches("event type 5", err)
    assert.matches("checksum: event type", select(2, store:check()))
    store:close()
  end)

  it("a state key renamed: members() is CORRUPT, check() fails", function()
    sum_caught("UPDATE state_keys SET key = '@mallory:x' WHERE nid = " ..
               "(SELECT max(nid) FROM state_keys)", "state key",
               function(s) return s:members(room_id, "join") end)
  end)

  it("a room renamed: rooms() is CORRUPT, check() fails", function()
    sum_caught("UPDATE rooms SET room_id = room_id || 'x'", "room 1",
               function(s) return s:rooms() end)
  end)

  it("an event renamed: latest_events() is CORRUPT, check() fails", function()
    sum_caught("UPDATE events SET event_id = '$forged' WHERE nid = (SELECT max(nid) FROM events)",
               "event %d+", function(s) return s:latest_events(room_id) end)
  end)

  it("an event's kind set to 0: its reads are CORRUPT, not NOT_FOUND; check() fails", function()
    local id = S.sql_value(path, "SELECT event_id FROM events WHERE nid = (SELECT max(nid) FROM events)")
    sum_caught("UPDATE events SET kind = 0 WHERE nid = (SELECT max(nid) FROM events)", "event %d+",
               function(s) return s:state_after(id) end)
    for _, read in ipairs({ function(s) return s:event(id) end,
                            function(s) return s:event_status(id) end }) do
      local store = assert(roomstate.open(path))
      fails_corrupt(store, read)
      store:close()
    end
  end)

  it("a block's ID moved: a point lookup is CORRUPT, never an absent key", function()
    local store = reopened("UPDATE blocks SET nid = nid + 1000 WHERE nid = (SELECT max(nid) FROM blocks)")
    local st = assert(store:current_state(room_id))
    local corrupt = 0
    for _, user in ipairs(assert(store:members(room_id, "join"))) do
      local ev, err, code = st:get("m.room.member", user)
      assert.is_true(ev ~= nil or code == "CORRUPT", err)
      if code == "CORRUPT" then corrupt = corrupt + 1 end
    end
    assert.is_true(corrupt > 0)
    store:close()
  end)

  it("a byte of an event's JSON changed: event() is CORRUPT, check() fails", function()
    local id = S.sql_value(path, "SELECT event_id FROM events WHERE nid = (SELECT max(nid) FROM events)")
    sum_caught("UPDATE events SET json = CAST(replace(CAST(json AS TEXT), '\"hi\"', '\"ho\"') " ..
               "AS BLOB) WHERE nid = (SELECT max(nid) FROM events)", "JSON of event",
               function(s) return s:event(id) end)
  end)

  it("a consumer's position moved: it reads CORRUPT, check() fails", function()
    local store = assert(roomstate.open(path))
    assert(store:debug():consumer_set("c", 3))
    store:close()
    sum_caught("UPDATE consumers SET next = 1", "consumer",
               function(s) return s:debug():consumer_get("c") end)
  end)

  it("a consumer renamed: check() fails", function()
    local store = assert(roomstate.open(path))
    assert(store:debug():consumer_set("c", 3))
    store:close()
    sum_caught("UPDATE consumers SET name = 'd'", "consumer")
  end)

  it("an untouched file reads and checks", function()
    local store = assert(roomstate.open(path))
    assert.equal(305, store:current_state(room_id):count())
    assert.truthy(store:outputs_json(1, 100))
    assert.is_true(store:check())
    store:close()
  end)
end)
