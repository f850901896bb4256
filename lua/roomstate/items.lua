-- roomstate.items: the "item" format shared by `roomstate import` and the
-- HTTP API (roomstate.nginx).
--
-- An item is one JSON object, either
--   * an event (a PDU: it has an "event_id"), ingested as kind "new", or
--   * {"event": {...}, "kind": "new"|"old"|"outlier", "state": ["$id", ...]}
--     with kind and state as store:ingest takes them (both optional).
-- A request body holds one item or a JSON array of items. The core's strict
-- decoder (core.json_decode) decodes and checks the text first; only then
-- does a small slicer below find where each event's bytes lie, so the event
-- is stored exactly as it was sent.
local cjson = require "cjson.safe"
local core = require "roomstate.core"

local type, tostring, pairs, error, getmetatable = type, tostring, pairs, error, getmetatable
local json_decode, ARRAY = core.json_decode, core.json_array_mt
local json_tree_child = core.json_tree_child
local string_byte, string_sub, string_find, string_format =
      string.byte, string.sub, string.find, string.format

local _M = {}

-- Our own cjson instance, for encoding: nobody else's settings change ours.
-- An item may wrap an event (64 levels, as roomstate.event allows) and sit
-- in an array: MAX_DEPTH levels in all.
local MAX_DEPTH = 66
local json = cjson.new()
json.decode_max_depth(66)
json.encode_max_depth(66)
_M.json = json

local function show(v)
  if type(v) == "string" then
    if #v > 80 then v = string_sub(v, 1, 80) .. "..." end
    return string_format("%q", v)
  end
  if type(v) == "table" then
    local t = json.encode(v)
    if t and #t > 80 then t = string_sub(t, 1, 80) .. "..." end
    return t or "table"
  end
  return tostring(v)
end
_M.show = show

local function bad(fmt, ...)
  return nil, "BAD_REQUEST: " .. string_format(fmt, ...), "BAD_REQUEST"
end

local KINDS = { new = true, old = true, outlier = true }
_M.KINDS = KINDS
local ITEM_FIELDS = { event = true, kind = true, state = true }

---------------------------------------------------------------------------
-- Slicing valid JSON text: where each value starts and ends. Only called on
-- text json_decode has already accepted, so it need not report syntax errors.

local function skip_ws(s, i)
  return string_find(s, "[^ \t\r\n]", i)
end

-- The index of the last byte of the value starting at i.
local function value_end(s, i)
  local c = string_byte(s, i)
  if c == 34 then -- a string
    local j = i + 1
    while true do
      local k = string_find(s, '["\\]', j)
      if string_byte(s, k) == 92 then j = k + 2 else return k end
    end
  elseif c == 123 or c == 91 then -- an object or an array
    local depth, j = 0, i
    while true do
      local k = string_find(s, '[%[%]{}"]', j)
      local ch = string_byte(s, k)
      if ch == 34 then
        j = value_end(s, k) + 1
      elseif ch == 123 or ch == 91 then
        depth, j = depth + 1, k + 1
      else
        depth = depth - 1
        if depth == 0 then return k end
        j = k + 1
      end
    end
  end
  local k = string_find(s, "[,}%] \t\r\n]", i) -- a number, true, false, null
  return (k or #s + 1) - 1
end

-- Spans {first, last} of the elements of the array starting at i.
local function array_spans(s, i)
  local spans = {}
  local j = skip_ws(s, i + 1)
  if string_byte(s, j) == 93 then return spans end
  while true do
    local e = value_end(s, j)
    spans[#spans + 1] = { j, e }
    local k = skip_ws(s, e + 1)
    if string_byte(s, k) == 93 then return spans end
    j = skip_ws(s, k + 1) -- past the comma
  end
end

-- { key = {first, last} } for the members of the object starting at i.
local function object_spans(s, i)
  local members = {}
  local j = skip_ws(s, i + 1)
  if string_byte(s, j) == 125 then return members end
  while true do
    local kend = value_end(s, j)
    local key = json_decode(string_sub(s, j, kend))
    local v = skip_ws(s, skip_ws(s, kend + 1) + 1) -- past the colon
    local e = value_end(s, v)
    members[key] = { v, e }
    local k = skip_ws(s, e + 1)
    if string_byte(s, k) == 125 then return members end
    j = skip_ws(s, k + 1)
  end
end

local event = require "roomstate.event"
local is_array, decoded = event.is_array, event.decoded

-- One item from its decoded value and its span in text.
-- -> { event = the event's text with its decoded value (roomstate.event
--      takes both, so the event is decoded once), kind =, state =,
--      decoded = the event table } | nil, err, code
local function make_item(v, text, span, what, default_kind, tree)
  if type(v) ~= "table" or #v > 0 or getmetatable(v) == ARRAY then
    return bad("%s must be a JSON object (an event or {\"event\": ...}), got %s", what,
               show(string_sub(text, span[1], span[2])))
  end
  if v.event == nil or v.event_id ~= nil then
    local ev_text = string_sub(text, span[1], span[2])
    return { event = decoded(ev_text, v, tree), kind = default_kind, decoded = v }
  end
  for k in pairs(v) do
    if not ITEM_FIELDS[k] then
      return bad("%s has an unknown field %s (expected event, kind, state)", what, show(k))
    end
  end
  local members = object_spans(text, span[1])
  local ev = v.event
  if type(ev) ~= "table" or #ev > 0 or getmetatable(ev) == ARRAY then
    return bad("%s: event must be a JSON object, got %s", what, show(ev))
  end
  local kind = v.kind
  if kind == nil then kind = default_kind end
  if kind ~= nil and not KINDS[kind] then
    return bad("%s: kind must be \"new\", \"old\" or \"outlier\", got %s", what, show(kind))
  end
  local state = v.state
  if state ~= nil then
    if not is_array(state) then
      return bad("%s: state must be an array of event IDs, got %s", what, show(state))
    end
    for i = 1, #state do
      if type(state[i]) ~= "string" then
        return bad("%s: state[%d] must be an event ID string, got %s", what, i, show(state[i]))
      end
    end
    if kind == "outlier" then
      return bad("%s: an outlier has no state, but state lists %d events", what, #state)
    end
  end
  local es = members.event
  return { event = decoded(string_sub(text, es[1], es[2]), ev,
                           tree and json_tree_child(tree, "event")),
           kind = kind, state = state, decoded = ev }
end

-- parse_items(text [, opts]) -> items | nil, err, code
-- text: one item, or (unless opts.single) a JSON array of items.
-- opts.kind: the kind of items that name none (default "new").
-- opts.what: how to name the input in messages (default "item").
function _M.parse_items(text, opts)
  opts = opts or {}
  if type(text) ~= "string" then
    error("bad argument #1 to 'parse_items' (string expected, got " .. type(text) .. ")", 2)
  end
  local what = opts.what or "item"
  -- the parse's tree goes with each event, so ingest parses nothing again
  local doc, tree = json_decode(text, MAX_DEPTH, true)
  if doc == nil then
    if tree then return nil, "NOT_JSON: " .. tostring(tree) .. " in " .. show(text), "NOT_JSON" end
    return bad("%s is null, not an event", what)
  end
  local s = skip_ws(text, 1)
  local c = string_byte(text, s)
  if c == 91 and not opts.single then
    local spans = array_spans(text, s)
    if #spans == 0 then return bad("the array holds no items") end
    local items = {}
    for i = 1, #spans do
      local item, e2, code = make_item(doc[i], text, spans[i],
                                       string_format("%s %d", what, i), opts.kind,
                                       json_tree_child(tree, i))
      if not item then return nil, e2, code end
      items[i] = item
    end
    return items
  end
  if c ~= 123 then
    return bad("%s must be a JSON object (an event or {\"event\": ...})%s, got %s", what,
               opts.single and "" or " or an array of them", show(text))
  end
  local item, e2, code = make_item(doc, text, { s, value_end(text, s) }, what, opts.kind, tree)
  if not item then return nil, e2, code end
  return { item }
end

return _M
