-- Shared spec helpers: temporary paths and event builders.
local S = {}

function S.tmpdir()
  local p = assert(io.popen("mktemp -d /tmp/roomstate-spec-XXXXXX"))
  local d = p:read("*l")
  p:close()
  assert(d and d ~= "", "cannot make a temporary directory")
  return d
end

function S.rmdir(d)
  os.execute("rm -rf '" .. d .. "'")
end

function S.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

function S.write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- The first line the sqlite3 shell prints for sql on the file at path: a
-- look behind the library's back. The SQL goes through a file, unquoted.
function S.sql_value(path, sql)
  local f = os.tmpname()
  S.write(f, sql .. ";\n")
  local p = assert(io.popen("sqlite3 -batch '" .. path .. "' < '" .. f .. "'"))
  local v = p:read("*l")
  p:close()
  os.remove(f)
  return v
end

-- Runs sql on the file as on one of schema 6, before the ID rows had
-- checksums: the sum columns (and schema 11's index of a key's sum) are
-- dropped and the version set back, so the next open migrates and sums the
-- rows as sql left them (an older file's rows, not a corruption).
function S.sql_as_schema6(path, sql)
  return S.sql_value(path, "DROP INDEX state_keys_sum; ALTER TABLE rooms DROP COLUMN sum; " ..
    "ALTER TABLE event_types DROP COLUMN sum; ALTER TABLE state_keys DROP COLUMN sum; " ..
    "ALTER TABLE events DROP COLUMN sum; ALTER TABLE events DROP COLUMN jsum; " ..
    "ALTER TABLE consumers DROP COLUMN sum; DROP TABLE event_chains; DROP TABLE chain_links; " ..
    "DROP TABLE chain_waits; PRAGMA user_version = 6; " .. sql)
end

-- A minimal valid PDU; override fields with t.
function S.pdu(t)
  local ev = {
    event_id = "$e:x", room_id = "!r:x", sender = "@a:x", type = "m.room.message",
    content = { body = "hi" }, prev_events = { "$c:x" }, auth_events = {}, depth = 2,
    origin_server_ts = 1,
  }
  for k, v in pairs(t or {}) do ev[k] = v end
  return ev
end

-- The auth events the selection picks for ev from the room's current
-- state, for hand-built events that must pass the auth rules.
function S.auth_events(store, room_id, ev)
  local roomstate = require "roomstate"
  local cur = assert(store:current_state(room_id))
  local out = {}
  for _, t in ipairs(assert(roomstate.auth_types(assert(store:room_version(room_id)), ev))) do
    out[#out + 1] = cur:get(t[1], t[2])
  end
  return out
end

-- A sorted copy of a list.
function S.sorted(list)
  local c = {}
  for i, v in ipairs(list) do c[i] = v end
  table.sort(c)
  return c
end

-- A deterministic generator (xorshift-ish on doubles-safe integers).
function S.rng(seed)
  local s = seed % 2147483647
  if s <= 0 then s = s + 2147483646 end
  return function(n)
    s = (s * 16807) % 2147483647
    if n then return 1 + s % n end
    return s / 2147483647
  end
end

-- Debug counts, for "nothing was written" checks.
-- (entries_written, json_parses, resolutions, resolution_hits,
-- resolve_events, chain_rows, current_hits and the difference_* counts are per-handle
-- counters, not database content.)
function S.counts(store)
  local c = store:debug():debug_counts()
  c.entries_written, c.json_parses, c.resolutions, c.resolution_hits = nil, nil, nil, nil
  c.resolve_events, c.chain_rows, c.current_hits = nil, nil, nil
  c.differences, c.difference_events, c.difference_rows, c.difference_cover_rows = nil, nil, nil, nil
  return c
end

-- A test oracle in Python (Debian's /usr/bin/python3 with matrix.org's
-- libraries, a test dependency only): S.python_has(modules) says whether
-- it can import them; S.python_oracle(script, lines) feeds it request
-- lines on stdin and returns its answer lines, JSON-decoded, one each.
S.PYTHON = "/usr/bin/python3"

function S.python_has(modules)
  local r = os.execute(S.PYTHON .. " -c 'import " .. modules .. "' 2>/dev/null")
  return r == 0 or r == true
end

function S.python_oracle(script, lines)
  local cjson = require "cjson"
  local dir = S.tmpdir()
  S.write(dir .. "/in", table.concat(lines, "\n") .. "\n")
  local ok = os.execute(S.PYTHON .. " " .. script .. " < " .. dir .. "/in > " .. dir .. "/out")
  local out = S.read(dir .. "/out") or ""
  S.rmdir(dir)
  assert(ok == 0 or ok == true, "the oracle " .. script .. " failed")
  local answers = {}
  for line in out:gmatch("[^\n]+") do answers[#answers + 1] = cjson.decode(line) end
  assert(#answers == #lines, "the oracle answered " .. #answers .. " of " .. #lines)
  return answers
end

-- A chain of n messages on the room cursor's head, not ingested: the
-- items for one ingest_batch, their IDs, and the last one as the new head
-- (for room.head once the batch is stored). The power-cut spec and the
-- kill -9 writer (tests/torture) commit these.
function S.message_batch(room, n)
  local items, ids, prev, auth = {}, {}, room.head, nil
  for i = 1, n do
    local id, pdu, text = room:send("m", { ingest = false, prev = prev, auth_events = auth })
    auth = auth or pdu.auth_events
    items[i], ids[i], prev = { event = text }, id, { id }
  end
  return items, ids, prev
end

-- Joins @u1:x .. @un:x to the room in one ingest_batch: enough members
-- (some hundreds) for the state to be stored in blocks, not inline. The
-- corruption spec and campaign (tests/torture/corrupt.lua) use it.
function S.join_many(store, room, n)
  local batch = {}
  for i = 1, n do
    local _, pdu = room:join(("@u%d:x"):format(i), { ingest = false })
    batch[#batch + 1] = { event = pdu }
    room.head = { pdu.event_id }
  end
  return store:ingest_batch(batch)
end

return S
