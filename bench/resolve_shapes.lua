-- bench/resolve_shapes.lua - the forks of issue 13 section 4 as events
-- (Lua tables) and state sets, for bench/resolve.lua and its spec:
--
--   members    N users joined; fork A and fork B each change every user's
--              displayname (2N conflicted non-power events).
--   bans       fork A: the admin bans every user (N power events); fork B:
--              every user changes their displayname. Every ban must win.
--   deep-bans  bans on top of 100 earlier power-levels changes, so every
--              auth chain is deep.
--   pl-chain   fork A: N power-levels changes, each citing the previous;
--              fork B: one topic change by a user of lower power.
--
-- shape(name, version, n) -> { sets = { A, B }, events = { ev, ... },
-- expect = function(resolved_ids) -> true | nil, why }. Events are whole
-- PDUs (hashes, signatures, prev and auth events), IDs in the form of room
-- version 3 on, so their JSON is the size a server would hold.
local string_format, table_concat = string.format, table.concat

local _M = {}

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

-- 43 characters of base64url from a small LCG: an ID like a reference hash.
local function b64_of(seed, len)
  local s, out = seed, {}
  for i = 1, len do
    s = (s * 1103515245 + 12345) % 2147483648
    local c = math.floor(s / 65536) % 64 + 1
    out[i] = B64:sub(c, c)
  end
  return table_concat(out)
end

local ADMIN = "@admin:example.org"
local MOD = "@mod:example.org"

local function user(i) return string_format("@user%06d:example.org", i) end

-- A room builder: add() makes one PDU citing the previous event.
local function room(version)
  local r = { version = version, events = {}, state = {}, n = 0, last = nil }
  function r.add(ty, sk, sender, content, auth, prev)
    r.n = r.n + 1
    local id = "$" .. b64_of(r.n * 7919 + #version, 43)
    local ev = {
      event_id = id, type = ty, state_key = sk, sender = sender, content = content,
      room_id = r.room_id, origin = "example.org",
      origin_server_ts = 1700000000000 + r.n, depth = r.n,
      prev_events = { prev or r.last }, auth_events = auth,
      hashes = { sha256 = b64_of(r.n * 31 + 1, 43) },
      signatures = { ["example.org"] = { ["ed25519:a1"] = b64_of(r.n * 17 + 3, 86) } },
    }
    if version == "12" and ty == "m.room.create" then ev.room_id = nil end
    r.events[#r.events + 1] = ev
    r.last = id
    return id
  end
  -- the create event: in v12 the room ID is its ID, and no event cites it
  function r.create()
    local content = { room_version = version }
    if version ~= "12" then content.creator = ADMIN end
    r.n = r.n + 1
    local id = "$" .. b64_of(r.n * 7919 + #version, 43)
    r.room_id = version == "12" and "!" .. id:sub(2) or "!bench:example.org"
    r.n = r.n - 1
    r.create_id = r.add("m.room.create", "", ADMIN, content, {})
    r.events[#r.events].prev_events = {}
    return r.create_id
  end
  -- the auth events cited: v12 never cites the create event
  function r.auth(...)
    local list = {}
    if version ~= "12" then list[1] = r.create_id end
    for _, id in ipairs({ ... }) do list[#list + 1] = id end
    return list
  end
  return r
end

local function power_content(version, extra)
  local users = { [MOD] = 50 }
  if version ~= "12" then users[ADMIN] = 100 end -- v12: the creator is above every level
  local c = { users = users, users_default = 0, state_default = 50, ban = 50, kick = 50,
              redact = 50, invite = 0, events_default = 0,
              events = { ["m.room.power_levels"] = 100, ["m.room.name"] = 50 } }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

-- The common history: create, admin join, power levels, join rules, the
-- moderator, `deep` power-levels changes, then `n` users joined.
local function base(version, n, deep)
  local r = room(version)
  local st = r.state
  st.create = r.create()
  st.admin = r.add("m.room.member", ADMIN, ADMIN, { membership = "join" }, r.auth())
  st.pl = r.add("m.room.power_levels", "", ADMIN, power_content(version), r.auth(st.admin))
  st.jr = r.add("m.room.join_rules", "", ADMIN, { join_rule = "public" }, r.auth(st.pl, st.admin))
  st.mod = r.add("m.room.member", MOD, MOD, { membership = "join" }, r.auth(st.pl, st.jr))
  for i = 1, deep do
    st.pl = r.add("m.room.power_levels", "", ADMIN,
                  power_content(version, { events = { ["m.room.name"] = 50 + i % 2,
                                                      ["m.room.power_levels"] = 100 } }),
                  r.auth(st.pl, st.admin))
  end
  st.users = {}
  for i = 1, n do
    st.users[i] = r.add("m.room.member", user(i), user(i), { membership = "join" },
                        r.auth(st.pl, st.jr))
  end
  return r
end

-- The base state's event IDs, with the users' member events from `members`.
local function state_ids(r, members)
  local st = r.state
  local ids = { st.create, st.admin, st.pl, st.jr, st.mod }
  for i = 1, #members do ids[#ids + 1] = members[i] end
  return ids
end

local function displaynames(r, tag, fork_from)
  local st, out = r.state, {}
  for i = 1, #st.users do
    out[i] = r.add("m.room.member", user(i), user(i),
                   { membership = "join", displayname = tag .. " " .. i },
                   r.auth(st.pl, st.users[i]), i == 1 and fork_from or nil)
  end
  return out
end

local function members(version, n)
  local r = base(version, n, 0)
  local fork = r.last
  local a = displaynames(r, "A", fork)
  local b = displaynames(r, "B", fork)
  local sets = { state_ids(r, a), state_ids(r, b) }
  return { sets = sets, events = r.events, n_conflicted = 2 * n }
end

local function bans_on(version, n, deep)
  local r = base(version, n, deep)
  local st, fork = r.state, r.last
  local bans = {}
  for i = 1, n do
    bans[i] = r.add("m.room.member", user(i), ADMIN, { membership = "ban" },
                    r.auth(st.pl, st.admin, st.users[i]), i == 1 and fork or nil)
  end
  local b = displaynames(r, "B", fork)
  local want = {}
  for i = 1, n do want[bans[i]] = true end
  local function expect(resolved)
    local seen = 0
    for _, id in ipairs(resolved) do if want[id] then seen = seen + 1 end end
    if seen ~= n then return nil, string_format("%d of %d bans won", seen, n) end
    if #resolved ~= n + 5 then return nil, "the state has " .. #resolved .. " events" end
    return true
  end
  return { sets = { state_ids(r, bans), state_ids(r, b) }, events = r.events, expect = expect,
           n_conflicted = 2 * n }
end

local function pl_chain(version, n)
  local r = base(version, 0, 0)
  local st, fork = r.state, r.last
  local pl = st.pl
  for i = 1, n do
    pl = r.add("m.room.power_levels", "", ADMIN,
               power_content(version, { events = { ["m.room.name"] = 50 + i % 2,
                                                   ["m.room.power_levels"] = 100 } }),
               r.auth(pl, st.admin), i == 1 and fork or nil)
  end
  local a = { st.create, st.admin, pl, st.jr, st.mod }
  local topic = r.add("m.room.topic", "", MOD, { topic = "from the moderator" },
                      r.auth(st.pl, st.mod), fork)
  local b = state_ids(r, {})
  b[#b + 1] = topic
  local function expect(resolved)
    local got = {}
    for _, id in ipairs(resolved) do got[id] = true end
    if not (got[pl] and got[topic]) then return nil, "the last power levels or the topic lost" end
    return true
  end
  return { sets = { a, b }, events = r.events, expect = expect, n_conflicted = n + 2 }
end

_M.SHAPES = { "members", "bans", "deep-bans", "pl-chain" }

function _M.shape(name, version, n)
  if name == "members" then return members(version, n) end
  if name == "bans" then return bans_on(version, n, 0) end
  if name == "deep-bans" then return bans_on(version, n, 100) end
  if name == "pl-chain" then return pl_chain(version, n) end
  error("unknown shape " .. tostring(name), 2)
end


return _M
