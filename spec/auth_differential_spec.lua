-- Issue 12 §4: the C auth rules (roomstate.auth_check) against the naive
-- Lua model written from the spec text (spec/auth_model.lua), over seeded
-- random rooms: random senders on two servers, memberships, power changes
-- with every value form a version allows or refuses, join rules, bans,
-- joins by strangers, state under others' user IDs, aliases and
-- redactions. Every candidate event is checked by both against the auth
-- events the selection picks from the room's state; both must agree on
-- allowed or refused, and on the reason code. Allowed state events join
-- the state.
local roomstate = require "roomstate"
local model = require "auth_model"
local S = require "support"

local LIGHT = os.getenv("ROOMSTATE_SPEC_LIGHT")
local SEEDS = LIGHT and 6 or 40
local STEPS = LIGHT and 60 or 150

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

local function new_room(version, r)
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

-- The auth events the selection picks from the state, as both take them.
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

local function code_of(reason) return reason and reason:match("^([%u_]+):") end

local function same_types(v, ev)
  local a = assert(roomstate.auth_types(v, ev))
  local b = model.auth_types(v, ev)
  local function set(l)
    local s = {}
    for _, t in ipairs(l) do s[#s + 1] = t[1] .. "|" .. t[2] end
    table.sort(s)
    return table.concat(s, ",")
  end
  return set(a) == set(b), set(a), set(b)
end

describe("the C auth rules against the naive model", function()
  for _, v in ipairs(roomstate.room_versions()) do
    it("agree on every event of random rooms, room version " .. v, function()
      local checked, allowed, refused = 0, 0, {}
      for seed = 1, SEEDS do
        local next_rand = S.rng(seed * 131 + tonumber(v))
        local function rng(a, b) return a + next_rand(b - a + 1) - 1 end
        local room = new_room(v, rng)
        for _ = 1, STEPS do
          local ev = room:candidate()
          local ok_types, c_types, m_types = same_types(v, ev)
          assert(ok_types, ("v%s seed %d: auth types C %s, model %s"):format(v, seed, c_types, m_types))
          local list, map = room:auth_for(ev)
          local c_ok, c_reason = roomstate.auth_check(v, ev, list)
          local m_ok, m_reason = model.check(v, ev, map)
          local c_code, m_code = code_of(c_reason), code_of(m_reason)
          if (c_ok == true) ~= (m_ok == true) or c_code ~= m_code then
            error(("v%s seed %d event %s (%s %s by %s): C says %s, model says %s\n%s"):format(
              v, seed, ev.event_id, ev.type, tostring(ev.state_key), ev.sender,
              tostring(c_reason or c_ok), tostring(m_reason or m_ok),
              require("cjson").encode(ev)))
          end
          checked = checked + 1
          if c_ok then
            allowed = allowed + 1
            room.last = ev.event_id
            if ev.state_key then room.state[key(ev.type, ev.state_key)] = ev end
          else
            refused[c_code] = (refused[c_code] or 0) + 1
          end
        end
      end
      -- the streams must reach both outcomes, or agreement proves little
      assert.is_true(allowed > checked / 20, "allowed " .. allowed .. " of " .. checked)
      local kinds = 0
      for _ in pairs(refused) do kinds = kinds + 1 end
      assert.is_true(kinds >= 5, "refusal codes seen: " .. kinds)
      print(("v%s: %d events, %d allowed, %d refusal codes"):format(v, checked, allowed, kinds))
    end)
  end
end)
