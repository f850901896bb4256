-- Issue 2: the store as userdata, numeric IDs, blocks and snapshots.
local roomstate = require "roomstate"
local cjson = require "cjson"
local harness = require "roomstate.harness"

-- How many members of a fixture's expected state before its event the
-- store gives the same event for (each must match).
local function members_match(store, expect)
  local st = assert(store:state_before(expect.event))
  local n = 0
  for user, ev in pairs(expect.members) do
    assert.equal(ev, st:get("m.room.member", user))
    n = n + 1
  end
  return n
end
local S = require "support"

describe("roomstate.open", function()
  it("opens :memory: and closes idempotently", function()
    local store = assert(roomstate.open(":memory:"))
    assert.matches("roomstate.Store", tostring(store))
    store:close()
    store:close()
    assert.is_true(store:is_closed())
  end)

  it("raises when a closed store is used", function()
    local store = assert(roomstate.open(":memory:"))
    store:close()
    assert.has_error(function() store:current_state("!r:x") end)
    assert.has_error(function() store:ingest(S.pdu()) end)
  end)

  it("raises on wrong argument types", function()
    assert.has_error(function() roomstate.open(42) end)
    assert.has_error(function() roomstate.open(":memory:", "fast") end)
    assert.has_error(function() roomstate.open(":memory:", { synchronous = "sometimes" }) end)
    local store = assert(roomstate.open(":memory:"))
    assert.has_error(function() store:current_state(nil) end)
    assert.has_error(function() store:ingest(42) end)
    assert.has_error(function() store:ingest(S.pdu(), { kind = "weird" }) end)
    assert.has_error(function() store:ingest(S.pdu(), { state = "x" }) end)
    assert.has_error(function() store:ingest(S.pdu(), { kind = "outlier", state = {} }) end)
    assert.has_error(function() store:outputs("1") end)
    store:close()
  end)

  it("returns nil, err for a path that cannot be opened", function()
    local store, err, code = roomstate.open("/nonexistent-dir/x/y.db")
    assert.is_nil(store)
    assert.equal("OPEN", code)
    assert.matches("/nonexistent-dir/x/y.db", err, 1, true)
  end)

  it("refuses a foreign file and leaves it byte for byte as it was", function()
    local dir = S.tmpdir()
    local path = dir .. "/notes.txt"
    local text = ("not a database\n"):rep(100)
    S.write(path, text)
    local store, err, code = roomstate.open(path)
    assert.is_nil(store)
    assert.equal("NOT_ROOMSTATE", code)
    assert.matches(path, err, 1, true)
    assert.equal(text, S.read(path))
    -- an SQLite file of another application is refused too
    local other = dir .. "/other.db"
    assert(os.execute("sqlite3 " .. other .. " 'CREATE TABLE t(x); INSERT INTO t VALUES(1)'"))
    local before = S.read(other)
    store, err, code = roomstate.open(other)
    assert.is_nil(store)
    assert.equal("NOT_ROOMSTATE", code)
    assert.equal(before, S.read(other))
    S.rmdir(dir)
  end)

  it("refuses a database from a newer schema version, untouched", function()
    local dir = S.tmpdir()
    local path = dir .. "/new.db"
    local store = assert(roomstate.open(path))
    store:close()
    assert(os.execute("sqlite3 " .. path .. " 'PRAGMA user_version=99' >/dev/null"))
    local before = S.read(path)
    local s2, err, code = roomstate.open(path)
    assert.is_nil(s2)
    assert.equal("SCHEMA_VERSION", code)
    assert.matches("99", err)
    assert.equal(before, S.read(path))
    S.rmdir(dir)
  end)

  it("migrates a file written by the schema-v1 library, keeping every state", function()
    local dir = S.tmpdir()
    local path = dir .. "/v1.db"
    S.write(path, S.read("spec/fixtures/schema_v1.db"))
    local expect = cjson.decode(S.read("spec/fixtures/schema_v1.json"))
    local store = assert(roomstate.open(path))
    assert.equal("12", S.sql_value(path, "PRAGMA user_version"))
    assert.is_true(store:check())
    local function dump(state)
      local t = {}
      for etype, key, ev in state:entries() do t[etype .. "\0" .. key] = ev end
      return t
    end
    for id, want in pairs(expect.before) do assert.same(want, dump(store:state_before(id))) end
    assert.same(expect.current, dump(store:current_state(expect.room)))
    assert.same(expect.members, store:members(expect.room))
    -- the old library's outputs, byte for byte, but for the event_id each
    -- output now names beside its event
    local text = store:outputs_json(1, 10000)
    local named = 0
    for _, o in ipairs(cjson.decode(text)) do
      local body = o.new_room_event or o.old_room_event
      named = named + #(',"event_id":' .. cjson.encode(body.event_id))
    end
    assert.equal(expect.outputs, #text - named)
    -- and it takes new events on top of the old rows
    local latest = store:latest_events(expect.room)
    local join = {
      event_id = "$after-migration:example.org", room_id = expect.room,
      sender = "@late:example.org", type = "m.room.member", state_key = "@late:example.org",
      content = { membership = "join" }, prev_events = latest,
      depth = 1000, origin_server_ts = 1800000000000,
    }
    join.auth_events = S.auth_events(store, expect.room, join)
    assert(store:ingest(join))
    assert.equal(join.event_id, store:current_state(expect.room):get("m.room.member", "@late:example.org"))
    assert.equal(#expect.members + 1, #store:members(expect.room))
    assert.is_true(store:check())
    -- a member whose row predates schema v4 (it keeps no hash term) leaves
    local old = expect.members[1]
    assert.equal("0", S.sql_value(path, "SELECT count(*) FROM members WHERE event_nid != 0 " ..
      "AND user_nid = (SELECT nid FROM state_keys WHERE key = '" .. old .. "')"))
    local leave = {
      event_id = "$leave-after-migration:example.org", room_id = expect.room,
      sender = old, type = "m.room.member", state_key = old,
      content = { membership = "leave" }, prev_events = { join.event_id },
      depth = 1001, origin_server_ts = 1800000000001,
    }
    leave.auth_events = S.auth_events(store, expect.room, leave)
    assert(store:ingest(leave))
    assert.is_true(store:check())
    local st = store:current_state(expect.room)
    local entries = {}
    for etype, key, ev in st:entries() do
      entries[#entries + 1] = { type = etype, state_key = key, event_id = ev }
    end
    assert.equal(roomstate.state_hash(entries), store:state_hash(expect.room))
    store:close()
    S.rmdir(dir)
  end)

  it("migrates a schema-v6 file: the same answers, and every ID row summed", function()
    local dir = S.tmpdir()
    local path = dir .. "/v6.db"
    local fixture = S.read("spec/fixtures/schema_v6.db")
    S.write(path, fixture)
    local expect = cjson.decode(S.read("spec/fixtures/schema_v6.json"))
    local store = assert(roomstate.open(path))
    assert.equal("12", S.sql_value(path, "PRAGMA user_version"))
    assert.is_true(store:check())
    local t = {}
    for etype, key, ev in store:current_state(expect.room):entries() do t[etype .. "\0" .. key] = ev end
    assert.same(expect.current, t)
    assert.same(expect.rooms, store:rooms())
    assert.same(expect.members, store:members(expect.room, "join"))
    assert.same(expect.latest, store:latest_events(expect.room))
    assert.equal(expect.outputs, store:outputs_json(1, 10000))
    assert.equal(expect.consumer, store:debug():consumer_get("reader"))
    for id, json in pairs(expect.events) do assert.equal(json, store:event(id)) end
    store:close()
    -- the migration summed the rows already there: a changed one is caught
    for _, sql in ipairs({
      "UPDATE rooms SET room_id = room_id || 'x' WHERE nid = 1",
      "UPDATE event_types SET name = 'm.room.topix' WHERE name = 'm.room.topic'",
      "UPDATE state_keys SET key = '@user9:example.orh' WHERE key = '@user9:example.org'",
      "UPDATE events SET event_id = event_id || 'x' WHERE nid = 2",
      "UPDATE events SET json = CAST(replace(CAST(json AS TEXT), 'hello', 'hellp') AS BLOB) " ..
        "WHERE event_id = '$v6-50-msg:example.org'",
      "UPDATE consumers SET next = next + 1",
    }) do
      S.write(path, fixture)
      os.remove(path .. "-wal"); os.remove(path .. "-shm")
      assert(roomstate.open(path)):close() -- migrates
      S.sql_value(path, sql)
      local s2 = assert(roomstate.open(path))
      local ok, err = s2:check()
      assert.is_nil(ok, sql)
      assert.matches("checksum", err)
      s2:close()
    end
    S.rmdir(dir)
  end)

  it("migrates a schema-v8 file to word-wise JSON sums, keeping a changed JSON caught", function()
    local dir = S.tmpdir()
    local path = dir .. "/v8.db"
    local fixture = S.read("spec/fixtures/schema_v8.db")
    local expect = cjson.decode(S.read("spec/fixtures/schema_v8.json"))
    S.write(path, fixture)
    local store = assert(roomstate.open(path))
    assert.equal("12", S.sql_value(path, "PRAGMA user_version"))
    assert.is_true(store:check())
    local n = 0
    for id, json in pairs(expect.events) do
      assert.equal(json, store:event(id))
      n = n + 1
    end
    assert.equal(34, n)
    store:close()
    -- a JSON changed in the v8 file, its old sum left: the migration must
    -- not sum it anew, so the read and check() still refuse it
    S.write(path, fixture)
    local victim = "$v8-34-msg:example.org"
    assert.is_string(expect.events[victim])
    S.sql_value(path, "UPDATE events SET json = CAST(replace(CAST(json AS TEXT), " ..
      "'xxxxxxxxxxxxxxxxxxxxxxxx', 'xxxxxxxxxxxxxxxxxxxxxxxy') AS BLOB) " ..
      "WHERE event_id = '" .. victim .. "'")
    local s2 = assert(roomstate.open(path))
    assert.equal("12", S.sql_value(path, "PRAGMA user_version"))
    local ok, err = s2:check()
    assert.is_nil(ok)
    assert.matches("checksum", err)
    local json, jerr, code = s2:event(victim)
    assert.is_nil(json)
    assert.equal("CORRUPT", code, jerr)
    for id, j in pairs(expect.events) do
      if id ~= victim then assert.equal(j, s2:event(id)) end
    end
    s2:close()
    S.rmdir(dir)
  end)

  it("migrates a schema-v9 file to word-wise block hashes, keeping a changed block caught", function()
    local dir = S.tmpdir()
    local path = dir .. "/v9.db"
    local fixture = S.read("spec/fixtures/schema_v9.db")
    local expect = cjson.decode(S.read("spec/fixtures/schema_v9.json"))
    local hashes = "SELECT group_concat(hash, ' ') FROM (SELECT hash FROM blocks ORDER BY nid)"
    S.write(path, fixture)
    local old = {}
    for h in S.sql_value(path, hashes):gmatch("%S+") do old[#old + 1] = h end
    assert.equal(6, #old)
    local store = assert(roomstate.open(path))
    assert.equal("12", S.sql_value(path, "PRAGMA user_version"))
    local i = 0
    for h in S.sql_value(path, hashes):gmatch("%S+") do
      i = i + 1
      assert.not_equal(old[i], h) -- every block hashed anew
    end
    assert.equal(6, i)
    assert.is_true(store:check())
    assert.equal(200, members_match(store, expect))
    store:close()
    -- a block changed in the v9 file, its old hash left: the migration must
    -- not hash it anew, so the read and check() still refuse it
    S.write(path, fixture)
    S.sql_value(path, "UPDATE blocks SET data = substr(data, 1, length(data) - 1) || x'7f' " ..
      "WHERE nid = (SELECT max(nid) FROM blocks)")
    local s2 = assert(roomstate.open(path))
    assert.equal("12", S.sql_value(path, "PRAGMA user_version"))
    local ok, err = s2:check()
    assert.is_nil(ok)
    assert.matches("content hash", err)
    local st, serr, code = s2:state_before(expect.event)
    if st then st, serr, code = st:get("m.room.member", "@user1:example.org") end
    assert.is_nil(st)
    assert.equal("CORRUPT", code, serr)
    s2:close()
    S.rmdir(dir)
  end)

  it("migrates a schema-v10 file to an index of each state key's sum, keeping a changed key caught", function()
    local dir = S.tmpdir()
    local path = dir .. "/v10.db"
    local fixture = S.read("spec/fixtures/schema_v10.db")
    local expect = cjson.decode(S.read("spec/fixtures/schema_v10.json"))
    local index = "SELECT count(*) FROM sqlite_master WHERE name = 'state_keys_sum'"
    S.write(path, fixture)
    assert.equal("0", S.sql_value(path, index))
    local store = assert(roomstate.open(path))
    assert.equal("12", S.sql_value(path, "PRAGMA user_version"))
    assert.equal("1", S.sql_value(path, index))
    assert.equal("202", S.sql_value(path, "SELECT count(*) FROM state_keys INDEXED BY state_keys_sum"))
    assert.is_true(store:check())
    -- every key is turned into its ID through the new index
    assert.equal(200, members_match(store, expect))
    store:close()
    -- a key changed in the v10 file, its old sum left: the index is built
    -- from that row, so the lookup of the changed key and check() refuse it
    S.write(path, fixture)
    S.sql_value(path, "UPDATE state_keys SET key = '@mallory:example.org' " ..
      "WHERE key = '@user3:example.org'")
    local s2 = assert(roomstate.open(path))
    assert.equal("12", S.sql_value(path, "PRAGMA user_version"))
    local ok, err = s2:check()
    assert.is_nil(ok)
    assert.matches("state key", err)
    local st2 = assert(s2:state_before(expect.event))
    local got, gerr, code = st2:get("m.room.member", "@mallory:example.org")
    assert.is_nil(got)
    assert.equal("CORRUPT", code, gerr)
    assert.equal(expect.members["@user4:example.org"], st2:get("m.room.member", "@user4:example.org"))
    s2:close()
    S.rmdir(dir)
  end)

  it("migrates outputs to positions it counts itself, keeping every output and never reusing one", function()
    local dir = S.tmpdir()
    local path = dir .. "/v10.db"
    S.write(path, S.read("spec/fixtures/schema_v10.db"))
    local before = S.sql_value(path, "SELECT group_concat(position || ':' || sum, ',') FROM " ..
      "(SELECT position, sum FROM outputs ORDER BY position)")
    local last = S.sql_value(path, "SELECT seq FROM sqlite_sequence WHERE name = 'outputs'")
    -- the oldest outputs trimmed away first, as a store in use has them
    S.sql_value(path, "DELETE FROM outputs WHERE position > 100")
    local store = assert(roomstate.open(path))
    assert.equal("12", S.sql_value(path, "PRAGMA user_version"))
    assert.equal("0", S.sql_value(path, "SELECT count(*) FROM sqlite_master WHERE sql LIKE " ..
      "'%AUTOINCREMENT%' AND name = 'outputs'"))
    assert.equal(before:match("^(.-,100:%-?%d+)"), S.sql_value(path, "SELECT " ..
      "group_concat(position || ':' || sum, ',') FROM (SELECT position, sum FROM outputs " ..
      "ORDER BY position)"))
    assert.is_true(store:check())
    -- the positions after 100 were given before the migration: not again
    local h = harness.new(store, { seed = "v12" })
    local room = assert(h:create_room("@other:example.org", { minimal = true }))
    assert(room)
    local outs = store:outputs(tonumber(last) + 1, 10)
    assert.is_true(#outs > 0)
    assert.equal(tonumber(last) + 1, outs[1].position)
    assert.equal(tonumber(last) + 1, store:outputs(101, 1)[1].position)
    store:close()
    S.rmdir(dir)
  end)

  it("uses WAL on files", function()
    local dir = S.tmpdir()
    local store = assert(roomstate.open(dir .. "/w.db"))
    store:close()
    assert.equal("wal", S.sql_value(dir .. "/w.db", "PRAGMA journal_mode"))
    S.rmdir(dir)
  end)
end)

describe("numeric IDs (debug surface)", function()
  local store, dbg
  before_each(function()
    store = assert(roomstate.open(":memory:"))
    dbg = store:debug()
  end)
  after_each(function() store:close() end)

  it("preassigns the well-known event types and the empty state key", function()
    local types = { "m.room.create", "m.room.power_levels", "m.room.join_rules",
      "m.room.third_party_invite", "m.room.member", "m.room.redaction",
      "m.room.history_visibility" }
    for i, t in ipairs(types) do assert.equal(i, dbg:debug_id("type", t)) end
    assert.equal(1, dbg:debug_id("state_key", ""))
  end)

  it("never creates a row on a pure lookup", function()
    local before = S.counts(store)
    local id, err, code = dbg:debug_id("state_key", "@nobody:example.org")
    assert.is_nil(id)
    assert.equal("NOT_FOUND", code)
    assert.matches("@nobody:example.org", err, 1, true)
    assert.same(before, S.counts(store))
  end)

  it("creates IDs that are never 0 and are stable", function()
    local a = dbg:debug_id("state_key", "@u:x", true)
    assert.is_true(a > 1)
    assert.equal(a, dbg:debug_id("state_key", "@u:x", true))
    assert.equal(a, dbg:debug_id("state_key", "@u:x"))
    assert.equal("@u:x", dbg:debug_id_string("state_key", a))
    local r = dbg:debug_id("room", "!r:x", true)
    assert.is_true(r > 0)
  end)

  it("stores an event ID once, from any number of handles", function()
    local dir = S.tmpdir()
    local a = assert(roomstate.open(dir .. "/ids.db"))
    local b = assert(roomstate.open(dir .. "/ids.db"))
    local ia = a:debug():debug_id("event", "$shared:x", true)
    assert.equal(ia, b:debug():debug_id("event", "$shared:x", true))
    assert.equal(ia, a:debug():debug_id("event", "$shared:x", true))
    assert.equal("1", S.sql_value(dir .. "/ids.db",
                                  "SELECT count(*) FROM events WHERE event_id='$shared:x'"))
    a:close()
    b:close()
    S.rmdir(dir)
  end)

  it("keeps a non-state event apart from an empty state key", function()
    local h = require("roomstate.harness").new(store)
    local room = assert(h:create_room("@a:x", { minimal = true }))
    local msg = assert(room:send("hello"))
    local st = assert(store:state_after(msg))
    assert.equal(1, st:count())       -- only the create event, keyed ""
    assert.is_nil(st:get("m.room.message", ""))
  end)
end)

describe("blocks and snapshots (debug surface)", function()
  local store, dbg
  before_each(function()
    store = assert(roomstate.open(":memory:"))
    dbg = store:debug()
  end)
  after_each(function() store:close() end)

  local function apply(base, changes)
    assert(dbg:begin())
    local st, err = dbg:debug_apply("!r:x", base, changes)
    assert(dbg:commit())
    return assert(st, err)
  end

  for _, collide in ipairs({ false, true }) do
    it("deduplicates blocks by content" .. (collide and " when every hash collides" or ""), function()
      dbg:debug_force_collisions(collide)
      -- over 32 entries, so the state is a block row rather than an inline tail
      local function members(last)
        local t = {}
        for i = 1, 40 do t[i] = { "m.room.member", "@u" .. i .. ":x", "$" .. i } end
        t[40][3] = last
        return t
      end
      local a = apply(nil, members("$40"))
      local c0 = S.counts(store)
      local b = apply(nil, members("$40"))
      assert.same(dbg:debug_snapshot(a).blocks, dbg:debug_snapshot(b).blocks)
      assert.equal(c0.blocks, S.counts(store).blocks)
      local c = apply(nil, members("$41"))
      assert.are_not.same(dbg:debug_snapshot(a).blocks, dbg:debug_snapshot(c).blocks)
      assert.equal("$40", a:get("m.room.member", "@u40:x"))
      assert.equal("$41", c:get("m.room.member", "@u40:x"))
    end)
  end

  it("expresses a removal (state reset) with a tombstone", function()
    local a = apply(nil, { { "m.room.member", "@a:x", "$1" }, { "m.room.name", "", "$2" } })
    local b = apply(a, { { "m.room.name", "", false } })
    assert.is_nil(b:get("m.room.name", ""))
    assert.equal(1, b:count())
    local removed, added = a:diff(b)
    assert.same({ "$2" }, removed)
    assert.same({}, added)
  end)

  it("lets a later block override an earlier one whatever the block IDs", function()
    -- make a later-written block hold the older value: b2 is created before
    -- the snapshot that puts it last
    local base = apply(nil, { { "t", "k", "$old" } })
    local s1 = apply(base, { { "t", "k", "$new" } })
    local s2 = apply(s1, { { "t", "k", "$old" } })
    assert.equal("$old", s2:get("t", "k"))
    assert.equal("$new", s1:get("t", "k"))
  end)

  it("has one empty state that survives purging another room", function()
    local h = require("roomstate.harness").new(store)
    local r1 = assert(h:create_room("@a:x", { minimal = true }))
    local r2 = assert(h:create_room("@b:x", { minimal = true }))
    local e1 = store:state_before(h.events[r1.room.create_id].event_id)
    assert(store:purge_room(r2.room.id))
    local st = assert(store:state_before(r1.room.create_id))
    assert.equal(0, st:count())
    assert.equal(1, dbg:debug_snapshot(st).id)
    assert.equal(0, e1:count())
  end)

  it("iterates entries in (type, state_key) order and lists event IDs", function()
    local s = apply(nil, { { "m.room.member", "@b:x", "$2" }, { "m.room.create", "", "$1" },
      { "m.room.member", "@a:x", "$3" } })
    local seen = {}
    for t, k, e in s:entries() do seen[#seen + 1] = t .. "|" .. k .. "|" .. e end
    -- order is by numeric type ID then state key ID; create (1) before member (5)
    assert.equal("m.room.create||$1", seen[1])
    assert.equal(3, #seen)
    local ids = s:event_ids()
    table.sort(ids)
    assert.same({ "$1", "$2", "$3" }, ids)
    assert.matches("3 entries", tostring(s))
  end)

  it("keeps a state's store alive after the store handle is dropped", function()
    local st = store:current_state("!none:x")
    assert.is_nil(st)
    local s = apply(nil, { { "t", "k", "$1" } })
    store = nil
    dbg = nil
    collectgarbage("collect")
    collectgarbage("collect")
    assert.equal("$1", s:get("t", "k"))
    store = { close = function() end }
  end)

  it("matches a naive model over 10,000 random changes (seeded)", function()
    local rng = S.rng(20261126)
    local keys = {}
    for i = 1, 300 do
      keys[i] = { i % 3 == 0 and "m.room.member" or ("t" .. (i % 7)), "@u" .. i .. ":x" }
    end
    local model, prev_model = {}, {}
    local st = nil
    local ev = 0
    assert(dbg:begin())
    local fails = {}
    for step = 1, 10000 do
      prev_model = {}
      for k, v in pairs(model) do prev_model[k] = v end
      local changes, touched = {}, {}
      local n = rng(10) == 1 and rng(30) or 1
      for _ = 1, n do
        local ki = rng(#keys)
        if not touched[ki] then
          touched[ki] = true
          local k = keys[ki]
          local val = false
          if rng(5) ~= 1 then
            ev = ev + 1
            val = "$" .. ev
          end
          changes[#changes + 1] = { k[1], k[2], val }
          model[k[1] .. "\0" .. k[2]] = val or nil
        end
      end
      local nst = assert(dbg:debug_apply("!r:x", st, changes))
      local snap = dbg:debug_snapshot(nst)
      if #snap.blocks > 64 then fails[#fails + 1] = "step " .. step .. ": " .. #snap.blocks .. " blocks" end
      -- the whole state
      local got = {}
      for t, k, e in nst:entries() do got[t .. "\0" .. k] = e end
      local M = require "model"
      if not M.same(model, got) then
        fails[#fails + 1] = "step " .. step .. ": " .. M.describe_diff(model, got)
      end
      -- diff against the previous snapshot equals the naive diff
      if st then
        local removed, added = st:diff(nst)
        local want_r, want_a = {}, {}
        for k, v in pairs(prev_model) do if model[k] ~= v then want_r[v] = true end end
        for k, v in pairs(model) do if prev_model[k] ~= v then want_a[v] = true end end
        local ok = true
        for _, e in ipairs(removed) do ok = ok and want_r[e]; want_r[e] = nil end
        for _, e in ipairs(added) do ok = ok and want_a[e]; want_a[e] = nil end
        if not ok or next(want_r) or next(want_a) then
          fails[#fails + 1] = "step " .. step .. ": diff differs"
        end
      end
      if #fails > 5 then break end
      st = nst
    end
    assert(dbg:commit())
    assert.same({}, fails)
  end)
end)

describe("persistence", function()
  it("answers the same after close and reopen", function()
    local dir = S.tmpdir()
    local path = dir .. "/p.db"
    local store = assert(roomstate.open(path))
    local h = require("roomstate.harness").new(store)
    local room = assert(h:create_room("@a:x"))
    assert(room:join("@b:x"))
    local m = assert(room:send("hi"))
    local function snapshot(s)
      local cur = {}
      for t, k, e in s:current_state(room.room.id):entries() do cur[#cur + 1] = t .. k .. e end
      return {
        cur = cur, latest = s:latest_events(room.room.id), members = s:members(room.room.id),
        before = s:state_before(m):event_ids(), hash = s:state_hash(room.room.id),
        rooms = s:rooms(), version = s:room_version(room.room.id), ev = s:event(m),
      }
    end
    local want = snapshot(store)
    store:close()
    local again = assert(roomstate.open(path))
    assert.same(want, snapshot(again))
    assert.is_true(again:check())
    again:close()
    S.rmdir(dir)
  end)
end)
