-- Issue 14: defects an adversarial pass found; each kept fixed by a spec.
local roomstate = require "roomstate"
local harness = require "roomstate.harness"
local S = require "support"

local function open()
  local store = assert(roomstate.open(":memory:"))
  return store, harness.new(store, { seed = "rel" })
end

describe("issue 14 §1.2: edges count only within a room", function()
  it("an old event of room B citing $victim does not hide it in room A", function()
    local store, h = open()
    local a = assert(h:create_room("@alice:example.org"))
    local b = assert(h:create_room("@bob:example.org"))
    -- a fork, so room A keeps an extremity the new event does not cover
    local side = a:at(a.head[1])
    local side_id = assert(side:send("on the side"))
    -- room B backfills an event that names $victim, not stored yet
    assert(b:send("from B", { prev = { "$victim" }, kind = "old" }))
    -- $victim arrives in room A as a new event (a message, so the fork's
    -- branches keep one state)
    local id, res = a:send("in A", { event_id = "$victim" })
    assert.equal("$victim", id, res)
    local want = { "$victim", side_id }
    table.sort(want)
    assert.same(want, store:latest_events(a.room.id))
    assert(store:check())
    store:close()
  end)
end)

describe("issue 14 §1.3: cyclic prev events are refused", function()
  local function refused(store, err, code, ids)
    assert.equal("BAD_EVENT", code)
    for _, id in ipairs(ids) do assert.matches(id, err, 1, true) end
    assert.matches("cycle", err, 1, true)
  end

  it("an event that lists itself, at every kind", function()
    local store, h = open()
    local a = assert(h:create_room("@alice:example.org"))
    local state = assert(store:current_state(a.room.id)):event_ids()
    local before = S.counts(store)
    for _, o in ipairs({ { kind = "old", state = state }, { kind = "new", state = state },
                         { kind = "old" }, { kind = "new" }, { kind = "outlier" } }) do
      o.event_id, o.prev = "$self", { "$self", a.head[1] }
      local id, err, code = a:send("me", o)
      assert.is_nil(id)
      refused(store, err, code, { "$self" })
      assert.same(before, S.counts(store))
    end
    store:close()
  end)

  it("A lists B, then B lists A (B not stored when A came)", function()
    local store, h = open()
    local a = assert(h:create_room("@alice:example.org"))
    local head = a.head[1]
    local state = assert(store:current_state(a.room.id)):event_ids()
    assert(a:send("A", { event_id = "$A", prev = { "$B" }, kind = "old", state = state }))
    local before = S.counts(store)
    for _, kind in ipairs({ "new", "old" }) do
      local id, err, code = a:send("B", { event_id = "$B", prev = { "$A" }, kind = kind })
      assert.is_nil(id)
      refused(store, err, code, { "$A", "$B" })
      assert.same(before, S.counts(store))
    end
    assert.same({ head }, store:latest_events(a.room.id))
    store:close()
  end)

  it("a longer cycle: A lists C, C lists B, B lists A", function()
    local store, h = open()
    local a = assert(h:create_room("@alice:example.org"))
    local state = assert(store:current_state(a.room.id)):event_ids()
    assert(a:send("A", { event_id = "$A", prev = { "$C" }, kind = "old", state = state }))
    assert(a:send("C", { event_id = "$C", prev = { "$B" }, kind = "old", state = state }))
    local before = S.counts(store)
    local id, err, code = a:send("B", { event_id = "$B", prev = { "$A" } })
    assert.is_nil(id)
    refused(store, err, code, { "$A", "$B" })
    assert.same(before, S.counts(store))
    store:close()
  end)
end)

-- Python's json made strict (spec/support/strict_json.py): "ok" or the error.
local function strict_parse(text)
  local dir = S.tmpdir()
  S.write(dir .. "/in", text)
  local p = io.popen(S.PYTHON .. " spec/support/strict_json.py < " .. dir .. "/in")
  local out = p:read("*a")
  p:close()
  S.rmdir(dir)
  return (out:gsub("%s+$", ""))
end

-- A store with a room, a valid message's JSON text for it with content
-- {"body": "hi", "n": 7}, and the lenient variants of it that lua-cjson
-- accepted: store, good, bad.
local function lenient_variants()
  local store, h = open()
  local room = assert(h:create_room("@alice:example.org"))
  local _, _, text = h:emit(room.room, room.head, { type = "m.room.message",
                                                    content = { body = "hi", n = 7 } },
                            { ingest = false, event_id = "$lenient:example.org" })
  assert(text:find('"n":7', 1, true) and text:find('"body":"hi"', 1, true), text)
  local out = {}
  for _, num in ipairs({ "0x10", "NaN", "Infinity", "-Infinity", "01", "+1", "1.", ".5" }) do
    out[#out + 1] = (text:gsub('"n":7', '"n":' .. num))
  end
  out[#out + 1] = (text:gsub('"body":"hi"', '"body":"h\1i"'))    -- raw control character
  out[#out + 1] = (text:gsub('"body":"hi"', '"body":"h\255i"'))  -- invalid UTF-8
  out[#out + 1] = (text:gsub('"body":"hi"', '"body":"hi","body":"ho"')) -- a key twice
  out[#out + 1] = (text:gsub('"body":"hi"', '"body":"\\ud800"')) -- a lone surrogate
  return store, text, out
end

describe("issue 14 §2.6: events as JSON text are strict JSON", function()
  it("ingest and ingest_batch refuse lenient JSON with NOT_JSON, writing nothing", function()
    local store, good, bad = lenient_variants()
    local before = S.counts(store)
    for _, text in ipairs(bad) do
      local res, err, code = store:ingest(text)
      assert.is_nil(res, text)
      assert.equal("NOT_JSON", code, text)
      assert.matches("^NOT_JSON: ", err)
      res, err, code = store:ingest_batch({ { event = text } })
      assert.is_nil(res, text)
      assert.equal("NOT_JSON", code, text)
      assert.matches("item 1", err, 1, true)
      assert.same(before, S.counts(store))
    end
    assert(store:ingest(good))
    local all = assert(store:outputs_json(0))
    assert.equal("ok", strict_parse(all))
    for _, one in ipairs(assert(store:outputs_json_list(0))) do
      assert.equal("ok", strict_parse(one))
    end
    store:close()
  end)

  it("the item parser (CLI import, HTTP) refuses it too", function()
    local items = require "roomstate.items"
    local store, _, bad = lenient_variants()
    for _, text in ipairs(bad) do
      local got, _, code = items.parse_items(text)
      assert.is_nil(got, text)
      assert.equal("NOT_JSON", code, text)
      got, _, code = items.parse_items('[{"event":' .. text .. ',"kind":"old"}]')
      assert.is_nil(got, text)
      assert.equal("NOT_JSON", code, text)
    end
    store:close()
  end)

  it("roomstate import refuses a lenient line and stores nothing", function()
    local server_mod = require "support.nginx_server"
    local store, _, bad = lenient_variants()
    store:close()
    local dir = S.tmpdir()
    for i, text in ipairs({ bad[1], bad[9], bad[11] }) do
      local db = dir .. "/" .. i .. ".db"
      S.write(dir .. "/in.jsonl", text .. "\n")
      local status, out = server_mod.sh(string.format(
        "ROOMSTATE_BUILD='%s' bin/roomstate import '%s' '%s/in.jsonl'",
        server_mod.build_dir(), db, dir), true)
      assert.equal(1, status, out)
      assert.matches("NOT_JSON", out, 1, true)
      assert.is_nil(io.open(db), "a failed first import leaves no file")
    end
    S.rmdir(dir)
  end)
end)

describe("issue 14 §2.6: over HTTP", function()
  local server_mod = require "support.nginx_server"
  local http = require "support.http"
  local rooms_mod = require "support.nginx_rooms"
  if not server_mod.find_nginx() then
    it("is skipped: nginx is not installed", function() pending("no nginx") end)
    return
  end

  it("POST refuses lenient JSON with 400 NOT_JSON; GET /outputs is strict JSON", function()
    local server = assert(server_mod.start({ workers = 1, prefix = "/v1", init = [[
      require("roomstate.nginx").configure{ db = ngx.config.prefix() .. "rooms.db",
                                            prefix = "/v1" }
    ]] }))
    local conn = http.client("127.0.0.1", server.port, 30)
    local ok, err = pcall(function()
      local room = "!strict:test"
      local path = server.url("/rooms/%21strict%3Atest/events")
      local body, rec = rooms_mod.setup(room, {})
      local status, rbody = conn:request("POST", path, body)
      assert.equal(200, status, rbody)
      local msg = rooms_mod.encode({
        event_id = "$m:test", room_id = room, sender = rooms_mod.ADMIN, type = "m.room.message",
        content = { body = "hi", n = 7 }, prev_events = { rec.head }, depth = rec.depth + 1,
        auth_events = rooms_mod.auth_events(rec, rooms_mod.ADMIN), origin_server_ts = 1 })
      local store = assert(roomstate.open(server.dir .. "/rooms.db", { deliver = false }))
      local before = S.counts(store)
      for _, v in ipairs({ (msg:gsub('"n":7', '"n":NaN')), (msg:gsub('"n":7', '"n":0x10')),
                           (msg:gsub('"body":"hi"', '"body":"h\1i"')),
                           (msg:gsub('"body":"hi"', '"body":"hi","body":"ho"')) }) do
        status, rbody = conn:request("POST", path, v)
        assert.equal(400, status, rbody)
        assert.matches('"NOT_JSON"', rbody, 1, true)
      end
      assert.same(before, S.counts(store))
      store:close()
      status, rbody = conn:request("POST", path, msg)
      assert.equal(200, status, rbody)
      status, rbody = conn:request("GET", server.url("/outputs?from=0"))
      assert.equal(200, status, rbody)
      assert.equal("ok", strict_parse(rbody))
    end)
    conn:close()
    server.cleanup()
    assert(ok, err)
  end)
end)

describe("issue 14 §2.9: content and reference shapes", function()
  it("refuses content: [] and three-element pairs in v1-v2 rooms, writing nothing", function()
    local store, h = open()
    local room = assert(h:create_room("@alice:example.org"))
    local _, _, text = h:emit(room.room, room.head, { type = "m.room.message",
                                                      content = { body = "hi" } },
                              { ingest = false, event_id = "$shape:example.org" })
    local before = S.counts(store)
    local res, err, code = store:ingest((text:gsub('"content":{"body":"hi"}', '"content":[]')))
    assert.is_nil(res)
    assert.equal("BAD_EVENT", code)
    assert.matches("content must be an object, got []", err, 1, true)
    local old = assert(h:create_room("@alice:example.org", { version = "1" }))
    local _, pdu = h:emit(old.room, old.head, { type = "m.room.message", content = { body = "x" } },
                          { ingest = false })
    local good = require("roomstate.harness").pdu_json(pdu)
    before = S.counts(store)
    local pair = assert(good:match('"prev_events":%[(%[.-%])%]'), good)
    for _, bad in ipairs({ (pair:gsub("%]$", ',"extra"]')), (pair:gsub("%]$", ',{}]')),
                           (pair:gsub(",.*", "]")), (pair:gsub(",.*", ',[]]')) }) do
      local t = good:gsub('"prev_events":%[.-%]%]',
                          '"prev_events":[' .. bad:gsub("%%", "%%%%") .. ']')
      res, err, code = store:ingest(t)
      assert.is_nil(res, t)
      assert.equal("BAD_EVENT", code, t)
      assert.matches("prev_events[1] has the wrong shape", err, 1, true)
    end
    assert.same(before, S.counts(store))
    assert(store:ingest(good))
    store:close()
  end)
end)

describe("issue 14 §2.8: a state list holds the room's create event", function()
  it("a rewrite to an empty list or one without the create event is BAD_STATE", function()
    local store, h = open()
    local room = assert(h:create_room("@alice:example.org"))
    local full = assert(store:current_state(room.room.id)):event_ids()
    local no_create = {}
    for _, id in ipairs(full) do
      if id ~= room.room.create_id then no_create[#no_create + 1] = id end
    end
    local before = S.counts(store)
    for _, list in ipairs({ {}, no_create }) do
      for _, kind in ipairs({ "new", "old" }) do
        local id, err, code = room:join("@bob:example.org", { state = list, kind = kind })
        assert.is_nil(id)
        assert.equal("BAD_STATE", code, err)
        assert.matches("no create event", err, 1, true)
        assert.same(before, S.counts(store))
      end
    end
    assert(room:send("still fine", { state = full }))
    store:close()
  end)
end)

describe("issue 14 §2.7: IDs and room versions", function()
  local BAD_IDS = { "\0", "\1", "\n", "\127", "\255", "\192\128", "\237\160\128" }

  it("refuses IDs with NUL, control characters or invalid UTF-8, writing nothing", function()
    local store, h = open()
    local room = assert(h:create_room("@alice:example.org"))
    local _, pdu = h:emit(room.room, room.head, { type = "m.room.message", content = { body = "x" } },
                          { ingest = false })
    local before = S.counts(store)
    local function try(field, value, as_text)
      local ev = {}
      for k, v in pairs(pdu) do ev[k] = v end
      if field == "prev_events" or field == "auth_events" then
        ev[field] = { value }
      else
        ev[field] = value
      end
      local arg = as_text and require("roomstate.harness").pdu_json(ev) or ev
      local res, err, code = store:ingest(arg)
      assert.is_nil(res, field)
      assert.equal("BAD_EVENT", code, err)
      assert.matches(field, err, 1, true)
      assert.same(before, S.counts(store))
    end
    for _, b in ipairs(BAD_IDS) do
      try("event_id", "$a" .. b .. "b:example.org")
      try("sender", "@a" .. b .. "b:example.org")
      try("room_id", room.room.id .. b)
      try("prev_events", room.head[1] .. b)
      try("auth_events", room.room.create_id .. b)
      if b == "\0" or b == "\1" then
        try("event_id", "$a" .. b .. "b:example.org", true) -- as \u0000 in JSON text
      end
    end
    store:close()
  end)

  it("a create event's room_version is a known one of at most 32 bytes", function()
    local store = assert(roomstate.open(":memory:"))
    local before = S.counts(store)
    for _, v in ipairs({ "10" .. ("x"):rep(40), ("1"):rep(33), "10\0", "10 ", "99", "" }) do
      local res, err, code = store:ingest({
        event_id = "$c:x", room_id = "!r:x", sender = "@a:x", type = "m.room.create",
        state_key = "", content = { creator = "@a:x", room_version = v },
        prev_events = {}, auth_events = {}, depth = 1 })
      assert.is_nil(res, v)
      assert.equal("BAD_EVENT", code, err)
      assert.matches("room_version", err, 1, true)
      assert.same(before, S.counts(store))
    end
    store:close()
  end)
end)
