-- roomstate.harness: script rooms in a few lines for tests and demos.
--
--   local h = harness.new(store)
--   local room = h:create_room("@alice:example.org")
--   room:join("@bob:example.org")
--   room:send("hello")
--   local side = room:at(some_event_id)      -- a fork
--   side:send("on the side"); room:merge(side)
--   room:rewrite({ {type=..., state_key=..., content=...}, ... }, "@carol:remote")
--
-- Every call builds a well-formed PDU (event_id, prev_events, auth_events,
-- depth), ingests it and returns event_id, result; on an ingest failure it
-- returns nil, err, code and the cursor does not move.
--
-- Rooms of versions whose room ID is the create event's hash (v12) are
-- built as the spec writes them: no event_id in any PDU (the ID is the
-- reference hash, computed here as the store computes it), no room_id in
-- the create event (the room ID is its ID with "!"), and no create event
-- in auth_events. Other versions keep readable IDs ("$seed-3-msg:server").
local core = require "roomstate.core"
local event = require "roomstate.event"

local type, setmetatable, select, string_format, tostring, math_floor, ipairs =
      type, setmetatable, select, string.format, tostring, math.floor, ipairs
local clock, time_ms = core.clock, core.time_ms

local _M = {}

local Harness = {}
Harness.__index = Harness
local Cursor = {}
Cursor.__index = Cursor

-- Harnesses made in this process, so that two in one millisecond differ.
local made = 0

-- A seed no other harness has: two harnesses on one store (or one file
-- shared by processes) must not make the same IDs, or the second
-- create_room is a silent duplicate of the first.
local function fresh_seed()
  made = made + 1
  return string_format("%x%05x%x", time_ms(), math_floor(clock() * 1e6) % 1048576, made)
end

-- harness.new(store [, opts]) opts.server: the server name in IDs;
-- opts.seed: a string put into every event and room ID. A harness given
-- neither gets a fresh seed; one given either makes the same IDs each run.
function _M.new(store, opts)
  opts = opts or {}
  local seed = opts.seed
  if seed == nil and opts.server == nil then seed = fresh_seed() end
  return setmetatable({
    store = store,
    server = opts.server or "example.org",
    seed = seed and seed ~= "" and (tostring(seed) .. "-") or "",
    version = opts.version or "10",
    counter = 0,
    depth = {},    -- event_id -> depth
    events = {},   -- event_id -> the PDU table
  }, Harness)
end

function Harness:next_id(tag)
  self.counter = self.counter + 1
  return string_format("$%s%d-%s:%s", self.seed, self.counter, tag or "ev", self.server)
end

-- Whether the room's IDs are hashes as the spec writes them (v12 on).
local function hashed(room)
  local rules = core.room_version(room.version)
  return rules and rules.room_id_from_create or false
end

-- A PDU's JSON text. lua-cjson writes an empty table as {}; a PDU's empty
-- prev_events or auth_events is [] in the bytes other servers hash, so
-- the text the harness ingests, and hashes, says so.
local EMPTY = "roomstateHarnessEmptyList" -- stands for [] while encoding
local function pdu_json(pdu)
  local prev, auth = pdu.prev_events, pdu.auth_events
  -- the PDU's own lists only, not a key of that name inside content
  if #prev == 0 then pdu.prev_events = EMPTY end
  if #auth == 0 then pdu.auth_events = EMPTY end
  local text = event.json.encode(pdu)
  pdu.prev_events, pdu.auth_events = prev, auth
  return (text:gsub('"(%l+_events)":"' .. EMPTY .. '"', '"%1":[]'))
end
_M.pdu_json = pdu_json

-- prev/auth references in the shape of the room's version; an unknown
-- version gets bare IDs, and the store refuses its create event.
local function refs(room, ids)
  local out = {}
  local rules = core.room_version(room.version)
  for i = 1, #ids do
    if rules and rules.ref_pairs then
      out[i] = { ids[i], { sha256 = "unchecked" } }
    else
      out[i] = ids[i]
    end
  end
  return out
end

-- A state as key -> event ID, for the events of a list (a rewrite's
-- state): the harness's own events, else the stored ones.
local function state_map(self, ids)
  local map = {}
  for i = 1, #ids do
    local ev = self.events[ids[i]]
    if not ev then
      local text = self.store:event(ids[i])
      ev = text and event.json.decode(text)
    end
    if ev and ev.state_key then map[ev.type .. "\0" .. ev.state_key] = ids[i] end
  end
  return map
end

local function map_of(st)
  local map = {}
  for t, k, id in st:entries() do map[t .. "\0" .. k] = id end
  return map
end

-- The auth events the selection picks from a state, so that scripted
-- events pass the auth rules: the state `given` (key -> ID), else the
-- state after the first prev event, else (a remote branch) the room's
-- current state; the create event alone when none is known.
local function auth_events(self, room, prev, pdu, given)
  if not room.create_id or pdu.event_id == room.create_id then return {} end
  local rules = core.room_version(room.version)
  local get
  if given then
    get = function(t, k) return given[t .. "\0" .. k] end
  else
    local st = prev[1] and self.store:state_after(prev[1]) or self.store:current_state(room.id)
    if st then get = function(t, k) return st:get(t, k) end end
  end
  if not rules or not get then -- the create event alone, where the version cites it
    return (rules and rules.room_id_from_create) and {} or { room.create_id }
  end
  local out = {}
  for _, t in ipairs(core.auth_types(room.version, event.json.encode(pdu)) or {}) do
    local id = get(t[1], t[2])
    if id then out[#out + 1] = id end
  end
  return out
end

-- Builds a PDU on `prev` and ingests it unless opts.ingest == false
-- (then returns its ID, the PDU and its JSON text: ingest the text, whose
-- empty arrays are [], where the ID is a hash). In a v12 room the PDU
-- states no event_id unless opts.event_id gives one; its ID is its hash.
function Harness:emit(room, prev, fields, opts)
  opts = opts or {}
  local depth = 0
  for i = 1, #prev do
    local d = self.depth[prev[i]] or 0
    if d > depth then depth = d end
  end
  local id = opts.event_id
  if not id and not hashed(room) then
    id = self:next_id(fields.tag)
  elseif not id then
    self.counter = self.counter + 1 -- a timestamp of its own: no two events alike
  end
  local pdu = {
    event_id = id, room_id = room.id, sender = fields.sender or room.creator,
    type = fields.type, state_key = fields.state_key, content = fields.content or {},
    prev_events = refs(room, prev), depth = depth + 1,
    origin_server_ts = 1700000000000 + self.counter,
  }
  local given = opts.auth_state or (opts.state and state_map(self, opts.state))
  pdu.auth_events = refs(room, opts.auth_events or auth_events(self, room, prev, pdu, given))
  local text = pdu_json(pdu)
  id = id or assert(core.event_id(room.version, text))
  self.depth[id] = depth + 1
  self.events[id] = pdu
  if opts.ingest == false then return id, pdu, text end
  local res, err, code = self.store:ingest(text, { kind = opts.kind, state = opts.state,
                                                   deliver = opts.deliver })
  if not res then return nil, err, code end
  return id, res
end

-- create_room(creator [, opts]) -> cursor: create, the creator's join, power
-- levels, join rules and history visibility, like a client's createRoom.
function Harness:create_room(creator, opts)
  opts = opts or {}
  self.rooms = (self.rooms or 0) + 1
  local room = { creator = creator, version = opts.version or self.version }
  local content = { creator = creator, room_version = room.version }
  if hashed(room) then
    -- the room ID is the create event's hash: the seed in its content
    -- keeps two harnesses' rooms apart
    if opts.room_id then
      error("a room version " .. room.version .. " room's ID is its create event's hash", 2)
    end
    if self.seed ~= "" then content["org.roomstate.harness_seed"] = self.seed end
  else
    -- The room's domain is the creator's: from room version 1 on, the
    -- create event's auth rule refuses any other.
    room.id = opts.room_id or string_format("!%sroom%d:%s", self.seed, self.rooms,
                                            creator:match(":(.*)$") or self.server)
  end
  local cur = setmetatable({ h = self, room = room, head = {} }, Cursor)
  local id, err, code = cur:state("m.room.create", "", content, { tag = "create" })
  if not id then return nil, err, code end
  room.create_id = id
  room.id = room.id or "!" .. id:sub(2)
  if opts.minimal then return cur end
  -- from v12 the creator outranks every level and may not be listed
  local rules = core.room_version(room.version)
  local users = (rules and rules.privileged_creators) and {} or { [creator] = 100 }
  local steps = {
    { "m.room.member", creator, { membership = "join" } },
    { "m.room.power_levels", "", { users = users } },
    { "m.room.join_rules", "", { join_rule = opts.join_rule or "public" } },
    { "m.room.history_visibility", "", { history_visibility = "shared" } },
  }
  for i = 1, #steps do
    id, err, code = cur:state(steps[i][1], steps[i][2], steps[i][3])
    if not id then return nil, err, code end
  end
  return cur
end

-- A cursor is a position in a room's DAG: new events go on its head.
function Cursor:emit(fields, opts)
  opts = opts or {}
  local prev = opts.prev or self.head
  local id, res, code = self.h:emit(self.room, prev, fields, opts)
  if id and opts.ingest ~= false and (opts.kind or "new") ~= "outlier" then
    self.head = { id }
  end
  return id, res, code
end

function Cursor:state(etype, state_key, content, opts)
  opts = opts or {}
  return self:emit({ type = etype, state_key = state_key, content = content,
                     sender = opts.sender, tag = opts.tag or "state" }, opts)
end

function Cursor:send(body, opts)
  opts = opts or {}
  local content = type(body) == "table" and body or { msgtype = "m.text", body = tostring(body) }
  return self:emit({ type = "m.room.message", content = content, sender = opts.sender,
                     tag = "msg" }, opts)
end

local function membership(self, user, m, opts)
  opts = opts or {}
  local sender = opts.by or user
  local o = { sender = sender, tag = m, prev = opts.prev, kind = opts.kind, state = opts.state,
              ingest = opts.ingest, deliver = opts.deliver, event_id = opts.event_id }
  local content = { membership = m }
  if opts.displayname then content.displayname = opts.displayname end
  return self:state("m.room.member", user, content, o)
end

function Cursor:join(user, opts) return membership(self, user, "join", opts) end
function Cursor:leave(user, opts) return membership(self, user, "leave", opts) end
function Cursor:invite(user, opts) return membership(self, user, "invite", opts) end
function Cursor:ban(user, opts) return membership(self, user, "ban", opts) end

-- at(event_id) -> a new cursor on that event: events sent through it fork.
function Cursor:at(event_id)
  return setmetatable({ h = self.h, room = self.room, head = { event_id } }, Cursor)
end

-- merge(other, ...) sends a message whose prev events are the heads of
-- this cursor and the others, joining the branches.
function Cursor:merge(...)
  local prev = {}
  for i = 1, #self.head do prev[#prev + 1] = self.head[i] end
  for i = 1, select("#", ...) do
    local c = select(i, ...)
    for j = 1, #c.head do prev[#prev + 1] = c.head[j] end
  end
  return self:send("merge", { prev = prev })
end

-- rewrite(states, joiner [, opts]): a federated join. The remote state
-- events are ingested as outliers, then the joiner's join as a new event
-- with opts.state listing them: the room's state is replaced by them plus
-- the join. `states` holds {type=, state_key=, content=, sender=} tables;
-- a room has one create event, so an m.room.create entry stands for it.
-- Each remote event cites auth events from the room's current state and
-- the remote events before it, as the remote server's chain would.
-- Returns the join's event_id, result, and the state event IDs.
function Cursor:rewrite(states, joiner, opts)
  opts = opts or {}
  local ids = {}
  local remote_prev = { self.h:next_id("remote") }
  local cur = self.h.store:current_state(self.room.id)
  local known = cur and map_of(cur) or {}
  for i = 1, #states do
    local s = states[i]
    local id = self.room.create_id
    if s.type ~= "m.room.create" then
      local err, code
      id, err, code = self.h:emit(self.room, remote_prev, {
        type = s.type, state_key = s.state_key, content = s.content or {},
        sender = s.sender or self.room.creator, tag = "remote" },
        { kind = "outlier", auth_state = known })
      if not id then return nil, err, code end
    end
    known[s.type .. "\0" .. (s.state_key or "")] = id
    ids[i] = id
  end
  local id, res, code = self:join(joiner, { prev = opts.prev or remote_prev, state = ids })
  if not id then return nil, res, code end
  return id, res, ids
end

_M.Harness, _M.Cursor = Harness, Cursor
return _M
