-- Room versions as data (issue 11 §2, §3): one table in the C core, used by
-- the store, the harness and Lua alike; an unknown version is refused; an
-- event decoded by the item parser is not decoded again.
local roomstate = require "roomstate"
local core = require "roomstate.core"
local event = require "roomstate.event"
local items = require "roomstate.items"
local harness = require "roomstate.harness"
local cjson = require "cjson"
local S = require "support"

-- The specification's room version pages, one row per version: what each
-- version changed, written out independently of the C table.
local expected = {
  ["1"] = { event_id_format = "sender", state_res = "v1", ref_pairs = true,
            redaction_rule = true, aliases_rule = true, redact_keeps_aliases = true },
  ["2"] = { event_id_format = "sender", state_res = "v2", ref_pairs = true,
            redaction_rule = true, aliases_rule = true, redact_keeps_aliases = true },
  ["3"] = { event_id_format = "hash", state_res = "v2", aliases_rule = true,
            redact_keeps_aliases = true },
  ["4"] = { event_id_format = "hash_url", state_res = "v2", aliases_rule = true,
            redact_keeps_aliases = true },
  ["5"] = { event_id_format = "hash_url", state_res = "v2", aliases_rule = true,
            key_validity = true, redact_keeps_aliases = true },
}
local v6 = { event_id_format = "hash_url", state_res = "v2", key_validity = true,
             strict_json = true, notifications_power = true }
local function with(base, extra)
  local t = {}
  for k, v in pairs(base) do t[k] = v end
  for k, v in pairs(extra) do t[k] = v end
  return t
end
expected["6"] = v6
expected["7"] = with(v6, { knocking = true })
expected["8"] = with(expected["7"], { restricted_join = true })
expected["9"] = with(expected["8"], { redact_keeps_restricted = true })
expected["10"] = with(expected["9"], { knock_restricted = true, integer_power = true })
expected["11"] = with(expected["10"], { creator_is_sender = true, redacts_in_content = true,
                                        redact_drops_origin = true,
                                        redact_keeps_auth_keys = true })
expected["12"] = with(expected["11"], { state_res = "v2.1", room_id_from_create = true,
                                        privileged_creators = true })

local FLAGS = { "ref_pairs", "key_validity", "redaction_rule", "aliases_rule", "strict_json",
                "notifications_power", "knocking", "restricted_join", "knock_restricted",
                "integer_power", "creator_is_sender", "redacts_in_content",
                "room_id_from_create", "privileged_creators", "redact_keeps_aliases",
                "redact_keeps_restricted", "redact_drops_origin", "redact_keeps_auth_keys" }

describe("room versions", function()
  it("knows versions 1 to 12 with the rules each introduced", function()
    local ids = core.room_versions()
    assert.same({ "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12" }, ids)
    for _, id in ipairs(ids) do
      local got, want = core.room_version(id), expected[id]
      assert.equal(id, got.id)
      assert.equal(want.event_id_format, got.event_id_format, id)
      assert.equal(want.state_res, got.state_res, id)
      for _, f in ipairs(FLAGS) do
        assert.equal(want[f] == true, got[f], id .. " " .. f)
      end
    end
    assert.is_nil(core.room_version("13"))
    assert.is_nil(core.room_version("banana"))
  end)

  local function create_pdu(version)
    return S.pdu({ type = "m.room.create", state_key = "", event_id = "$create:x",
                   room_id = "!v:x", sender = "@a:x", prev_events = {}, auth_events = {},
                   depth = 1, content = { creator = "@a:x", room_version = version } })
  end

  it("refuses a create event of an unknown version, naming it, and stores nothing", function()
    local store = assert(roomstate.open(":memory:"))
    local long = ("9"):rep(32) -- a longer one is refused before (issue 14 §2.7)
    for _, v in ipairs({ "banana", long, "", "1.0" }) do
      local c0 = S.counts(store)
      local res, err, code = store:ingest(create_pdu(v))
      assert.is_nil(res)
      assert.equal("BAD_EVENT", code)
      assert.matches('unknown room version "' .. v .. '"', err, 1, true)
      assert.same(c0, S.counts(store))
      assert.same({}, store:rooms())
    end
    -- also when it comes as an outlier for a room that exists
    assert(harness.new(store):create_room("@a:x", { room_id = "!v:x" }))
    local res, _, code = store:ingest(create_pdu("banana"), { kind = "outlier" })
    assert.is_nil(res)
    assert.equal("BAD_EVENT", code)
    store:close()
  end)

  it("keeps serving a room an older file stored with an unknown version", function()
    local dir = S.tmpdir()
    local path = dir .. "/legacy.db"
    local store = assert(roomstate.open(path))
    local h = harness.new(store)
    local room = assert(h:create_room("@a:x", { room_id = "!old:x" }))
    local create_json = store:event(room.room.create_id)
    store:close()
    -- as a file from before versions were checked would hold it
    S.sql_as_schema6(path, "UPDATE rooms SET version='banana' WHERE room_id='!old:x'")
    store = assert(roomstate.open(path))
    h = harness.new(store)
    assert.equal("banana", store:room_version("!old:x"))
    -- its own create event again is a duplicate, so an import can be rerun
    local res = assert(store:ingest(create_json))
    assert.is_true(res.duplicate)
    -- its events keep the [id] shape, as before
    local _, pdu = h:emit(room.room, room.head, { type = "m.room.message", content = {} },
                          { ingest = false })
    local ok = assert(store:ingest(pdu))
    pdu.event_id = "$pairs:x"
    pdu.prev_events = { { ok.event_id, { sha256 = "x" } } }
    pdu.auth_events = {}
    local bad, err, code = store:ingest(pdu)
    assert.is_nil(bad)
    assert.equal("BAD_EVENT", code)
    assert.matches('room version "banana" uses [id]', err, 1, true)
    -- a valid file, though this library does not know the version
    local checked, cerr = store:check()
    assert.is_true(checked, cerr)
    store:close()
    S.rmdir(dir)
  end)

  it("takes a create event without room_version as version 1", function()
    local store = assert(roomstate.open(":memory:"))
    local pdu = create_pdu(nil)
    pdu.content.room_version = nil
    assert(store:ingest(pdu))
    assert.equal("1", store:room_version("!v:x"))
    store:close()
  end)

  it("builds every version's reference shape in the harness and the store agrees", function()
    local store = assert(roomstate.open(":memory:"))
    local h = harness.new(store)
    for _, id in ipairs(core.room_versions()) do
      local room = assert(h:create_room("@a:x", { version = id }))
      local ev, res = room:send("hi")
      assert(ev, res)
      assert.is_nil(res.rejected, id)
      assert.same({ ev }, store:latest_events(room.room.id))
      assert.equal(core.room_version(id).ref_pairs, type(h.events[ev].prev_events[1]) == "table")
      assert.equal(id, store:room_version(room.room.id))
      if core.room_version(id).room_id_from_create then
        -- as the spec writes them: IDs are hashes, the create names no room
        local create = cjson.decode(store:event(room.room.create_id))
        assert.is_nil(create.room_id)
        assert.is_nil(create.event_id)
        assert.equal("!" .. room.room.create_id:sub(2), room.room.id)
        assert.equal(core.event_id(id, store:event(ev)), ev)
        for _, a in ipairs(h.events[ev].auth_events) do
          assert.not_equal(room.room.create_id, a)
        end
      end
    end
    assert.is_true(store:check())
    store:close()
  end)
end)

describe("one decode per event", function()
  it("does not decode again an event the item parser decoded", function()
    local store = assert(roomstate.open(":memory:"))
    local h = harness.new(store)
    local room = assert(h:create_room("@a:x"))
    local _, pdu = h:emit(room.room, room.head, { type = "m.room.topic", state_key = "",
                                                  content = { topic = "t" } }, { ingest = false })
    local text = cjson.encode(pdu)
    local parsed = assert(items.parse_items(text))
    -- outliers have no output, whose decode would count too
    local decode, calls, watched = event.decode_json, 0, text
    local function spy(s, ...)
      if s == watched then calls = calls + 1 end
      return decode(s, ...)
    end
    event.decode_json = spy
    local ok, res = pcall(store.ingest_batch, store, { { event = parsed[1].event, kind = "outlier" } })
    event.decode_json = decode
    assert(ok, res)
    assert(res, "ingest failed")
    assert.equal(0, calls)
    assert.equal(text, store:event(pdu.event_id))
    -- plain text is decoded, once
    local _, pdu2 = h:emit(room.room, { pdu.event_id }, { type = "m.room.message", content = {} },
                           { ingest = false })
    watched = cjson.encode(pdu2)
    event.decode_json = spy
    ok, res = pcall(store.ingest, store, watched, { kind = "outlier" })
    event.decode_json = decode
    assert(ok, res)
    assert(res)
    assert.equal(1, calls)
    store:close()
  end)

  it("parses JSON text once in all: the core reads the decoder's tree", function()
    -- power levels and a PDU without event_id are the events whose JSON
    -- the core reads (the rules' structured content, the reference hash)
    local store = assert(roomstate.open(":memory:"))
    local h = harness.new(store, { seed = "once" })
    local room = assert(h:create_room("@a:x"))
    local function parses() return store:debug():debug_counts().json_parses end
    local before = parses()
    local _, _, pl = h:emit(room.room, room.head, { type = "m.room.power_levels", state_key = "",
      content = { users = { ["@a:x"] = 100, ["@b:x"] = 50 } } }, { ingest = false })
    local res = assert(store:ingest(pl))
    assert.is_nil(res.rejected)
    local _, pdu = h:emit(room.room, { res.event_id }, { type = "m.room.message",
      content = { body = "no id" } }, { ingest = false })
    local id = pdu.event_id
    pdu.event_id = nil
    local hashed = assert(store:ingest(harness.pdu_json(pdu)))
    assert.are_not.equal(id, hashed.event_id)
    assert.equal(before, parses())
    -- the same through the item parser (HTTP, import), as a wrapper in an array
    local _, _, pl3 = h:emit(room.room, { hashed.event_id }, { type = "m.room.power_levels",
      state_key = "", content = { users = { ["@a:x"] = 100, ["@c:x"] = 1 } } },
      { ingest = false })
    local parsed = assert(items.parse_items('[{"event":' .. pl3 .. ',"kind":"new"}]'))
    local got = assert(store:ingest_batch(parsed))
    hashed = got[1]
    assert.is_nil(hashed.rejected)
    assert.equal(before, parses())
    -- an event given as a table has no tree: the core parses it then
    local _, pl2 = h:emit(room.room, { hashed.event_id }, { type = "m.room.power_levels",
      state_key = "", content = { users = { ["@a:x"] = 100 } } }, { ingest = false })
    assert(store:ingest(pl2))
    assert.equal(before + 1, parses())
    store:close()
  end)

  it("carries sender, timestamps, auth events and auth content fields to the core", function()
    local f = assert(event.decode(S.pdu({
      type = "m.room.member", state_key = "@b:x", sender = "@a:x", origin_server_ts = 1234,
      auth_events = { "$c:x", "$p:x" },
      content = { membership = "join", join_authorised_via_users_server = "@a:x",
                  third_party_invite = { signed = { token = "tok" } } } })))
    assert.equal("@a:x", f.sender)
    assert.equal(1234, f.origin_server_ts)
    assert.same({ "$c:x", "$p:x" }, f.auth_events)
    assert.equal(false, f.pairs_shape)
    assert.equal("join", f.membership)
    assert.equal("@a:x", f.authorised_via)
    assert.equal("tok", f.invite_token)
    local c = assert(event.decode(S.pdu({ type = "m.room.create", state_key = "",
      prev_events = {}, auth_events = {},
      content = { creator = "@a:x", ["m.federate"] = false, room_version = "10" } })))
    assert.equal("@a:x", c.creator)
    assert.is_true(c.no_federate)
    assert.is_nil(c.pairs_shape)
    local j = assert(event.decode(S.pdu({ type = "m.room.join_rules", state_key = "",
      content = { join_rule = "knock" } })))
    assert.equal("knock", j.join_rule)
    local r = assert(event.decode(S.pdu({ type = "m.room.redaction", redacts = "$old:x" })))
    assert.equal("$old:x", r.redacts)
    r = assert(event.decode(S.pdu({ type = "m.room.redaction", content = { redacts = "$n:x" } })))
    assert.equal("$n:x", r.redacts)
    -- the core takes them: a missing sender is a caller mistake at the boundary
    local store = assert(roomstate.open(":memory:"))
    local d = store:debug()
    f.sender = nil
    assert(d:begin())
    local ok, err = pcall(d.ingest, d, f, "new")
    d:rollback()
    assert.is_false(ok)
    assert.matches("sender", err)
    store:close()
  end)
end)
