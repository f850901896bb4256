-- A naive model of the Matrix authorisation rules, room versions 1 to 12,
-- written from the specification text (content/rooms/v1.md ... v12.md, the
-- fragments v1-auth-rules.md, v3-auth-rules.md, v8-auth-rules.md,
-- v1-stringy-power-levels.md, v1-floaty-power-levels.md, and the
-- server-server API's "Auth events selection"). Issue 12's differential
-- tests hold the C rules against it. It shares no code with csrc/ and is
-- written for reading, not for speed: every rule is a plain `if`, named by
-- its number in the spec.
--
-- Rule numbers below are those of the room version 6-11 pages (and the v8
-- fragment), which have no aliases rule: 1 create, 2 auth events,
-- 3 m.federate, 4 membership, 5 sender joined, 6 third-party invite,
-- 7 required power, 8 `@` state keys, 9 power levels, 10 allow. Versions 1-5
-- insert aliases as rule 4 (so membership is their 5, ...), versions 1-2 add
-- redaction as their rule 11; version 12 inserts the room ID rule as 2 (so
-- membership is its 5, ...). A comment gives "v1 N" or "v12 N" where the
-- number differs; power-levels sub-rules gained two in v10 ("v10 9.N").
--
-- Reason codes, by the rule that refuses:
--   CREATE_INVALID             1.1-1.4 (prev_events, room ID domain / v12 a
--                              room_id, unknown room_version, v1-10 no
--                              `creator`, v12 bad `additional_creators`)
--   NO_CREATE                  2.4 (no m.room.create among the auth events;
--                              in v12 the caller supplies it)
--   AUTH_EVENTS_INVALID        2.5 (an auth event from another room); the C
--                              core also gives it for 2.1 and 2.2
--   BAD_FORMAT                 the shape checks the rules need (sender sigil,
--                              state_key type, create state_key "", content
--                              an object, `redacts` placement by version)
--   NOT_FEDERATED              3
--   ALIASES_INVALID            v1 4 (v1-v5 m.room.aliases)
--   MEMBER_INVALID             4.1 (no state_key / membership), 4.2
--                              (join_authorised_via_users_server not signed
--                              by its server, or not a user ID), 4.8
--                              (unknown membership, incl. knock before v7)
--   JOIN_NOT_ALLOWED           4.3.*
--   INVITE_NOT_ALLOWED         4.4.1.1 (target banned) and 4.4.2-4.4.5
--   THIRD_PARTY_INVITE_INVALID 4.4.1.2-4.4.1.8
--   LEAVE_NOT_ALLOWED          4.5.*
--   BAN_NOT_ALLOWED            4.6.*
--   KNOCK_NOT_ALLOWED          4.7.*
--   SENDER_NOT_JOINED          5
--   POWER_TOO_LOW              6 (m.room.third_party_invite under the invite
--                              level) and 7 (required power level)
--   STATE_KEY_NOT_SENDER       8
--   POWER_LEVELS_INVALID       9.1-9.3 (values not integers / not integer
--                              strings, bad user IDs), v12 10.4 (creators in
--                              `users`)
--   POWER_CHANGE_NOT_ALLOWED   9.3-9.7 of v3 (v10: 9.5-9.9), the changes
--   REDACTION_NOT_ALLOWED      v1 11 (v1-v2 m.room.redaction)
--
-- The caller's part (not checked here):
--   2.1 duplicate (type, state_key) entries, 2.2 entries outside the
--   selection (see M.auth_types), 2.3 rejected entries: `auth_state` is a map
--   and holds what the caller selected, so these cannot be seen here.
--   v12 rule 2: the room ID is "!" .. the create event's ID without its "$";
--   the caller derives and checks it (it needs the reference hash).
--   Signatures of whole events are checked on receipt; only rule 4.2's
--   "validly signed by the homeserver of" the authoriser is asked here, of
--   M.verify_event_signed, which a caller may replace.
local M = { _VERSION = "0.1" }

local type, pairs, ipairs, next, tostring, tonumber = type, pairs, ipairs, next, tostring, tonumber
local error = error
local sfind, ssub, smatch = string.find, string.sub, string.match
local floor, ceil, huge = math.floor, math.ceil, math.huge

-- Room versions as data, from the spec's room version pages. Each field
-- is named for what the rules ask, with the version that brought it.
local function version_rules(v)
  local n = tonumber(v)
  if type(v) ~= "string" or not n or tostring(n) ~= v or n < 1 or n > 12 then
    return nil
  end
  return {
    -- v1, v2: rule 11, m.room.redaction needs the redact level or the same
    -- event ID domain (dropped in v3, "Handling redactions" instead).
    special_case_redaction = n <= 2,
    -- v1-v5: rule 4, m.room.aliases (dropped in v6).
    special_case_aliases = n <= 5,
    -- v1-v5: floats in power levels are truncated (v1-floaty-power-levels;
    -- v6 enforces canonical JSON, so no floats).
    float_power_levels = n <= 5,
    -- v1-v9: integer strings in power levels (v1-stringy-power-levels;
    -- v10 requires integers).
    string_power_levels = n <= 9,
    -- v6: power-levels rules 9.4, 9.5 include `notifications`.
    notifications_power = n >= 6,
    -- v7: knock membership (4.7), knock join rule in 4.3.4, leave from knock
    -- in 4.5.1.
    knocking = n >= 7,
    -- v8: restricted join rule (4.3.5) and join_authorised_via_users_server
    -- (4.2, and in the auth events selection).
    restricted = n >= 8,
    -- v10: knock_restricted join rule (4.3.5, 4.7.1).
    knock_restricted = n >= 10,
    -- v10: rules 9.1, 9.2, all power-level values are integers.
    integer_power_levels = n >= 10,
    -- v1-v10: rule 1.4, the create event has `creator` and it names the
    -- creator; v11: the creator is the create event's sender.
    creator_field = n <= 10,
    -- v1-v11: rule 1.2, the room ID's domain is the sender's.
    room_id_domain = n <= 11,
    -- v12: rule 1.2, the create event has no room_id; room ID is its hash.
    room_id_is_create_hash = n >= 12,
    -- v12: additional_creators (1.4); creators have infinite power, are not
    -- in `users` (10.4); the create event is not selected (3.2).
    explicit_creators = n >= 12,
    create_in_auth_events = n <= 11,
  }
end

function M.rules(version)
  return version_rules(version)
end

local KNOWN_VERSIONS = {}
for i = 1, 12 do KNOWN_VERSIONS[tostring(i)] = true end

local function refuse(code, words)
  return nil, code .. ": " .. words
end

local function key(t, sk) return t .. "\0" .. sk end

-- "example.org" from "@alice:example.org", "!r:example.org:8448" -> with
-- port: everything after the first colon.
local function domain(id)
  if type(id) ~= "string" then return nil end
  local at = sfind(id, ":", 1, true)
  if not at then return nil end
  return ssub(id, at + 1)
end

-- A user ID as the rules need it: "@", a non-empty localpart, ":", a
-- non-empty server name, 255 bytes at most (appendices, user identifiers).
-- The grammar of the localpart is not enforced (historical IDs allowed).
local function valid_user_id(s)
  return type(s) == "string" and #s <= 255 and smatch(s, "^@[^:]+:.+$") ~= nil
end
M.valid_user_id = valid_user_id

-- A JSON object as cjson decodes it: a table whose keys are all strings
-- (an empty table is both [] and {}; it is taken as either).
local function is_object(t)
  if type(t) ~= "table" then return false end
  for k in pairs(t) do
    if type(k) ~= "string" then return false end
  end
  return true
end

local function is_array(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  for i = 1, n do
    if t[i] == nil then return false end
  end
  return true
end

local function is_integer(x)
  return type(x) == "number" and x == x and x ~= huge and x ~= -huge and floor(x) == x
end

-- A power-level value as the version reads it, or nil when it is not one.
-- v1-v5: a float is truncated at the decimal point (v1-floaty-power-levels:
-- "51146.98 becomes 51146"; toward zero for negatives); NaN and infinities
-- refused. v1-v9: a string of optional whitespace, one optional sign, base
-- 10 digits (leading zeroes allowed), optional whitespace
-- (v1-stringy-power-levels). v10+: integers only.
local function level_value(x, rules)
  if type(x) == "number" then
    if is_integer(x) then return x end
    if rules.float_power_levels and x == x and x ~= huge and x ~= -huge then
      if x < 0 then return ceil(x) end
      return floor(x)
    end
    return nil
  end
  if type(x) == "string" and rules.string_power_levels then
    local sign, digits = smatch(x, "^%s*([+-]?)(%d+)%s*$")
    if not digits then return nil end
    local n = tonumber(digits)
    if sign == "-" then n = -n end
    return n
  end
  return nil
end
M.level_value = level_value

local function content_of(ev)
  if ev and type(ev.content) == "table" then return ev.content end
  return {}
end

local function membership_of(auth_state, user)
  if type(user) ~= "string" then return nil end
  local ev = auth_state[key("m.room.member", user)]
  if not ev then return nil end
  local m = content_of(ev).membership
  if type(m) ~= "string" then return nil end
  return m
end

-- The room creators. v1-v10: content.creator; v11: the sender; v12: the
-- sender plus content.additional_creators.
local function creators(rules, create)
  local set = {}
  if rules.creator_field then
    local c = content_of(create).creator
    if type(c) == "string" then set[c] = true end
  else
    set[create.sender] = true
  end
  if rules.explicit_creators then
    local extra = content_of(create).additional_creators
    if is_array(extra) then
      for _, u in ipairs(extra) do
        if type(u) == "string" then set[u] = true end
      end
    end
  end
  return set
end

-- The current power-levels event's value of a top-level field, nil when
-- absent. A value the version cannot read counts as absent: the model
-- refuses such power-levels events (rule 9.1), so only a foreign state can
-- hold one.
local function pl_field(rules, pl, field)
  if not pl then return nil end
  return level_value(content_of(pl)[field], rules)
end

local function pl_map_entry(rules, pl, map, k)
  if not pl then return nil end
  local m = content_of(pl)[map]
  if type(m) ~= "table" then return nil end
  return level_value(m[k], rules)
end

-- A user's power level. v12: creators are infinitely high, with or
-- without a power-levels event. Otherwise, with a power-levels event:
-- users[user], else users_default, else 0; without one: the creator 100
-- (v1-v11), everyone else 0 (m.room.power_levels schema text).
local function user_level(rules, state, user)
  local create = state[key("m.room.create", "")]
  local cs = creators(rules, create)
  if rules.explicit_creators and cs[user] then return huge end
  local pl = state[key("m.room.power_levels", "")]
  if pl then
    local v = pl_map_entry(rules, pl, "users", user)
    if v ~= nil then return v end
    v = pl_field(rules, pl, "users_default")
    if v ~= nil then return v end
    return 0
  end
  if not rules.explicit_creators and cs[user] then return 100 end
  return 0
end
M.user_level = function(version, state, user)
  return user_level(version_rules(version), state, user)
end

-- ban, kick, redact default to 50, invite to 0, with or without a
-- power-levels event (m.room.power_levels schema text).
local NAMED_DEFAULT = { ban = 50, kick = 50, redact = 50, invite = 0 }

local function named_level(rules, state, name)
  local v = pl_field(rules, state[key("m.room.power_levels", "")], name)
  if v ~= nil then return v end
  return NAMED_DEFAULT[name]
end

-- The required power level of an event type: events[type], else
-- state_default (50 when absent or no power-levels event) for a state event,
-- events_default (0) otherwise.
local function required_level(rules, state, ev)
  local pl = state[key("m.room.power_levels", "")]
  local v = pl_map_entry(rules, pl, "events", ev.type)
  if v ~= nil then return v end
  if ev.state_key ~= nil then
    v = pl_field(rules, pl, "state_default")
    if v ~= nil then return v end
    return 50
  end
  v = pl_field(rules, pl, "events_default")
  if v ~= nil then return v end
  return 0
end

-- Rule 4.4.1.7: "If any signature in signed matches any public key in the
-- m.room.third_party_invite event, allow." The default is a STRUCTURAL check
-- only, no cryptography: there is at least one public key, and `signed`
-- has `signatures` as an object of server -> object of "ed25519:*" -> string.
-- A caller that has Ed25519 (the C core does) replaces this function;
-- `public_keys` is the list of base64 strings from public_key and
-- public_keys[].public_key.
function M.verify_signed(signed, public_keys, invite_event) -- luacheck: ignore invite_event
  if #public_keys == 0 then return false end
  local sigs = signed.signatures
  if not is_object(sigs) then return false end
  for _, block in pairs(sigs) do
    if is_object(block) then
      for name, sig in pairs(block) do
        if ssub(name, 1, 8) == "ed25519:" and type(sig) == "string" then
          return true
        end
      end
    end
  end
  return false
end

-- Rule 4.2: "If the event is not validly signed by the homeserver of the
-- user ID denoted by the key, reject." The default is STRUCTURAL: the event
-- has a signatures[server] object with an "ed25519:*" string. A caller
-- that checks signatures replaces it.
function M.verify_event_signed(event, server)
  local sigs = event.signatures
  if not is_object(sigs) then return false end
  local block = sigs[server]
  if not is_object(block) then return false end
  for name, sig in pairs(block) do
    if ssub(name, 1, 8) == "ed25519:" and type(sig) == "string" then return true end
  end
  return false
end

local function prev_ids(ev)
  local out = {}
  if type(ev.prev_events) ~= "table" then return out end
  for i, p in ipairs(ev.prev_events) do
    -- v1, v2: [event_id, {hashes}] pairs; v3+: event IDs.
    if type(p) == "table" then out[i] = p[1] else out[i] = p end
  end
  return out
end

-- Rule 1: the create event.
local function check_create(rules, ev)
  local c = ev.content
  -- 1.1
  if type(ev.prev_events) == "table" and next(ev.prev_events) ~= nil then
    return refuse("CREATE_INVALID", "a create event has prev_events")
  end
  if rules.room_id_domain then
    -- 1.2 (v1-v11)
    if domain(ev.room_id) == nil or domain(ev.room_id) ~= domain(ev.sender) then
      return refuse("CREATE_INVALID", "the room ID's domain is not the sender's")
    end
  else
    -- 1.2 (v12)
    if ev.room_id ~= nil then
      return refuse("CREATE_INVALID", "a create event has a room_id")
    end
  end
  -- 1.3: absent means "1" (client-server m.room.create)
  if c.room_version ~= nil and not KNOWN_VERSIONS[c.room_version] then
    return refuse("CREATE_INVALID", "unknown room_version " .. tostring(c.room_version))
  end
  -- 1.4 (v1-v10)
  if rules.creator_field and c.creator == nil then
    return refuse("CREATE_INVALID", "content has no creator")
  end
  -- 1.4 (v12)
  if rules.explicit_creators and c.additional_creators ~= nil then
    local extra = c.additional_creators
    if not is_array(extra) then
      return refuse("CREATE_INVALID", "additional_creators is not an array")
    end
    for _, u in ipairs(extra) do
      if not valid_user_id(u) then
        return refuse("CREATE_INVALID", "additional_creators holds " .. tostring(u))
      end
    end
  end
  -- 1.5
  return true
end

-- Rule 4 (v1 5, v12 5): membership.
local function check_member(rules, ev, state, create)
  local c = ev.content
  local target = ev.state_key
  local sender = ev.sender
  -- 4.1
  if type(target) ~= "string" then
    return refuse("MEMBER_INVALID", "a member event has no state_key")
  end
  local membership = c.membership
  if type(membership) ~= "string" then
    return refuse("MEMBER_INVALID", "content has no membership")
  end
  -- 4.2 (v8+)
  local authoriser = c.join_authorised_via_users_server
  if rules.restricted and authoriser ~= nil then
    if not valid_user_id(authoriser) then
      return refuse("MEMBER_INVALID", "join_authorised_via_users_server is not a user ID")
    end
    if not M.verify_event_signed(ev, domain(authoriser)) then
      return refuse("MEMBER_INVALID", "not signed by " .. domain(authoriser))
    end
  end

  local sender_m = membership_of(state, sender)
  local target_m = membership_of(state, target)
  local jr_ev = state[key("m.room.join_rules", "")]
  local join_rule = content_of(jr_ev).join_rule
  if jr_ev == nil then
    -- No join rules event: the rules do not say; read as "invite", the
    -- client-server default, as Synapse and Ruma do. Then only 4.3.1
    -- (creator) and invited users can join.
    join_rule = "invite"
  end

  if membership == "join" then
    -- 4.3.1: "the only previous event is an m.room.create and the
    -- state_key is the creator" (v11+: the create event's sender).
    local prev = prev_ids(ev)
    if #prev == 1 and create.event_id ~= nil and prev[1] == create.event_id then
      local creator
      if rules.creator_field then creator = content_of(create).creator
      else creator = create.sender end
      if target == creator then return true end
    end
    -- 4.3.2
    if sender ~= target then
      return refuse("JOIN_NOT_ALLOWED", sender .. " cannot join " .. target)
    end
    -- 4.3.3
    if sender_m == "ban" then
      return refuse("JOIN_NOT_ALLOWED", sender .. " is banned")
    end
    -- 4.3.4: invite; knock from v7
    if join_rule == "invite" or (rules.knocking and join_rule == "knock") then
      if sender_m == "invite" or sender_m == "join" then return true end
      return refuse("JOIN_NOT_ALLOWED", sender .. " is not invited")
    end
    -- 4.3.5: restricted from v8, knock_restricted from v10
    if (rules.restricted and join_rule == "restricted")
        or (rules.knock_restricted and join_rule == "knock_restricted") then
      -- 4.3.5.1
      if sender_m == "join" or sender_m == "invite" then return true end
      -- 4.3.5.2
      if type(authoriser) ~= "string" then
        return refuse("JOIN_NOT_ALLOWED", "no join_authorised_via_users_server")
      end
      if membership_of(state, authoriser) ~= "join" then
        return refuse("JOIN_NOT_ALLOWED", authoriser .. " is not joined")
      end
      if user_level(rules, state, authoriser) < named_level(rules, state, "invite") then
        return refuse("JOIN_NOT_ALLOWED", authoriser .. " cannot invite")
      end
      -- 4.3.5.3
      return true
    end
    -- 4.3.6
    if join_rule == "public" then return true end
    -- 4.3.7
    return refuse("JOIN_NOT_ALLOWED", "join rule " .. tostring(join_rule))
  end

  if membership == "invite" then
    -- 4.4.1
    local tpi = c.third_party_invite
    if tpi ~= nil then
      -- 4.4.1.1
      if target_m == "ban" then
        return refuse("INVITE_NOT_ALLOWED", target .. " is banned")
      end
      -- 4.4.1.2
      local signed = type(tpi) == "table" and tpi.signed or nil
      if not is_object(signed) then
        return refuse("THIRD_PARTY_INVITE_INVALID", "no signed object")
      end
      -- 4.4.1.3
      if type(signed.mxid) ~= "string" or type(signed.token) ~= "string" then
        return refuse("THIRD_PARTY_INVITE_INVALID", "signed has no mxid or token")
      end
      -- 4.4.1.4
      if signed.mxid ~= target then
        return refuse("THIRD_PARTY_INVITE_INVALID", "mxid is not the state_key")
      end
      -- 4.4.1.5
      local inv = state[key("m.room.third_party_invite", signed.token)]
      if not inv then
        return refuse("THIRD_PARTY_INVITE_INVALID", "no third-party invite for the token")
      end
      -- 4.4.1.6
      if inv.sender ~= sender then
        return refuse("THIRD_PARTY_INVITE_INVALID", "the third-party invite has another sender")
      end
      -- 4.4.1.7: public_key, and public_keys[].public_key
      local keys = {}
      local ic = content_of(inv)
      if type(ic.public_key) == "string" then keys[#keys + 1] = ic.public_key end
      if type(ic.public_keys) == "table" then
        for _, k in ipairs(ic.public_keys) do
          if type(k) == "table" and type(k.public_key) == "string" then
            keys[#keys + 1] = k.public_key
          end
        end
      end
      if M.verify_signed(signed, keys, inv) then return true end
      -- 4.4.1.8
      return refuse("THIRD_PARTY_INVITE_INVALID", "no signature matches a public key")
    end
    -- 4.4.2
    if sender_m ~= "join" then
      return refuse("INVITE_NOT_ALLOWED", sender .. " is not joined")
    end
    -- 4.4.3
    if target_m == "join" or target_m == "ban" then
      return refuse("INVITE_NOT_ALLOWED", target .. " is " .. target_m)
    end
    -- 4.4.4
    if user_level(rules, state, sender) >= named_level(rules, state, "invite") then
      return true
    end
    -- 4.4.5
    return refuse("INVITE_NOT_ALLOWED", sender .. " is below the invite level")
  end

  if membership == "leave" then
    -- 4.5.1: invite or join; knock from v7
    if sender == target then
      if sender_m == "invite" or sender_m == "join"
          or (rules.knocking and sender_m == "knock") then
        return true
      end
      return refuse("LEAVE_NOT_ALLOWED", sender .. " has no membership to leave")
    end
    -- 4.5.2
    if sender_m ~= "join" then
      return refuse("LEAVE_NOT_ALLOWED", sender .. " is not joined")
    end
    local sl = user_level(rules, state, sender)
    -- 4.5.3
    if target_m == "ban" and sl < named_level(rules, state, "ban") then
      return refuse("LEAVE_NOT_ALLOWED", sender .. " is below the ban level")
    end
    -- 4.5.4
    if sl >= named_level(rules, state, "kick") and user_level(rules, state, target) < sl then
      return true
    end
    -- 4.5.5
    return refuse("LEAVE_NOT_ALLOWED", sender .. " cannot kick " .. target)
  end

  if membership == "ban" then
    -- 4.6.1
    if sender_m ~= "join" then
      return refuse("BAN_NOT_ALLOWED", sender .. " is not joined")
    end
    -- 4.6.2
    local sl = user_level(rules, state, sender)
    if sl >= named_level(rules, state, "ban") and user_level(rules, state, target) < sl then
      return true
    end
    -- 4.6.3
    return refuse("BAN_NOT_ALLOWED", sender .. " cannot ban " .. target)
  end

  if membership == "knock" and rules.knocking then
    -- 4.7.1: knock; knock_restricted from v10
    if not (join_rule == "knock" or (rules.knock_restricted and join_rule == "knock_restricted")) then
      return refuse("KNOCK_NOT_ALLOWED", "join rule " .. tostring(join_rule))
    end
    -- 4.7.2
    if sender ~= target then
      return refuse("KNOCK_NOT_ALLOWED", sender .. " cannot knock for " .. target)
    end
    -- 4.7.3
    if sender_m ~= "ban" and sender_m ~= "invite" and sender_m ~= "join" then
      return true
    end
    -- 4.7.4
    return refuse("KNOCK_NOT_ALLOWED", sender .. " is " .. sender_m)
  end

  -- 4.8 (v1-v6 have no knock: it is unknown there)
  return refuse("MEMBER_INVALID", "unknown membership " .. membership)
end

local INT_FIELDS = { "users_default", "events_default", "state_default",
                     "ban", "redact", "kick", "invite" }

-- Rule 9.1-9.3 (v10 numbering; v12 10.1-10.4): the shape of the new
-- power-levels content.
local function check_pl_shape(rules, ev, create)
  local c = ev.content
  -- v10 9.1. Before v10 the spec names only `users`; this model also
  -- refuses a top-level value no reading of the version gives a number
  -- (e.g. "abc", or 1.5 in v6-v9), as Ruma does and as Synapse ends up
  -- doing when it compares it (int() raises).
  for _, f in ipairs(INT_FIELDS) do
    if c[f] ~= nil and level_value(c[f], rules) == nil then
      return refuse("POWER_LEVELS_INVALID", f .. " is not an integer")
    end
  end
  -- v10 9.2 (and, as above, v1-v9 with their readings). notifications only
  -- from v6, where the rules first read it.
  local maps = { "events" }
  if rules.notifications_power then maps[2] = "notifications" end
  for _, name in ipairs(maps) do
    local m = c[name]
    if m ~= nil then
      if not is_object(m) then
        return refuse("POWER_LEVELS_INVALID", name .. " is not an object")
      end
      for k, v in pairs(m) do
        if level_value(v, rules) == nil then
          return refuse("POWER_LEVELS_INVALID", name .. "." .. k .. " is not an integer")
        end
      end
    end
  end
  -- 9.1 (v10 9.3): keys valid user IDs, values integers (v1-v9: or an
  -- integer string)
  local users = c.users
  if users ~= nil then
    if not is_object(users) then
      return refuse("POWER_LEVELS_INVALID", "users is not an object")
    end
    for u, v in pairs(users) do
      if not valid_user_id(u) then
        return refuse("POWER_LEVELS_INVALID", "users holds " .. u)
      end
      if level_value(v, rules) == nil then
        return refuse("POWER_LEVELS_INVALID", "users." .. u .. " is not an integer")
      end
    end
  end
  -- v12 10.4
  if rules.explicit_creators and users ~= nil then
    for u in pairs(creators(rules, create)) do
      if users[u] ~= nil then
        return refuse("POWER_LEVELS_INVALID", "users holds the creator " .. u)
      end
    end
  end
  return true
end

-- Rule 9.3-9.7 (v10 9.5-9.9): the changes against the current event.
local function check_pl_changes(rules, ev, state, current)
  local sender = ev.sender
  local sl = user_level(rules, state, sender)
  local new, old = ev.content, content_of(current)
  -- 9.3: an absent side has no value and is not compared (the text speaks
  -- of "the current value" and "the new value"; Synapse does the same, Ruma
  -- compares the default instead).
  for _, f in ipairs(INT_FIELDS) do
    local o, n = level_value(old[f], rules), level_value(new[f], rules)
    if o ~= n then
      -- 9.3.1
      if o ~= nil and o > sl then
        return refuse("POWER_CHANGE_NOT_ALLOWED", f .. " is above the sender")
      end
      -- 9.3.2
      if n ~= nil and n > sl then
        return refuse("POWER_CHANGE_NOT_ALLOWED", "new " .. f .. " is above the sender")
      end
    end
  end
  local function map(t, name)
    if type(t[name]) == "table" then return t[name] end
    return {}
  end
  local function union(a, b)
    local ks, seen = {}, {}
    for k in pairs(a) do if not seen[k] then seen[k] = true; ks[#ks + 1] = k end end
    for k in pairs(b) do if not seen[k] then seen[k] = true; ks[#ks + 1] = k end end
    return ks
  end
  local maps = { "events" }
  if rules.notifications_power then maps[2] = "notifications" end
  for _, name in ipairs(maps) do
    local om, nm = map(old, name), map(new, name)
    for _, k in ipairs(union(om, nm)) do
      local o, n = level_value(om[k], rules), level_value(nm[k], rules)
      if o ~= n then
        -- 9.4.1
        if o ~= nil and o > sl then
          return refuse("POWER_CHANGE_NOT_ALLOWED", name .. "." .. k .. " is above the sender")
        end
        -- 9.5.1
        if n ~= nil and n > sl then
          return refuse("POWER_CHANGE_NOT_ALLOWED", "new " .. name .. "." .. k .. " is above the sender")
        end
      end
    end
  end
  local ou, nu = map(old, "users"), map(new, "users")
  for _, u in ipairs(union(ou, nu)) do
    local o, n = level_value(ou[u], rules), level_value(nu[u], rules)
    if o ~= n then
      -- 9.6.1: other than the sender's own entry, current >= sender's
      if u ~= sender and o ~= nil and o >= sl then
        return refuse("POWER_CHANGE_NOT_ALLOWED", u .. " is not below the sender")
      end
      -- 9.7.1
      if n ~= nil and n > sl then
        return refuse("POWER_CHANGE_NOT_ALLOWED", "new level of " .. u .. " is above the sender")
      end
    end
  end
  -- 9.8
  return true
end

-- The shape checks the rules depend on (BAD_FORMAT).
local function check_format(rules, ev)
  if type(ev) ~= "table" then return refuse("BAD_FORMAT", "the event is not an object") end
  if type(ev.type) ~= "string" then return refuse("BAD_FORMAT", "no type") end
  if not valid_user_id(ev.sender) then return refuse("BAD_FORMAT", "sender is not a user ID") end
  if not is_object(ev.content) then return refuse("BAD_FORMAT", "content is not an object") end
  if ev.state_key ~= nil and type(ev.state_key) ~= "string" then
    return refuse("BAD_FORMAT", "state_key is not a string")
  end
  if ev.type == "m.room.create" then
    if ev.state_key ~= "" then return refuse("BAD_FORMAT", "a create event's state_key is not empty") end
  elseif type(ev.room_id) ~= "string" or ssub(ev.room_id, 1, 1) ~= "!" then
    return refuse("BAD_FORMAT", "room_id is not a room ID")
  end
  if ev.type == "m.room.redaction" then
    -- v1-v10: top-level redacts; v11+: content.redacts (v11 event format).
    local r
    if rules.creator_field then r = ev.redacts else r = ev.content.redacts end
    if type(r) ~= "string" or ssub(r, 1, 1) ~= "$" then
      return refuse("BAD_FORMAT", "redacts is not an event ID")
    end
  end
  return true
end

function M.check(version, ev, auth_state)
  local rules = version_rules(version)
  if not rules then error("unknown room version " .. tostring(version), 2) end
  if type(auth_state) ~= "table" then error("auth_state must be a table", 2) end
  local ok, why = check_format(rules, ev)
  if not ok then return nil, why end

  -- Rule 1
  if ev.type == "m.room.create" then return check_create(rules, ev) end

  -- Rule 2 (v12 3). 2.1-2.3 are the caller's (see the top).
  -- 2.4 (v12: the caller supplies the create event)
  local create = auth_state[key("m.room.create", "")]
  if not create then return refuse("NO_CREATE", "no m.room.create among the auth events") end
  -- 2.5: an event in auth_events from another room. In v12 the create
  -- event has no room_id; its ID is the room's, the caller's check.
  for _, a in pairs(auth_state) do
    if not (rules.room_id_is_create_hash and a.type == "m.room.create") and a.room_id ~= ev.room_id then
      return refuse("AUTH_EVENTS_INVALID", "an auth event is from room " .. tostring(a.room_id))
    end
  end

  -- Rule 3 (v12 4): m.federate exactly false (a boolean; Synapse refuses
  -- any non-true value, the text says "set to false").
  if content_of(create)["m.federate"] == false and domain(ev.sender) ~= domain(create.sender) then
    return refuse("NOT_FEDERATED", "the room is not federated")
  end

  -- v1 4 (v1-v5): m.room.aliases
  if rules.special_case_aliases and ev.type == "m.room.aliases" then
    -- v1 4.1
    if ev.state_key == nil then return refuse("ALIASES_INVALID", "no state_key") end
    -- v1 4.2
    if ev.state_key ~= domain(ev.sender) then
      return refuse("ALIASES_INVALID", "state_key is not the sender's domain")
    end
    -- v1 4.3
    return true
  end

  -- Rule 4 (v1 5, v12 5)
  if ev.type == "m.room.member" then return check_member(rules, ev, auth_state, create) end

  -- Rule 5 (v1 6, v12 6)
  if membership_of(auth_state, ev.sender) ~= "join" then
    return refuse("SENDER_NOT_JOINED", ev.sender .. " is not joined")
  end

  local sl = user_level(rules, auth_state, ev.sender)
  -- Rule 6 (v1 7, v12 7)
  if ev.type == "m.room.third_party_invite" then
    if sl >= named_level(rules, auth_state, "invite") then return true end
    return refuse("POWER_TOO_LOW", ev.sender .. " is below the invite level")
  end

  -- Rule 7 (v1 8, v12 8)
  if required_level(rules, auth_state, ev) > sl then
    return refuse("POWER_TOO_LOW", ev.sender .. " is below the level for " .. ev.type)
  end

  -- Rule 8 (v1 9, v12 9)
  if type(ev.state_key) == "string" and ssub(ev.state_key, 1, 1) == "@"
      and ev.state_key ~= ev.sender then
    return refuse("STATE_KEY_NOT_SENDER", "state_key " .. ev.state_key .. " is not the sender")
  end

  -- Rule 9 (v1 10, v12 10)
  if ev.type == "m.room.power_levels" then
    ok, why = check_pl_shape(rules, ev, create)
    if not ok then return nil, why end
    -- 9.2 (v10 9.4, v12 10.5)
    local current = auth_state[key("m.room.power_levels", "")]
    if not current then return true end
    return check_pl_changes(rules, ev, auth_state, current)
  end

  -- v1 11 (v1, v2): m.room.redaction
  if rules.special_case_redaction and ev.type == "m.room.redaction" then
    -- v1 11.1
    if sl >= named_level(rules, auth_state, "redact") then return true end
    -- v1 11.2: the domains of the two event IDs ("$local:domain")
    if domain(ev.event_id) ~= nil and domain(ev.event_id) == domain(ev.redacts) then
      return true
    end
    -- v1 11.3
    return refuse("REDACTION_NOT_ALLOWED", ev.sender .. " cannot redact " .. tostring(ev.redacts))
  end

  -- Rule 10 (v1 12, v12 11)
  return true
end

-- Auth events selection (server-server API): the (type, state_key) pairs
-- an event's auth_events may be. None for the create event; the create
-- event (not in v12), the power levels, the sender's member event; for
-- m.room.member also the target's member event, the join rules (join,
-- invite, knock), the third-party invite of the token (invite with
-- content.third_party_invite), and the authoriser's member event (join with
-- join_authorised_via_users_server, in versions with restricted rooms).
function M.auth_types(version, ev)
  local rules = version_rules(version)
  if not rules then error("unknown room version " .. tostring(version), 2) end
  local out, seen = {}, {}
  local function add(t, sk)
    if type(sk) ~= "string" then return end
    local k = key(t, sk)
    if seen[k] then return end
    seen[k] = true
    out[#out + 1] = { t, sk }
  end
  if ev.type == "m.room.create" then return out end
  if rules.create_in_auth_events then add("m.room.create", "") end
  add("m.room.power_levels", "")
  add("m.room.member", ev.sender)
  if ev.type == "m.room.member" then
    local c = type(ev.content) == "table" and ev.content or {}
    local m = c.membership
    add("m.room.member", ev.state_key)
    if m == "join" or m == "invite" or m == "knock" then add("m.room.join_rules", "") end
    if m == "invite" and type(c.third_party_invite) == "table"
        and type(c.third_party_invite.signed) == "table" then
      add("m.room.third_party_invite", c.third_party_invite.signed.token)
    end
    if m == "join" and rules.restricted then
      add("m.room.member", c.join_authorised_via_users_server)
    end
  end
  return out
end

return M
