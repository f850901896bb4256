-- roomstate.consumer: the reference downstream consumer.
--
-- It does what a sync API does with the output stream: it keeps its own
-- copy of each room's current state. On rewrites_state it drops the room
-- and rebuilds it from adds (which is the entire new state); otherwise it
-- applies removes, then adds. After every output it checks state_hash and,
-- on a mismatch, resynchronises the room from store:current_state and
-- records that it did. Tests use it as the oracle; users copy it.
local event = require "roomstate.event"
local core = require "roomstate.core"

local json = event.json
local setmetatable, pairs, error, tostring, string_format =
      setmetatable, pairs, error, tostring, string.format

local Consumer = {}
Consumer.__index = Consumer

local SEP = "\0"

-- consumer.new(store [, opts]) opts.lookup(event_id) -> type, state_key
-- overrides how an event's key is found (default: the stored event).
function Consumer.new(store, opts)
  opts = opts or {}
  local self = setmetatable({
    store = store,
    rooms = {},        -- room_id -> { ["type\0key"] = event_id }
    keys = {},         -- event_id -> "type\0key" (events never change)
    resyncs = {},      -- { {room_id=, position=, expected=, had=}, ... }
    applied = 0,
    last_position = 0,
  }, Consumer)
  self.lookup = opts.lookup or function(event_id)
    local text, err = store:event(event_id)
    if not text then error("consumer: cannot look up " .. event_id .. ": " .. tostring(err)) end
    local ev = json.decode(text)
    return ev.type, ev.state_key
  end
  return self
end

function Consumer:key_of(event_id)
  local k = self.keys[event_id]
  if not k then
    local t, sk = self.lookup(event_id)
    k = t .. SEP .. sk
    self.keys[event_id] = k
  end
  return k
end

-- The room's copy as entries for roomstate.state_hash.
function Consumer:entries(room_id)
  local out = {}
  for k, ev in pairs(self.rooms[room_id] or {}) do
    local t, sk = k:match("^(.-)%z(.*)$")
    out[#out + 1] = { type = t, state_key = sk, event_id = ev }
  end
  return out
end

function Consumer:hash(room_id)
  return core.state_hash(self:entries(room_id))
end

function Consumer:resync(room_id)
  local st = assert(self.store:current_state(room_id))
  local copy = {}
  for t, sk, ev in st:entries() do
    copy[t .. SEP .. sk] = ev
    self.keys[ev] = t .. SEP .. sk
  end
  self.rooms[room_id] = copy
end

-- apply(output): the callback to subscribe with. Delivery is at least
-- once (a crash between applying and acknowledging repeats an output), so
-- an output at or below the last applied position is skipped: returns
-- false for a skipped output, true for an applied one.
function Consumer:apply(out)
  if out.position <= self.last_position then
    self.skipped = (self.skipped or 0) + 1
    return false
  end
  self.last_position = out.position
  self.applied = self.applied + 1
  if out.type == "purge_room" then
    self.rooms[out.purge_room.room_id] = nil
    return true
  end
  if out.type ~= "new_room_event" then return true end
  local ne = out.new_room_event
  local room_id = ne.event.room_id
  local copy = self.rooms[room_id]
  if ne.rewrites_state or not copy then
    copy = {}
    self.rooms[room_id] = copy
  end
  local removes, adds = ne.removes_state_event_ids or {}, ne.adds_state_event_ids or {}
  for i = 1, #removes do
    local k = self:key_of(removes[i])
    if copy[k] == removes[i] then copy[k] = nil end
  end
  for i = 1, #adds do
    copy[self:key_of(adds[i])] = adds[i]
  end
  local have = self:hash(room_id)
  if have ~= ne.state_hash then
    self.resyncs[#self.resyncs + 1] = { room_id = room_id, position = out.position,
                                        expected = ne.state_hash, had = have }
    self:resync(room_id)
  end
  return true
end

-- A function suitable for store:subscribe.
function Consumer:callback()
  return function(out) self:apply(out) end
end

return Consumer
