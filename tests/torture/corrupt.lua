-- The corruption campaign (issue 14 §5): corrupt.sh runs it.
-- args: trials seed workdir
-- Builds one database (a 300-member room with messages and topics, a
-- small room, a purged room whose outputs are materialised, a consumer),
-- records the library's answers to a fixed set of queries on it, then per
-- trial: a copy of it, one random write by SQLite behind the library's back
-- to one column of one row of one table (the tables in turn, so every one
-- is hit; the value changed by a byte, truncated, extended, emptied,
-- nulled or, for integers, moved), then the store reopened, check() run
-- and every query asked again. A trial is
--   caught       open refused, check() failed or a query failed with CORRUPT
--                while every other query answered correctly
--   harmless     check() passed and every query answered as before
--   wrong        check() passed and some query answered differently
--                without an error: served wrong
--   other        check() passed, no query wrong, but a query failed with a
--                code other than CORRUPT
-- and, of the caught, how many also served a wrong answer from a query
-- (a caller who does not run check() would have taken it).
local trials, seed, dir = tonumber(arg[1]), tonumber(arg[2]), arg[3]
local roomstate = require "roomstate"
local harness = require "roomstate.harness"
local S = require "support"
local ffi = require "ffi"

ffi.cdef [[
  typedef struct sqlite3 sqlite3;
  typedef struct sqlite3_stmt sqlite3_stmt;
  int sqlite3_open(const char *filename, sqlite3 **db);
  int sqlite3_close(sqlite3 *db);
  int sqlite3_exec(sqlite3 *db, const char *sql, void *cb, void *arg, char **errmsg);
  int sqlite3_prepare_v2(sqlite3 *db, const char *sql, int n, sqlite3_stmt **st, const char **tail);
  int sqlite3_step(sqlite3_stmt *st);
  int sqlite3_finalize(sqlite3_stmt *st);
  int sqlite3_bind_int64(sqlite3_stmt *st, int i, int64_t v);
  int sqlite3_column_count(sqlite3_stmt *st);
  const unsigned char *sqlite3_column_text(sqlite3_stmt *st, int i);
  int sqlite3_changes(sqlite3 *db);
  const char *sqlite3_errmsg(sqlite3 *db);
]]
local sql = ffi.load("sqlite3")
local rng = S.rng(seed)

-- rows(db, q, binds) -> list of rows, each a list of text values (nil for NULL)
local function rows(db, q, binds)
  local st = ffi.new("sqlite3_stmt*[1]")
  assert(sql.sqlite3_prepare_v2(db, q, -1, st, nil) == 0, ffi.string(sql.sqlite3_errmsg(db)))
  for i, v in ipairs(binds or {}) do sql.sqlite3_bind_int64(st[0], i, v) end
  local out = {}
  while sql.sqlite3_step(st[0]) == 100 do
    local r = {}
    for c = 0, sql.sqlite3_column_count(st[0]) - 1 do
      local t = sql.sqlite3_column_text(st[0], c)
      r[c + 1] = t ~= nil and ffi.string(t) or nil
    end
    out[#out + 1] = r
  end
  local rc = sql.sqlite3_finalize(st[0])
  return rc == 0 and out or nil, ffi.string(sql.sqlite3_errmsg(db))
end

---- the database ----

local function build(path)
  local store = assert(roomstate.open(path))
  local h = harness.new(store, { seed = "cc" })
  local big = assert(h:create_room("@a:x"))
  assert(S.join_many(store, big, 300))
  for i = 1, 40 do
    assert(big:send("m" .. i, { sender = ("@u%d:x"):format(i) }))
    if i % 10 == 0 then assert(big:state("m.room.topic", "", { topic = "t" .. i })) end
  end
  local small = assert(h:create_room("@b:x"))
  assert(small:join("@c:x"))
  assert(small:send("hello", { sender = "@c:x" }))
  local gone = assert(h:create_room("@d:x"))
  assert(gone:send("bye"))
  assert(store:purge_room(gone.room.id))
  assert(store:debug():consumer_set("c", 7))
  assert(store:try_lease("c", "me", 60000, 1000))
  -- an old event, then a new one citing it: an edge row
  local head = small.head[1]
  local old = assert(small:send("old", { kind = "old" }))
  assert(small:send("after old", { prev = { head, old } }))
  local sample = {}
  for id in pairs(h.events) do sample[#sample + 1] = id end
  table.sort(sample)
  store:close()
  return sample
end

---- the queries and their answers ----

local function ser(v)
  local t = type(v)
  if t == "table" or t == "userdata" then
    if v.entries then
      local parts, it, err = {}, v:entries()
      if not it then error(err) end
      for ty, k, e in it do parts[#parts + 1] = ty .. "\0" .. k .. "\0" .. e end
      local n, cerr = v:count()
      if not n then error(cerr) end
      return "state{" .. table.concat(parts, ",") .. "}#" .. n
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    local parts = {}
    for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. "=" .. ser(v[k]) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return t .. ":" .. tostring(v)
end

-- Every answer as a string, or "ERR <CODE>" when the call failed.
local function ask(store, name, fn)
  local ok, v = pcall(function()
    local r, err, code = fn()
    if r == nil then return "ERR " .. tostring(code or err) end
    return ser(r)
  end)
  -- an error val() raised for a returned one keeps its code
  if not ok then
    local code = tostring(v):match("^([%u_]+): ")
    return "ERR " .. (tostring(v):match("CORRUPT") and "CORRUPT" or code or "raised")
  end
  return v
end

-- A value of a call that may fail: its error is raised for ask() to
-- record, not lost in a table constructor as a nil.
local function val(v, err)
  if v == nil and err then error(err, 0) end
  return v
end

local function queries(store, sample)
  local q = {}
  local function add(name, fn) q[#q + 1] = { name, ask(store, name, fn) } end
  add("rooms", function() return store:rooms() end)
  for _, r in ipairs(store.__rooms) do
    add("version " .. r, function() return store:room_version(r) end)
    add("hash " .. r, function() return store:state_hash(r) end)
    add("members " .. r, function() return store:members(r, "join") end)
    add("latest " .. r, function() return store:latest_events(r) end)
    add("state " .. r, function() return store:current_state(r) end)
    add("get " .. r, function()
      local st, e, c = store:current_state(r)
      if not st then return nil, e, c end
      return { val(st:get("m.room.member", "@u150:x")), val(st:get("m.room.topic", "")),
               val(st:get("m.room.create", "")) }
    end)
  end
  for i, id in ipairs(sample) do
    add("event " .. id, function() return store:event(id) end)
    add("status " .. id, function() return store:event_status(id) end)
    add("after " .. id, function()
      local st, e, c = store:state_after(id)
      if not st then return nil, e, c end
      if i % 8 == 0 then return st end
      return { val(st:count()), val(st:get("m.room.member", "@u299:x")),
               val(st:get("m.room.power_levels", "")) }
    end)
  end
  add("outputs", function() return store:outputs_json(1, 1e6) end)
  add("consumer", function() return store:debug():consumer_get("c") end)
  return q
end

---- corruption ----

local TABLES = { "rooms", "event_types", "state_keys", "events", "edges", "blocks",
                 "snapshots", "members", "outputs", "consumers", "meta", "leases" }

local function keys_of(db, t)
  local info = rows(db, "PRAGMA table_info(" .. t .. ")")
  local cols, pk = {}, {}
  for _, r in ipairs(info) do
    cols[#cols + 1] = r[2]
    if tonumber(r[6]) > 0 then pk[tonumber(r[6])] = r[2] end
  end
  local norowid = rows(db, "SELECT 1 FROM sqlite_master WHERE name = '" .. t ..
                      "' AND sql LIKE '%WITHOUT ROWID%'")[1]
  return cols, norowid and pk or { "rowid" }
end

local function mutation(kind, len)
  if kind == "integer" then
    local m = { "%s + 1", "%s - 1", "%s * 2 + 7", "0", "-(%s)", "NULL", tostring(rng(1000)) }
    return m[rng(#m)]
  elseif kind == "null" then
    return ({ "0", "'x'", "x'00'" })[rng(3)]
  end
  local b = "CAST(%s AS BLOB)"
  local m = { "NULL", kind == "text" and "''" or "zeroblob(0)", b .. " || x'00'" }
  if len > 0 then
    local i = rng(len) - 1
    local byte = ("x'%02x'"):format(rng(256) - 1)
    m[#m + 1] = "substr(" .. b .. ", 1, " .. i .. ") || " .. byte .. " || substr(" .. b .. ", " .. (i + 2) .. ")"
    m[#m + 1] = "substr(" .. b .. ", 1, " .. (len - 1) .. ")"
    m[#m + 2 - 1] = m[#m] -- byte changes twice as likely as the rest
    m[#m + 1] = "substr(" .. b .. ", 1, " .. i .. ") || " .. byte .. " || substr(" .. b .. ", " .. (i + 2) .. ")"
  end
  local e = m[rng(#m)]
  return kind == "text" and "CAST(" .. e .. " AS TEXT)" or "CAST(" .. e .. " AS BLOB)"
end

-- One changed value in table t; returns a description, or nil if no
-- write took (empty table, every try refused by a constraint or unchanged).
local function corrupt(path, t)
  local pdb = ffi.new("sqlite3*[1]")
  assert(sql.sqlite3_open(path, pdb) == 0)
  local db = pdb[0]
  local cols, pk = keys_of(db, t)
  local n = tonumber(rows(db, "SELECT count(*) FROM " .. t)[1][1])
  local done
  for _ = 1, 8 do
    if n == 0 then break end
    local key = rows(db, ("SELECT %s FROM %s LIMIT 1 OFFSET %d"):format(table.concat(pk, ","), t, rng(n) - 1))[1]
    local where, binds = {}, {}
    for i, k in ipairs(pk) do where[i] = k .. " = ?" .. i; binds[i] = tonumber(key[i]) end
    where = table.concat(where, " AND ")
    local col = cols[rng(#cols)]
    -- typeof and hex, not quote(), which stops at a NUL: a byte appended
    -- after a NUL read as unchanged, and the next try wrote a second value
    local old = rows(db, ("SELECT typeof(%s), length(CAST(%s AS BLOB)), typeof(%s) || hex(%s) FROM %s WHERE %s")
                     :format(col, col, col, col, t, where), binds)[1]
    local expr = mutation(old[1], tonumber(old[2]) or 0):gsub("%%s", col)
    local ok = rows(db, ("UPDATE %s SET %s = %s WHERE %s"):format(t, col, expr, where), binds)
    if ok and sql.sqlite3_changes(db) == 1 then
      local new = rows(db, ("SELECT typeof(%s) || hex(%s) FROM %s WHERE %s")
                       :format(col, col, t, where), binds)[1]
      -- a row whose key changed is gone from under `where`: changed too
      if not new or new[1] ~= old[3] then
        done = ("%s.%s %s"):format(t, col, expr:sub(1, 60))
        break
      end
    end
  end
  sql.sqlite3_close(db)
  return done
end

---- the campaign ----

local base = dir .. "/base.db"
local sample = build(base)
local truth_store = assert(roomstate.open(base))
truth_store.__rooms = assert(truth_store:rooms())
local truth = queries(truth_store, sample)
truth_store:close()
local base_bytes = assert(S.read(base))

local count = { caught = 0, harmless = 0, wrong = 0, other = 0, skipped = 0, caught_wrong = 0 }
local per_table = {}
for trial = 1, trials do
  local t = TABLES[(trial - 1) % #TABLES + 1]
  local path = dir .. "/t.db"
  os.remove(path .. "-wal"); os.remove(path .. "-shm")
  S.write(path, base_bytes)
  local what = corrupt(path, t)
  local verdict, detail
  if not what then
    verdict = "skipped"
  else
    local store, err = roomstate.open(path)
    local checked, cerr = false, err
    local wrong, corrupt_q, other = 0, 0, 0
    if store then
      checked, cerr = store:check()
      store.__rooms = truth_store.__rooms
      for i, q in ipairs(queries(store, sample)) do
        local want = truth[i][2]
        if q[2] == "ERR CORRUPT" then corrupt_q = corrupt_q + 1
        elseif q[2]:match("^ERR ") and q[2] ~= want then other = other + 1; detail = q[1] .. " " .. q[2]
        elseif q[2] ~= want then wrong = wrong + 1; detail = detail or q[1] end
      end
      store:close()
    end
    if not store or not checked then
      verdict = "caught"
      if wrong > 0 then count.caught_wrong = count.caught_wrong + 1 end
    elseif wrong > 0 then verdict = "wrong"
    elseif corrupt_q > 0 then verdict = "caught"
    elseif other > 0 then verdict = "other"
    else verdict = "harmless" end
    if verdict == "wrong" or verdict == "other" or os.getenv("VERBOSE") then
      print(("trial %d %s: %s (%s)%s"):format(trial, verdict, what, detail or "-",
            cerr and (" check: " .. tostring(cerr):sub(1, 80)) or ""))
    end
  end
  count[verdict] = count[verdict] + 1
  per_table[t] = per_table[t] or { caught = 0, harmless = 0, wrong = 0, other = 0, skipped = 0 }
  per_table[t][verdict] = per_table[t][verdict] + 1
end
for _, t in ipairs(TABLES) do
  local c = per_table[t]
  if c then
    print(("  %-12s caught %3d  harmless %3d  wrong %3d  other %3d  skipped %3d")
          :format(t, c.caught, c.harmless, c.wrong, c.other, c.skipped))
  end
end
print(("corruption: %d trials, %d corrupted a row: %d caught (%d of them also answered a query "
       .. "wrongly before check()), %d harmless, %d served wrong, %d other errors")
      :format(trials, trials - count.skipped, count.caught, count.caught_wrong, count.harmless,
              count.wrong, count.other))
os.exit(count.wrong == 0 and 0 or 1)
