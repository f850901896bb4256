-- Seeded random rooms for the auth specs: random senders on three
-- servers, memberships, power changes with every value form a version
-- allows or refuses, join rules, bans, joins by strangers, state under
-- others' user IDs, aliases and redactions. A room keeps the state its
-- accepted events make, and picks each candidate's auth events from it.
local model = require "auth_model"
local S = require "support"

local setmetatable, tostring, tonumber, ipairs = setmetatable, tostring, tonumber, ipairs

local M = {}

local USERS = { "@u1:x", "@u2:x", "@u3:y", "@u4:y", "@u5:z" }
local MEMBERSHIPS = { "join", "invite", "leave", "ban", "knock", "join", "join", "bogus" }
local JOIN_RULES = { "public", "invite", "knock", "restricted", "knock_restricted", "private" }
local TYPES = { "m.room.message", "m.room.topic", "m.room.name", "m.custom.state" }

local function key(t, k) return t .. "\0" .. k end

-- A level in one of the forms versions differ on: integers, strings,
-- floats, junk.
-- Few distinct values, so that equal levels (the edges of >= and >) come
-- up often.
local LEVELS = { 0, 0, 49, 50, 50, 51, 100, 100, 101 }
local function level(r)
  local function one() return LEVELS[r(1, #LEVELS)] end
  local forms = {
    one,
    function() return tostring(one()) end,
    function() return " +" .. one() .. " " end,
    function() return one() + 0.5 end,
    function() return "abc" end,
    function() return -one() end,
  }
  local n = r(1, 10)
  return forms[n <= 5 and 1 or (n - 4)]()
end

local function power_content(r)
  local c = { users = {} }
  for _, u in ipairs(USERS) do
    if r(1, 3) == 1 then c.users[u] = level(r) end
  end
  for _, f in ipairs({ "ban", "kick", "invite", "redact", "state_default", "events_default",
                       "users_default" }) do
    if r(1, 3) == 1 then c[f] = level(r) end
  end
  if r(1, 3) == 1 then c.events = { ["m.room.topic"] = level(r), ["m.room.power_levels"] = level(r) } end
  if r(1, 4) == 1 then c.notifications = { room = level(r) } end
  return c
end

local Room = {}
Room.__index = Room

function M.new_room(version, r)
  local self = setmetatable({ v = version, r = r, n = 0, state = {}, last = nil }, Room)
  self.v12 = version == "12"
  local create_id = "$create" .. r(1, 1e6)
  self.room_id = self.v12 and ("!" .. create_id:sub(2)) or "!room:x"
  local content = { room_version = version }
  if tonumber(version) <= 10 then content.creator = "@u1:x" end
  if r(1, 6) == 1 then content["m.federate"] = false end
  if self.v12 and r(1, 2) == 1 then content.additional_creators = { "@u2:x" } end
  local create = { type = "m.room.create", state_key = "", sender = "@u1:x",
                   event_id = create_id, content = content, prev_events = {},
                   auth_events = {}, depth = 1, room_id = not self.v12 and self.room_id or nil }
  self.state[key("m.room.create", "")] = create
  self.create = create
  self.last = create_id
  return self
end

function Room:next_id()
  self.n = self.n + 1
  return "$" .. self.n .. ":" .. (self.r(1, 2) == 1 and "x" or "y")
end

-- A random candidate event on the room's latest event.
function Room:candidate()
  local r = self.r
  local sender = USERS[r(1, #USERS)]
  local ev = { sender = sender, room_id = self.room_id, event_id = self:next_id(),
               prev_events = { self.last }, auth_events = {}, depth = self.n + 1,
               content = {} }
  local pick = r(1, 20)
  if pick <= 8 then
    local target = r(1, 2) == 1 and sender or USERS[r(1, #USERS)]
    ev.type, ev.state_key = "m.room.member", target
    ev.content.membership = MEMBERSHIPS[r(1, #MEMBERSHIPS)]
    if r(1, 5) == 1 then
      local via = USERS[r(1, #USERS)]
      ev.content.join_authorised_via_users_server = via
      -- signed by that server, or by another, or not at all (rule 5.2)
      local server = ({ via:match(":(.*)$"), "x", "elsewhere" })[r(1, 3)]
      if r(1, 4) > 1 then ev.signatures = { [server] = { ["ed25519:a"] = "c2ln" } } end
    end
    if r(1, 12) == 1 then ev.content.third_party_invite = { display_name = "x" } end
  elseif pick <= 10 then
    ev.type, ev.state_key = "m.room.power_levels", ""
    ev.content = power_content(r)
  elseif pick <= 12 then
    ev.type, ev.state_key = "m.room.join_rules", ""
    ev.content.join_rule = JOIN_RULES[r(1, #JOIN_RULES)]
  elseif pick == 13 then
    ev.type, ev.state_key = "m.room.aliases", r(1, 2) == 1 and "x" or "y"
  elseif pick == 14 then
    ev.type = "m.room.redaction"
    local target = "$" .. r(1, 9) .. ":" .. (r(1, 2) == 1 and "x" or "y")
    if tonumber(self.v) >= 11 then ev.content.redacts = target else ev.redacts = target end
  elseif pick == 15 then
    ev.type, ev.state_key = "m.room.third_party_invite", "tok" .. r(1, 3)
    ev.content = { display_name = "3pid", public_key = "AAAA" }
  else
    ev.type = TYPES[r(1, #TYPES)]
    if ev.type ~= "m.room.message" then
      ev.state_key = r(1, 4) == 1 and USERS[r(1, #USERS)] or ""
    end
    ev.content.body = "x"
  end
  -- the creator's first join straight after the create event, then a
  -- public room, so that strangers' joins have something to pass
  if self.n == 1 then
    ev.type, ev.state_key, ev.sender = "m.room.member", "@u1:x", "@u1:x"
    ev.content = { membership = "join" }
  elseif self.n == 2 then
    ev.type, ev.state_key, ev.sender = "m.room.join_rules", "", "@u1:x"
    ev.content = { join_rule = "public" }
  end
  return ev
end

-- The auth events the selection picks from the state, as a list (for the
-- C rules) and a map (for the model); v12 adds the create event.
function Room:auth_for(ev)
  local list, map = {}, {}
  for _, t in ipairs(model.auth_types(self.v, ev)) do
    local e = self.state[key(t[1], t[2])]
    if e then
      list[#list + 1] = e
      map[key(t[1], t[2])] = e
    end
  end
  if self.v12 then
    list[#list + 1] = self.create
    map[key("m.room.create", "")] = self.create
  end
  return list, map
end


-- Takes an event the rules allowed: it is the new head, and joins the state.
function Room:accept(ev)
  self.last = ev.event_id
  if ev.state_key then self.state[key(ev.type, ev.state_key)] = ev end
end

-- A seeded room of room version v: the same seed gives the same stream.
function M.seeded_room(v, seed)
  local next_rand = S.rng(seed)
  return M.new_room(v, function(a, b) return a + next_rand(b - a + 1) - 1 end)
end

-- The CODE of a "CODE: words" reason.
function M.code_of(reason) return reason and reason:match("^([%u_]+):") end

M.key = key
return M
