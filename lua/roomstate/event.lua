-- roomstate.event: decodes and validates one Matrix PDU.
--
-- The JSON is decoded once, here, with the binding's strict decoder
-- (core.json_decode: jansson, no duplicate keys; lua-cjson lets hex, NaN,
-- leading zeros and raw control characters through), or by roomstate.items,
-- which hands over its decoded value. The result is a flat table of every
-- field the C core needs (IDs, sender, type, state key, prev and auth event
-- IDs and their shape, depth, timestamp, the content fields the auth rules
-- read, the JSON bytes), so the core parses JSON only where it must: to
-- hash an event that states no event_id, and for the structured content
-- the auth rules read. What depends on the room version (whether an
-- event may lack event_id or room_id) is checked by the core, against its
-- table of versions.
local cjson = require "cjson.safe"
local core = require "roomstate.core"

local type, tostring, pairs, next, math_floor, string_sub, string_format, setmetatable,
      getmetatable =
      type, tostring, pairs, next, math.floor, string.sub, string.format, setmetatable,
      getmetatable
local string_find, string_byte = string.find, string.byte
local json_decode, ARRAY = core.json_decode, core.json_array_mt

local _M = { MAX_BYTES = 65536, MAX_ID_BYTES = 255, MAX_VERSION_BYTES = 32 }

local MAX_INT = 9007199254740991 -- 2^53 - 1, the largest exact integer

-- A cjson instance of our own, so no other module's settings change ours;
-- it encodes events given as tables. Text is decoded by json_decode.
local json = cjson.new()
json.decode_max_depth(64)
json.encode_max_depth(64)

local function bad(fmt, ...)
  return nil, "BAD_EVENT: " .. string_format(fmt, ...), "BAD_EVENT"
end

local function show(v)
  if type(v) == "string" then
    if #v > 80 then v = string_sub(v, 1, 80) .. "..." end
    return string_format("%q", v)
  end
  return tostring(v)
end

-- Whether the bytes at i start a valid UTF-8 sequence: its length, or nil
-- (overlong forms, surrogates and code points past U+10FFFF are not).
local function utf8_at(s, i)
  local c, c1 = string_byte(s, i, i + 1)
  local n, lo, hi = nil, 0x80, 0xBF
  if c < 0x80 then return 1
  elseif c >= 0xC2 and c <= 0xDF then n = 2
  elseif c >= 0xE0 and c <= 0xEF then
    n = 3
    if c == 0xE0 then lo = 0xA0 elseif c == 0xED then hi = 0x9F end
  elseif c >= 0xF0 and c <= 0xF4 then
    n = 4
    if c == 0xF0 then lo = 0x90 elseif c == 0xF4 then hi = 0x8F end
  else return nil end
  if not c1 or c1 < lo or c1 > hi then return nil end
  for k = i + 2, i + n - 1 do
    local b = string_byte(s, k)
    if not b or b < 0x80 or b > 0xBF then return nil end
  end
  return n
end

-- Why an ID's bytes are unusable (a NUL or other control character, which
-- C strings and consumers cut or choke on, or invalid UTF-8), or nil.
local function id_fault(v)
  if string_find(v, "[%z\1-\31\127]") then return "a control character" end
  if not string_find(v, "[\128-\255]") then return nil end
  local i = 1
  while i <= #v do
    local n = utf8_at(v, i)
    if not n then return "invalid UTF-8" end
    i = i + n
  end
  return nil
end

-- An ID field; an optional one may be absent (false then).
local function check_id(ev, field, sigil, optional)
  local v = ev[field]
  if v == nil and optional then return false end
  if v == nil then return bad("%s is missing", field) end
  if type(v) ~= "string" then return bad("%s must be a string, got %s", field, show(v)) end
  if string_sub(v, 1, 1) ~= sigil then
    return bad("%s must start with '%s', got %s", field, sigil, show(v))
  end
  if #v > _M.MAX_ID_BYTES then
    return bad("%s is %d bytes, more than %d: %s", field, #v, _M.MAX_ID_BYTES, show(v))
  end
  local fault = id_fault(v)
  if fault then return bad("%s has %s: %s", field, fault, show(v)) end
  return v
end

local function is_array(t)
  if type(t) ~= "table" then return false end
  local n = #t
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k > n or k ~= math_floor(k) then return false end
  end
  return true
end

-- An object has no array part; a decoded JSON array carries ARRAY, so an
-- empty one is not taken for {} (a table a caller built cannot tell).
local function is_object(t)
  return type(t) == "table" and #t == 0 and getmetatable(t) ~= ARRAY
end

local function show_json(v)
  if type(v) ~= "table" then return show(v) end
  if getmetatable(v) == ARRAY and #v == 0 then return "[]" end
  return show(json.encode(v))
end

-- prev_events/auth_events: [[id, {hashes}], ...] in room versions 1 and 2
-- (exactly two elements, the second an object), [id, ...] later. Returns the IDs and the shape (true for pairs) so the
-- caller can hold it against the room's version once that is known.
local function event_refs(ev, field, pairs_shape)
  local v = ev[field]
  if v == nil then return bad("%s is missing", field) end
  if not is_array(v) then return bad("%s must be an array, got %s", field, show(v)) end
  local ids = {}
  for i = 1, #v do
    local item, id = v[i], nil
    if type(item) == "string" and pairs_shape ~= true then
      id, pairs_shape = item, false
    elseif type(item) == "table" and pairs_shape ~= false and is_array(item) and #item == 2
        and type(item[1]) == "string" and is_object(item[2]) then
      id, pairs_shape = item[1], true
    else
      return bad("%s[%d] has the wrong shape for this room version: %s", field, i,
                 show_json(item))
    end
    if string_sub(id, 1, 1) ~= "$" or #id > _M.MAX_ID_BYTES then
      return bad("%s[%d] is not an event ID: %s", field, i, show(id))
    end
    local fault = id_fault(id)
    if fault then return bad("%s[%d] has %s: %s", field, i, fault, show(id)) end
    ids[i] = id
  end
  return ids, pairs_shape
end

-- An event's text with the value a caller already decoded from it (the
-- item parser decodes a whole request once). Only roomstate.items makes
-- them, from text it has just decoded, so the two always agree.
local Decoded = {}
function _M.decoded(text, value, tree)
  return setmetatable({ text = text, value = value, tree = tree }, Decoded)
end

local function too_large(text)
  return nil, string_format("TOO_LARGE: the event is %d bytes of JSON, more than %d",
                            #text, _M.MAX_BYTES), "TOO_LARGE"
end

-- The JSON text and decoded value of an event given as text, a table, or
-- text and value from roomstate.items; for text, also jansson's tree of it,
-- which the core then reads instead of parsing the text again.
local function text_and_value(event)
  if getmetatable(event) == Decoded then
    if #event.text > _M.MAX_BYTES then return too_large(event.text) end
    return event.text, event.value, event.tree
  end
  local text, ev
  if type(event) == "string" then
    text = event
    if #text > _M.MAX_BYTES then return too_large(text) end
    local tree
    ev, tree = _M.decode_json(text, 64, true)
    if ev == nil then
      return nil, "NOT_JSON: " .. tostring(tree) .. " in " .. show(text), "NOT_JSON"
    end
    return text, ev, tree
  else
    ev = event
    local err
    text, err = json.encode(ev)
    if not text then return bad("cannot be encoded as JSON: %s", tostring(err)) end
    if #text > _M.MAX_BYTES then return too_large(text) end
  end
  return text, ev
end

local function opt_string(v)
  if type(v) == "string" then return v end
  return nil
end

-- The content fields the auth rules read, by event type. A field of the
-- wrong JSON type is left out here; the rules then treat it as absent.
-- auth_plain says that a member event's content holds nothing the rules
-- read beyond these fields, so an authorising store need not parse its
-- JSON again; which types it parses anyway is the core's to say. An empty
-- content may be JSON's [] (cjson decodes both as one empty table), which
-- the rules refuse as no object: the core parses it, so that every handle
-- judges it alike, whether it kept this decode or reads the stored JSON.
local function auth_fields(fields, etype, is_state, content, ev)
  fields.auth_plain = next(content) ~= nil
  if etype == "m.room.redaction" then
    -- top level up to room version 10, in content from 11: the core picks
    fields.redacts = opt_string(ev.redacts) or opt_string(content.redacts)
  elseif not is_state then
    return fields
  elseif etype == "m.room.create" then
    fields.creator = opt_string(content.creator)
    fields.no_federate = content["m.federate"] == false
  elseif etype == "m.room.join_rules" then
    fields.join_rule = opt_string(content.join_rule)
  elseif etype == "m.room.member" then
    local via = content.join_authorised_via_users_server
    fields.authorised_via = opt_string(via)
    local tpi = content.third_party_invite
    local signed = type(tpi) == "table" and tpi.signed
    fields.invite_token = type(signed) == "table" and opt_string(signed.token) or nil
    -- the rules read the signatures for these, and the signed block
    fields.auth_plain = fields.auth_plain and via == nil and tpi == nil
  end
  return fields
end

-- decode(event) -> fields | nil, err, code
-- event: JSON text (stored byte for byte) or a table (encoded once).
function _M.decode(event)
  local text, ev, code = text_and_value(event)
  if not text then return nil, ev, code end
  local tree = type(code) == "userdata" and code or nil
  if not is_object(ev) then
    return bad("an event must be a JSON object, got %s", show(text))
  end

  -- From room version 3 on a PDU carries no event_id: the core computes
  -- it from the reference hash, or says why it cannot (v1-v2).
  local event_id, err, code = check_id(ev, "event_id", "$", true)
  if event_id == nil then return nil, err, code end
  local name = event_id or "an event without event_id"
  local sender; sender, err, code = check_id(ev, "sender", "@")
  if not sender then return nil, err, code end

  local etype = ev.type
  if type(etype) ~= "string" or etype == "" then
    return bad("%s: type must be a non-empty string, got %s", name, show(etype))
  end
  if #etype > _M.MAX_ID_BYTES then
    return bad("%s: type is longer than %d bytes", name, _M.MAX_ID_BYTES)
  end
  local state_key = ev.state_key
  if state_key ~= nil and type(state_key) ~= "string" then
    return bad("%s: state_key must be a string, got %s", name, show(state_key))
  end
  if state_key and #state_key > _M.MAX_ID_BYTES then
    return bad("%s: state_key is longer than %d bytes", name, _M.MAX_ID_BYTES)
  end
  local is_create = etype == "m.room.create" and state_key == ""
  -- a create event of room version 12 on has none: its hash names the
  -- room; the core knows the versions, and checks the rest
  local room_id; room_id, err, code = check_id(ev, "room_id", "!", is_create)
  if room_id == nil then return nil, err, code end
  local content = ev.content
  if not is_object(content) then
    return bad("%s: content must be an object, got %s", name, show_json(content))
  end
  local depth = ev.depth
  if type(depth) ~= "number" or depth < 0 or depth ~= math_floor(depth)
      or depth > MAX_INT then
    return bad("%s: depth must be a non-negative integer, got %s", name, show(depth))
  end
  local ts = ev.origin_server_ts
  if ts ~= nil and (type(ts) ~= "number" or not (ts >= -MAX_INT and ts <= MAX_INT)) then
    return bad("%s: origin_server_ts must be a number, got %s", name, show(ts))
  end

  local version
  if is_create then
    version = content.room_version
    if version ~= nil and type(version) ~= "string" then
      return bad("%s: content.room_version must be a string, got %s", name, show(version))
    end
    -- the core knows which versions exist; it is never handed a long one
    if version and #version > _M.MAX_VERSION_BYTES then
      return bad("%s: content.room_version is %d bytes, more than %d: %s", name, #version,
                 _M.MAX_VERSION_BYTES, show(version))
    end
  end
  local prev, auth, pairs_shape
  prev, pairs_shape = event_refs(ev, "prev_events", nil)
  if not prev then return nil, pairs_shape, "BAD_EVENT" end
  auth, pairs_shape = event_refs(ev, "auth_events", pairs_shape)
  if not auth then return nil, pairs_shape, "BAD_EVENT" end
  if #prev == 0 and not is_create then
    return bad("%s: prev_events is empty; only a create event has none", name)
  end

  local membership
  if etype == "m.room.member" and state_key then
    membership = content.membership
    if type(membership) ~= "string" then
      return bad("%s: content.membership must be a string, got %s", name, show(membership))
    end
  end

  return auth_fields({
    event_id = event_id or nil, room_id = room_id or nil, sender = sender, type = etype,
    state_key = state_key, membership = membership, room_version = version,
    prev_events = prev, auth_events = auth, pairs_shape = pairs_shape,
    depth = depth, origin_server_ts = ts, json = text, decoded = ev, tree = tree,
  }, etype, state_key ~= nil, content, ev)
end

_M.json = json
-- the strict decoder text goes through (a field, so a spec can count calls)
_M.decode_json = json_decode
_M.is_array = is_array
_M.is_object = is_object
return _M
