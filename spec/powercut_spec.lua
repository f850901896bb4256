-- Issue 14 §3.10: what a power cut costs under synchronous = "normal" and
-- "full", with one model for both.
--
-- The model. In WAL mode a commit appends frames to the -wal file; the
-- database file is written only by a checkpoint. A power cut keeps what
-- was fsynced and may lose anything written after the last fsync, so the
-- -wal file a rebooted machine sees is the file as it was, cut at some
-- point after the last fsync (torn or reordered pages beyond that point end
-- SQLite's recovery at the first frame whose checksum chain breaks, which
-- is the same as a cut there). The -shm is lost too: recovery rebuilds it.
-- So each trial commits batches in a fresh database, copies the database
-- and -wal files as the disk holds them, cuts the copied -wal at a seeded
-- random point in the range a power cut can reach, reopens the copy and
-- counts the acknowledged events that are gone.
--
-- The cut strikes while the last batch commits: that batch is in flight,
-- every batch before it was acknowledged (its commit returned). Where the
-- last fsync was depends on the mode (strace, checked by the first test):
-- * full fdatasyncs the -wal at every commit, so the last fsync ended the
--   last acknowledged commit: the cut falls inside the in-flight one.
-- * normal fdatasyncs the -wal only when it writes the -wal's 32-byte
--   header and before a checkpoint, never at a commit: the cut falls
--   anywhere after the header (or after the last checkpoint; the trials
--   stay under the 1000-page autocheckpoint and assert that none ran, so
--   the database file holds only the schema, which was synced when created).
-- It assumes the disk honours fsync (no lying write cache) and that the
-- file's length is kept when its data is (fdatasync syncs both).
local roomstate = require "roomstate"
local harness = require "roomstate.harness"
local S = require "support"

local TRIALS = os.getenv("ROOMSTATE_SPEC_LIGHT") and 8 or 25
local WAL_HEADER = 32

local function size(path)
  local f = io.open(path, "rb")
  if not f then return 0 end
  local n = f:seek("end")
  f:close()
  return n
end

-- Commits the room's creation and then `batches` batches of messages,
-- recording the -wal size after each commit and the events of each.
local function commit_batches(db, mode, rng)
  local store = assert(roomstate.open(db, { synchronous = mode }))
  local h = harness.new(store, { seed = "pc" })
  local commits = {} -- { wal = size after it, events = { ids } }
  local room = assert(h:create_room("@alice:example.org"))
  commits[1] = { wal = size(db .. "-wal"), events = {} }
  for id in pairs(h.events) do commits[1].events[#commits[1].events + 1] = id end
  local batches = 5 + rng(20)
  for _ = 1, batches do
    local items, ids, prev = S.message_batch(room, rng(8))
    assert(store:ingest_batch(items))
    room.head = prev
    local wal = size(db .. "-wal")
    -- strictly growing: no checkpoint restarted the -wal in this trial
    assert.is_true(wal > commits[#commits].wal, "a checkpoint ran during the trial")
    commits[#commits + 1] = { wal = wal, events = ids }
  end
  return store, commits
end

-- One trial: the surviving copy after a cut in the mode's range; returns
-- acknowledged events, lost events.
local function trial(dir, mode, rng)
  local db = dir .. "/live.db"
  local store, commits = commit_batches(db, mode, rng)
  local last = commits[#commits]
  local lo = mode == "full" and commits[#commits - 1].wal or WAL_HEADER
  local cut = lo + math.floor(rng() * (last.wal - lo)) -- in [lo, last.wal)
  local copy = dir .. "/cut.db"
  S.write(copy, assert(S.read(db)))
  S.write(copy .. "-wal", assert(S.read(db .. "-wal")):sub(1, cut))
  store:close()
  local after = assert(roomstate.open(copy))
  local acked, lost = 0, 0
  for c = 1, #commits - 1 do
    for _, id in ipairs(commits[c].events) do
      acked = acked + 1
      if not after:event(id) then lost = lost + 1 end
    end
  end
  assert(after:check())
  after:close()
  os.execute("rm -f '" .. dir .. "'/*.db*")
  return acked, lost
end

local function campaign(mode, seed)
  local dir, rng = S.tmpdir(), S.rng(seed)
  local acked, lost, worst, trials_losing = 0, 0, 0, 0
  for _ = 1, TRIALS do
    local a, l = trial(dir, mode, rng)
    acked, lost = acked + a, lost + l
    if l > worst then worst = l end
    if l > 0 then trials_losing = trials_losing + 1 end
  end
  S.rmdir(dir)
  print(string.format("\npower cut, synchronous=%s: %d trials, %d events acknowledged, "
                      .. "%d lost (%d trials lost some, at most %d in one)",
                      mode, TRIALS, acked, lost, trials_losing, worst))
  return acked, lost
end

describe("a power cut (the -wal cut after its last fsync)", function()
  it("has the premise: full fdatasyncs once per commit, normal at no commit", function()
    local ok = os.execute("command -v strace >/dev/null 2>&1")
    if ok ~= 0 and ok ~= true then return pending("strace is not installed") end
    local dir = S.tmpdir()
    local cpath = package.cpath:match("^([^;]+)")
    local script = dir .. "/child.lua"
    S.write(script, [[
      local rs = require "roomstate"
      local s = assert(rs.open(arg[1], { synchronous = arg[2] }))
      local room = assert(require("roomstate.harness").new(s):create_room("@a:x"))
      for i = 1, 20 do assert(room:send("m" .. i)) end
      os.exit(0)
    ]])
    local function syncs(mode)
      local out = dir .. "/" .. mode .. ".strace"
      os.execute(("LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='%s;;' strace -f -c -o '%s' "
                  .. "-e trace=fsync,fdatasync luajit '%s' '%s/%s.db' %s >/dev/null 2>&1")
                 :format(cpath, out, script, dir, mode, mode))
      local text = S.read(out) or ""
      local n = 0
      for calls in text:gmatch("%s(%d+)%s+f%a*sync\n") do n = n + tonumber(calls) end
      return n
    end
    local normal, full = syncs("normal"), syncs("full")
    S.rmdir(dir)
    -- create_room commits 5 events, then 20 messages: 25 commits
    assert.are.equal(25, full - normal)
  end)

  it("loses acknowledged events under synchronous = \"normal\"", function()
    local acked, lost = campaign("normal", 1410)
    assert.is_true(acked > 0)
    assert.is_true(lost > 0, "the model should lose events under normal")
  end)

  it("loses no acknowledged event under synchronous = \"full\"", function()
    local acked, lost = campaign("full", 1410)
    assert.is_true(acked > 0)
    assert.are.equal(0, lost)
  end)
end)
