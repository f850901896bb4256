-- Rooms for the nginx specs, the load run and their writers
-- (nginx_client.lua), built of events that pass the auth rules: the
-- admin creates a room, joins, sets power levels (itself 100, each writer
-- 50, enough for state events) and a public join rule; then each writer
-- joins, so that it may send. Event IDs name the room:
-- "$create-room1:test", "$join-room1:test" (the admin's),
-- "$power-room1:test", "$rules-room1:test", "$join-c1-room1:test".
local cjson = require "cjson"

local ipairs, string_format, table_concat = ipairs, string.format, table.concat

local _M = {}

_M.ADMIN = "@admin:test"

function _M.writer(c) return string_format("@c%s:test", c) end

-- auth_events(room, sender [, membership]) -> the events the auth
-- selection picks for an event of `sender`, given a room record (below):
-- the create event, the power levels, the sender's member event, and for
-- a join the join rules. The writers' member events are always about
-- themselves, so the target's member event is the sender's.
function _M.auth_events(room, sender, membership)
  local out = { room.create }
  if room.power then out[#out + 1] = room.power end
  if room.members[sender] then out[#out + 1] = room.members[sender] end
  if membership == "join" and room.join_rules then out[#out + 1] = room.join_rules end
  return out
end

-- The JSON of an event, with its empty lists as arrays (cjson writes an
-- empty table as {}).
function _M.encode(ev)
  return (cjson.encode(ev):gsub('"prev_events":{}', '"prev_events":[]')
                          :gsub('"auth_events":{}', '"auth_events":[]'))
end

-- setup(room_id, writers) -> body, room. body: the setup events as one
-- JSON array to POST. room: { room =, head =, depth = (its last event),
-- create =, power =, join_rules =, members = { user -> member event },
-- state = { "type\0key" -> event ID }, events = how many }; encoded as
-- JSON it is a writer's plan entry.
function _M.setup(room_id, writers)
  local name = room_id:sub(2)
  local room = { room = room_id, members = {}, state = {}, events = 0, depth = 0 }
  local users = { [_M.ADMIN] = 100 }
  for _, w in ipairs(writers) do users[w] = 50 end
  local parts = {}
  local function add(field, id, etype, state_key, content, sender)
    sender = sender or _M.ADMIN
    local ev = { event_id = id, room_id = room_id, sender = sender, type = etype,
                 state_key = state_key, content = content,
                 prev_events = { room.head }, depth = room.depth + 1,
                 auth_events = etype == "m.room.create" and {} or
                               _M.auth_events(room, sender, content.membership),
                 origin_server_ts = 1700000000000 + room.depth + 1 }
    parts[#parts + 1] = _M.encode(ev)
    room.head, room.depth, room.events = id, ev.depth, room.events + 1
    room.state[etype .. "\0" .. state_key] = id
    if field == "members" then room.members[state_key] = id else room[field] = id end
  end
  add("create", "$create-" .. name, "m.room.create", "",
      { creator = _M.ADMIN, room_version = "10" })
  add("members", "$join-" .. name, "m.room.member", _M.ADMIN, { membership = "join" })
  add("power", "$power-" .. name, "m.room.power_levels", "", { users = users })
  add("join_rules", "$rules-" .. name, "m.room.join_rules", "", { join_rule = "public" })
  for _, w in ipairs(writers) do
    add("members", string_format("$join-%s-%s", w:match("^@([^:]+)"), name), "m.room.member",
        w, { membership = "join" }, w)
  end
  return "[" .. table_concat(parts, ",") .. "]", room
end

return _M
