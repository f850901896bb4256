-- Issue 11 §4.1: the exact JSON text of outputs, byte for byte, as served
-- by outputs_json / outputs_json_list / GET /outputs and decoded for
-- subscribers: position first, the event spliced in as the inner object's
-- first field exactly as ingested, empty arrays as [], then the ID it is
-- stored under.
local roomstate = require "roomstate"
local cjson = require "cjson"

local R = "!pin:x"

-- Hand-written event texts, with a newline, a space after a comma and an
-- escaped string, so any re-encoding of the event shows.
local function ev(id, typ, sk, prev, auth, depth, content)
  local s = sk and (',"state_key":"' .. sk .. '"') or ""
  return ('{"event_id":"%s","room_id":"%s","sender":"@a:x","type":"%s"%s,'
    .. '"prev_events":[%s],"auth_events":[%s], "depth":%d,\n "content":%s}'):format(
    id, R, typ, s, prev, auth, depth, content)
end

-- They pass the auth rules: @a:x creates the room and is its only member;
-- the rewrite ($r) is @a:x joining again with a new display name.
local CJ = '"$c","$j"'
local EV = {
  ev("$c", "m.room.create", "", "", "", 1, '{"creator":"@a:x","room_version":"10","list":[]}'),
  ev("$j", "m.room.member", "@a:x", '"$c"', '"$c"', 2, '{"membership":"join"}'),
  ev("$m", "m.room.message", nil, '"$j"', CJ, 3, '{"body":"caf\\u00e9 \\"q\\"","x":{}}'),
  ev("$o", "m.room.message", nil, '"$j"', CJ, 3, '{"body":"old"}'),
  ev("$t", "m.room.topic", "", '"$m"', CJ, 4, '{"topic":"t"}'),
  ev("$r", "m.room.member", "@a:x", '"$x"', CJ, 9, '{"membership":"join","displayname":"A"}'),
}

local NEW = '{"position":%d,"type":"new_room_event","new_room_event":{"event":'
local WANT = {
  NEW:format(1) .. EV[1] .. ',"event_id":"$c","rewrites_state":false,"latest_event_ids":["$c"],'
    .. '"adds_state_event_ids":["$c"],"removes_state_event_ids":[],'
    .. '"state_before_adds_event_ids":[],"state_before_removes_event_ids":["$c"],'
    .. '"last_sent_event_id":"","state_hash":"f529d94ea57e3a3e"}}',
  NEW:format(2) .. EV[2] .. ',"event_id":"$j","rewrites_state":false,"latest_event_ids":["$j"],'
    .. '"adds_state_event_ids":["$j"],"removes_state_event_ids":[],'
    .. '"state_before_adds_event_ids":[],"state_before_removes_event_ids":["$j"],'
    .. '"last_sent_event_id":"$c","state_hash":"14e9cc4afb4c76b4"}}',
  NEW:format(3) .. EV[3] .. ',"event_id":"$m","rewrites_state":false,"latest_event_ids":["$m"],'
    .. '"adds_state_event_ids":[],"removes_state_event_ids":[],'
    .. '"state_before_adds_event_ids":[],"state_before_removes_event_ids":[],'
    .. '"last_sent_event_id":"$j","state_hash":"14e9cc4afb4c76b4"}}',
  '{"position":4,"type":"old_room_event","old_room_event":{"event":' .. EV[4]
    .. ',"event_id":"$o"}}',
  NEW:format(5) .. EV[5] .. ',"event_id":"$t","rewrites_state":false,"latest_event_ids":["$t"],'
    .. '"adds_state_event_ids":["$t"],"removes_state_event_ids":[],'
    .. '"state_before_adds_event_ids":[],"state_before_removes_event_ids":["$t"],'
    .. '"last_sent_event_id":"$m","state_hash":"4486b0d31b3ddaa5"}}',
  NEW:format(6) .. EV[6] .. ',"event_id":"$r","rewrites_state":true,"latest_event_ids":["$r"],'
    .. '"adds_state_event_ids":["$c","$r"],"removes_state_event_ids":[],'
    .. '"state_before_adds_event_ids":["$j"],"state_before_removes_event_ids":["$r"],'
    .. '"last_sent_event_id":"$t","state_hash":"2f62586d01e60fcf"}}',
}

describe("output JSON text", function()
  local store
  before_each(function()
    store = assert(roomstate.open(":memory:", { deliver = false }))
    for i, text in ipairs(EV) do
      local opts = (i == 4 and { kind = "old" }) or (i == 6 and { state = { "$c", "$j" } }) or nil
      assert(store:ingest(text, opts))
    end
  end)
  after_each(function() store:close() end)

  it("is pinned byte for byte in outputs_json_list and outputs_json", function()
    assert.same(WANT, assert(store:outputs_json_list(1, 100)))
    assert.equal("[" .. table.concat(WANT, ",") .. "]", assert(store:outputs_json(1, 100)))
    assert.same({ WANT[3], WANT[4] }, assert(store:outputs_json_list(3, 2)))
    assert.equal("[]", assert(store:outputs_json(100, 10)))
    assert.same({}, assert(store:outputs_json_list(100, 10)))
  end)

  it("decodes for subscribers and results to the same text's tables", function()
    local outs = assert(store:outputs(1, 100))
    assert.equal(#WANT, #outs)
    for i, o in ipairs(outs) do assert.same(cjson.decode(WANT[i]), o) end
    local got = {}
    store:subscribe("s", function(o) got[#got + 1] = o end)
    store:deliver()
    for i, o in ipairs(got) do assert.same(cjson.decode(WANT[i]), o) end
  end)

  it("stays the same after a purge renders the room's rows in place", function()
    local pos = assert(store:purge_room(R))
    assert.equal(7, pos)
    local texts = assert(store:outputs_json_list(1, 100))
    local want = { unpack(WANT) }
    want[7] = '{"position":7,"type":"purge_room","purge_room":{"room_id":"!pin:x"}}'
    assert.same(want, texts)
    assert.same(cjson.decode(want[7]), assert(store:outputs(7, 1))[1])
  end)
end)
