-- roomstate.auth: the Matrix auth rules as pure functions, over the C
-- core's rules (csrc/auth_*.c). Events are Lua tables or JSON text; tables
-- are encoded once here, and the core parses each event once.
local core = require "roomstate.core"
local event = require "roomstate.event"

local type, error, string_format = type, error, string.format
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

return _M
