-- bench/store_resolve.lua - store:resolve on a large stored room, through
-- the auth chain index and walking whole auth chains (debug_walk_chains,
-- which is what store:resolve did in every version before it read the
-- index), in one store:
--
--   luajit bench/store_resolve.lua [BUILD_DIR] [N] [ROUNDS] [--k "1 100 1000"] [--version V]
--
-- A room of N joined members (default 10,000), room version V (default 10). Each case
-- forks the room's head: `one-key`, one member changes their displayname
-- on one branch while the other gets a message; `members-K`, both
-- branches change the displaynames of the same K members (2K conflicted
-- events). The branch events are ingested as `old`, so building the cases
-- resolves nothing. Each round times store:resolve(room, { a, b }) for
-- every case, the index and the walk alternating which goes first, and
-- checks that they answer the same. Prints, per case and path, the median
-- and min-max CPU time (os.clock) over the rounds (default 5), the events
-- the resolution read (debug_counts().resolve_events) and the index rows
-- (chain_rows).
local build, N, ROUNDS, KS, VERSION = "build", 10000, 5, { 1, 100, 1000 }, "10"
do
  local pos, i = {}, 1
  while arg[i] do
    if arg[i] == "--k" then
      KS = {}
      for w in arg[i + 1]:gmatch("%S+") do KS[#KS + 1] = tonumber(w) end
      i = i + 1
    elseif arg[i] == "--version" then
      VERSION = arg[i + 1]
      i = i + 1
    else
      pos[#pos + 1] = arg[i]
    end
    i = i + 1
  end
  build, N, ROUNDS = pos[1] or build, tonumber(pos[2]) or N, tonumber(pos[3]) or ROUNDS
end
local script_dir = (arg[0]:match("^(.*)/[^/]*$") or ".")
local root = script_dir .. "/.."
package.path = root .. "/bench/?.lua;" .. root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = build .. "/?.so;" .. package.cpath
local roomstate = require "roomstate"
local summary = require "median"
local clock = os.clock

local store = assert(roomstate.open(":memory:"))
local rid, cases = require("resolve_room")(store, N, KS, VERSION)

local function counts()
  local c = store:debug():debug_counts()
  return c.resolve_events, c.chain_rows
end

local function timed(case, walk)
  store:debug():debug_walk_chains(walk)
  collectgarbage()
  local e0, r0 = counts()
  local t0 = clock()
  local got = assert(store:resolve(rid, case.sets))
  local t = clock() - t0
  local e1, r1 = counts()
  store:debug():debug_walk_chains(false)
  return got, t, e1 - e0, r1 - r0
end

local res = {}
for r = 1, ROUNDS do
  for _, case in ipairs(cases) do
    local order = r % 2 == 1 and { false, true } or { true, false }
    local answers = {}
    for _, walk in ipairs(order) do
      local got, t, ev, rows = timed(case, walk)
      local key = case.name .. (walk and " walk" or " index")
      res[key] = res[key] or { t = {}, ev = ev, rows = rows }
      res[key].t[r] = t
      answers[#answers + 1] = table.concat(got, ",")
    end
    assert(answers[1] == answers[2], case.name .. ": the index and the walk disagree")
  end
end

print(("v%s, N = %d members, %d rounds"):format(VERSION, N, ROUNDS))
print("| case | path | time, median (min-max) | events read | index rows |")
print("|---|---|---:|---:|---:|")
for _, case in ipairs(cases) do
  for _, path in ipairs({ "index", "walk" }) do
    local x = res[case.name .. " " .. path]
    local med, lo, hi = summary(x.t)
    print(("| %s | %s | %.2f ms (%.2f-%.2f) | %d | %d |"):format(case.name, path, med * 1000,
          lo * 1000, hi * 1000, x.ev, x.rows))
  end
end
