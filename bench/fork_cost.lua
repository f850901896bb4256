-- bench/fork_cost.lua - what a one-key fork costs at ingest in a room of N
-- members: the resolution through the auth chain index against the walk of
-- whole auth chains (debug_walk_chains), on two stores fed the same events.
-- Each round forks the room (one member changes their displayname on a
-- side branch while another sends a message), merges it back, and times
-- the three ingests on each store; the stores alternate within a round.
-- Prints the median and min-max of the rounds, the events read and the
-- auth chain index rows read, and for the index the auth difference's
-- events and walk (difference rows less the own events' covers).
--   luajit bench/fork_cost.lua [N] [ROUNDS]
package.path = "bench/?.lua;lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local roomstate = require "roomstate"
local summary = require "median"
local harness = require "roomstate.harness"

local N = tonumber(arg[1]) or 2000
local ROUNDS = tonumber(arg[2]) or 5
local clock = os.clock

local stores = { index = assert(roomstate.open(":memory:")), walk = assert(roomstate.open(":memory:")) }
stores.walk:debug():debug_walk_chains(true)
local current = "index"
local proxy = setmetatable({}, { __index = function(_, name)
  return function(_, ...)
    if name == "ingest" then
      local other = current == "index" and "walk" or "index"
      assert(stores[other]:ingest(...))
    end
    local s = stores[current]
    return s[name](s, ...)
  end
end })
local h = harness.new(proxy, { server = "bench", version = "10" })
local main = assert(h:create_room("@alice:x"))
for i = 1, N do assert(main:join("@m" .. i .. ":x")) end

-- times[name][round], events[name][round]
local times, events = { index = {}, walk = {} }, { index = {}, walk = {} }
local rows = { index = {}, walk = {} } -- auth chain index rows the fork read
-- the fork's auth differences: events in them, rows past the covers, cover rows
local diff = { index = { events = {}, walked = {}, cover = {} }, walk = { events = {}, walked = {}, cover = {} } }
local function walk_counts(name)
  local c = stores[name]:debug():debug_counts()
  return c.difference_events, c.difference_rows - c.difference_cover_rows, c.difference_cover_rows
end
local plain = { index = {}, walk = {} } -- a message on the head, no fork
local function read(name) return stores[name]:debug():debug_counts().resolve_events end
local function chain_rows(name) return stores[name]:debug():debug_counts().chain_rows end
for r = 1, ROUNDS do
  -- main sends a message; a side event on the same parent changes one
  -- member's displayname: two extremities, states differing in one key
  local base = main.head[1]
  assert(main:send("m" .. r, { sender = "@alice:x" }))
  local side = main:at(base)
  local user = "@m" .. r .. ":x"
  local id, _, text = side:emit({ type = "m.room.member", state_key = user, sender = user,
    content = { membership = "join", displayname = "r" .. r } }, { ingest = false })
  local order = r % 2 == 1 and { "index", "walk" } or { "walk", "index" }
  for _, name in ipairs(order) do
    local s = stores[name]
    local d0, w0, v0 = walk_counts(name)
    local e0, c0, t0 = read(name), chain_rows(name), clock()
    assert(s:ingest(text))
    times[name][r] = clock() - t0
    events[name][r] = read(name) - e0
    rows[name][r] = chain_rows(name) - c0
    local d1, w1, v1 = walk_counts(name)
    diff[name].events[r], diff[name].walked[r], diff[name].cover[r] = d1 - d0, w1 - w0, v1 - v0
  end
  side.head = { id }
  assert(main:merge(side))
  local mid, _, msg = main:emit({ type = "m.room.message", sender = "@alice:x",
    content = { body = "plain" .. r } }, { ingest = false })
  for _, name in ipairs(order) do
    local t0 = clock()
    assert(stores[name]:ingest(msg))
    plain[name][r] = clock() - t0
  end
  main.head = { mid }
end

for _, name in ipairs({ "index", "walk" }) do
  local med, lo, hi = summary(times[name])
  local emed, rmed = summary(events[name]), summary(rows[name])
  local pmed, plo, phi = summary(plain[name])
  print(("N=%d %-5s fork ingest %.2f ms (%.2f-%.2f), events read %d; message %.3f ms (%.3f-%.3f)"):format(
    N, name, med * 1000, lo * 1000, hi * 1000, emed, pmed * 1000, plo * 1000, phi * 1000)
    .. (", index rows %d"):format(rmed))
end
local de, dlo, dhi = summary(diff.index.events)
local dw, wlo, whi = summary(diff.index.walked)
local dc = summary(diff.index.cover)
print(("N=%d index auth difference: events %d (%d-%d), walked %d (%d-%d), cover rows %d"):format(
  N, de, dlo, dhi, dw, wlo, whi, dc))
