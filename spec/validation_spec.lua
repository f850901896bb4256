-- Issue 3 §4: bad input gets a clear error, naming the value, and writes nothing.
local roomstate = require "roomstate"
local harness = require "roomstate.harness"
local cjson = require "cjson"
local S = require "support"

describe("validation", function()
  -- built while the cases are described, so they can refer to the room
  local store = assert(roomstate.open(":memory:"))
  local room = assert(harness.new(store):create_room("@alice:x"))
  -- room version 1, whose event IDs the sender chooses: a PDU needs one
  local room1 = assert(harness.new(store):create_room("@alice:x", { version = "1" }))
  teardown(function() store:close() end)

  local function pdu(over)
    local t = S.pdu({ room_id = room.room.id, prev_events = { room.head[1] } })
    for k, v in pairs(over) do
      if v == "<nil>" then t[k] = nil else t[k] = v end
    end
    return t
  end

  local long = "$" .. ("x"):rep(300)
  local cases = {
    { "not JSON", "{not json", "NOT_JSON", "not json" },
    { "not an object", "[1,2,3]", "BAD_EVENT", "[1,2,3]" },
    { "JSON string not an object", '"just a string"', "BAD_EVENT", "just a string" },
    { "event_id missing in a room version 1 room",
      pdu({ event_id = "<nil>", room_id = room1.room.id,
            prev_events = { { room1.head[1], { sha256 = "x" } } } }),
      "BAD_EVENT", 'event_id is missing, and room version "1" events carry the ID their sender chose' },
    { "event_id wrong sigil", pdu({ event_id = "!x:y" }), "BAD_EVENT", "!x:y" },
    { "event_id too long", pdu({ event_id = long }), "BAD_EVENT", "more than 255" },
    { "event_id not a string", pdu({ event_id = 7 }), "BAD_EVENT", "7" },
    { "room_id wrong sigil", pdu({ room_id = "#alias:x" }), "BAD_EVENT", "#alias:x" },
    { "sender wrong sigil", pdu({ sender = "alice" }), "BAD_EVENT", "alice" },
    { "sender missing", pdu({ sender = "<nil>" }), "BAD_EVENT", "sender" },
    { "type missing", pdu({ type = "<nil>" }), "BAD_EVENT", "type" },
    { "type not a string", pdu({ type = 5 }), "BAD_EVENT", "5" },
    { "state_key not a string", pdu({ state_key = 12 }), "BAD_EVENT", "12" },
    { "content not an object", pdu({ content = "text" }), "BAD_EVENT", "text" },
    { "content an array", pdu({ content = { 1, 2 } }), "BAD_EVENT", "content" },
    { "prev_events not an array", pdu({ prev_events = "$a:x" }), "BAD_EVENT", "$a:x" },
    { "prev_events wrong item", pdu({ prev_events = { 5 } }), "BAD_EVENT", "prev_events[1]" },
    { "prev_events not event IDs", pdu({ prev_events = { "nope" } }), "BAD_EVENT", "nope" },
    { "auth_events wrong shape", pdu({ auth_events = { { 1, 2 } } }), "BAD_EVENT", "auth_events[1]" },
    { "prev_events mixed shapes", pdu({ prev_events = { "$a:x", { "$b:x", {} } } }), "BAD_EVENT", "prev_events[2]" },
    { "depth negative", pdu({ depth = -1 }), "BAD_EVENT", "-1" },
    { "depth fractional", pdu({ depth = 1.5 }), "BAD_EVENT", "1.5" },
    { "depth a string", pdu({ depth = "3" }), "BAD_EVENT", "depth" },
    { "membership missing", pdu({ type = "m.room.member", state_key = "@b:x", content = {} }), "BAD_EVENT", "membership" },
    { "too large", pdu({ content = { body = ("x"):rep(70000) } }), "TOO_LARGE", "65536" },
    { "too large as text", cjson.encode(pdu({ content = { body = ("y"):rep(70000) } })), "TOO_LARGE", "65536" },
  }
  for _, c in ipairs(cases) do
    it("rejects " .. c[1], function()
      local c0 = S.counts(store)
      local ev = c[2]
      local res, err, code = store:ingest(ev)
      assert.is_nil(res)
      assert.equal(c[3], code)
      assert.matches("^" .. c[3] .. ": ", err)
      assert.matches(c[4], err, 1, true)
      assert.same(c0, S.counts(store))
      -- the same as JSON text, when it was a table
      if type(ev) == "table" and c[3] ~= "TOO_LARGE" then
        local ok, text = pcall(cjson.encode, ev)
        if ok then
          res, err, code = store:ingest(text)
          assert.is_nil(res)
          assert.equal(c[3], code)
          assert.same(c0, S.counts(store))
        end
      end
    end)
  end

  it("raises on an unknown kind and writes nothing", function()
    local c0 = S.counts(store)
    assert.has_error(function() store:ingest(pdu({}), { kind = "future" }) end,
                     'bad option \'kind\' to \'ingest\' ("new", "old" or "outlier" expected, got future)')
    assert.same(c0, S.counts(store))
  end)

  it("accepts an empty state key and keeps it apart from no state key", function()
    local id = "$empty-key:x"
    local ev = pdu({ event_id = id, type = "m.room.topic", state_key = "", sender = "@alice:x",
                     content = { topic = "t" } })
    ev.auth_events = S.auth_events(store, room.room.id, ev)
    local res = assert(store:ingest(ev))
    assert.is_nil(res.rejected)
    assert.equal(id, store:current_state(room.room.id):get("m.room.topic", ""))
    room.head = { id }
  end)
  -- A type or state key is any JSON string (the spec sets no alphabet, and
  -- other servers send what they like), so control bytes, NUL included, are
  -- kept byte for byte rather than refused; IDs are refused (check_id).
  it("keeps a type or state key with control bytes exactly, through outputs", function()
    local s2 = assert(roomstate.open(":memory:"))
    local r2 = assert(harness.new(s2):create_room("@alice:x"))
    local from = #s2:outputs(1, 100000) + 1
    local keys = { { "m.custom", "a\0b" }, { "m.custom", "a" }, { "m.custom", "x\1\31y" },
                   { "m.custom", "\127" }, { "m.t\0ype", "" }, { "m.t", "" } }
    local want = {}
    for i, k in ipairs(keys) do
      local id = assert(r2:state(k[1], k[2], { i = i }))
      want[#want + 1] = { k[1], k[2], id }
    end
    local st = s2:current_state(r2.room.id)
    for _, w in ipairs(want) do assert.equal(w[3], st:get(w[1], w[2])) end
    local seen = {}
    for t, k, e in st:entries() do seen[t .. "|" .. k] = e end
    for _, w in ipairs(want) do assert.equal(w[3], seen[w[1] .. "|" .. w[2]]) end
    local outs = s2:outputs(from, 100)
    assert.equal(#keys, #outs)
    local decoded = cjson.decode(s2:outputs_json(from, 100))
    assert.equal(#keys, #decoded)
    for i, list in ipairs({ outs, decoded }) do
      for j, o in ipairs(list) do
        local ne = o.new_room_event
        assert.same({ want[j][3] }, ne.adds_state_event_ids, "outputs list " .. i)
        assert.equal(want[j][1], ne.event.type)
        assert.equal(want[j][2], ne.event.state_key)
      end
    end
    assert.is_true(s2:check())
    s2:close()
  end)
end)
