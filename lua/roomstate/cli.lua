-- roomstate.cli: the `roomstate` command-line tool.
--
-- `roomstate import` reads one item per line (JSON lines); items are the
-- format roomstate.items defines, shared with the HTTP API. The event's
-- bytes are passed on exactly as they appear in the input.
--
-- Works under LuaJIT 2.1 and PUC Lua 5.1.

local type, tostring, tonumber, pairs, ipairs, pcall, require, error =
      type, tostring, tonumber, pairs, ipairs, pcall, require, error
local setmetatable, getmetatable = setmetatable, getmetatable
local string_byte, string_sub, string_find, string_format, string_rep, string_match, string_gsub =
      string.byte, string.sub, string.find, string.format, string.rep, string.match, string.gsub
local table_concat, table_sort = table.concat, table.sort
local math_floor, math_max, math_min = math.floor, math.max, math.min
local io_open, io_stdin, io_stdout, io_stderr = io.open, io.stdin, io.stdout, io.stderr
local os_time, os_execute, os_remove = os.time, os.execute, os.remove
local math_huge = math.huge

local _M = {}

local item_format = require "roomstate.items"
local json, show, KINDS = item_format.json, item_format.show, item_format.KINDS

---------------------------------------------------------------------------
-- The command-line tool.

local PROG = "roomstate"

-- Errors the tool reports: one line on stderr, exit status 1 (or 2 for usage).
local Fail = {}
local function fail(status, fmt, ...)
  error(setmetatable({ status = status, msg = string_format(fmt, ...) }, Fail), 0)
end
local function usage_error(cmd, fmt, ...)
  local where = cmd and (PROG .. " " .. cmd) or PROG
  fail(2, "%s: %s (see '%s --help')", where, string_format(fmt, ...), where)
end

-- A monotonic clock in seconds, for progress and rates.
local clock = require("roomstate.core").clock

local function stderr_is_tty()
  local ok, ffi = pcall(require, "ffi")
  if ok then
    pcall(ffi.cdef, "int isatty(int fd);")
    local good, r = pcall(function() return ffi.C.isatty(2) end)
    if good then return r == 1 end
  end
  local r = os_execute("test -t 2")
  return r == 0 or r == true
end

local function write(...) io_stdout:write(...) end

-- Arguments: positional ones in order, options by name. Every option of
-- a command is declared: { name = "takes a value" | false }.
local function parse_args(cmd, argv, first, spec)
  local pos, opt = {}, {}
  local i = first
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      for j = i + 1, #argv do pos[#pos + 1] = argv[j] end
      break
    elseif a == "-h" or a == "--help" then
      opt.help = true
    elseif string_sub(a, 1, 2) == "--" then
      local name, value = string_match(a, "^%-%-([^=]+)=(.*)$")
      name = name or string_sub(a, 3)
      local takes = spec[name]
      if takes == nil then usage_error(cmd, "unknown option %s", show(a)) end
      if takes then
        if value == nil then
          i = i + 1
          value = argv[i]
          if value == nil then usage_error(cmd, "option --%s needs a value", name) end
        end
        opt[name] = value
      else
        if value ~= nil then usage_error(cmd, "option --%s takes no value", name) end
        opt[name] = true
      end
    elseif a ~= "-" and string_sub(a, 1, 1) == "-" and #a > 1 then
      usage_error(cmd, "unknown option %s", show(a))
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return pos, opt
end

local function int_option(cmd, name, v, min)
  local n = tonumber(v)
  if not n or n ~= math_floor(n) or n < min then
    usage_error(cmd, "--%s must be an integer of at least %d, got %s", name, min, show(v))
  end
  return n
end

local function file_exists(path)
  local f = io_open(path, "rb")
  if f then f:close() return true end
  return false
end

local function file_size(path)
  local f = io_open(path, "rb")
  if not f then return nil end
  local n = f:seek("end")
  f:close()
  return n
end

-- Removes a database file and the files SQLite keeps beside it.
local function remove_db(path)
  for _, suffix in ipairs({ "", "-wal", "-shm", "-journal" }) do os_remove(path .. suffix) end
end

-- Opens the database; commands other than import need it to exist.
local function open_db(cmd, path, create)
  if not create and not file_exists(path) then
    fail(1, "%s %s: no such database: %s", PROG, cmd, path)
  end
  local roomstate = require "roomstate"
  local store, err = roomstate.open(path, { deliver = false })
  if not store then fail(1, "%s %s: %s", PROG, cmd, err) end
  return store
end

local function must(cmd, v, err)
  if v == nil then fail(1, "%s %s: %s", PROG, cmd, tostring(err)) end
  return v
end

local function q(s) return (json.encode(s)) end

local function json_strings(list)
  local parts = {}
  for i = 1, #list do parts[i] = q(list[i]) end
  return "[" .. table_concat(parts, ",") .. "]"
end

local function entries_of(cmd, st)
  local iter, err = st:entries()
  must(cmd, iter, err)
  local out = {}
  for t, k, e in iter do out[#out + 1] = { type = t, state_key = k, event_id = e } end
  return out
end

local function entries_json(entries)
  local parts = {}
  for i = 1, #entries do
    local e = entries[i]
    parts[i] = string_format('{"type":%s,"state_key":%s,"event_id":%s}',
                             q(e.type), q(e.state_key), q(e.event_id))
  end
  return "[" .. table_concat(parts, ",") .. "]"
end

-- Columns padded to their widest cell; the last column is not padded.
local function print_table(rows)
  local widths = {}
  for _, row in ipairs(rows) do
    for c = 1, #row - 1 do widths[c] = math_max(widths[c] or 0, #row[c]) end
  end
  for _, row in ipairs(rows) do
    local cells = {}
    for c = 1, #row do
      cells[c] = c < #row and row[c] .. string_rep(" ", widths[c] - #row[c]) or row[c]
    end
    write(table_concat(cells, "  "), "\n")
  end
end

local function display_key(k)
  if k == "" then return '""' end
  return k
end

---------------------------------------------------------------------------
-- Commands.

local commands, order = {}, {}
local function command(name, def)
  def.name = name
  commands[name] = def
  order[#order + 1] = name
end

command("import", {
  args = "DB FILE",
  summary = "ingest a JSON-lines file of events (resumable)",
  options = { kind = true, batch = true, ["keep-going"] = false, progress = false,
              ["no-progress"] = false, json = false },
  help = [[
Reads FILE (or - for standard input), one item per line, and ingests it
into DB, creating DB if needed. A line is either an event (a PDU object
with an "event_id") or an object
  {"event": {...}, "kind": "new"|"old"|"outlier", "state": ["$id", ...]}
where kind (default "new") and state are what store:ingest takes. Blank
lines are skipped. Events are stored byte for byte as they appear.

Lines are ingested in transactions of --batch lines. Events already in DB
count as duplicates, not errors, so an interrupted import can simply be
run again. New events that the auth rules reject or soft-fail are stored
(as store:ingest does) and counted as rejected and soft-failed; they are
not failures. An import that created DB and fails (or is interrupted) before
storing any event removes DB again. On a terminal, a progress bar
(events/s, ETA) goes to stderr.

Options:
  --kind KIND     kind of lines that name none (default new)
  --batch N       lines per transaction (default 500)
  --keep-going    report a failing line and go on (exit status 1 at the end)
  --progress      draw the progress bar even when stderr is not a terminal
  --no-progress   never draw it
  --json          print the summary as JSON on stdout]],
  run = function(cmd, pos, opt, on_failure)
    if #pos ~= 2 then usage_error(cmd, "expected DB FILE, got %d arguments", #pos) end
    local dbpath, path = pos[1], pos[2]
    local kind = opt.kind or "new"
    if not KINDS[kind] then
      usage_error(cmd, "--kind must be new, old or outlier, got %s", show(kind))
    end
    local batch_size = opt.batch and int_option(cmd, "batch", opt.batch, 1) or 500
    local f, total
    if path == "-" then
      f = io_stdin
    else
      local err
      f, err = io_open(path, "rb")
      if not f then fail(1, "%s import: cannot read %s", PROG, tostring(err)) end
      total = f:seek("end")
      f:seek("set", 0)
    end
    local created = not file_exists(dbpath)
    local store = open_db(cmd, dbpath, true)
    local show_bar = not opt["no-progress"] and (opt.progress or stderr_is_tty())

    local t0 = clock()
    local done_bytes, last_draw = 0, -1
    local stats = { lines = 0, events = 0, new = 0, duplicates = 0, rewrites = 0, rejected = 0,
                    soft_failed = 0, failed = 0 }

    -- A failed import must not leave behind an empty database it created,
    -- which would look like a successful one; stored events stay, so that
    -- a rerun resumes.
    local function discard_if_empty()
      store:close()
      if created and stats.events == 0 then remove_db(dbpath) end
    end
    on_failure(discard_if_empty)

    local function draw(final)
      local now = clock()
      if not final and now - last_draw < 0.1 then return end
      last_draw = now
      local el = math_max(now - t0, 1e-6)
      local rate = stats.lines / el -- lines read: events stored lag by a batch
      local line
      if total and total > 0 then
        local frac = math_min(done_bytes / total, 1)
        local w = 30
        local fill = math_floor(frac * w + 0.5)
        local eta = frac > 0 and el * (1 - frac) / frac or 0
        line = string_format("\r[%s%s] %3d%%  %d events  %.0f events/s  ETA %s ",
                             string_rep("#", fill), string_rep(".", w - fill),
                             math_floor(frac * 100), stats.lines, rate,
                             final and "0s" or string_format("%ds", math_floor(eta + 0.5)))
      else
        line = string_format("\r%d events  %.0f events/s ", stats.lines, rate)
      end
      io_stderr:write(line)
      if final then io_stderr:write("\n") end
    end

    local failures = {}
    local function failed(lineno, err)
      stats.failed = stats.failed + 1
      local msg = string_format("%s import: %s:%d: %s", PROG, path, lineno, tostring(err))
      if not opt["keep-going"] then
        if show_bar then io_stderr:write("\n") end
        store:close()
        fail(1, "%s", msg)
      end
      failures[#failures + 1] = msg
      if show_bar then io_stderr:write("\r", msg, "\n") else io_stderr:write(msg, "\n") end
    end

    local function count(res)
      stats.events = stats.events + 1
      if res.duplicate then stats.duplicates = stats.duplicates + 1 else stats.new = stats.new + 1 end
      if res.rewrote then stats.rewrites = stats.rewrites + 1 end
      -- a duplicate carries its stored verdict: count what this run stored
      if not res.duplicate and res.rejected then stats.rejected = stats.rejected + 1 end
      if not res.duplicate and res.soft_failed then stats.soft_failed = stats.soft_failed + 1 end
    end

    local pending, lines = {}, {}
    local function flush()
      if #pending == 0 then return end
      local results = store:ingest_batch(pending)
      if results then
        for i = 1, #results do count(results[i]) end
      else
        -- Find the line: the batch rolled back, so go one by one.
        -- (If every item passes alone, the batch failed for a passing
        -- reason such as BUSY and nothing is lost.)
        for i = 1, #pending do
          local res, e2 = store:ingest(pending[i].event, { kind = pending[i].kind,
                                                           state = pending[i].state })
          if res then count(res) else failed(lines[i], e2) end
        end
      end
      pending, lines = {}, {}
    end

    local lineno = 0
    for line in f:lines() do
      lineno = lineno + 1
      done_bytes = done_bytes + #line + 1
      if string_find(line, "%S") then
        stats.lines = stats.lines + 1
        local items, err = item_format.parse_items(line, { single = true, kind = kind, what = "the line" })
        if not items then
          flush()
          failed(lineno, err)
        else
          local it = items[1]
          pending[#pending + 1] = { event = it.event, kind = it.kind, state = it.state }
          lines[#lines + 1] = lineno
          if #pending >= batch_size then flush() end
        end
        if show_bar then draw(false) end
      end
    end
    flush()
    if f ~= io_stdin then f:close() end
    local el = math_max(clock() - t0, 1e-6)
    if show_bar then draw(true) end
    store:close()
    if stats.failed > 0 then discard_if_empty() end
    if opt.json then
      write(string_format('{"file":%s,"lines":%d,"events":%d,"new":%d,"duplicates":%d,' ..
                          '"rewrites":%d,"rejected":%d,"soft_failed":%d,"failed":%d,' ..
                          '"seconds":%.3f}\n', q(path), stats.lines, stats.events, stats.new,
                          stats.duplicates, stats.rewrites, stats.rejected, stats.soft_failed,
                          stats.failed, el))
    else
      write(string_format("imported %s: %d events (%d new, %d duplicates, %d rewrites, " ..
                          "%d rejected, %d soft-failed), %d failed, in %.2f s (%.0f events/s)\n",
                          path, stats.events, stats.new, stats.duplicates, stats.rewrites,
                          stats.rejected, stats.soft_failed, stats.failed, el,
                          stats.events / el))
    end
    return stats.failed == 0 and 0 or 1
  end,
})

command("state", {
  args = "DB ROOM",
  summary = "print a room's current state, or its state at an event",
  options = { at = true, before = true, json = false },
  help = [[
Prints the state of ROOM: one line per entry, type, state key (an empty
key shows as "") and event ID, ordered by type, then by state key (as
byte strings).

Options:
  --at EVENT      the state after EVENT (the room once EVENT was applied)
  --before EVENT  the state before EVENT (the state EVENT was checked against)
  --json          {"room_id", "at", "state_hash", "state": [{type, state_key, event_id}]}]],
  run = function(cmd, pos, opt)
    if #pos ~= 2 then usage_error(cmd, "expected DB ROOM, got %d arguments", #pos) end
    if opt.at and opt.before then usage_error(cmd, "give --at or --before, not both") end
    local store = open_db(cmd, pos[1])
    local room, at = pos[2], opt.at or opt.before
    local st, err
    if at then
      local text = must(cmd, store:event(at))
      local ev = json.decode(text)
      if ev and ev.room_id ~= room then
        fail(1, "%s %s: event %s is in room %s, not %s", PROG, cmd, at, tostring(ev.room_id), room)
      end
      if opt.at then st, err = store:state_after(at) else st, err = store:state_before(at) end
    else
      st, err = store:current_state(room)
    end
    must(cmd, st, err)
    local entries = entries_of(cmd, st)
    -- The store's order follows internal IDs, which mean nothing to a reader.
    table_sort(entries, function(a, b)
      if a.type ~= b.type then return a.type < b.type end
      return a.state_key < b.state_key
    end)
    local hash = require("roomstate").state_hash(entries)
    if opt.json then
      write(string_format('{"room_id":%s,"at":%s,"state_hash":"%s","state":%s}\n', q(room),
                          at and q((opt.at and "after " or "before ") .. at) or "null", hash,
                          entries_json(entries)))
    else
      local rows = {}
      for i, e in ipairs(entries) do rows[i] = { e.type, display_key(e.state_key), e.event_id } end
      print_table(rows)
    end
    store:close()
    return 0
  end,
})

command("members", {
  args = "DB ROOM",
  summary = "list a room's members",
  options = { membership = true, json = false },
  help = [[
Prints the users whose current membership in ROOM is join (one a line).

Options:
  --membership M  another membership: invite, leave, ban, knock
  --json          {"room_id", "membership", "members": [...]}]],
  run = function(cmd, pos, opt)
    if #pos ~= 2 then usage_error(cmd, "expected DB ROOM, got %d arguments", #pos) end
    local m = opt.membership or "join"
    local roomstate = require "roomstate"
    if not roomstate.is_membership(m) then
      usage_error(cmd, "--membership must be one of %s, got %s",
                  table_concat(roomstate.MEMBERSHIPS, ", "), show(m))
    end
    local store = open_db(cmd, pos[1])
    local list = must(cmd, store:members(pos[2], m))
    table_sort(list)
    if opt.json then
      write(string_format('{"room_id":%s,"membership":%s,"members":%s}\n', q(pos[2]), q(m),
                          json_strings(list)))
    else
      for i = 1, #list do write(list[i], "\n") end
    end
    store:close()
    return 0
  end,
})

command("diff", {
  args = "DB EVENT_A EVENT_B",
  summary = "show how the state after one event differs from the state after another",
  options = { before = false, json = false },
  help = [[
Compares the state after EVENT_A with the state after EVENT_B. Lines
starting with - are in A's state only, lines starting with + in B's only
(a changed key shows as both).

Options:
  --before        compare the states before the events instead
  --json          {"a", "b", "removed": [...], "added": [...]} with entries
                  {type, state_key, event_id}]],
  run = function(cmd, pos, opt)
    if #pos ~= 3 then usage_error(cmd, "expected DB EVENT_A EVENT_B, got %d arguments", #pos) end
    local store = open_db(cmd, pos[1])
    local get = opt.before and store.state_before or store.state_after
    local a = must(cmd, get(store, pos[2]))
    local b = must(cmd, get(store, pos[3]))
    local removed, added = a:diff(b)
    must(cmd, removed, added)
    local keys = {}
    for _, e in ipairs(entries_of(cmd, a)) do keys[e.event_id] = e end
    for _, e in ipairs(entries_of(cmd, b)) do keys[e.event_id] = e end
    local function entry(id)
      return keys[id] or { type = "?", state_key = "?", event_id = id }
    end
    local rem, add = {}, {}
    for i = 1, #removed do rem[i] = entry(removed[i]) end
    for i = 1, #added do add[i] = entry(added[i]) end
    if opt.json then
      write(string_format('{"a":%s,"b":%s,"removed":%s,"added":%s}\n', q(pos[2]), q(pos[3]),
                          entries_json(rem), entries_json(add)))
    else
      local rows = {}
      for _, e in ipairs(rem) do rows[#rows + 1] = { "-", e.type, display_key(e.state_key), e.event_id } end
      for _, e in ipairs(add) do rows[#rows + 1] = { "+", e.type, display_key(e.state_key), e.event_id } end
      table_sort(rows, function(x, y)
        if x[2] ~= y[2] then return x[2] < y[2] end
        if x[3] ~= y[3] then return x[3] < y[3] end
        return x[1] > y[1] -- "-" (the old entry) before "+"
      end)
      print_table(rows)
      if #rows == 0 then write("(the states are the same)\n") end
    end
    store:close()
    return 0
  end,
})

-- One line summing up an output.
local function output_line(out)
  local t = out.type
  local body = out[t] or {}
  if t == "new_room_event" then
    local ev = body.event or {}
    local adds, rems = body.adds_state_event_ids or {}, body.removes_state_event_ids or {}
    local sk = ev.state_key and (" " .. display_key(ev.state_key)) or ""
    return { tostring(out.position), t, tostring(ev.room_id), tostring(ev.event_id),
             string_format("%s%s  +%d -%d state%s  hash %s", tostring(ev.type), sk, #adds, #rems,
                           body.rewrites_state and "  REWRITE" or "", tostring(body.state_hash)) }
  elseif t == "old_room_event" then
    local ev = body.event or {}
    return { tostring(out.position), t, tostring(ev.room_id), tostring(ev.event_id),
             tostring(ev.type) }
  elseif t == "purge_room" then
    return { tostring(out.position), t, tostring(body.room_id), "", "" }
  end
  return { tostring(out.position), tostring(t), "", "", "" }
end

command("outputs", {
  args = "DB",
  summary = "print the output log",
  options = { from = true, limit = true, json = false },
  help = [[
Prints the output log from a position on: one line per output with its
position, type, room, event and a summary of the state change.

Options:
  --from N        the first position (default 1)
  --limit N       print at most N outputs (default all)
  --json          one output per line, as JSON (the format of store:outputs_json
                  and of the HTTP API's /outputs)]],
  run = function(cmd, pos, opt)
    if #pos ~= 1 then usage_error(cmd, "expected DB, got %d arguments", #pos) end
    local from = opt.from and int_option(cmd, "from", opt.from, 0) or 1
    local limit = opt.limit and int_option(cmd, "limit", opt.limit, 0) or math_huge
    local store = open_db(cmd, pos[1])
    local n = 0
    while n < limit do
      local want = math_min(256, limit - n)
      local text, err
      if opt.json then
        text, err = store:outputs_json_list(from, want)
        must(cmd, text, err)
        if #text == 0 then break end
        for i = 1, #text do write(text[i], "\n") end
        local last = json.decode(text[#text])
        from, n = last.position + 1, n + #text
      else
        local outs = must(cmd, store:outputs(from, want))
        if #outs == 0 then break end
        local rows = {}
        for i = 1, #outs do rows[i] = output_line(outs[i]) end
        print_table(rows)
        from, n = outs[#outs].position + 1, n + #outs
      end
    end
    store:close()
    return 0
  end,
})

command("stats", {
  args = "DB",
  summary = "counts and sizes of what is stored",
  options = { json = false },
  help = [[
Prints counts and sizes: rooms, events, state snapshots, state blocks,
their bytes, the output log, the file size and the bytes of state storage
per state entry.

Options:
  --json          the same as one JSON object]],
  run = function(cmd, pos, opt)
    if #pos ~= 1 then usage_error(cmd, "expected DB, got %d arguments", #pos) end
    local path = pos[1]
    local store = open_db(cmd, path)
    local c = must(cmd, store:debug():debug_counts())
    local rooms = must(cmd, store:rooms())
    local current = 0
    for i = 1, #rooms do
      local st = store:current_state(rooms[i])
      if st then current = current + (st:count() or 0) end
    end
    local state_bytes = c.block_bytes + c.snapshot_bytes
    -- Per state event when the core counts them, else per current-state entry.
    local per_label, per_n = "current state entries", current
    if c.state_events then per_label, per_n = "state events", c.state_events end
    local file = (file_size(path) or 0) + (file_size(path .. "-wal") or 0)
    local rows = {
      { "rooms", c.rooms }, { "events", c.events },
      { per_label, per_n },
      { "snapshots", c.snapshots }, { "blocks", c.blocks },
      { "block bytes", c.block_bytes }, { "snapshot bytes", c.snapshot_bytes },
      { "outputs", c.outputs }, { "event types", c.types }, { "state keys", c.keys },
      { "file bytes (with WAL)", file },
    }
    local per = per_n > 0 and state_bytes / per_n or 0
    if opt.json then
      write(string_format('{"rooms":%d,"events":%d,"state_events":%s,"current_state_entries":%d,' ..
                          '"snapshots":%d,"blocks":%d,"block_bytes":%d,"snapshot_bytes":%d,' ..
                          '"outputs":%d,"types":%d,"keys":%d,"file_bytes":%d,' ..
                          '"state_bytes_per_%s":%.2f}\n',
                          c.rooms, c.events, c.state_events and tostring(c.state_events) or "null",
                          current, c.snapshots, c.blocks, c.block_bytes, c.snapshot_bytes,
                          c.outputs, c.types, c.keys, file,
                          c.state_events and "state_event" or "current_entry", per))
    else
      local out = {}
      for i, r in ipairs(rows) do out[i] = { r[1], string_format("%d", r[2]) } end
      out[#out + 1] = { "state bytes per " .. (c.state_events and "state event" or
                                               "current state entry"),
                        string_format("%.2f", per) }
      print_table(out)
    end
    store:close()
    return 0
  end,
})

command("check", {
  args = "DB",
  summary = "verify every stored invariant",
  options = {},
  help = [[
Verifies what the design relies on: every state block decodes and is
sorted with unique keys; every snapshot has at most 64 blocks, all present,
and the entry count it records; every stored event's snapshots exist; each
room's current state equals the merged state after its forward
extremities, its state hash matches and its member index follows it; the
output log's positions are contiguous.

Prints "ok" and exits 0, or names the first thing broken on stderr and
exits 1.]],
  run = function(cmd, pos)
    if #pos ~= 1 then usage_error(cmd, "expected DB, got %d arguments", #pos) end
    local store = open_db(cmd, pos[1])
    local ok, err = store:check()
    if not ok then
      store:close()
      fail(1, "%s check: %s: %s", PROG, pos[1], tostring(err))
    end
    local c = must(cmd, store:debug():debug_counts())
    write(string_format("ok: %s: %d rooms, %d events, %d snapshots, %d blocks, %d outputs\n",
                        pos[1], c.rooms, c.events, c.snapshots, c.blocks, c.outputs))
    store:close()
    return 0
  end,
})

local function main_help()
  local lines = {
    "usage: " .. PROG .. " COMMAND [OPTIONS] ARGS",
    "",
    "Inspects and fills a roomstate database (Matrix room state in SQLite).",
    "",
    "Commands:",
  }
  for _, name in ipairs(order) do
    local c = commands[name]
    lines[#lines + 1] = string_format("  %-8s %-20s %s", name, c.args, c.summary)
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "'" .. PROG .. " COMMAND --help' describes a command. Exit status: 0 ok,"
  lines[#lines + 1] = "1 failure (one line on stderr), 2 wrong usage."
  return table_concat(lines, "\n") .. "\n"
end

local function command_help(c)
  return string_format("usage: %s %s [OPTIONS] %s\n\n%s\n", PROG, c.name, c.args, c.help)
end

-- The interpreter turns Ctrl-C (SIGINT) into an error whose only mark is
-- its text: "interrupted!", from lua.c and luajit.c alike.
local function is_interrupt(e)
  return type(e) == "string" and string_find(e, "interrupted!$") ~= nil
end

-- main(argv) -> exit status. argv: the script's arguments (arg).
function _M.main(argv)
  argv = argv or {}
  -- Commands register here what to undo if they stop on an error.
  local cleanups = {}
  local function on_failure(fn) cleanups[#cleanups + 1] = fn end
  local ok, status = pcall(function()
    local name = argv[1]
    if name == nil or name == "-h" or name == "--help" then
      write(main_help())
      return name and 0 or 2
    end
    if name == "help" then
      local c = argv[2] and commands[argv[2]]
      if argv[2] and not c then usage_error(nil, "no command %s", show(argv[2])) end
      write(c and command_help(c) or main_help())
      return 0
    end
    if name == "--version" then
      write(PROG, " ", require("roomstate")._VERSION, "\n")
      return 0
    end
    local c = commands[name]
    if not c then usage_error(nil, "no command %s", show(name)) end
    local pos, opt = parse_args(name, argv, 2, c.options)
    if opt.help then
      write(command_help(c))
      return 0
    end
    return c.run(name, pos, opt, on_failure)
  end)
  if ok then return status end
  -- Undo what the command left half done; a failing undo must not hide why.
  for i = #cleanups, 1, -1 do pcall(cleanups[i]) end
  if is_interrupt(status) then
    io_stderr:write(PROG, ": interrupted\n")
    return 130 -- as a shell reports a process killed by SIGINT
  end
  if type(status) == "table" and getmetatable(status) == Fail then
    io_stderr:write(status.msg, "\n")
    return status.status
  end
  -- Anything else is a bug or a caller mistake inside the library: still one line.
  io_stderr:write(PROG, ": internal error: ", (string_gsub(tostring(status), "\n.*", "")), "\n")
  return 1
end

return _M
