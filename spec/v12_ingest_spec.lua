-- Room version 12, and the hash IDs of v3 on, ingested as the spec writes
-- them: a PDU without event_id gets its reference hash as its ID, a v12
-- create without room_id names its room by that hash, v12 events find
-- their create event through the room ID. The IDs are held against
-- matrix.org's Python canonicaljson (Debian's python3-canonicaljson and
-- python3-signedjson's unpaddedbase64, run as /usr/bin/python3, a test
-- dependency only), with the redaction algorithm transcribed in
-- spec/support/event_id_oracle.py.
local roomstate = require "roomstate"
local core = require "roomstate.core"
local harness = require "roomstate.harness"
local cjson = require "cjson"
local S = require "support"

local PYTHON = S.PYTHON
local ORACLE = "spec/support/event_id_oracle.py"

-- The oracle's answers to {"version": v, "event": text} lines.
local function oracle(requests)
  local lines = {}
  for i, r in ipairs(requests) do
    lines[i] = '{"version": "' .. r.version .. '", "event": ' .. r.text .. "}"
  end
  return S.python_oracle(ORACLE, lines)
end

-- A room of version v scripted by hand, every PDU without event_id and
-- citing the auth events the selection picks (no create event in v12),
-- with fields each version's redaction keeps or drops: top-level origin
-- (kept to v10), unsigned and signatures (never hashed), power levels'
-- invite (kept from v11), join rules' allow (from v9), redacts (in content
-- and kept from v11). Every event must be accepted by the auth rules.
local function scripted_room(store, v)
  local rules = core.room_version(v)
  local v12 = rules.room_id_from_create
  local room = { version = v, texts = {}, results = {} }
  local function put(pdu)
    local n = #room.texts + 1
    pdu.room_id = room.id
    pdu.depth, pdu.origin_server_ts = n, 1700000000000 + n
    local text = harness.pdu_json(pdu)
    local res, err = store:ingest(text)
    assert(res, err)
    assert(not res.rejected and not res.soft_failed, res.rejected or res.soft_failed)
    room.texts[n], room.results[n] = text, res
    return res.event_id
  end
  local content = { room_version = v }
  if not rules.creator_is_sender then content.creator = "@a:x" end
  if not v12 then room.id = "!r" .. v .. ":x" end
  local create = put({ type = "m.room.create", state_key = "", sender = "@a:x",
                       content = content, prev_events = {}, auth_events = {} })
  room.id = room.results[1].room_id
  local function auth(...)
    local list = v12 and {} or { create }
    for i = 1, select("#", ...) do list[#list + 1] = select(i, ...) end
    return list
  end
  local join = put({ type = "m.room.member", state_key = "@a:x", sender = "@a:x",
                     content = { membership = "join" }, prev_events = { create },
                     auth_events = auth() })
  local pl = put({ type = "m.room.power_levels", state_key = "", sender = "@a:x",
                   content = { users = v12 and {} or { ["@a:x"] = 100 }, invite = 0,
                               notifications = { room = 50 } },
                   prev_events = { join }, auth_events = auth(join) })
  local jr = put({ type = "m.room.join_rules", state_key = "", sender = "@a:x",
                   content = { join_rule = "public",
                               allow = { { type = "m.room_membership", room_id = "!o:x" } } },
                   prev_events = { pl }, auth_events = auth(pl, join) })
  local msg = put({ type = "m.room.message", sender = "@a:x", origin = "x",
                    unsigned = { age = 5 }, signatures = { x = { ["ed25519:1"] = "c2ln" } },
                    content = { msgtype = "m.text", body = "caf\195\169 \"q\"" },
                    prev_events = { jr }, auth_events = auth(pl, join) })
  local bob = put({ type = "m.room.member", state_key = "@b:x", sender = "@b:x",
                    content = { membership = "join", displayname = "Bob" },
                    prev_events = { msg }, auth_events = auth(pl, jr) })
  local redaction = { type = "m.room.redaction", sender = "@a:x", content = {},
                      prev_events = { bob }, auth_events = auth(pl, join) }
  if rules.redacts_in_content then redaction.content.redacts = msg else redaction.redacts = msg end
  put(redaction)
  return room
end

describe("hash IDs at ingest against matrix.org's Python libraries", function()
  if not S.python_has("canonicaljson, unpaddedbase64") then
    pending(PYTHON .. " lacks canonicaljson or unpaddedbase64: apt-get install "
            .. "python3-canonicaljson python3-signedjson (see .ci/packages)")
    return
  end

  local VERSIONS = { "3", "4", "10", "12" }
  local rooms, answers, stores = {}, {}, {}
  setup(function()
    local requests = {}
    for _, v in ipairs(VERSIONS) do
      stores[v] = assert(roomstate.open(":memory:", { deliver = false }))
      rooms[v] = scripted_room(stores[v], v)
      for _, text in ipairs(rooms[v].texts) do
        requests[#requests + 1] = { version = v, text = text }
      end
    end
    local all = oracle(requests)
    local i = 0
    for _, v in ipairs(VERSIONS) do
      answers[v] = {}
      for j = 1, #rooms[v].texts do
        i = i + 1
        answers[v][j] = all[i]
      end
    end
  end)
  teardown(function()
    for _, store in pairs(stores) do store:close() end
  end)

  for _, v in ipairs(VERSIONS) do
    it("gives each PDU without event_id the ID Python computes, room version " .. v, function()
      local room, store = rooms[v], stores[v]
      for i, res in ipairs(room.results) do
        assert.equal(answers[v][i].event_id, res.event_id, "event " .. i .. ": " .. room.texts[i])
        assert.equal(room.id, res.room_id)
        -- stored under it, byte for byte
        assert.equal(room.texts[i], store:event(res.event_id))
      end
      -- outputs name each event, which its own JSON does not
      local outs = assert(store:outputs(1, 100))
      assert.equal(#room.results, #outs)
      for i, o in ipairs(outs) do
        assert.equal(room.results[i].event_id, o.new_room_event.event_id)
        assert.is_nil(o.new_room_event.event.event_id)
      end
      assert.same({ room.results[#room.results].event_id }, store:latest_events(room.id))
      assert.is_true(store:check())
    end)
  end

  it("names a v12 room by its create event, which states no room_id", function()
    local room, store = rooms["12"], stores["12"]
    local create = room.results[1]
    assert.is_nil(cjson.decode(room.texts[1]).room_id)
    assert.equal(answers["12"][1].room_id, create.room_id)
    assert.equal("!" .. create.event_id:sub(2), create.room_id)
    assert.same({ create.room_id }, store:rooms())
    assert.equal("12", store:room_version(create.room_id))
    local st = assert(store:current_state(create.room_id))
    assert.equal(create.event_id, st:get("m.room.create", ""))
    assert.equal(room.results[6].event_id, st:get("m.room.member", "@b:x"))
  end)
end)

-- A v12 create event's JSON, with extra top-level fields.
local function v12_create(extra)
  local pdu = { type = "m.room.create", state_key = "", sender = "@a:x", depth = 1,
                content = { room_version = "12" }, prev_events = {}, auth_events = {},
                origin_server_ts = 1 }
  for k, x in pairs(extra or {}) do pdu[k] = x end
  return harness.pdu_json(pdu)
end

-- text with "event_id" added as its first field
local function with_id(text, id)
  return (text:gsub("^{", '{"event_id":"' .. id .. '",', 1))
end

describe("room version 12 at ingest", function()
  local store
  before_each(function() store = assert(roomstate.open(":memory:", { deliver = false })) end)
  after_each(function() store:close() end)

  it("refuses a create whose room_id is not the one its ID makes, and stores nothing", function()
    local c0 = S.counts(store)
    local res, err, code = store:ingest(v12_create({ room_id = "!elsewhere:x" }))
    assert.is_nil(res)
    assert.equal("BAD_EVENT", code)
    assert.matches("room_id !elsewhere:x is not the room ID its event ID makes", err, 1, true)
    -- one stating its own room ID (possible only with a given event_id)
    -- is what rule 1.2 rejects: a create event has no room_id
    res, err, code = store:ingest(with_id(v12_create({ room_id = "!own" }), "$own"))
    assert.is_nil(res)
    assert.equal("BAD_EVENT", code)
    assert.matches("CREATE_INVALID: a create event has no room_id", err, 1, true)
    assert.same(c0, S.counts(store))
    assert.same({}, store:rooms())
    -- a store without the rules takes that one: its IDs agree
    local lax = assert(roomstate.open(":memory:", { authorize = false }))
    res = assert(lax:ingest(with_id(v12_create({ room_id = "!own" }), "$own")))
    assert.equal("!own", res.room_id)
    lax:close()
  end)

  it("needs a known room for every other v12 event: its create is the room ID's event", function()
    local h = harness.new(store)
    local room = assert(h:create_room("@a:x", { version = "12" }))
    local _, pdu = h:emit(room.room, room.head, { type = "m.room.message", content = {} },
                          { ingest = false })
    pdu.room_id = "!" .. ("A"):rep(43)
    local res, err, code = store:ingest(harness.pdu_json(pdu))
    assert.is_nil(res)
    assert.equal("UNKNOWN_ROOM", code)
    assert.matches("!" .. ("A"):rep(43) .. " has no create event", err, 1, true)
  end)

  it("authorises a v12 outlier with the create event its room ID names (review note B4)",
     function()
    local h = harness.new(store)
    local room = assert(h:create_room("@a:x", { version = "12" }))
    -- a federated join: the remote state arrives as outliers, which have
    -- no state before them to find the create event in
    local join, res, ids = room:rewrite({
      { type = "m.room.create" },
      { type = "m.room.member", state_key = "@a:x", content = { membership = "join" } },
      { type = "m.room.power_levels", state_key = "", content = { users = {} } },
      { type = "m.room.join_rules", state_key = "", content = { join_rule = "public" } },
    }, "@c:y")
    assert(join, res)
    assert.is_nil(res.rejected)
    for i = 2, #ids do assert.equal("accepted", store:event_status(ids[i])) end
    -- and one that fails is judged by the rules, not refused for want of a create
    local _, out = h:emit(room.room, room.head, { type = "m.room.message", sender = "@z:y",
                                                  content = { body = "x" } }, { kind = "outlier" })
    assert.matches("^SENDER_NOT_JOINED", out.rejected)
  end)

  it("takes the same event with and without event_id as one event", function()
    for _, v in ipairs({ "10", "12" }) do
      local h = harness.new(store)
      local room = assert(h:create_room("@a:x", { version = v }))
      local function message(body)
        local _, pdu = h:emit(room.room, room.head, { type = "m.room.message",
                                                      content = { body = body } },
                              { ingest = false })
        pdu.event_id = nil
        return harness.pdu_json(pdu)
      end
      local text = message("first")
      local bare = assert(store:ingest(text))
      assert.is_false(bare.duplicate)
      local again = assert(store:ingest(with_id(text, bare.event_id)))
      assert.is_true(again.duplicate, v)
      assert.equal(bare.event_id, again.event_id)
      -- and the other way round
      text = message("second")
      local id = core.event_id(v, text)
      assert.is_false(assert(store:ingest(with_id(text, id))).duplicate)
      local later = assert(store:ingest(text))
      assert.is_true(later.duplicate, v)
      assert.equal(id, later.event_id)
    end
    -- a v12 create too, whose room is its ID's
    local text = v12_create({ content = { room_version = "12", x = 1 } })
    local first = assert(store:ingest(text))
    local again = assert(store:ingest(with_id(text, first.event_id)))
    assert.is_true(again.duplicate)
    assert.equal(first.room_id, again.room_id)
    assert.is_true(store:check())
  end)

  it("refuses a PDU without the IDs its version needs as data, naming the field", function()
    local h = harness.new(store)
    for _, v in ipairs({ "1", "2" }) do
      local room = assert(h:create_room("@a:x", { version = v }))
      local _, pdu = h:emit(room.room, room.head, { type = "m.room.message", content = {} },
                            { ingest = false })
      pdu.event_id = nil
      local res, err, code = store:ingest(pdu)
      assert.is_nil(res)
      assert.equal("BAD_EVENT", code)
      assert.matches("^BAD_EVENT: .*event_id is missing, and room version \"" .. v
                     .. "\" events carry the ID their sender chose", err)
    end
    -- a create event before v12 states its room
    local res, err, code = store:ingest(v12_create({ content = { room_version = "11" } }))
    assert.is_nil(res)
    assert.equal("BAD_EVENT", code)
    assert.matches("room_id is missing", err, 1, true)
    -- any other event always does
    local no_room = S.pdu({})
    no_room.room_id = nil
    res, err, code = store:ingest(no_room)
    assert.is_nil(res)
    assert.equal("BAD_EVENT", code)
    assert.matches("room_id is missing", err, 1, true)
    -- no reference hash: a key given twice has no canonical form, and the
    -- ingest decoder refuses it before the hash is tried (issue 14 §2.6)
    local room = assert(h:create_room("@a:x", { version = "12" }))
    local _, _, text = h:emit(room.room, room.head, { type = "m.room.message",
                                                      content = { body = "x" } }, { ingest = false })
    res, err, code = store:ingest((text:gsub('"body":"x"', '"body":"x","body":"y"')))
    assert.is_nil(res)
    assert.equal("NOT_JSON", code)
    assert.matches("duplicate object key", err, 1, true)
  end)

  it("keeps naming a purged room's events in its outputs", function()
    local h = harness.new(store)
    local room = assert(h:create_room("@a:x", { version = "12" }))
    local msg = assert(room:send("hi"))
    assert(store:purge_room(room.room.id))
    local outs = assert(store:outputs(1, 100))
    assert.equal(room.room.create_id, outs[1].new_room_event.event_id)
    assert.equal(msg, outs[#outs - 1].new_room_event.event_id)
    assert.equal("purge_room", outs[#outs].type)
  end)
end)
