-- roomstate.consumer: the reference downstream consumer.
--
-- It does what a sync API does with the output stream: it keeps its own
-- copy of each room's current state. On rewrites_state it drops the room
-- and rebuilds it from adds (which is the entire new state); otherwise it
-- applies removes, then adds. It keeps each room's state hash, updated from
-- the entries that changed (roomstate.state_hash_update) rather than over
-- the whole room; after every output it compares it with state_hash and,
-- on a mismatch, resynchronises the room from store:current_state and
-- records that it did. Tests use it as the oracle; users copy it.
local event = require "roomstate.event"
local core = require "roomstate.core"

local json = event.json
local setmetatable, pairs, error, tostring, assert =
      setmetatable, pairs, error, tostring, assert
local state_hash, state_hash_update = core.state_hash, core.state_hash_update

local Consumer = {}
Consumer.__index = Consumer

local SEP = "\0"
local EMPTY_HASH = "0000000000000000"

-- consumer.new(store [, opts]) opts.lookup(event_id) -> type, state_key
-- overrides how an event's key is found (default: the stored event).
function Consumer.new(store, opts)
  opts = opts or {}
  local self = setmetatable({
    store = store,
    rooms = {},        -- room_id -> { ["type\0key"] = event_id }
    hashes = {},       -- room_id -> state hash of rooms[room_id]
    keys = {},         -- event_id -> "type\0key" (events never change)
    terms = {},        -- event_id -> { type=, state_key=, event_id= }
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

local function remember(self, t, sk, event_id)
  local e = { type = t, state_key = sk, event_id = event_id }
  self.keys[event_id] = t .. SEP .. sk
  self.terms[event_id] = e
  return e
end

-- The event's entry, as roomstate.state_hash_update takes it.
function Consumer:entry_of(event_id)
  local e = self.terms[event_id]
  if not e then
    local t, sk = self.lookup(event_id)
    e = remember(self, t, sk, event_id)
  end
  return e
end

function Consumer:key_of(event_id)
  if not self.keys[event_id] then self:entry_of(event_id) end
  return self.keys[event_id]
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

-- The hash over the room's whole copy (what the kept hash must equal).
function Consumer:hash(room_id)
  return state_hash(self:entries(room_id))
end

function Consumer:resync(room_id)
  local st = assert(self.store:current_state(room_id))
  local copy = {}
  for t, sk, ev in st:entries() do
    copy[t .. SEP .. sk] = ev
    if not self.terms[ev] then remember(self, t, sk, ev) end
  end
  self.rooms[room_id] = copy
  self.hashes[room_id] = self:hash(room_id)
end

-- Applies removes then adds to the copy, collecting the entries that left
-- and joined it, so the hash follows only what changed.
local function apply_changes(self, copy, removes, adds)
  local gone, came = {}, {}
  for i = 1, #removes do
    local k = self:key_of(removes[i])
    if copy[k] == removes[i] then
      copy[k] = nil
      gone[#gone + 1] = self:entry_of(removes[i])
    end
  end
  for i = 1, #adds do
    local k = self:key_of(adds[i])
    local old = copy[k]
    if old ~= adds[i] then
      if old then gone[#gone + 1] = self:entry_of(old) end
      copy[k] = adds[i]
      came[#came + 1] = self:entry_of(adds[i])
    end
  end
  return gone, came
end

-- apply(output): the callback to subscribe with. Delivery is at least
-- once (a crash before the consumer's position is written repeats
-- outputs), so an output at or below the last applied position is
-- skipped: returns false for a skipped output, true for an applied one.
function Consumer:apply(out)
  if out.position <= self.last_position then
    self.skipped = (self.skipped or 0) + 1
    return false
  end
  self.last_position = out.position
  self.applied = self.applied + 1
  if out.type == "purge_room" then
    self.rooms[out.purge_room.room_id] = nil
    self.hashes[out.purge_room.room_id] = nil
    return true
  end
  if out.type ~= "new_room_event" then return true end
  local ne = out.new_room_event
  local room_id = ne.event.room_id
  local copy = self.rooms[room_id]
  if ne.rewrites_state or not copy then
    -- adds are the entire new state: the hash starts again from them
    copy = {}
    self.rooms[room_id] = copy
    self.hashes[room_id] = EMPTY_HASH
  end
  local base = self.hashes[room_id] or self:hash(room_id)
  local gone, came = apply_changes(self, copy, ne.removes_state_event_ids or {},
                                   ne.adds_state_event_ids or {})
  local have = state_hash_update(base, gone, came)
  self.hashes[room_id] = have
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
