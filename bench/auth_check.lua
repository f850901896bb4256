-- bench/auth_check.lua - the cost of one pure roomstate.auth_check call
-- (issue 12, section 5), from LuaJIT:
--
--   luajit bench/auth_check.lua BUILD_DIR [ROUNDS] [SECONDS_PER_ROUND]
--
-- Cases: a message in a small room; a message, and a join, in a room whose
-- m.room.power_levels `users` map has 100,000 entries. Each case runs with
-- the event and its auth events as JSON text (encoded once, before any
-- timing) and as Lua tables (which auth_check encodes on every call). The
-- cases alternate within each round, so noise from other work on the
-- machine falls on all of them alike. A round is up to 20,000 calls, fewer
-- when that would take over SECONDS_PER_ROUND (default 0.5). Prints a
-- markdown table: the median over the rounds of the mean time per call in a
-- round, and the min-max of that mean over the rounds.
local script_dir = (arg[0]:match("^(.*)/[^/]*$") or ".")
local root = script_dir .. "/.."
local build = assert(arg[1], "usage: luajit bench/auth_check.lua BUILD_DIR [ROUNDS] [SECONDS]")
local ROUNDS = tonumber(arg[2]) or 7
local ROUND_SECONDS = tonumber(arg[3]) or 0.5
local MAX_CALLS = 20000
package.path = root .. "/bench/?.lua;" .. root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;"
               .. package.path
package.cpath = build .. "/?.so;" .. package.cpath

local roomstate = require "roomstate"
local encode = require("roomstate.event").json.encode
local now = require "clock"

local VERSION = "10"
local ROOM = "!bench:example.org"
local CREATOR = "@alice:example.org"
local n_ev = 0

-- a PDU of room version 10 as a Lua table
local function pdu(type_, sender, content, state_key, auth)
  n_ev = n_ev + 1
  return {
    auth_events = auth or {}, content = content, depth = n_ev,
    hashes = { sha256 = "aGFzaA" }, origin = "example.org",
    origin_server_ts = 1700000000000 + n_ev, prev_events = { "$prev" .. n_ev },
    room_id = ROOM, sender = sender, state_key = state_key, type = type_,
    signatures = { ["example.org"] = { ["ed25519:a"] = "c2ln" } },
  }
end

local function room(n_users)
  local create = pdu("m.room.create", CREATOR, { creator = CREATOR, room_version = VERSION }, "")
  create.event_id = "$create"
  create.prev_events = {}
  local users = { [CREATOR] = 100 }
  for i = 1, n_users do users[string.format("@user%06d:example.org", i)] = 50 end
  local power = pdu("m.room.power_levels", CREATOR, {
    ban = 50, events = { ["m.room.name"] = 50, ["m.room.power_levels"] = 100 },
    events_default = 0, invite = 0, kick = 50, redact = 50, state_default = 50,
    users = users, users_default = 0,
  }, "", { "$create" })
  local join_rules = pdu("m.room.join_rules", CREATOR, { join_rule = "public" }, "",
                         { "$create", "$power" })
  local bob = "@bob:example.org"
  local bob_member = pdu("m.room.member", bob, { membership = "join" }, bob,
                         { "$create", "$power", "$join_rules" })
  local message = pdu("m.room.message", bob, { body = "hello", msgtype = "m.text" }, nil,
                      { "$create", "$power", "$bob" })
  local carol = "@carol:example.org"
  local join = pdu("m.room.member", carol, { membership = "join", displayname = "carol" },
                   carol, { "$create", "$power", "$join_rules" })
  return {
    message = { message, { create, power, bob_member } },
    join = { join, { create, power, join_rules } },
  }
end

local function as_json(c)
  local auth = {}
  for i, e in ipairs(c[2]) do auth[i] = encode(e) end
  return { encode(c[1]), auth }
end

local small, big = room(0), room(100000)
local cases = {}
local function add(name, c)
  cases[#cases + 1] = { name = name, form = "JSON text", ev = as_json(c) }
  cases[#cases + 1] = { name = name, form = "Lua tables", ev = c }
end
add("message, small room", small.message)
add("message, 100k-user power levels", big.message)
add("join, 100k-user power levels", big.join)
-- the split: decoding the power-levels event alone (auth_types parses
-- just its event argument), against the whole check
cases[#cases + 1] = { name = "parse the 100k-user power levels only (auth_types)",
                      form = "JSON text", ev = { encode(big.message[2][2]) }, types = true }

local auth_check, auth_types = roomstate.auth_check, roomstate.auth_types
for _, c in ipairs(cases) do
  if c.types then c.fn = function(v, e) return auth_types(v, e) end else c.fn = auth_check end
  local ok, why = c.fn(VERSION, c.ev[1], c.ev[2])
  assert(ok, c.name .. " (" .. c.form .. ") is refused: " .. tostring(why))
  if c.form == "JSON text" then
    c.bytes = #c.ev[1]
    for _, a in ipairs(c.ev[2] or {}) do c.bytes = c.bytes + #a end
  end
end

-- calls per round: as many as fit in ROUND_SECONDS, at most MAX_CALLS
for _, c in ipairs(cases) do
  for _ = 1, 3 do c.fn(VERSION, c.ev[1], c.ev[2]) end -- warm up (JIT, allocator)
  local t0 = now()
  for _ = 1, 3 do c.fn(VERSION, c.ev[1], c.ev[2]) end
  local dt = (now() - t0) / 3
  c.calls = math.max(3, math.min(MAX_CALLS, math.floor(ROUND_SECONDS / math.max(dt, 1e-7))))
  c.per_call = {}
end

for _ = 1, ROUNDS do
  for _, c in ipairs(cases) do
    local ev, auth, n, fn = c.ev[1], c.ev[2], c.calls, c.fn
    collectgarbage()
    local t0 = now()
    for _ = 1, n do fn(VERSION, ev, auth) end
    c.per_call[#c.per_call + 1] = (now() - t0) / n
  end
end

local function stats(v)
  table.sort(v)
  local m = #v % 2 == 1 and v[(#v + 1) / 2] or (v[#v / 2] + v[#v / 2 + 1]) / 2
  return m, v[1], v[#v]
end

local function us(x)
  x = x * 1e6
  if x >= 100 then return string.format("%.0f", x) end
  if x >= 10 then return string.format("%.1f", x) end
  return string.format("%.2f", x)
end

print(string.format("roomstate.auth_check, room version %s, %s; %d rounds, cases alternating",
                    VERSION, jit and jit.version or _VERSION, ROUNDS))
print("")
print("| case | events given as | JSON bytes | calls per round | median µs per call | min–max |")
print("|---|---|---:|---:|---:|---|")
local json_median = {}
for _, c in ipairs(cases) do
  local m, lo, hi = stats(c.per_call)
  if c.form == "JSON text" then json_median[c.name] = m end
  print(string.format("| %s | %s | %s | %d | %s | %s–%s |", c.name, c.form,
                      c.bytes and tostring(c.bytes) or "", c.calls, us(m), us(lo), us(hi)))
end
print("")
local base = json_median["message, small room"]
print(string.format("Split (medians, JSON text): the 100k-user power levels add %s µs to a message "
                    .. "(%s vs %s); decoding that one event alone takes %s µs.",
                    us(json_median["message, 100k-user power levels"] - base),
                    us(json_median["message, 100k-user power levels"]), us(base),
                    us(json_median["parse the 100k-user power levels only (auth_types)"])))
