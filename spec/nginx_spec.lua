-- roomstate.nginx in a real nginx: 2 workers, concurrent writers from
-- several processes, bad requests, delivery under a lease, a reload, and
-- examples/openresty/run.sh. Skips only when nginx is not installed.
local server_mod = require "support.nginx_server"
local http = require "support.http"
local rooms_mod = require "support.nginx_rooms"
local cjson = require "cjson"
local RS = require "resolve_support"

local enc = http.enc

local NGINX = server_mod.find_nginx()

if not NGINX then
  describe("roomstate.nginx in nginx", function()
    it("is skipped: nginx is not installed (apt-get install nginx libnginx-mod-http-lua)", function()
      pending("nginx is not installed: install nginx and libnginx-mod-http-lua to run these")
    end)
  end)
  return
end

-- Under valgrind (ROOMSTATE_SPEC_LIGHT) the checking process is slow:
-- fewer events then. Every other run sends 4 x 500.
local CLIENTS, EVENTS = 4, (os.getenv("ROOMSTATE_SPEC_LIGHT") and 100 or 500)
local OWNED = { "!room1:test", "!room2:test", "!room3:test", "!room4:test" }
local SHARED = { "!shared1:test", "!shared2:test" }

-- The init_by_lua code of the server under test: a consumer appending
-- "pid position event_id" per output to logs/delivered.log.
local INIT = [[
    local prefix = ngx.config.prefix()
    require("roomstate.nginx").configure{
      db = prefix .. "rooms.db", prefix = "/v1", max_body = 262144,
      -- a lease lost mid-batch (a round slower than the TTL, as under
      -- valgrind with synchronous = "full") hands unacknowledged outputs
      -- to the next worker, which delivers them again: by design, and not
      -- what these checks of exactly-once in normal running are about
      delivery_interval = 0.1, lease_ttl = 30000,
      consumers = {
        { name = "audit", from = "start", handler = function(out)
            local f = assert(io.open(prefix .. "logs/delivered.log", "a"))
            local ne = out.new_room_event
            f:write(ngx.worker.pid(), " ", out.position, " ",
                    ne and ne.event.event_id or "-", "\n")
            f:close()
          end },
      },
    }
]]

describe("roomstate.nginx in nginx", function()
  local server, store, conn, start_err
  local roomstate = require "roomstate"
  local setup_state = {} -- room -> { ["type\0key"] = event_id } after setup
  local setup_rooms = {} -- room -> the room record of support.nginx_rooms
  local setup_events = 0
  local sent_all = {}    -- every event the writers stored, per client
  local results = {}

  local function req(method, path, body, headers)
    local status, rbody, hdrs = conn:request(method, server.url(path), body, headers)
    assert(status, "request failed: " .. tostring(rbody))
    return status, rbody, hdrs
  end

  local function post(room, body, query)
    return req("POST", "/rooms/" .. enc(room) .. "/events" .. (query or ""), body)
  end

  -- An event of the admin's: it cites the auth events of the admin in a
  -- room set up here, so that only the flaw a test gives it can fail it.
  local function ev(room, id, prev, depth, etype, state_key, content)
    local name = room:sub(2)
    return { event_id = id, room_id = room, sender = rooms_mod.ADMIN, type = etype,
             state_key = state_key, content = content or {}, prev_events = prev,
             auth_events = { "$create-" .. name, "$power-" .. name, "$join-" .. name },
             depth = depth, origin_server_ts = 1700000000000 + depth }
  end

  local function counts()
    local c = assert(store:debug():debug_counts())
    c.entries_written, c.json_parses = nil, nil
    c.last_output = assert(store:debug():outputs_last())
    return c
  end

  local function delivered_lines()
    local f = io.open(server.dir .. "/logs/delivered.log")
    if not f then return {} end
    local lines = {}
    for line in f:lines() do lines[#lines + 1] = line end
    f:close()
    return lines
  end

  -- Why the delivered lines are not the n outputs once each: the lines
  -- that repeat a position (with the worker pids) and the log's alerts, as
  -- a failure message. Seen only under heavy load from other test runs.
  local function delivery_report(n, lines)
    local out, first = { ("%d outputs, %d delivery lines"):format(n, #lines) }, {}
    for i, line in ipairs(lines) do
      local pos = line:match("^%d+ (%d+) ")
      if first[pos] and #out < 12 then
        out[#out + 1] = ("line %d repeats line %d: %s / %s"):format(i, first[pos][1], line,
                                                                    first[pos][2])
      end
      first[pos] = first[pos] or { i, line }
    end
    for line in server.log():gmatch("[^\n]+") do
      if (line:find("[alert]", 1, true) or line:find("[crit]", 1, true) or
          line:find("[warn]", 1, true)) and #out < 24 then
        out[#out + 1] = line
      end
    end
    return table.concat(out, "\n")
  end

  local function wait_delivered(n)
    for _ = 1, 200 do
      if #delivered_lines() >= n then break end
      http.sleep(0.05)
    end
    return delivered_lines()
  end

  setup(function()
    local err
    server, err = server_mod.start({ init = INIT, workers = 2, prefix = "/v1", body_size = "1m" })
    if not server then
      start_err = err
      return
    end
    conn = http.client("127.0.0.1", server.port, 30)
    -- Rooms: create, the admin's join, power levels, join rules, and the
    -- joins of the writers that send to the room; through HTTP.
    local all = {}
    for c = 1, CLIENTS do all[c] = rooms_mod.writer(c) end
    for i, room in ipairs({ OWNED[1], OWNED[2], OWNED[3], OWNED[4], SHARED[1], SHARED[2] }) do
      local body, rec = rooms_mod.setup(room, i <= #OWNED and { rooms_mod.writer(i) } or all)
      local status, rbody = post(room, body)
      assert(status == 200, "setting up " .. room .. ": " .. tostring(status) .. " " .. rbody)
      setup_rooms[room], setup_state[room] = rec, rec.state
      setup_events = setup_events + rec.events
    end
    store = assert(roomstate.open(server.dir .. "/rooms.db", { deliver = false }))
  end)

  teardown(function()
    if conn then conn:close() end
    if store then store:close() end
    if server then
      local log = server.log()
      server.cleanup()
      -- Errors in the workers fail the run even if every check passed;
      -- nginx's own notes about clients (the oversized body) do not.
      local errors = {}
      for line in log:gmatch("[^\n]+") do
        if line:find("[error]", 1, true) and not line:find("client intended to send too large body", 1, true) then
          errors[#errors + 1] = line
        end
      end
      assert.are.same({}, errors, "errors in nginx's error log")
    end
  end)

  it("starts nginx with 2 workers and the Lua module", function()
    assert(server, "nginx did not start: " .. tostring(start_err))
    local workers = #server.workers()
    assert.is_true(workers >= 2, "expected 2 or more worker processes, got " .. workers)
  end)

  it("takes " .. CLIENTS .. " concurrent writers x " .. EVENTS .. " events into 6 rooms without a failure", function()
    assert(server, "nginx did not start: " .. tostring(start_err))
    local repo = server_mod.cwd()
    local procs = {}
    for c = 1, CLIENTS do
      local plan = { n = EVENTS, owned = setup_rooms[OWNED[c]], shared = {} }
      for i, r in ipairs(SHARED) do plan.shared[i] = setup_rooms[r] end
      local plan_file = server.dir .. "/plan" .. c .. ".json"
      local f = assert(io.open(plan_file, "w"))
      f:write(cjson.encode(plan))
      f:close()
      local cmd = string.format("cd '%s' && LUA_PATH='%s/spec/?.lua;;' luajit spec/support/nginx_client.lua " ..
                                "%d /v1 %d '%s' '%s/out%d.json' 2>&1", repo, repo, server.port, c,
                                plan_file, server.dir, c)
      procs[c] = io.popen(cmd)
    end
    local t0 = http.gettime()
    for c = 1, CLIENTS do
      local text = procs[c]:read("*a")
      procs[c]:close()
      local f = io.open(server.dir .. "/out" .. c .. ".json")
      assert(f, "writer " .. c .. " wrote no result: " .. text)
      results[c] = cjson.decode(f:read("*a"))
      f:close()
    end
    local wall = http.gettime() - t0
    local total, timings, latency = 0, {}, {}
    for c = 1, CLIENTS do
      local r = results[c]
      assert.are.same({}, r.failures, "writer " .. c .. " had failures")
      for code in pairs(r.statuses) do
        assert.are.equal("200", code, "writer " .. c .. " got status " .. code)
      end
      assert.are.equal(EVENTS, #r.sent)
      sent_all[c] = r.sent
      total = total + #r.sent
      for _, t in ipairs(r.timings) do timings[#timings + 1] = t end
      for _, t in ipairs(r.latency) do latency[#latency + 1] = t end
    end
    table.sort(timings)
    table.sort(latency)
    local function pct(list, p) return list[math.max(1, math.ceil(#list * p))] or 0 end
    io.stderr:write(string.format(
      "\n[nginx] %d events in %d requests from %d writers in %.2f s (%.0f events/s); " ..
      "worker blocked per request: p50 %.2f ms, p99 %.2f ms, max %.2f ms; " ..
      "request latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
      total, #latency, CLIENTS, wall, total / wall, pct(timings, 0.5), pct(timings, 0.99),
      timings[#timings] or 0, pct(latency, 0.5), pct(latency, 0.99), latency[#latency] or 0))
  end)

  it("stored every event once and wrote every output once, in order", function()
    assert(#sent_all == CLIENTS, "the writers did not run")
    local expected_events = setup_events
    for c = 1, CLIENTS do expected_events = expected_events + #sent_all[c] end
    local c = counts()
    assert.are.equal(expected_events, c.events)
    assert.are.equal(expected_events, c.outputs)
    -- Positions 1..N, each event exactly once.
    local outs = assert(store:outputs(1, expected_events + 10))
    assert.are.equal(expected_events, #outs)
    local pos_of = {}
    for i, o in ipairs(outs) do
      assert.are.equal(i, o.position)
      assert.are.equal("new_room_event", o.type)
      local id = o.new_room_event.event.event_id
      assert.is_nil(pos_of[id], "output twice for " .. id)
      pos_of[id] = o.position
    end
    -- Each writer's events are in the log in the order it sent them, and
    -- each is stored byte for byte retrievable. Each cites what the auth
    -- selection picks from its state before, so the rules judged the
    -- events the writers meant.
    for ci = 1, CLIENTS do
      local last = 0
      for _, s in ipairs(sent_all[ci]) do
        local p = pos_of[s[2]]
        assert(p, "no output for " .. s[2])
        assert(p > last, "writer " .. ci .. ": " .. s[2] .. " is out of order")
        last = p
        local text = store:event(s[2])
        assert.is_truthy(text)
        local before, want = assert(store:state_before(s[2])), {}
        for _, t in ipairs(assert(roomstate.auth_types("10", text))) do
          want[#want + 1] = before:get(t[1], t[2])
        end
        local cited = cjson.decode(text).auth_events
        table.sort(want)
        table.sort(cited)
        assert.are.same(want, cited, s[2])
      end
    end
    assert.is_true(store:check())
  end)

  it("has the current state a naive replay gives, in the library and over HTTP", function()
    assert(#sent_all == CLIENTS, "the writers did not run")
    local want = {}
    for room, st in pairs(setup_state) do
      want[room] = {}
      for k, v in pairs(st) do want[room][k] = v end
    end
    for c = 1, CLIENTS do
      for _, s in ipairs(sent_all[c]) do
        if s[4] then want[s[1]][s[3] .. "\0" .. s[4]] = s[2] end
      end
    end
    for room, w in pairs(want) do
      local st = assert(store:current_state(room))
      local have, entries = {}, {}
      for t, k, e in st:entries() do
        have[t .. "\0" .. k] = e
        entries[#entries + 1] = { type = t, state_key = k, event_id = e }
      end
      assert.are.same(w, have, "current state of " .. room)
      -- The HTTP view is the library's view.
      local status, body = req("GET", "/rooms/" .. enc(room) .. "/state")
      assert.are.equal(200, status)
      local doc = cjson.decode(body)
      assert.are.equal(assert(store:state_hash(room)), doc.state_hash)
      assert.are.same(entries, doc.state)
      status, body = req("GET", "/rooms/" .. enc(room) .. "/latest")
      assert.are.equal(200, status)
      assert.are.same(assert(store:latest_events(room)), cjson.decode(body).latest)
      status, body = req("GET", "/rooms/" .. enc(room) .. "/members")
      assert.are.equal(200, status)
      assert.are.same(assert(store:members(room)), cjson.decode(body).members)
    end
    -- Shared rooms were written on several branches by several processes.
    assert.is_true(#assert(store:latest_events(SHARED[1])) >= 1)
    -- One entry, state before an event, the output log over HTTP.
    local status, body = req("GET", "/rooms/" .. enc(OWNED[1]) .. "/state/m.room.power_levels/")
    assert.are.equal(200, status)
    assert.are.equal("$power-room1:test", cjson.decode(body).event_id)
    local probe = sent_all[2][100][2]
    status, body = req("GET", "/events/" .. enc(probe) .. "/state_before")
    assert.are.equal(200, status)
    local before = {}
    for t, k, e in assert(store:state_before(probe)):entries() do
      before[#before + 1] = { type = t, state_key = k, event_id = e }
    end
    assert.are.same(before, cjson.decode(body).state)
    status, body = req("GET", "/outputs?from=17&limit=50")
    assert.are.equal(200, status)
    assert.are.equal(assert(store:outputs_json(17, 50)), body)
  end)

  it("delivered every output to the consumer once, in order, one worker at a time", function()
    assert(#sent_all == CLIENTS, "the writers did not run")
    local n = counts().outputs
    local lines = wait_delivered(n)
    assert.are.equal(n, #lines, #lines ~= n and delivery_report(n, lines) or nil)
    local pids = {}
    for i, line in ipairs(lines) do
      local pid, pos = line:match("^(%d+) (%d+) ")
      assert.are.equal(i, tonumber(pos), "delivery line " .. i .. ": " .. line)
      pids[pid] = true
    end
    assert.are.equal(n + 1, assert(store:debug():consumer_get("audit")))
  end)

  describe("bad requests get the right status and change nothing", function()
    local room = OWNED[1]
    local function check(name, want_status, want_code, fn)
      it(name, function()
        assert(server, "nginx did not start: " .. tostring(start_err))
        local before = counts()
        local status, body = fn()
        assert.are.equal(want_status, status, name .. ": " .. tostring(body))
        if want_code then
          local doc = cjson.decode(body)
          assert.are.equal(want_code, doc.errcode, body)
          assert.is_string(doc.error)
        end
        assert.are.same(before, counts())
      end)
    end
    -- A well-formed event on the room's current head.
    local function good(id, over)
      local e = ev(room, id, assert(store:latest_events(room)), 100000, "m.room.message", nil,
                   { body = "x" })
      for k, v in pairs(over or {}) do e[k] = v end
      return e
    end

    check("malformed JSON", 400, "NOT_JSON", function() return post(room, '{"event_id": "$a", ') end)
    check("trailing garbage", 400, "NOT_JSON", function()
      return post(room, cjson.encode(good("$bad1")) .. " x") end)
    check("a JSON number", 400, "BAD_REQUEST", function() return post(room, "42") end)
    check("JSON null", 400, "BAD_REQUEST", function() return post(room, "null") end)
    check("an empty array", 400, "BAD_REQUEST", function() return post(room, "[]") end)
    check("an array holding a string", 400, "BAD_REQUEST", function() return post(room, '["$x"]') end)
    check("an empty body", 400, "BAD_REQUEST", function() return post(room, "") end)
    check("depth of the wrong type", 400, "BAD_EVENT", function()
      return post(room, cjson.encode(good("$bad2", { depth = "4" }))) end)
    check("no event_id", 400, "BAD_EVENT", function()
      return post(room, cjson.encode(good("$bad3", { event_id = cjson.null }))) end)
    check("kind of the wrong type", 400, "BAD_REQUEST", function()
      return post(room, cjson.encode({ event = good("$bad4"), kind = 5 })) end)
    check("an unknown kind in the query", 400, "BAD_REQUEST", function()
      return post(room, cjson.encode(good("$bad5")), "?kind=sideways") end)
    check("state that is not an array", 400, "BAD_REQUEST", function()
      return post(room, cjson.encode({ event = good("$bad6"), state = "$power-room1:test" })) end)
    check("state listing a number", 400, "BAD_REQUEST", function()
      return post(room, '{"event":' .. cjson.encode(good("$bad7")) .. ',"state":[1]}') end)
    check("an outlier with state", 400, "BAD_REQUEST", function()
      return post(room, cjson.encode({ event = good("$bad8"), kind = "outlier",
                                       state = { "$power-room1:test" } })) end)
    check("an unknown item field", 400, "BAD_REQUEST", function()
      return post(room, cjson.encode({ event = good("$bad9"), knd = "old" })) end)
    check("an event for another room", 400, "ROOM_MISMATCH", function()
      return post(OWNED[2], cjson.encode(good("$bad10"))) end)
    check("a batch with one bad item stores none of it", 400, "BAD_EVENT", function()
      local ok1 = good("$would-be-fine")
      local status, body = post(room, "[" .. cjson.encode(ok1) .. "," ..
                                      cjson.encode(good("$bad11", { depth = -1 })) .. "]")
      local s2 = req("GET", "/events/" .. enc("$would-be-fine"))
      assert.are.equal(404, s2)
      return status, body
    end)
    check("a body over max_body (Content-Length)", 413, "TOO_LARGE", function()
      return post(room, string.rep(" ", 300000) .. "{}") end)
    check("a body over client_max_body_size", 413, "TOO_LARGE", function()
      return post(room, string.rep(" ", 1100000) .. "{}") end)
    check("an event over 64 KiB", 413, "TOO_LARGE", function()
      return post(room, cjson.encode(good("$big", { content = { body = string.rep("x", 70000) } }))) end)
    check("an unknown room", 404, "UNKNOWN_ROOM", function()
      local r = "!nowhere:test"
      local e = ev(r, "$lost", { "$create-nowhere:test" }, 2, "m.room.message", nil, {})
      return post(r, cjson.encode(e)) end)
    check("state of an unknown room", 404, "NOT_FOUND", function()
      return req("GET", "/rooms/" .. enc("!nowhere:test") .. "/state") end)
    check("an unknown event", 404, "NOT_FOUND", function()
      return req("GET", "/events/" .. enc("$nope:test") .. "/state_before") end)
    check("unknown prev events", 409, "MISSING_PREV", function()
      return post(room, cjson.encode(good("$bad12", { prev_events = { "$never:test" } }))) end)
    check("a stored event ID with other fields", 409, "EVENT_MISMATCH", function()
      return post(room, cjson.encode(ev(room, "$power-room1:test", { "$join-room1:test" }, 3,
                                        "m.room.topic", "", {}))) end)
    check("a raw '..' segment", 400, "BAD_PATH", function()
      return req("GET", "/rooms/../outputs") end)
    check("'..' after a room", 400, "BAD_PATH", function()
      return req("GET", "/rooms/" .. enc(room) .. "/../../outputs") end)
    check("an encoded '..' as the room", 400, "BAD_REQUEST", function()
      return req("GET", "/rooms/%2e%2e/state") end)
    check("encoded slashes and dots inside a room ID", 404, "NOT_FOUND", function()
      return req("GET", "/rooms/" .. enc(room .. "/../../outputs") .. "/state") end)
    check("encoded slashes posting to a made-up room", 404, "UNKNOWN_ROOM", function()
      local r = "!a/../" .. room:sub(2)
      return post(r, cjson.encode(ev(r, "$slash", { "$power-room1:test" }, 4,
                                     "m.room.message", nil, {}))) end)
    -- nginx itself refuses these two before any Lua runs (pct_decode is
    -- checked on its own below).
    check("bad percent-encoding", 400, nil, function() return req("GET", "/rooms/%zz/state") end)
    check("an encoded NUL", 400, nil, function() return req("GET", "/rooms/%21a%00b/state") end)
    check("SQL in a room ID", 404, "NOT_FOUND", function()
      return req("GET", "/rooms/" .. enc("!x'; DROP TABLE events; --") .. "/state") end)
    check("a path outside the API", 404, nil, function()
      local status, body = conn:request("GET", "/v2/rooms", nil)
      return status, body end)
    check("a path escaping the root", 400, nil, function()
      local status, body = conn:request("GET", "/v1/../../etc/passwd", nil)
      return status, body end)
    check("an unknown route", 404, "NOT_FOUND", function() return req("GET", "/nothing/here") end)
    check("GET on the events route", 405, "METHOD_NOT_ALLOWED", function()
      return req("GET", "/rooms/" .. enc(room) .. "/events") end)
    check("DELETE on the state route", 405, "METHOD_NOT_ALLOWED", function()
      return req("DELETE", "/rooms/" .. enc(room) .. "/state") end)
    check("from that is not a number", 400, "BAD_REQUEST", function() return req("GET", "/outputs?from=abc") end)
    check("limit 0", 400, "BAD_REQUEST", function() return req("GET", "/outputs?limit=0") end)
    check("a limit over outputs_limit", 400, "BAD_REQUEST", function()
      return req("GET", "/outputs?limit=100000") end)
    check("a duplicate is not an error", 200, nil, function()
      local status, body = post(room, assert(store:event("$power-room1:test")))
      assert.is_true(cjson.decode(body).results[1].duplicate)
      return status, body
    end)
  end)

  it("resolves a fork that changes state: the current state is the model's resolution", function()
    assert(server, "nginx did not start: " .. tostring(start_err))
    local room = OWNED[1]
    local status, body = post(room, cjson.encode(ev(room, "$fork", { "$power-room1:test" }, 4,
                                                    "m.room.name", "", { name = "fork" })))
    assert.are.equal(200, status, body)
    local latest = assert(store:latest_events(room))
    assert.is_true(#latest >= 2)
    local want = RS.resolve_after(store, assert(store:room_version(room)), latest)
    local got = {}
    for t, k, e in assert(store:current_state(room)):entries() do got[t .. "\0" .. k] = e end
    assert.are.same(want, got)
    assert.is_true(store:check())
  end)

  it("says in an item's result that the auth rules rejected or soft-failed it", function()
    assert(server, "nginx did not start: " .. tostring(start_err))
    local room, bob = "!verdicts:test", "@bob:test"
    local body, rec = rooms_mod.setup(room, { bob })
    local status, rbody = post(room, body)
    assert.are.equal(200, status, rbody)
    local joined = rec.members[bob]
    local function pdu(id, sender, prev, depth, etype, content)
      return { event_id = id, room_id = room, sender = sender, type = etype,
               state_key = content.membership and sender or nil, content = content,
               prev_events = { prev }, auth_events = rooms_mod.auth_events(rec, sender),
               depth = depth }
    end
    local leave = pdu("$bob-leaves", bob, rec.head, rec.depth + 1, "m.room.member",
                      { membership = "leave" })
    -- sent on Bob's join, before he left: allowed by its state, not by the room's
    local late = pdu("$bob-late", bob, joined, rec.depth + 1, "m.room.message", { body = "late" })
    local stranger = pdu("$stranger", "@stranger:test", leave.event_id, rec.depth + 2,
                         "m.room.message", { body = "hi" })
    status, rbody = post(room, "[" .. cjson.encode(leave) .. "," .. cjson.encode(late) .. "," ..
                               cjson.encode(stranger) .. "]")
    assert.are.equal(200, status, rbody)
    local res = cjson.decode(rbody).results
    assert.is_nil(res[1].rejected)
    assert.is_nil(res[1].soft_failed)
    assert.are.equal(1, #res[1].positions)
    assert.is_nil(res[2].rejected)
    assert.matches("^SENDER_NOT_JOINED: ", res[2].soft_failed)
    assert.are.same({}, res[2].positions)
    assert.is_nil(res[3].soft_failed)
    assert.matches("^SENDER_NOT_JOINED: ", res[3].rejected)
    assert.are.same({}, res[3].positions)
  end)

  it("keeps working and delivering across a reload (new workers, new pids)", function()
    assert(server, "nginx did not start: " .. tostring(start_err))
    local before = server.workers()
    os.execute("kill -HUP " .. server.pid())
    local after
    for _ = 1, 200 do
      http.sleep(0.05)
      after = server.workers()
      local old = {}
      for _, pid in ipairs(before) do old[pid] = true end
      local fresh = 0
      for _, pid in ipairs(after) do if not old[pid] then fresh = fresh + 1 end end
      if fresh >= 2 and #after == fresh then break end
    end
    local old = {}
    for _, pid in ipairs(before) do old[pid] = true end
    for _, pid in ipairs(after) do assert.is_nil(old[pid], "an old worker is still running") end
    conn:close()
    local room = OWNED[3]
    local head = assert(store:latest_events(room))[1]
    local e = ev(room, "$after-reload", { head }, 100000, "m.room.message", nil, { body = "hi" })
    local status, body = post(room, cjson.encode(e))
    assert.are.equal(200, status, body)
    local n = counts().outputs
    local lines = wait_delivered(n)
    assert.are.equal(n, #lines, #lines ~= n and delivery_report(n, lines) or nil)
    assert.is_truthy(lines[#lines]:find("$after-reload", 1, true))
    for i, line in ipairs(lines) do
      assert.are.equal(i, tonumber(line:match("^%d+ (%d+) ")))
    end
  end)
end)

describe("examples/openresty/run.sh", function()
  it("runs and passes its own checks", function()
    local port = http.free_port()
    -- Under the ASan runs LD_PRELOAD holds libasan: nginx needs it to load
    -- the sanitized module, but curl hangs under it.
    local preload = os.getenv("LD_PRELOAD")
    local nginx = preload and preload ~= "" and
                  string.format("ROOMSTATE_NGINX='env LD_PRELOAD=%s %s' ", preload, NGINX) or ""
    local status, out = server_mod.sh(string.format("%sROOMSTATE_BUILD='%s' PORT=%d timeout 120 " ..
                                                    "sh examples/openresty/run.sh",
                                                    nginx, server_mod.build_dir(), port))
    assert.are.equal(0, status, out)
    assert.is_truthy(out:find("all checks passed", 1, true), out)
  end)
end)

describe("roomstate.nginx without nginx", function()
  it("opens the database lazily and again when the worker pid changes", function()
    local saved_ngx, saved_mod = rawget(_G, "ngx"), package.loaded["roomstate.nginx"]
    local pid = 100
    local fake = { worker = { pid = function() return pid end, id = function() return 0 end },
                   log = function() end, update_time = function() end,
                   now = function() return os.time() end, ERR = 1, WARN = 2 }
    _G.ngx = fake
    package.loaded["roomstate.nginx"] = nil
    local ok, err = pcall(function()
      local rsngx = require "roomstate.nginx"
      local dir = server_mod.mktemp_dir("lazy")
      local app = rsngx.new({ db = dir .. "/rooms.db",
                              consumers = { { name = "c", handler = function() end } } })
      assert.is_nil(io.open(dir .. "/rooms.db"), "opened at new()")
      local s1 = assert(app:store())
      assert.are.equal(s1, app:store())
      pid = 101
      local s2 = assert(app:store())
      assert.are_not.equal(s1, s2)
      assert.are.equal(s1, app._stale[1]) -- kept, never closed in the new process
      assert.is_false(s1:is_closed())
      s2:close()
      s1:close()
      server_mod.sh("rm -rf '" .. dir .. "'")
    end)
    _G.ngx = saved_ngx
    package.loaded["roomstate.nginx"] = saved_mod
    assert(ok, err)
  end)

  it("opens the database with synchronous = \"full\" unless told otherwise", function()
    local saved_ngx, saved_mod = rawget(_G, "ngx"), package.loaded["roomstate.nginx"]
    _G.ngx = { worker = { pid = function() return 7 end, id = function() return 0 end } }
    package.loaded["roomstate.nginx"] = nil
    local roomstate = require "roomstate"
    local real_open, seen = roomstate.open, {}
    roomstate.open = function(path, opts)
      seen[#seen + 1] = opts.synchronous
      return real_open(path, opts)
    end
    local ok, err = pcall(function()
      local rsngx = require "roomstate.nginx"
      local dir = server_mod.mktemp_dir("sync")
      assert(rsngx.new({ db = dir .. "/a.db" }):store()):close()
      assert(rsngx.new({ db = dir .. "/b.db", synchronous = "normal" }):store()):close()
      server_mod.sh("rm -rf '" .. dir .. "'")
    end)
    roomstate.open = real_open
    _G.ngx = saved_ngx
    package.loaded["roomstate.nginx"] = saved_mod
    assert(ok, err)
    assert.are.same({ "full", "normal" }, seen)
  end)

  it("decodes percent-encoding strictly", function()
    local pct = require("roomstate.nginx").pct_decode
    assert.are.equal("!a/b:c+d", pct("%21a%2Fb%3Ac+d"))
    assert.is_nil(pct("%zz"))
    assert.is_nil(pct("abc%"))
    assert.is_nil(pct("abc%4"))
  end)

  it("rejects bad options naming them", function()
    local rsngx = require "roomstate.nginx"
    assert.has_error(function() rsngx.new({}) end,
                     "bad option 'db' (database path expected, got nil)")
    assert.has_error(function() rsngx.new({ db = "x", prefix = "api" }) end,
                     "bad option 'prefix' (a path like \"/api\" expected, got \"api\")")
    assert.has_error(function() rsngx.new({ db = "x", max_body = 0 }) end,
                     "bad option 'max_body' (number of at least 1 expected, got 0)")
  end)
end)
