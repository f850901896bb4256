-- Issue 11 §5: defects found in review, each kept fixed by a spec here.
local roomstate = require "roomstate"
local harness = require "roomstate.harness"
local S = require "support"
local server_mod = require "support.nginx_server" -- build_dir, sh

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- bin/roomstate with this build's module: exit status, stdout, stderr.
local function cli(args)
  local dir = S.tmpdir()
  local status = server_mod.sh(string.format(
    "{ ROOMSTATE_BUILD=%s bin/roomstate %s > %s/out 2> %s/err; }", q(server_mod.build_dir()),
    args, dir, dir), true)
  local out, err = S.read(dir .. "/out"), S.read(dir .. "/err")
  S.rmdir(dir)
  return status, out, err
end

-- roomstate.nginx loaded with `fake` as its ngx, to call its handlers
-- without a server. The module caches ngx when loaded: a fresh copy.
local function nginx_with(fake)
  local saved_ngx, saved_mod = rawget(_G, "ngx"), package.loaded["roomstate.nginx"]
  rawset(_G, "ngx", fake)
  package.loaded["roomstate.nginx"] = nil
  local ok, mod = pcall(require, "roomstate.nginx")
  rawset(_G, "ngx", saved_ngx)
  package.loaded["roomstate.nginx"] = saved_mod
  assert(ok, mod)
  return mod
end

-- A fake ngx for one request at a time: set fake.request = {method, uri, args}.
local function fake_ngx()
  local fake = { ERR = "err", WARN = "warn", logged = {}, now_ms = 1e12, request = {} }
  fake.var = setmetatable({}, { __index = function(_, k)
    if k == "request_uri" then return fake.request.uri end
  end })
  fake.req = {
    get_method = function() return fake.request.method end,
    get_uri_args = function() return fake.request.args or {} end,
  }
  fake.worker = { pid = function() return 4242 end, id = function() return 0 end }
  fake.update_time = function() end
  fake.now = function() return fake.now_ms / 1000 end
  fake.log = function(level, ...) fake.logged[#fake.logged + 1] = { level, table.concat({ ... }) } end
  return fake
end

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

  it("two default harnesses on one store make different rooms and events", function()
    local store = assert(roomstate.open(":memory:"))
    local a = assert(harness.new(store):create_room("@a:x"))
    local b, err = harness.new(store):create_room("@a:x")
    assert(b, err)
    assert.not_equal(a.room.id, b.room.id)
    assert.not_equal(a.room.create_id, b.room.create_id)
    assert.equal(2, #store:rooms())
    assert.equal(5, #store:current_state(b.room.id):event_ids())
    store:close()
  end)

  it("a harness given a seed or a server makes the same IDs every time", function()
    local function ids(opts)
      local store = assert(roomstate.open(":memory:"))
      local room = assert(harness.new(store, opts):create_room("@a:x"))
      local out = { room.room.id, room.room.create_id, room.head[1] }
      store:close()
      return out
    end
    assert.same(ids({ seed = "s1" }), ids({ seed = "s1" }))
    assert.not_same(ids({ seed = "s1" }), ids({ seed = "s2" }))
    assert.same({ "!room1:x", "$1-create:h", "$5-state:h" }, ids({ server = "h" }))
  end)

  describe("raises name the method and the argument", function()
    local store, st, other
    setup(function()
      store = assert(roomstate.open(":memory:"))
      local room = assert(harness.new(store):create_room("@a:x"))
      st = assert(store:current_state(room.room.id))
      other = assert(store:state_after(room.room.create_id))
    end)
    teardown(function() store:close() end)

    local function raises(want, f, ...)
      local ok, err = pcall(f, ...)
      assert.is_false(ok)
      assert.matches(want, err, 1, true)
    end

    it("in Store queries", function()
      raises("bad argument #1 to 'current_state' (room ID string expected, got nil)",
             store.current_state, store, nil)
      raises("bad argument #1 to 'state_before' (event ID string expected, got number)",
             store.state_before, store, 1)
      raises("bad argument #1 to 'state_after' (event ID string expected, got nil)",
             function() return store:state_after() end)
      raises("bad argument #1 to 'latest_events' (room ID string expected, got table)",
             store.latest_events, store, {})
      raises("bad argument #1 to 'event' (event ID string expected, got nil)", store.event, store)
      raises("bad argument #1 to 'members' (room ID string expected, got nil)", store.members, store)
      raises("bad argument #1 to 'room_version' (room ID string expected, got nil)",
             store.room_version, store)
      raises("bad argument #1 to 'state_hash' (room ID string expected, got boolean)",
             store.state_hash, store, true)
      raises("bad argument #1 to 'purge_room' (room ID string expected, got nil)",
             store.purge_room, store)
      raises("bad argument #2 to 'outputs_json' (limit (an integer >= 0) expected, got number)",
             store.outputs_json, store, 1, 0.5)
      raises("bad argument #3 to 'try_lease' (ttl_ms integer expected, got nil)",
             store.try_lease, store, "c", "me")
    end)

    it("in State methods, also when called by a tail call", function()
      raises("bad argument #2 to 'get' (state_key string expected, got no value)",
             function() return st:get("m.room.member") end)
      raises("bad argument #1 to 'get' (type string expected, got nil)", st.get, st, nil, "")
      raises("calling 'count' on bad self (roomstate.State expected, got nil)", st.count, nil)
      raises("calling 'entries' on bad self (roomstate.State expected, got table)", st.entries, {})
      raises("calling 'event_ids' on bad self (roomstate.State expected, got string)",
             st.event_ids, "x")
      raises("bad argument #1 to 'diff' (roomstate.State expected, got no value)",
             function() return st:diff() end)
      assert.same({}, (other:diff(other)))
    end)

    it("in ingest and ingest_batch options, naming the item", function()
      raises("bad argument #2 to 'ingest' (options table expected, got string)",
             store.ingest, store, "{}", "new")
      raises("bad option 'kind' to 'ingest' (\"new\", \"old\" or \"outlier\" expected, got later)",
             store.ingest, store, "{}", { kind = "later" })
      raises("bad argument #1 to 'ingest_batch' (item 2: a table with an 'event' field expected)",
             store.ingest_batch, store, { { event = "{}" }, {} })
      raises("bad option 'state' to 'ingest_batch' (item 1: an outlier has no state)",
             store.ingest_batch, store, { { event = "{}", kind = "outlier", state = {} } })
    end)

    it("in the module's functions and the remaining Store methods", function()
      raises("bad argument #1 to 'state_hash' (entries table expected, got no value)",
             function() return roomstate.state_hash() end)
      raises("bad argument #1 to 'state_hash_update' (state hash string expected, got number)",
             function() return roomstate.state_hash_update(5, {}, {}) end)
      raises("bad argument #1 to 'room_version' (room version string expected, got no value)",
             function() return roomstate.room_version() end)
      raises("bad argument #2 to 'ingest_batch' (options table expected, got number)",
             store.ingest_batch, store, {}, 5)
      raises("bad argument #1 to 'unsubscribe' (consumer name expected, got nil)",
             store.unsubscribe, store)
    end)

    it("on a closed store, naming the method", function()
      local s = assert(roomstate.open(":memory:"))
      s:close()
      raises("'current_state' called on a closed store", s.current_state, s, "!r:x")
      raises("'ingest' called on a closed store", s.ingest, s, "{}")
      raises("'ingest_batch' called on a closed store", s.ingest_batch, s, {})
      raises("'rooms' called on a closed store", s.rooms, s)
      raises("'deliver' called on a closed store", s.deliver, s)
    end)
  end)

  describe("an unknown membership is a caller mistake", function()
    local dir, path, room
    setup(function()
      dir = S.tmpdir()
      path = dir .. "/m.db"
      local store = assert(roomstate.open(path))
      room = assert(harness.new(store):create_room("@a:x")).room.id
      store:close()
    end)
    teardown(function() S.rmdir(dir) end)

    it("in Lua", function()
      local store = assert(roomstate.open(path))
      local ok, err = pcall(store.members, store, room, "joined")
      assert.is_false(ok)
      assert.matches([[bad argument #2 to 'members' (join, invite, leave, ban or knock ]] ..
                     [[expected, got "joined")]], err, 1, true)
      assert.same({ "@a:x" }, store:members(room))
      for _, m in ipairs(roomstate.MEMBERSHIPS) do assert.is_table(store:members(room, m)) end
      store:close()
    end)

    it("on the command line: exit status 2 and a usage message", function()
      local status, out, err = cli("members " .. q(path) .. " " .. q(room) .. " --membership joined")
      assert.equal(2, status)
      assert.equal("", out)
      assert.matches('--membership must be one of join, invite, leave, ban, knock, got "joined"',
                     err, 1, true)
      assert.matches("see 'roomstate members --help'", err, 1, true)
      assert.equal(0, (cli("members " .. q(path) .. " " .. q(room) .. " --membership knock")))
    end)

    it("over HTTP: 400 with an errcode", function()
      local fake = fake_ngx()
      local app = nginx_with(fake).new({ db = path })
      local uri = "/rooms/" .. room:gsub("!", "%%21") .. "/members"
      fake.request = { method = "GET", uri = uri .. "?membership=joined", args = { membership = "joined" } }
      local status, body = app:route({ 0 })
      assert.equal(400, status)
      local doc = require("cjson").decode(body)
      assert.equal("BAD_REQUEST", doc.errcode)
      assert.matches('got "joined"', doc.error, 1, true)
      fake.request = { method = "GET", uri = uri }
      status, body = app:route({ 0 })
      assert.equal(200, status, body)
      assert.same({ "@a:x" }, require("cjson").decode(body).members)
      app:store():close()
    end)
  end)

  it("the rockspec declares lua-cjson and does not build with -Werror", function()
    local text = S.read("rockspec/roomstate-scm-1.rockspec")
    assert.matches('"lua%-cjson', text)
    assert.matches('ROOMSTATE_WERROR = "OFF"', text, 1, true)
    local cmake = S.read("CMakeLists.txt")
    assert.matches("option%(ROOMSTATE_WERROR", cmake)
  end)

  it("delivery keeps the code of a callback that raises a table", function()
    local store = assert(roomstate.open(":memory:", { deliver = false }))
    assert(harness.new(store):create_room("@a:x"))
    store:subscribe("t", function() error({ code = "MY_CODE", message = "said why" }) end)
    store:subscribe("s", function() error("plain", 0) end)
    local _, errors = store:deliver()
    assert.same({ position = 1, error = "said why", code = "MY_CODE" }, errors.t)
    assert.same({ position = 1, error = "plain", code = "CALLBACK" }, errors.s)
    store:close()
  end)

  describe("nginx delivery tells a lost lease from a handler's error", function()
    local dir, path
    before_each(function()
      dir = S.tmpdir()
      path = dir .. "/l.db"
      local store = assert(roomstate.open(path))
      assert(harness.new(store):create_room("@a:x")) -- 5 outputs
      store:close()
    end)
    after_each(function() S.rmdir(dir) end)

    local function errors_logged(fake)
      local n = 0
      for _, l in ipairs(fake.logged) do if l[1] == fake.ERR then n = n + 1 end end
      return n
    end

    it("logs a handler's error even when its text is the old lease-lost text", function()
      for _, text in ipairs({ "roomstate.nginx: lease lost", "LEASE_LOST: mine" }) do
        local fake = fake_ngx()
        local app = nginx_with(fake).new({ db = path, consumers = {
          { name = "c" .. #text, handler = function() error(text, 0) end } } })
        app:deliver_round()
        assert.equal(1, errors_logged(fake), text)
        assert.matches(text, fake.logged[#fake.logged][2], 1, true)
        app:store():close()
      end
    end)

    it("stops quietly when another worker takes the lease mid-delivery", function()
      local fake = fake_ngx()
      local thief = assert(roomstate.open(path))
      local seen = 0
      local app = nginx_with(fake).new({ db = path, lease_ttl = 3, consumers = {
        { name = "c", handler = function()
            seen = seen + 1
            -- the lease (3 ms) runs out and another owner takes it; then
            -- over a third of the ttl passes, so the next output renews
            assert.is_true(thief:try_lease("c", "thief", 1e6, fake.now_ms + 10))
            local t = require("roomstate.core").clock()
            repeat until require("roomstate.core").clock() - t > 0.002
          end } } })
      app:deliver_round()
      assert.equal(1, seen)
      assert.equal(0, errors_logged(fake))
      assert.equal(1, app._stats.delivered)
      app:store():close()
      thief:close()
    end)
  end)

  describe("the command-line tool", function()
    local dir
    before_each(function() dir = S.tmpdir() end)
    after_each(function() S.rmdir(dir) end)

    it("exits 130 with one clean line on Ctrl-C, and removes the empty database", function()
      local db = dir .. "/int.db"
      -- blank lines now and then keep the import reading, and running Lua
      -- code where the interpreter can notice the signal
      local status, out = server_mod.sh(string.format([[
        cd %s && mkfifo %s/in
        ( while :; do echo; sleep 0.05; done ) > %s/in & feeder=$!
        ROOMSTATE_BUILD=%s bin/roomstate import %s - < %s/in > %s/out 2> %s/err & pid=$!
        sleep 0.5; kill -INT $pid; wait $pid; echo "status $?"; kill $feeder]],
        q(server_mod.cwd()), dir, dir, q(server_mod.build_dir()), q(db), dir, dir, dir), true)
      assert.equal(0, status, out)
      assert.matches("status 130", out, 1, true)
      assert.equal("roomstate: interrupted\n", S.read(dir .. "/err"))
      assert.is_nil(S.read(db))
    end)

    it("removes a database it created when the import fails before storing anything", function()
      local bad = dir .. "/bad.jsonl"
      S.write(bad, "{not json\n")
      local db = dir .. "/new.db"
      local status, _, err = cli("import " .. q(db) .. " " .. q(bad))
      assert.equal(1, status)
      assert.matches("bad.jsonl:1: NOT_JSON", err, 1, true)
      for _, suffix in ipairs({ "", "-wal", "-shm" }) do assert.is_nil(S.read(db .. suffix)) end
      status = cli("import " .. q(db) .. " " .. q(bad) .. " --keep-going")
      assert.equal(1, status)
      assert.is_nil(S.read(db))
      -- a database that was there before stays, even empty
      local store = assert(roomstate.open(db))
      store:close()
      assert.equal(1, (cli("import " .. q(db) .. " " .. q(bad))))
      assert.is_string(S.read(db))
    end)

    it("state prints entries ordered by type, then state key", function()
      local db = dir .. "/order.db"
      local store = assert(roomstate.open(db))
      local room = assert(harness.new(store):create_room("@z:x"))
      assert(room:join("@b:x"))
      assert(room:join("@a:x"))
      assert(room:state("m.room.avatar", "", { url = "mxc://x/y" }))
      store:close()
      local status, out = cli("state " .. q(db) .. " " .. q(room.room.id) .. " --json")
      assert.equal(0, status)
      local got = {}
      for _, e in ipairs(require("cjson").decode(out).state) do
        got[#got + 1] = e.type .. " " .. e.state_key
      end
      assert.same({ "m.room.avatar ", "m.room.create ", "m.room.history_visibility ",
                    "m.room.join_rules ", "m.room.member @a:x", "m.room.member @b:x",
                    "m.room.member @z:x", "m.room.power_levels " }, got)
      local _, text = cli("state " .. q(db) .. " " .. q(room.room.id))
      local types = {}
      for t, k in text:gmatch("(%S+)%s+(%S+)%s+%S+\n") do types[#types + 1] = t .. " " .. k end
      assert.equal("m.room.avatar \"\"", types[1])
      assert.equal("m.room.member @a:x", types[5])
      assert.equal("m.room.power_levels \"\"", types[8])
    end)
  end)

  it("a negative ttl gives a lease up, as an exiting nginx worker does", function()
    local store = assert(roomstate.open(":memory:"))
    assert.is_true(store:try_lease("c", "a", 10000, 1000))
    assert.is_false(store:try_lease("c", "b", 10000, 1000))
    assert.is_true(store:try_lease("c", "a", -1, 1000))
    assert.is_true(store:try_lease("c", "b", 10000, 1000))
    store:close()
  end)
end)
