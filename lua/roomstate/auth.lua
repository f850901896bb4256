-- roomstate.auth: the Matrix auth rules as pure functions, over the C
-- core's rules (csrc/auth_*.c). Events are Lua tables or JSON text; tables
-- are encoded once here, and the core parses each event once.
local core = require "roomstate.core"
local event = require "roomstate.event"

local type, error, pairs, ipairs, tostring = type, error, pairs, ipairs, tostring
local string_format = string.format
local encode = event.json.encode

local _M = {}

local function text_of(v, fname, n, what)
  local t = type(v)
  if t == "string" then return v end
  if t == "table" then
    local s, err = encode(v)
    if s then return s end
    error(string_format("bad argument #%d to '%s' (%s cannot be encoded: %s)", n, fname, what,
                        err), 3)
  end
  error(string_format("bad argument #%d to '%s' (%s: table or JSON text expected, got %s)",
                      n, fname, what, t), 3)
end

local function check_version(v, fname)
  if type(v) ~= "string" then
    error(string_format("bad argument #1 to '%s' (room version string expected, got %s)",
                        fname, type(v)), 3)
  end
end

-- auth_check(room_version, event, auth_events) -> true | nil, "CODE: words"
-- auth_events: the events the rules consult, as tables or JSON text; in
-- room version 12 the room's create event belongs among them.
function _M.auth_check(room_version, ev, auth_events)
  check_version(room_version, "auth_check")
  local text = text_of(ev, "auth_check", 2, "event")
  if type(auth_events) ~= "table" then
    error("bad argument #3 to 'auth_check' (array of auth events expected, got "
          .. type(auth_events) .. ")", 2)
  end
  local texts = {}
  for i = 1, #auth_events do
    texts[i] = text_of(auth_events[i], "auth_check", 3, "auth_events[" .. i .. "]")
  end
  return core.auth_check(room_version, text, texts)
end

-- auth_types(room_version, event) -> { { type, state_key }, ... } | nil, reason
function _M.auth_types(room_version, ev)
  check_version(room_version, "auth_types")
  return core.auth_types(room_version, text_of(ev, "auth_types", 2, "event"))
end

local function ids_arg(list, fname, n, what)
  if type(list) ~= "table" then
    error(string_format("bad argument #%d to '%s' (%s: array of event IDs expected, got %s)",
                        n, fname, what, type(list)), 3)
  end
  for i = 1, #list do
    if type(list[i]) ~= "string" then
      error(string_format("bad argument #%d to '%s' (%s[%d]: event ID expected, got %s)",
                          n, fname, what, i, type(list[i])), 3)
    end
  end
end

local function what_of(k)
  return "events[" .. (type(k) == "string" and ("%q"):format(k) or tostring(k)) .. "]"
end

-- resolve(room_version, state_sets, events [, opts]) -> sorted event IDs |
-- nil, "MISSING_EVENTS: ...", "MISSING_EVENTS"
-- state_sets: an array of arrays of event IDs. events: every event of the
-- sets and of their auth chains (v12: and the create event), as tables or
-- JSON text, in an array or a map by event ID. A table with
-- `rejected = true`, or an ID in opts.rejected (an array), marks an event
-- the server rejected: v2 never admits it. opts.stats, a table, receives
-- cost figures: events (given), walked (events the steps' auth-chain
-- walks visited), gathered (visited to find missing events) and
-- from_tables (events read from their tables without JSON text).
function _M.resolve(room_version, state_sets, events, opts)
  check_version(room_version, "resolve")
  if type(state_sets) ~= "table" then
    error("bad argument #2 to 'resolve' (array of state sets expected, got "
          .. type(state_sets) .. ")", 2)
  end
  for i = 1, #state_sets do ids_arg(state_sets[i], "resolve", 2, "state_sets[" .. i .. "]") end
  if type(events) ~= "table" then
    error("bad argument #3 to 'resolve' (array or map of events expected, got "
          .. type(events) .. ")", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #4 to 'resolve' (options table expected, got " .. type(opts) .. ")", 2)
  end
  local rejected = {}
  if opts and opts.rejected ~= nil then
    ids_arg(opts.rejected, "resolve", 4, "opts.rejected")
    for _, id in ipairs(opts.rejected) do rejected[id] = true end
  end
  -- The core reads most tables straight (csrc/lua_event.c); when one
  -- holds what only its JSON text can say, it answers false, and every
  -- table is encoded here as before, so cjson's refusals still raise.
  local list, ids, n = {}, {}, 0
  for k, ev in pairs(events) do
    n = n + 1
    local t = type(ev)
    if t ~= "table" and t ~= "string" then text_of(ev, "resolve", 3, what_of(k)) end
    list[n], ids[n] = ev, type(k) == "string" and k or false
    if t == "table" and ev.rejected == true then
      local id = type(k) == "string" and k or ev.event_id
      if type(id) == "string" then rejected[id] = true end
    end
  end
  local out, walked, gathered, direct = core.resolve(room_version, state_sets, list, ids,
                                                     rejected)
  if out == false then
    local i = 0
    for k, ev in pairs(events) do
      i = i + 1
      list[i] = text_of(ev, "resolve", 3, what_of(k))
    end
    out, walked, gathered, direct = core.resolve(room_version, state_sets, list, ids, rejected)
  end
  if not out then return out, walked, gathered end -- nil, "CODE: ...", "CODE"
  local stats = opts and opts.stats
  if type(stats) == "table" then
    stats.events, stats.walked, stats.gathered, stats.from_tables = n, walked, gathered, direct
  end
  return out
end

return _M
