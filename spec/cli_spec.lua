-- bin/roomstate: every subcommand, run as a separate process, checked
-- against the library's own view; check against corrupted copies; and
-- examples/cli/run.sh.
local server_mod = require "support.nginx_server" -- build_dir, sh, mktemp_dir
local sqlite_edit = require "support.sqlite_edit"
local cjson = require "cjson"
local roomstate = require "roomstate"
local items_mod = require "roomstate.items"

local ROOM = "!planning:example.org"
local JSONL = "examples/cli/room.jsonl"
local BUILD = server_mod.build_dir()

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- run(args [, opts]) -> exit status, stdout, stderr
local function run(args, opts)
  opts = opts or {}
  local dir = server_mod.mktemp_dir("clirun")
  local cmd = string.format("ROOMSTATE_BUILD=%s %s bin/roomstate %s %s > %s/out 2> %s/err",
                            q(BUILD), opts.lua or "", args,
                            opts.stdin and ("< " .. q(opts.stdin)) or "", dir, dir)
  local p = io.popen("{ " .. cmd .. "; } ; echo $?")
  local status = tonumber(p:read("*a"):match("(%d+)%s*$"))
  p:close()
  local function read(name)
    local f = io.open(dir .. "/" .. name)
    local s = f:read("*a")
    f:close()
    return s
  end
  local out, err = read("out"), read("err")
  server_mod.sh("rm -rf " .. q(dir))
  return status, out, err
end

local function lines_of(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

local function copy(from, to)
  local f = assert(io.open(from, "rb"))
  local data = f:read("*a")
  f:close()
  local g = assert(io.open(to, "wb"))
  g:write(data)
  g:close()
end

describe("roomstate (the command-line tool)", function()
  local dir, db

  setup(function()
    dir = server_mod.mktemp_dir("cli")
    db = dir .. "/room.db"
  end)
  teardown(function()
    if dir then server_mod.sh("rm -rf " .. q(dir)) end
  end)

  describe("import", function()
    it("imports a JSON-lines file and prints a summary", function()
      local status, out, err = run("import " .. q(db) .. " " .. JSONL)
      assert.are.equal(0, status, err)
      assert.are.equal("", err) -- no terminal, no progress bar
      assert.matches("18 events %(18 new, 0 duplicates, 1 rewrites, 0 rejected, 0 soft%-failed%), " ..
                     "0 failed", out)
      local s = assert(roomstate.open(db))
      assert.are.equal(18, s:debug():debug_counts().events)
      assert.is_true(s:check())
      -- The example is a room of valid events: the auth rules pass them all.
      local f = assert(io.open(JSONL))
      for line in f:lines() do
        local id = line:match('"event_id":"([^"]+)"')
        assert.are.same({ "accepted" }, { s:event_status(id) }, id)
      end
      f:close()
      s:close()
    end)

    it("is resumable: a second run stores nothing and fails nothing", function()
      local status, out = run("import " .. q(db) .. " " .. JSONL .. " --json")
      assert.are.equal(0, status)
      local summary = cjson.decode(out)
      assert.are.same({ 18, 0, 18, 0 }, { summary.events, summary.new, summary.duplicates, summary.failed })
    end)

    it("resumes an interrupted import where it stopped", function()
      local part, fresh = dir .. "/part.jsonl", dir .. "/resumed.db"
      local f = assert(io.open(JSONL))
      local all = lines_of(f:read("*a"))
      f:close()
      local g = assert(io.open(part, "w"))
      g:write(table.concat(all, "\n", 1, 11), "\n")
      g:close()
      assert.are.equal(0, (run("import " .. q(fresh) .. " " .. q(part) .. " --batch 4")))
      local status, out = run("import " .. q(fresh) .. " " .. JSONL .. " --json --batch 4")
      assert.are.equal(0, status)
      local summary = cjson.decode(out)
      assert.are.same({ 18, 7, 11 }, { summary.events, summary.new, summary.duplicates })
      local a, b = assert(roomstate.open(fresh)), assert(roomstate.open(db))
      assert.are.equal(b:state_hash(ROOM), a:state_hash(ROOM))
      assert.are.same(b:outputs_json(1, 100), a:outputs_json(1, 100))
      a:close()
      b:close()
    end)

    it("reads standard input and keeps each event's bytes", function()
      local odd = dir .. "/odd.jsonl"
      local text = '{ "event_id" : "$odd:x", "room_id":"!odd:x","type":"m.room.create",' ..
                   '"state_key":"","sender":"@a:x","content":{"creator":"@a:x","room_version":"10","n":1.50},' ..
                   '"prev_events":[],"auth_events":[],"depth":1 }'
      local g = assert(io.open(odd, "w"))
      g:write("\n", '{"kind": "new", "event":  ' .. text .. '  }', "\n\n")
      g:close()
      local status, out, err = run("import " .. q(dir .. "/odd.db") .. " -", { stdin = odd })
      assert.are.equal(0, status, err)
      assert.matches("1 events", out)
      local s = assert(roomstate.open(dir .. "/odd.db"))
      assert.are.equal(text, s:event("$odd:x"))
      s:close()
    end)

    it("counts the events the auth rules reject or soft-fail, which are stored, not failures", function()
      local function line(id, etype, state_key, sender, content, prev, auth, depth)
        return cjson.encode({ event_id = id, room_id = "!r:x", type = etype, state_key = state_key,
                              sender = sender, content = content, prev_events = prev,
                              auth_events = auth, depth = depth })
      end
      local file = dir .. "/verdicts.jsonl"
      local g = assert(io.open(file, "w"))
      g:write(table.concat({
        '{"event_id":"$c:x","room_id":"!r:x","type":"m.room.create","state_key":"",' ..
        '"sender":"@a:x","content":{"creator":"@a:x","room_version":"10"},' ..
        '"prev_events":[],"auth_events":[],"depth":1}',
        line("$aj:x", "m.room.member", "@a:x", "@a:x", { membership = "join" }, { "$c:x" }, { "$c:x" }, 2),
        line("$jr:x", "m.room.join_rules", "", "@a:x", { join_rule = "public" }, { "$aj:x" },
             { "$c:x", "$aj:x" }, 3),
        line("$bj:x", "m.room.member", "@b:x", "@b:x", { membership = "join" }, { "$jr:x" },
             { "$c:x", "$jr:x" }, 4),
        line("$bl:x", "m.room.member", "@b:x", "@b:x", { membership = "leave" }, { "$bj:x" },
             { "$c:x", "$bj:x" }, 5),
        -- Bob was joined in its state, but not in the room's current state
        line("$late:x", "m.room.message", nil, "@b:x", { body = "before I left" }, { "$bj:x" },
             { "$c:x", "$bj:x" }, 5),
        -- never joined
        line("$stranger:x", "m.room.message", nil, "@s:x", { body = "hi" }, { "$bl:x" }, { "$c:x" }, 6),
      }, "\n"), "\n")
      g:close()
      local vdb = dir .. "/verdicts.db"
      local status, out, err = run("import " .. q(vdb) .. " " .. q(file))
      assert.are.equal(0, status, err)
      assert.matches("7 events %(7 new, 0 duplicates, 0 rewrites, 1 rejected, 1 soft%-failed%), " ..
                     "0 failed", out)
      local s = assert(roomstate.open(vdb))
      assert.are.equal("soft_failed", (s:event_status("$late:x")))
      assert.are.equal("rejected", (s:event_status("$stranger:x")))
      s:close()
      -- a rerun stores nothing, so it counts no verdicts
      status, out = run("import " .. q(vdb) .. " " .. q(file) .. " --json")
      assert.are.equal(0, status)
      local summary = cjson.decode(out)
      assert.are.same({ 7, 0, 0 }, { summary.duplicates, summary.rejected, summary.soft_failed })
    end)

    it("stops at a failing line, naming the file, the line and the error", function()
      local bad = dir .. "/bad.jsonl"
      local f = assert(io.open(JSONL))
      local all = lines_of(f:read("*a"))
      f:close()
      local g = assert(io.open(bad, "w"))
      for i = 1, 5 do g:write(all[i], "\n") end
      g:write('{"event_id":"$oops","room_id":"!planning:example.org","type":"m.room.message",' ..
              '"sender":"@a:x","content":{},"prev_events":["$nowhere"],"auth_events":[],"depth":"x"}\n')
      g:write("{not json\n")
      for i = 6, 8 do g:write(all[i], "\n") end
      g:close()
      local status, out, err = run("import " .. q(dir .. "/bad.db") .. " " .. q(bad))
      assert.are.equal(1, status)
      assert.are.equal("", out)
      assert.are.equal(1, #lines_of(err))
      assert.matches("bad.jsonl:6: BAD_EVENT: ", err, 1, true)
      assert.matches("depth", err, 1, true)
      local s = assert(roomstate.open(dir .. "/bad.db"))
      assert.are.equal(5, s:debug():debug_counts().events) -- the lines before it
      s:close()
      -- --keep-going reports both bad lines and stores the rest.
      status, out, err = run("import " .. q(dir .. "/bad.db") .. " " .. q(bad) .. " --keep-going")
      assert.are.equal(1, status)
      local errs = lines_of(err)
      assert.are.equal(2, #errs)
      assert.matches("bad.jsonl:6: BAD_EVENT", errs[1], 1, true)
      assert.matches("bad.jsonl:7: NOT_JSON", errs[2], 1, true)
      assert.matches("8 events %(3 new, 5 duplicates, 0 rewrites, 0 rejected, 0 soft%-failed%), " ..
                     "2 failed", out)
    end)

    it("draws a progress bar with events/s and an ETA when asked (or on a terminal)", function()
      local status, _, err = run("import " .. q(dir .. "/p.db") .. " " .. JSONL .. " --progress")
      assert.are.equal(0, status)
      assert.matches("events/s", err, 1, true)
      assert.matches("ETA", err, 1, true)
      assert.matches("100%", err, 1, true)
    end)

    it("rejects a wrong --kind and a missing file", function()
      local status, _, err = run("import x.db " .. JSONL .. " --kind sideways")
      assert.are.equal(2, status)
      assert.matches('--kind must be new, old or outlier, got "sideways"', err, 1, true)
      status, _, err = run("import " .. q(dir .. "/y.db") .. " /nonexistent/file.jsonl")
      assert.are.equal(1, status)
      assert.are.equal(1, #lines_of(err))
      assert.matches("/nonexistent/file.jsonl", err, 1, true)
    end)
  end)

  describe("queries", function()
    it("state prints the current state as the library sees it", function()
      local status, out = run("state " .. q(db) .. " " .. q(ROOM) .. " --json")
      assert.are.equal(0, status)
      local doc = cjson.decode(out)
      local s = assert(roomstate.open(db))
      local want = {}
      for t, k, e in assert(s:current_state(ROOM)):entries() do
        want[#want + 1] = { type = t, state_key = k, event_id = e }
      end
      table.sort(want, function(a, b) return a.type .. "\0" .. a.state_key < b.type .. "\0" .. b.state_key end)
      assert.are.same(want, doc.state)
      assert.are.equal(s:state_hash(ROOM), doc.state_hash)
      s:close()
      local _, human = run("state " .. q(db) .. " " .. q(ROOM))
      assert.are.equal(#want, #lines_of(human))
      assert.matches('m.room.topic%s+""%s+%$remote%-topic:remote.example', human)
    end)

    it("state --at and --before give the state after and before an event", function()
      local s = assert(roomstate.open(db))
      for flag, fn in pairs({ at = s.state_after, before = s.state_before }) do
        local status, out = run("state " .. q(db) .. " " .. q(ROOM) .. " --" .. flag ..
                                " '$topic:example.org' --json")
        assert.are.equal(0, status)
        local ids = {}
        for _, e in ipairs(cjson.decode(out).state) do ids[#ids + 1] = e.event_id end
        table.sort(ids)
        local want = assert(fn(s, "$topic:example.org")):event_ids()
        table.sort(want)
        assert.are.same(want, ids)
      end
      s:close()
      local status, _, err = run("state " .. q(db) .. " '!other:x' --at '$topic:example.org'")
      assert.are.equal(1, status)
      assert.matches("is in room !planning:example.org, not !other:x", err, 1, true)
    end)

    it("members lists members, and other memberships with --membership", function()
      local status, out = run("members " .. q(db) .. " " .. q(ROOM))
      assert.are.equal(0, status)
      assert.are.same({ "@alice:example.org", "@carol:example.org", "@dave:remote.example",
                        "@erin:example.org" }, lines_of(out))
      status, out = run("members " .. q(db) .. " " .. q(ROOM) .. " --membership leave --json")
      assert.are.equal(0, status)
      assert.are.same({}, cjson.decode(out).members) -- the rewrite dropped Bob's leave
    end)

    it("diff shows removed and added entries", function()
      local status, out = run("diff " .. q(db) .. " '$bob-leaves:example.org' '$erin-joins:example.org' --json")
      assert.are.equal(0, status)
      local doc = cjson.decode(out)
      local s = assert(roomstate.open(db))
      local rem, add = assert(s:state_after("$bob-leaves:example.org"))
                         :diff(assert(s:state_after("$erin-joins:example.org")))
      s:close()
      local function ids(list)
        local t = {}
        for i, e in ipairs(list) do t[i] = e.event_id end
        return t
      end
      assert.are.same(rem, ids(doc.removed))
      assert.are.same(add, ids(doc.added))
      local _, human = run("diff " .. q(db) .. " '$bob-leaves:example.org' '$erin-joins:example.org'")
      assert.matches("%-%s+m.room.topic%s+\"\"%s+%$topic:example.org", human)
      assert.matches("%+%s+m.room.member%s+@erin:example.org", human)
      _, human = run("diff " .. q(db) .. " '$hello:example.org' '$hello:example.org'")
      assert.matches("the states are the same", human, 1, true)
    end)

    it("outputs prints the log, as lines or as the library's JSON", function()
      local status, out = run("outputs " .. q(db) .. " --from 3 --json")
      assert.are.equal(0, status)
      local s = assert(roomstate.open(db))
      local want = cjson.decode((assert(s:outputs_json(3, 100))))
      s:close()
      local got = {}
      for _, l in ipairs(lines_of(out)) do got[#got + 1] = cjson.decode(l) end
      assert.are.same(want, got)
      status, out = run("outputs " .. q(db) .. " --from 14 --limit 2")
      assert.are.equal(0, status)
      local l = lines_of(out)
      assert.are.equal(2, #l)
      assert.matches("^14%s+new_room_event%s+!planning:example.org%s+%$bob%-leaves", l[1])
      assert.matches("REWRITE", l[2], 1, true)
    end)

    it("stats prints counts and sizes", function()
      local status, out = run("stats " .. q(db) .. " --json")
      assert.are.equal(0, status)
      local doc = cjson.decode(out)
      local s = assert(roomstate.open(db))
      local c = s:debug():debug_counts()
      s:close()
      assert.are.same({ c.events, c.snapshots, c.blocks, c.block_bytes, c.rooms },
                      { doc.events, doc.snapshots, doc.blocks, doc.block_bytes, doc.rooms })
      assert.is_true(doc.file_bytes > 0)
      local _, human = run("stats " .. q(db))
      assert.matches("snapshots%s+%d+", human)
      assert.matches("state bytes per", human, 1, true)
    end)

    it("works under PUC Lua 5.1 too", function()
      if not server_mod.exists("/usr/bin/lua5.1") then
        pending("lua5.1 is not installed")
        return
      end
      local status, out, err = run("members " .. q(db) .. " " .. q(ROOM), { lua = "lua5.1" })
      assert.are.equal(0, status, err)
      assert.are.equal(4, #lines_of(out))
    end)
  end)

  describe("check", function()
    -- a room large enough to store its state in block rows, not only in
    -- snapshot rows' inline tails, so both can be corrupted
    setup(function()
      local s = assert(roomstate.open(db))
      local room = assert(require("roomstate.harness").new(s):create_room("@big:example.org"))
      for i = 1, 40 do assert(room:join(("@m%d:example.org"):format(i))) end
      assert.is_true(s:debug():debug_counts().blocks > 0)
      s:close()
    end)

    it("passes on a sound database", function()
      local status, out = run("check " .. q(db))
      assert.are.equal(0, status)
      assert.matches("^ok: ", out)
    end)

    -- Each corruption goes into a fresh copy; check must fail naming it.
    local cases = {
      { "a block's data overwritten", "UPDATE blocks SET data = x'ffffffffffff' " ..
        "WHERE nid = (SELECT max(nid) FROM blocks)", "block" },
      { "a snapshot's inline tail overwritten", "UPDATE snapshots SET data = data || x'ff' " ..
        "WHERE nid = (SELECT after_snap FROM events WHERE event_id = '$topic:example.org')",
        "does not match its checksum" },
      { "an event row copied under a new ID", "INSERT INTO events(event_id, room_nid, kind) " ..
        "SELECT event_id, room_nid, kind FROM events WHERE event_id = '$topic:example.org'",
        "an event ID is stored twice" },
      { "a state key row copied under a new ID (schema 12 has no UNIQUE index on keys)",
        "INSERT INTO state_keys(key, sum) SELECT key, sum FROM state_keys " ..
        "WHERE key = '@m1:example.org'", "a state key is stored twice" },
      { "a snapshot row deleted", "DELETE FROM snapshots WHERE nid = (SELECT after_snap " ..
        "FROM events WHERE event_id = '$topic:example.org')", "snapshot is missing" },
      { "a snapshot's entry count changed", "UPDATE snapshots SET nentries = nentries + 1 " ..
        "WHERE nid = (SELECT after_snap FROM events WHERE event_id = '$topic:example.org')",
        "does not match its checksum" },
      { "one byte of a block changed", "UPDATE blocks SET data = substr(data, 1, length(data) - 1) " ..
        "|| x'7f' WHERE nid = (SELECT max(nid) FROM blocks)", "content hash" },
      { "one byte of an output changed", "UPDATE outputs SET data = substr(data, 1, " ..
        "length(data) - 1) || x'7e' WHERE position = 3", "does not match its checksum" },
      { "a snapshot moved to another room", "UPDATE snapshots SET room_nid = room_nid + 1 " ..
        "WHERE nid = (SELECT after_snap FROM events WHERE event_id = '$topic:example.org')",
        "does not match its checksum" },
      { "rooms.state_hash changed", "UPDATE rooms SET state_hash = state_hash + 1 WHERE created = 1",
        "room 1: its row does not match its checksum" },
      { "the current state pointed elsewhere", "UPDATE rooms SET current_snap = (SELECT after_snap " ..
        "FROM events WHERE event_id = '$topic:example.org') WHERE created = 1",
        "room 1: its row does not match its checksum" },
      { "an output row deleted in the middle", "DELETE FROM outputs WHERE position = 8",
        "output positions are not contiguous" },
      { "a member row deleted", "DELETE FROM members WHERE user_nid = " ..
        "(SELECT min(user_nid) FROM members)", "member index" },
      { "a member row's hash term changed", "UPDATE members SET ehash = ehash + 1 " ..
        "WHERE user_nid = (SELECT min(user_nid) FROM members)", "wrong event or hash term" },
      { "a member row's event changed", "UPDATE members SET event_nid = event_nid + 1 " ..
        "WHERE user_nid = (SELECT min(user_nid) FROM members)", "wrong event or hash term" },
    }
    for i, case in ipairs(cases) do
      it("finds " .. case[1], function()
        local broken = dir .. "/broken" .. i .. ".db"
        copy(db, broken)
        assert(sqlite_edit.exec(broken, case[2]))
        local status, out, stderr = run("check " .. q(broken))
        assert.are.equal(1, status, out)
        assert.are.equal("", out)
        assert.are.equal(1, #lines_of(stderr))
        assert.matches("CORRUPT", stderr, 1, true)
        assert.matches(case[3], stderr, 1, true)
      end)
    end
  end)

  describe("usage", function()
    local names = { "import", "state", "members", "diff", "outputs", "stats", "check" }
    for _, name in ipairs(names) do
      it(name .. " --help describes it", function()
        local status, out = run(name .. " --help")
        assert.are.equal(0, status)
        assert.matches("usage: roomstate " .. name, out, 1, true)
        local s2, out2 = run("help " .. name)
        assert.are.equal(0, s2)
        assert.are.equal(out, out2)
      end)
    end

    it("--help lists every command", function()
      local status, out = run("--help")
      assert.are.equal(0, status)
      for _, name in ipairs(names) do assert.matches("\n  " .. name .. " ", out, 1, true) end
    end)

    local errors = {
      { "an unknown command", "frobnicate", 2, 'no command "frobnicate"' },
      { "missing arguments", "state", 2, "expected DB ROOM, got 0 arguments" },
      { "too many arguments", "check a b", 2, "expected DB, got 2 arguments" },
      { "an unknown option", "state x.db !r --colour", 2, 'unknown option "--colour"' },
      { "a missing option value", "outputs x.db --from", 2, "option --from needs a value" },
      { "a bad number", "outputs x.db --from=-3", 2, '--from must be an integer of at least 0, got "-3"' },
      { "a missing database", "stats /nonexistent/x.db", 1, "no such database: /nonexistent/x.db" },
      { "an unknown event", "diff DB '$a' '$b'", 1, "NOT_FOUND" },
      { "an unknown room", "members DB '!nowhere:x'", 1, "!nowhere:x" },
      { "a file that is not a database", "check NOTDB", 1, "NOT_ROOMSTATE" },
    }
    for _, e in ipairs(errors) do
      it("reports " .. e[1] .. " in one line with exit status " .. e[3], function()
        local notdb = dir .. "/not.db"
        local f = assert(io.open(notdb, "w"))
        f:write(string.rep("this is not sqlite\n", 10))
        f:close()
        -- one pass: a temporary directory's random name may hold "DB" itself
        local args = e[2]:gsub("%u+", { NOTDB = q(notdb), DB = q(db) })
        local status, out, err = run(args)
        assert.are.equal(e[3], status, err)
        assert.are.equal("", out)
        assert.are.equal(1, #lines_of(err), err)
        assert.matches(e[4], err, 1, true)
        assert.matches("^roomstate", err)
      end)
    end
  end)
end)

describe("the item format (roomstate.items.parse_items)", function()
  it("takes an event, a wrapper or an array of them, keeping the event's bytes", function()
    local ev = '{"event_id":"$a","n":1.0}'
    local items = assert(items_mod.parse_items(ev))
    assert.are.equal(ev, items[1].event.text)
    items = assert(items_mod.parse_items('[ ' .. ev .. ' , {"event" :' .. ev .. ',"kind":"old",' ..
                                   '"state":["$s"]} ]'))
    assert.are.equal(2, #items)
    assert.are.equal(ev, items[2].event.text)
    assert.are.equal(1, items[2].event.value.n)
    assert.are.equal("old", items[2].kind)
    assert.are.same({ "$s" }, items[2].state)
    -- strings holding brackets, quotes and escapes do not confuse the slicer
    local tricky = '{"event_id":"$b","content":{"body":"}]\\"[{\\\\"}}'
    items = assert(items_mod.parse_items('[' .. tricky .. ',' .. tricky .. ']'))
    assert.are.equal(tricky, items[2].event.text)
  end)

  it("names what is wrong", function()
    local function fails(text, code, msg, opts)
      local items, err, c = items_mod.parse_items(text, opts)
      assert.is_nil(items)
      assert.are.equal(code, c)
      assert.matches(msg, err, 1, true)
    end
    fails("{", "NOT_JSON", "NOT_JSON: ")
    fails("[]", "BAD_REQUEST", "no items")
    fails("[1]", "BAD_REQUEST", "item 1 must be a JSON object")
    fails('{"event":{},"kind":"x"}', "BAD_REQUEST", 'kind must be "new", "old" or "outlier", got "x"')
    fails('{"event":{},"state":{"a":1}}', "BAD_REQUEST", "state must be an array")
    fails('{"event":{},"junk":1}', "BAD_REQUEST", 'unknown field "junk"')
    fails('{"event":[1]}', "BAD_REQUEST", "event must be a JSON object")
    fails('[{"event_id":"$a"}]', "BAD_REQUEST", "must be a JSON object", { single = true })
  end)
end)

describe("examples/cli/run.sh", function()
  it("runs and passes its own checks", function()
    local status, out = server_mod.sh("ROOMSTATE_BUILD=" .. q(BUILD) .. " sh examples/cli/run.sh", true)
    assert.are.equal(0, status, out)
    assert.matches("all checks passed", out, 1, true)
  end)
end)
