-- A naive model of Matrix state resolution, written from the specification
-- text (matrix-org/matrix-spec: content/rooms/fragments/v2-state-res.md for
-- room versions 2-11, content/rooms/v12.md for version 12's "v2.1",
-- content/rooms/v1.md for version 1, and the server-server API's auth
-- events selection). Issue 13's C resolution is to be held against it. It
-- shares no code with csrc/ and is written for reading, not for speed: every
-- definition and step of the spec is one small function named for it, and
-- everything is recomputed from the event tables each time it is needed.
--
-- M.resolve(room_version, state_sets, events, auth, opts)
--   state_sets  array of arrays of event IDs (each a room state)
--   events      event ID -> event table: every event of the state sets and
--               of their auth chains (v12: the create event too, which no
--               auth_events cite). An event with `rejected = true` was
--               rejected against its auth chain: it is never admitted by the
--               iterative auth checks nor used as an auth event there.
--   auth        function(room_version, event, auth_events_list) -> true |
--               nil, reason: roomstate.auth_check, or M.model_auth (the
--               default: spec/auth_model.lua, so the model stays independent
--               of the C rules)
--   opts        readings of the text where it is ambiguous (see READINGS)
-- returns the resolved state as a sorted array of event IDs, or nil,
-- "MISSING_EVENTS: ..." naming every event it needed and was not given.
local M = { _VERSION = "0.1" }

local auth_model = require "auth_model"

local type, pairs, ipairs, next, tostring, tonumber = type, pairs, ipairs, next, tostring, tonumber
local error, pcall, require = error, pcall, require
local sort, concat = table.sort, table.concat
local ssub, sbyte, schar, sformat, srep = string.sub, string.byte, string.char, string.format, string.rep
local floor, huge = math.floor, math.huge

-- Where the text can be read two ways, the choice is a named option, so the
-- vectors can show which reading each implementation's answers need.
--   auth_chain_of_state_includes_itself: the auth difference's "full auth
--     chain" of a state S_i is "the union of the auth chains for each event
--     in S_i", and an event's auth chain does not contain the event, so the
--     literal reading (false) leaves out the state's own events. Synapse's
--     store counts them in (true).
--   power_auth_chains: step 1 of v2 says "the union of their auth chains"
--     (literal: "all"); v12's step 1 keeps only the auth chain events that
--     are in the full conflicted set ("conflicted"), and v12 does not mark
--     that wording as a change, so it is read as what v2 meant: it is what
--     Synapse and Ruma do, and MSC4297's v2 answers need it (the literal
--     reading replays the common auth chain and so avoids the very resets
--     MSC4297 shows v2 making). v12 always uses "conflicted".
-- Not an option: v1 resolves member conflicts one key at a time and does
-- not say in which order; the model takes the state keys sorted.
M.READINGS = {
  auth_chain_of_state_includes_itself = false,
  power_auth_chains = "conflicted",
}

local function key(t, sk) return t .. "\0" .. sk end
M.key = key

local function key_of(ev) return key(ev.type, ev.state_key) end

local function set_size(s)
  local n = 0
  for _ in pairs(s) do n = n + 1 end
  return n
end

local function sorted_keys(s)
  local out = {}
  for k in pairs(s) do out[#out + 1] = k end
  sort(out)
  return out
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- roomstate.auth_check's signature over spec/auth_model.lua: the model
-- takes the auth events as a map by (type, state_key).
function M.model_auth(version, ev, auth_events)
  local map = {}
  for _, a in ipairs(auth_events) do map[key_of(a)] = a end
  return auth_model.check(version, ev, map)
end

local function algorithm_of(version)
  local n = tonumber(version)
  if type(version) ~= "string" or not n or tostring(n) ~= version or n < 1 or n > 12 then
    error("unknown room version " .. tostring(version), 3)
  end
  if n == 1 then return "v1" end
  if n <= 11 then return "v2" end
  return "v2.1"
end

local function auth_ids(ev)
  return type(ev.auth_events) == "table" and ev.auth_events or {}
end

-- v12 events cite no create event: the room ID is the create event's ID
-- with the sigil `!` (v12 auth rule 2).
local function create_id_of_room(room_id)
  if type(room_id) ~= "string" then return nil end
  return "$" .. ssub(room_id, 2)
end

---------------------------------------------------------------------------
-- Gathering the events, so a missing one is an answer, not a crash.

local function gather(version, state_sets, events)
  local missing, seen = {}, {}
  local function visit(id)
    if seen[id] then return end
    seen[id] = true
    local ev = events[id]
    if not ev then missing[id] = true; return end
    for _, a in ipairs(auth_ids(ev)) do visit(a) end
    if version == "12" and ev.type ~= "m.room.create" then
      local c = create_id_of_room(ev.room_id)
      if c then visit(c) end
    end
  end
  for _, set in ipairs(state_sets) do
    for _, id in ipairs(set) do visit(id) end
  end
  if next(missing) then
    return nil, "MISSING_EVENTS: " .. concat(sorted_keys(missing), ", ")
  end
  return true
end

-- A state set as a map (type, state_key) -> event ID.
local function state_map(set, events)
  local m = {}
  for _, id in ipairs(set) do
    local ev = events[id]
    if type(ev.state_key) ~= "string" then error(id .. " in a state set is not a state event", 3) end
    local k = key_of(ev)
    if m[k] and m[k] ~= id then error("a state set holds " .. m[k] .. " and " .. id .. " for one key", 3) end
    m[k] = id
  end
  return m
end

---------------------------------------------------------------------------
-- Definitions shared by v2 and v2.1

-- Definition "Power events": power levels, join rules, or a leave or ban of
-- someone other than its sender (events that can take an ability away).
function M.is_power_event(ev)
  if type(ev.state_key) ~= "string" then return false end
  if ev.type == "m.room.power_levels" or ev.type == "m.room.join_rules" then return true end
  if ev.type == "m.room.member" then
    local m = type(ev.content) == "table" and ev.content.membership
    return (m == "leave" or m == "ban") and ev.sender ~= ev.state_key
  end
  return false
end

-- Definition "Unconflicted state map and conflicted state set": a key with
-- the same event in every state is unconflicted; every other (key, event)
-- pair puts its event in the conflicted set (a key missing from some state
-- counts as conflicted).
function M.unconflicted_and_conflicted(maps)
  local keys = {}
  for _, m in ipairs(maps) do
    for k in pairs(m) do keys[k] = true end
  end
  local unconflicted, conflicted = {}, {}
  for k in pairs(keys) do
    local first, same = maps[1][k], true
    for i = 1, #maps do
      if maps[i][k] == nil or maps[i][k] ~= first then same = false end
    end
    if same then
      unconflicted[k] = first
    else
      for i = 1, #maps do
        if maps[i][k] ~= nil then conflicted[maps[i][k]] = true end
      end
    end
  end
  return unconflicted, conflicted
end

-- Definition "Auth chain": every event reachable through auth_events links,
-- not the event itself.
function M.auth_chain(id, events)
  local chain = {}
  local function walk(e)
    for _, a in ipairs(auth_ids(events[e])) do
      if not chain[a] then
        chain[a] = true
        walk(a)
      end
    end
  end
  walk(id)
  return chain
end

-- Definition "Auth difference": the union of the states' full auth chains
-- less their intersection. A state's full auth chain is the union of its
-- events' auth chains (and, in the other reading, its events themselves).
function M.auth_difference(maps, events, readings)
  local chains = {}
  for i, m in ipairs(maps) do
    local c = {}
    for _, id in pairs(m) do
      if readings.auth_chain_of_state_includes_itself then c[id] = true end
      for a in pairs(M.auth_chain(id, events)) do c[a] = true end
    end
    chains[i] = c
  end
  local diff = {}
  for _, c in ipairs(chains) do
    for id in pairs(c) do
      for _, other in ipairs(chains) do
        if not other[id] then diff[id] = true end
      end
    end
  end
  return diff
end

-- v12 definition "Conflicted state subgraph": every event on an auth_events
-- path from one conflicted event to another, the ends included. An event is
-- on such a path when a conflicted event reaches it (or it is one) and it
-- reaches a conflicted event (or is one), and the path is not just one
-- event alone.
function M.conflicted_state_subgraph(conflicted, events)
  local reach = {}
  local function chain(id)
    if not reach[id] then reach[id] = M.auth_chain(id, events) end
    return reach[id]
  end
  local reached_from_conflicted = {}
  for c in pairs(conflicted) do
    for a in pairs(chain(c)) do reached_from_conflicted[a] = true end
  end
  local sub = {}
  for c in pairs(conflicted) do
    for a in pairs(chain(c)) do
      if conflicted[a] then
        sub[c] = true
        sub[a] = true
      end
    end
  end
  for x in pairs(reached_from_conflicted) do
    if not conflicted[x] then
      for c in pairs(conflicted) do
        if chain(x)[c] then sub[x] = true; break end
      end
    end
  end
  return sub
end

-- Definition "Full conflicted set": the conflicted state set and the auth
-- difference (v12: and the conflicted state subgraph).
function M.full_conflicted_set(conflicted, auth_diff, subgraph)
  local full = {}
  for id in pairs(conflicted) do full[id] = true end
  for id in pairs(auth_diff) do full[id] = true end
  for id in pairs(subgraph or {}) do full[id] = true end
  return full
end

-- The create event an event's auth is read against: v1-v11 cite it; v12
-- names it by the room ID.
local function create_for(version, ev, events)
  if version == "12" then return events[create_id_of_room(ev.room_id)] end
  for _, a in ipairs(auth_ids(ev)) do
    local e = events[a]
    if e and e.type == "m.room.create" and e.state_key == "" then return e end
  end
  return nil
end

-- Tie-break 1 of "Reverse topological power ordering": the sender's power
-- level "when looking at their respective auth_events", i.e. the power
-- levels (and the create event, for the creators) among its auth events.
function M.sender_power_level(version, ev, events)
  local st = {}
  for _, a in ipairs(auth_ids(ev)) do
    local e = events[a]
    if e and (e.type == "m.room.power_levels" or e.type == "m.room.create") and e.state_key == "" then
      st[key_of(e)] = e
    end
  end
  local create = create_for(version, ev, events)
  -- Without a create event (the create event itself cites none) nobody is
  -- a creator; the auth model reads creators from a create event, so it is
  -- given one that names nobody.
  st[key("m.room.create", "")] = create or { type = "m.room.create", state_key = "", sender = "", content = {} }
  return auth_model.user_level(version, st, ev.sender)
end

-- Kahn's algorithm over the auth_events DAG restricted to `ids`, earliest
-- first, taking at each step the smallest ready event under `less`.
local function kahn(ids, events, less)
  local pending = {}
  for id in pairs(ids) do
    local n = 0
    for _, a in ipairs(auth_ids(events[id])) do
      if ids[a] then n = n + 1 end
    end
    pending[id] = n
  end
  local out = {}
  while next(pending) do
    local best
    for id, n in pairs(pending) do
      if n == 0 and (best == nil or less(id, best)) then best = id end
    end
    if not best then error("the auth_events links form a cycle", 3) end
    pending[best] = nil
    out[#out + 1] = best
    for id in pairs(pending) do
      for _, a in ipairs(auth_ids(events[id])) do
        if a == best then pending[id] = pending[id] - 1 end
      end
    end
  end
  return out
end

local function ts_of(ev)
  return tonumber(ev.origin_server_ts) or 0
end

-- Definition "Reverse topological power ordering": Kahn's algorithm with
-- x < y when x's sender has the greater power, then the smaller
-- origin_server_ts, then the smaller event ID.
function M.reverse_topological_power_ordering(version, ids, events)
  local power = {}
  for id in pairs(ids) do power[id] = M.sender_power_level(version, events[id], events) end
  return kahn(ids, events, function(x, y)
    if power[x] ~= power[y] then return power[x] > power[y] end
    local tx, ty = ts_of(events[x]), ts_of(events[y])
    if tx ~= ty then return tx < ty end
    return x < y
  end)
end

-- The m.room.power_levels event among an event's auth events, if any.
local function power_levels_cited(ev, events)
  for _, a in ipairs(auth_ids(ev)) do
    local e = events[a]
    if e and e.type == "m.room.power_levels" and e.state_key == "" then return a end
  end
  return nil
end

-- Definition "Mainline ordering", first part: the mainline of P is
-- [P0 = P, P1, ...], each the power levels event cited by the one before.
function M.mainline(pl_id, events)
  local line = {}
  local p = pl_id
  while p do
    line[#line + 1] = p
    p = power_levels_cited(events[p], events)
  end
  return line
end

-- The mainline position of e: the index i of the first event of e's own
-- power levels chain [e1, e2, ...] (e itself not included) that is on the
-- mainline (as P_i), or infinity when none is.
function M.mainline_position(id, mainline, events)
  local index = {}
  for i, p in ipairs(mainline) do index[p] = i - 1 end
  local e = power_levels_cited(events[id], events)
  while e do
    if index[e] then return index[e] end
    e = power_levels_cited(events[e], events)
  end
  return huge
end

-- Definition "Mainline ordering": x < y when x's mainline position is the
-- greater, then the smaller origin_server_ts, then the smaller event ID.
function M.mainline_ordering(ids, pl_id, events)
  local mainline = pl_id and M.mainline(pl_id, events) or {}
  local pos, list = {}, {}
  for id in pairs(ids) do
    pos[id] = M.mainline_position(id, mainline, events)
    list[#list + 1] = id
  end
  sort(list, function(x, y)
    if pos[x] ~= pos[y] then return pos[x] > pos[y] end
    local tx, ty = ts_of(events[x]), ts_of(events[y])
    if tx ~= ty then return tx < ty end
    return x < y
  end)
  return list
end

-- The auth events an event is checked against during the iterative auth
-- checks: each (type, state_key) of the auth events selection from the
-- state, else from the event's own auth_events unless that one was
-- rejected. v12 events cite no create event: it is the room's, from the
-- state, else named by the room ID.
local function auth_events_for(version, ev, state, events)
  local own = {}
  for _, a in ipairs(auth_ids(ev)) do
    local e = events[a]
    if e and type(e.state_key) == "string" and not e.rejected then own[key_of(e)] = e end
  end
  local list = {}
  local wanted = auth_model.auth_types(version, ev)
  if version == "12" and ev.type ~= "m.room.create" then
    wanted[#wanted + 1] = { "m.room.create", "" }
  end
  for _, t in ipairs(wanted) do
    local k = key(t[1], t[2])
    local e = state[k] and events[state[k]] or own[k]
    if not e and t[1] == "m.room.create" and version == "12" then
      e = events[create_id_of_room(ev.room_id)]
    end
    if e then list[#list + 1] = e end
  end
  return list
end

-- Definition "Iterative auth checks": from an initial state, apply each
-- event of the list in turn when the auth rules allow it against the state
-- so far (with the fallback above), and ignore it otherwise. A rejected
-- event is never applied (the spec says none should appear; if one does,
-- admitting it would put a rejected event in the state).
function M.iterative_auth_checks(version, initial, list, events, auth)
  local state = copy(initial)
  for _, id in ipairs(list) do
    local ev = events[id]
    if not ev.rejected then
      local ok = auth(version, ev, auth_events_for(version, ev, state, events))
      if ok == true then state[key_of(ev)] = id end
    end
  end
  return state
end

-- Algorithm step 5: every key of the unconflicted state map takes its
-- unconflicted event. (v12 starts step 2 from the empty state, so a key
-- only the unconflicted map has is added here, not only replaced: the
-- text says "replacing", but a resolution that dropped the unconflicted
-- keys no event touched cannot be meant.)
function M.apply_unconflicted(state, unconflicted)
  local out = copy(state)
  for k, id in pairs(unconflicted) do out[k] = id end
  return out
end

-- Algorithm step 1: the power events of the full conflicted set, with their
-- auth chains (v12, and the "conflicted" reading for v2: only the auth chain
-- events that are in the full conflicted set).
function M.power_events_and_auth_chains(full, events, only_conflicted)
  local x = {}
  for id in pairs(full) do
    if M.is_power_event(events[id]) then x[id] = true end
  end
  local power = copy(x)
  for p in pairs(power) do
    for a in pairs(M.auth_chain(p, events)) do
      if not only_conflicted or full[a] then x[a] = true end
    end
  end
  return x
end

-- Algorithm step 3: the full conflicted set's events step 1 did not pick.
function M.remaining_events(full, picked)
  local rest = {}
  for id in pairs(full) do
    if not picked[id] then rest[id] = true end
  end
  return rest
end

local function resolve_v2(version, maps, events, auth, readings, v21)
  local unconflicted, conflicted = M.unconflicted_and_conflicted(maps)
  local auth_diff = M.auth_difference(maps, events, readings)
  local subgraph = v21 and M.conflicted_state_subgraph(conflicted, events) or nil
  local full = M.full_conflicted_set(conflicted, auth_diff, subgraph)
  -- 1
  local only_conflicted = v21 or readings.power_auth_chains == "conflicted"
  local picked = M.power_events_and_auth_chains(full, events, only_conflicted)
  local power_order = M.reverse_topological_power_ordering(version, picked, events)
  -- 2 (v12: from the empty state)
  local partial = M.iterative_auth_checks(version, v21 and {} or unconflicted, power_order, events, auth)
  -- 3
  local rest = M.remaining_events(full, picked)
  local rest_order = M.mainline_ordering(rest, partial[key("m.room.power_levels", "")], events)
  -- 4
  local resolved = M.iterative_auth_checks(version, partial, rest_order, events, auth)
  -- 5
  return M.apply_unconflicted(resolved, unconflicted)
end

---------------------------------------------------------------------------
-- Room version 1 (content/rooms/v1.md, "State resolution")

-- SHA-1 of a string as lower-case hex, for v1's sha1(event_id) orderings.
-- Plain arithmetic on 32-bit words when the `bit` library is absent.
local bit do
  local ok, b = pcall(require, "bit")
  if ok then bit = b end
end
local function u32(x) return x % 4294967296 end
local band, bor, bxor, bnot, rol
if bit then
  band = function(a, b) return u32(bit.band(a, b)) end
  bor = function(a, b) return u32(bit.bor(a, b)) end
  bxor = function(a, b) return u32(bit.bxor(a, b)) end
  bnot = function(a) return u32(bit.bnot(a)) end
  rol = function(a, n) return u32(bit.rol(a, n)) end
else
  local function bitwise(a, b, f)
    local r, p = 0, 1
    for _ = 1, 32 do
      if f(a % 2, b % 2) then r = r + p end
      a, b, p = floor(a / 2), floor(b / 2), p * 2
    end
    return r
  end
  band = function(a, b) return bitwise(a, b, function(x, y) return x == 1 and y == 1 end) end
  bor = function(a, b) return bitwise(a, b, function(x, y) return x == 1 or y == 1 end) end
  bxor = function(a, b) return bitwise(a, b, function(x, y) return x ~= y end) end
  bnot = function(a) return 4294967295 - a end
  rol = function(a, n)
    local hi = floor(a / 2 ^ (32 - n))
    return u32(a * 2 ^ n) + hi
  end
end

function M.sha1_hex(s)
  local len = #s
  local bits = len * 8
  s = s .. "\128" .. srep("\0", (55 - len) % 64)
  local tail = {}
  for i = 7, 0, -1 do tail[#tail + 1] = schar(floor(bits / 2 ^ (8 * i)) % 256) end
  s = s .. concat(tail)
  local h0, h1, h2, h3, h4 = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0
  for chunk = 1, #s, 64 do
    local w = {}
    for i = 0, 15 do
      local a, b, c, d = sbyte(s, chunk + 4 * i, chunk + 4 * i + 3)
      w[i] = ((a * 256 + b) * 256 + c) * 256 + d
    end
    for i = 16, 79 do
      w[i] = rol(bxor(bxor(w[i - 3], w[i - 8]), bxor(w[i - 14], w[i - 16])), 1)
    end
    local a, b, c, d, e = h0, h1, h2, h3, h4
    for i = 0, 79 do
      local f, k
      if i < 20 then
        f, k = bor(band(b, c), band(bnot(b), d)), 0x5A827999
      elseif i < 40 then
        f, k = bxor(bxor(b, c), d), 0x6ED9EBA1
      elseif i < 60 then
        f, k = bor(bor(band(b, c), band(b, d)), band(c, d)), 0x8F1BBCDC
      else
        f, k = bxor(bxor(b, c), d), 0xCA62C1D6
      end
      local t = u32(rol(a, 5) + f + e + k + w[i])
      e, d, c, b, a = d, c, rol(b, 30), a, t
    end
    h0, h1, h2, h3, h4 = u32(h0 + a), u32(h1 + b), u32(h2 + c), u32(h3 + d), u32(h4 + e)
  end
  return sformat("%08x%08x%08x%08x%08x", h0, h1, h2, h3, h4)
end

local function depth_of(ev) return tonumber(ev.depth) or 0 end

-- v1: "A conflict occurs between states where those states have different
-- event_ids for the same (event_type, state_key)". A state without the key
-- has no event ID for it, so a key some states lack is not a conflict (the
-- v2 text, by contrast, asks for the key in every state).
function M.v1_conflicts(maps)
  local values = {}
  for _, m in ipairs(maps) do
    for k, id in pairs(m) do
      values[k] = values[k] or {}
      values[k][id] = true
    end
  end
  local r, conflicts = {}, {}
  for k, ids in pairs(values) do
    if set_size(ids) == 1 then
      r[k] = next(ids)
    else
      conflicts[k] = sorted_keys(ids)
    end
  end
  return r, conflicts
end

local function v1_allowed(version, ev, r, events, auth)
  local list = {}
  for _, t in ipairs(auth_model.auth_types(version, ev)) do
    local id = r[key(t[1], t[2])]
    if id then list[#list + 1] = events[id] end
  end
  return auth(version, ev, list) == true
end

-- v1, the passes for power levels, join rules and each member key: sort by
-- ascending depth, then descending sha1(event_id); take the first
-- unchecked; then each next one while the auth rules allow it in R.
-- v1's two orderings: by depth, then sha1(event_id) the other way round.
local function v1_sorted(ids, events, depth_ascending)
  local list, sha = {}, {}
  for _, id in ipairs(ids) do
    list[#list + 1] = id
    sha[id] = M.sha1_hex(id)
  end
  sort(list, function(x, y)
    local dx, dy = depth_of(events[x]), depth_of(events[y])
    if dx ~= dy then
      if depth_ascending then return dx < dy end
      return dx > dy
    end
    if depth_ascending then return sha[x] > sha[y] end
    return sha[x] < sha[y]
  end)
  return list
end

function M.v1_resolve_auth_key(version, r, ids, events, auth)
  local list = v1_sorted(ids, events, true)
  local k = key_of(events[list[1]])
  r[k] = list[1]
  for i = 2, #list do
    if not v1_allowed(version, events[list[i]], r, events, auth) then break end
    r[k] = list[i]
  end
end

-- v1, the last pass: of a key's events, the one with the highest depth,
-- then lowest sha1(event_id), that the auth rules allow in R. When none is
-- allowed the text picks none, so the key is left out (Synapse keeps the
-- last one tried instead).
function M.v1_resolve_other_key(version, r, ids, events, auth)
  for _, id in ipairs(v1_sorted(ids, events, false)) do
    if v1_allowed(version, events[id], r, events, auth) then
      r[key_of(events[id])] = id
      return
    end
  end
end

local function resolve_v1(version, maps, events, auth)
  -- R starts as the union of the states without the conflicting events.
  local r, conflicts = M.v1_conflicts(maps)
  local pl, jr = key("m.room.power_levels", ""), key("m.room.join_rules", "")
  if conflicts[pl] then M.v1_resolve_auth_key(version, r, conflicts[pl], events, auth) end
  if conflicts[jr] then M.v1_resolve_auth_key(version, r, conflicts[jr], events, auth) end
  local members, others = {}, {}
  for k in pairs(conflicts) do
    if ssub(k, 1, 14) == "m.room.member\0" then
      members[#members + 1] = k
    elseif k ~= pl and k ~= jr then
      others[#others + 1] = k
    end
  end
  sort(members)
  sort(others)
  for _, k in ipairs(members) do M.v1_resolve_auth_key(version, r, conflicts[k], events, auth) end
  for _, k in ipairs(others) do M.v1_resolve_other_key(version, r, conflicts[k], events, auth) end
  return r
end

---------------------------------------------------------------------------

function M.resolve(version, state_sets, events, auth, opts)
  local algorithm = algorithm_of(version)
  if type(state_sets) ~= "table" or type(events) ~= "table" then
    error("state_sets and events must be tables", 2)
  end
  auth = auth or M.model_auth
  local readings = copy(M.READINGS)
  for k, v in pairs(opts or {}) do readings[k] = v end
  local ok, why = gather(version, state_sets, events)
  if not ok then return nil, why end
  local maps = {}
  for i, set in ipairs(state_sets) do maps[i] = state_map(set, events) end
  local resolved
  if #maps == 0 then
    resolved = {}
  elseif algorithm == "v1" then
    resolved = resolve_v1(version, maps, events, auth)
  else
    resolved = resolve_v2(version, maps, events, auth, readings, algorithm == "v2.1")
  end
  local out = {}
  for _, id in pairs(resolved) do out[#out + 1] = id end
  sort(out)
  return out
end

return M
