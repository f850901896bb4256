-- Issue 14 §3.11: a full or read-only filesystem. A read-only open serves
-- every query and refuses every write with READONLY; a full disk is named
-- "disk full"; a failed create leaves no file behind.
--
-- What runs where: the readonly flag is tested on an ordinary file. A
-- full disk and a read-only mount need root (CI runs as root, and root
-- bypasses file permissions, so chmod proves nothing): those tests mount a
-- small tmpfs, or bind-mount a directory read-only, inside a private mount
-- namespace (`unshare -m`) that vanishes with the child, and are pending
-- where that is not allowed.
local roomstate = require "roomstate"
local harness = require "roomstate.harness"
local S = require "support"

-- A database with a room, a fork and a merge, messages and outputs.
local function build(path)
  local store = assert(roomstate.open(path))
  local h = harness.new(store, { seed = "ro" })
  local room = assert(h:create_room("@alice:example.org"))
  assert(room:join("@bob:example.org"))
  assert(room:state("m.room.topic", "", { topic = "read me" }))
  for i = 1, 5 do assert(room:send("m" .. i)) end
  local topic = assert(store:current_state(room.room.id)):get("m.room.topic", "")
  store:close()
  return room.room.id, topic
end

-- Every query of the API against the built database, on `store`.
local function queries(store, room_id, topic)
  assert.are.same({ room_id }, assert(store:rooms()))
  local st = assert(store:current_state(room_id))
  assert.are.equal(topic, st:get("m.room.topic", ""))
  assert.is_true(st:count() >= 6)
  assert.are.equal(topic, assert(store:state_after(topic)):get("m.room.topic", ""))
  assert.is_nil(assert(store:state_before(topic)):get("m.room.topic", ""))
  assert.are.same({ "@alice:example.org", "@bob:example.org" }, assert(store:members(room_id)))
  assert.are.equal(1, #assert(store:latest_events(room_id)))
  assert.is_string(assert(store:event(topic)))
  assert.are.equal("accepted", assert(store:event_status(topic)))
  assert.are.equal("10", assert(store:room_version(room_id)))
  assert.is_string(assert(store:state_hash(room_id)))
  assert.is_true(#assert(store:outputs(1, 100)) >= 12)
  assert.is_string(assert(store:outputs_json(1, 100)))
  assert.is_true(assert(store:check()))
end

describe("a read-only open (opts.readonly)", function()
  local dir, db, room_id, topic
  before_each(function()
    dir = S.tmpdir()
    db = dir .. "/r.db"
    room_id, topic = build(db)
  end)
  after_each(function() S.rmdir(dir) end)

  it("serves every query and refuses every write with READONLY, changing nothing", function()
    local before = S.read(db)
    local store = assert(roomstate.open(db, { readonly = true }))
    queries(store, room_id, topic)
    local ev = S.pdu({ room_id = room_id, event_id = "$new:example.org", prev_events = { topic } })
    local res, err, code = store:ingest(ev)
    assert.is_nil(res)
    assert.are.equal("READONLY", code)
    assert.matches("opened read%-only", err)
    res, err, code = store:ingest_batch({ { event = ev } })
    assert.are.equal("READONLY", code, err)
    assert.are.equal("READONLY", select(3, store:purge_room(room_id)))
    assert.are.equal("READONLY", select(3, store:subscribe("c", function() end)))
    assert.are.equal("READONLY", select(3, store:try_lease("c", "me", 1000)))
    assert.are.equal("READONLY", select(3, store:trim_outputs()))
    store:close()
    assert.are.equal(before, S.read(db))
    -- SQLite's read-only connection may create an empty -wal beside it
    assert.are.equal("", S.read(db .. "-wal") or "")
  end)

  it("refuses a missing file, and creates none", function()
    local s, err, code = roomstate.open(dir .. "/none.db", { readonly = true })
    assert.is_nil(s)
    assert.are.equal("OPEN", code, err)
    assert.is_nil(io.open(dir .. "/none.db"))
  end)

  it("rejects a readonly option that is not a boolean", function()
    assert.has_error(function() roomstate.open(db, { readonly = "yes" }) end)
  end)
end)

-- Runs `script` (shell, with $DB, $DIR and $LUA set) in a private mount
-- namespace; nil when this machine does not allow one.
local function in_namespace(dir, script)
  local ok = os.execute("unshare -m true >/dev/null 2>&1")
  if ok ~= 0 and ok ~= true then return nil end
  local pwd = os.getenv("PWD")
  local cpath = package.cpath:match("^([^;]+)")
  if cpath:sub(1, 1) ~= "/" then cpath = pwd .. "/" .. cpath end
  S.write(dir .. "/ns.sh", ("set -e\nDIR='%s'\nLUA=luajit\n"
                            .. "export LUA_PATH='%s/lua/?.lua;%s/lua/?/init.lua;%s/spec/?.lua;;'\n"
                            .. "export LUA_CPATH='%s;;'\n"):format(dir, pwd, pwd, pwd, cpath)
                           .. script)
  local p = assert(io.popen("unshare -m sh '" .. dir .. "/ns.sh' 2>&1"))
  local out = p:read("*a")
  p:close()
  return out
end

-- The child: opens arg[1] with readonly = arg[2] == "ro", prints what
-- each step gave.
local CHILD = [[
local roomstate = require "roomstate"
local s, err, code = roomstate.open(arg[1], { readonly = arg[2] == "ro" })
if not s then print("OPEN_FAILED " .. tostring(code) .. " " .. tostring(err)) return end
print("OPENED")
local rooms = s:rooms()
print("ROOMS " .. (rooms and #rooms or -1))
local ok, e2 = s:check()
print("CHECK " .. tostring(ok) .. " " .. tostring(e2))
local st = assert(s:current_state(rooms[1]))
print("TOPIC " .. tostring(st:get("m.room.topic", "")))
local res, e3, c3 = s:ingest(require("support").pdu({ room_id = rooms[1], event_id = "$n:example.org" }))
print("INGEST " .. tostring(c3) .. " " .. tostring(e3))
]]

describe("a read-only mount (a bind mount remounted ro, as root)", function()
  it("serves queries with readonly = true, from a file without -wal or -shm", function()
    local dir = S.tmpdir()
    local data = dir .. "/data"
    os.execute("mkdir '" .. data .. "'")
    local room_id, topic = build(data .. "/r.db")
    S.write(dir .. "/child.lua", CHILD)
    local out = in_namespace(dir, [[
mount --bind "$DIR/data" "$DIR/data"
mount -o remount,bind,ro "$DIR/data"
if touch "$DIR/data/probe" 2>/dev/null; then echo WRITABLE; fi
echo "== ro"; $LUA "$DIR/child.lua" "$DIR/data/r.db" ro
echo "== rw"; $LUA "$DIR/child.lua" "$DIR/data/r.db" rw || true
]])
    S.rmdir(dir)
    if not out then return pending("no private mount namespace here (unshare -m)") end
    assert.is_nil(out:find("WRITABLE", 1, true), out)
    local ro, rw = out:match("== ro\n(.-)== rw\n(.*)$")
    assert.is_truthy(ro, out)
    assert.matches("OPENED\nROOMS 1\nCHECK true", ro)
    assert.is_truthy(ro:find("TOPIC " .. topic, 1, true), ro)
    assert.matches("INGEST READONLY", ro)
    assert.is_truthy(room_id)
    -- without the flag: a clear failure, not a crash
    assert.matches("OPEN_FAILED OPEN OPEN: cannot open", rw)
  end)

  it("refuses readonly = true when a -wal holds commits it cannot read without the -shm", function()
    local dir = S.tmpdir()
    local data = dir .. "/data"
    os.execute("mkdir '" .. data .. "'")
    build(dir .. "/src.db")
    -- the files of a store still open: its commits are in the -wal
    local live = assert(roomstate.open(dir .. "/src.db"))
    local h = harness.new(live, { seed = "wal" })
    assert(h:create_room("@carol:example.org"))
    S.write(data .. "/r.db", assert(S.read(dir .. "/src.db")))
    S.write(data .. "/r.db-wal", assert(S.read(dir .. "/src.db-wal")))
    live:close()
    S.write(dir .. "/child.lua", CHILD)
    local out = in_namespace(dir, [[
mount --bind "$DIR/data" "$DIR/data"
mount -o remount,bind,ro "$DIR/data"
$LUA "$DIR/child.lua" "$DIR/data/r.db" ro
]])
    S.rmdir(dir)
    if not out then return pending("no private mount namespace here (unshare -m)") end
    assert.matches("OPEN_FAILED OPEN OPEN: cannot open [^\n]* read%-only", out)
  end)
end)

describe("a full disk (a 1 MiB tmpfs, as root)", function()
  it("names \"disk full\" when an existing database cannot be opened, and leaves no new file", function()
    local dir = S.tmpdir()
    os.execute("mkdir '" .. dir .. "/full'")
    build(dir .. "/r.db")
    S.write(dir .. "/child.lua", CHILD)
    local out = in_namespace(dir, [[
mount -t tmpfs -o size=1m tmpfs "$DIR/full"
cp "$DIR/r.db" "$DIR/full/r.db"
dd if=/dev/zero of="$DIR/full/filler" bs=4k 2>/dev/null || true
echo "== existing"; $LUA "$DIR/child.lua" "$DIR/full/r.db" rw || true
echo "== new"; $LUA "$DIR/child.lua" "$DIR/full/new.db" rw || true
echo "== left"; ls "$DIR/full"
echo "== readonly"; $LUA "$DIR/child.lua" "$DIR/full/r.db" ro || true
]])
    S.rmdir(dir)
    if not out then return pending("no private mount namespace here (unshare -m)") end
    if os.getenv("ROOMSTATE_SHOW") then print(out) end
    local existing = assert(out:match("== existing\n(.-)== new"), out)
    assert.matches("OPEN_FAILED OPEN [^\n]*disk full", existing)
    local new = assert(out:match("== new\n(.-)== left"), out)
    assert.matches("OPEN_FAILED [^\n]*disk full", new)
    local left = assert(out:match("== left\n(.-)== readonly"), out)
    assert.is_nil(left:find("new.db", 1, true), left)
    -- read-only needs no space: it still serves the file
    assert.matches("== readonly\nOPENED\nROOMS 1\nCHECK true", out)
  end)
end)
