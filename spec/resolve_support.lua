-- The naive model's resolution (spec/stateres_model.lua M.resolve) of
-- states held in a store: the events of the states and of their whole auth
-- chains are read back from the store as the JSON it was given, with the
-- store's verdict (rejected or not). The specs hold ingestion's merges
-- against it; it shares no code with csrc/resolve*.c.
local R = require "stateres_model"
local cjson = require "cjson"

local M = {}

-- A state object's event IDs, sorted.
function M.ids_of(st)
  local ids = {}
  for _, _, id in st:entries() do ids[#ids + 1] = id end
  table.sort(ids)
  return ids
end

-- A state as key -> event ID, as its event IDs sorted.
function M.ids_of_map(map)
  local ids = {}
  for _, id in pairs(map) do ids[#ids + 1] = id end
  table.sort(ids)
  return ids
end

local function ref_id(r) return type(r) == "table" and r[1] or r end

-- id -> event table for every event the sets and their auth chains hold.
function M.events_for(store, sets)
  local events, queue = {}, {}
  local function add(id)
    if events[id] then return end
    local text = assert(store:event(id), "not stored: " .. id)
    local ev = cjson.decode(text)
    ev.event_id = ev.event_id or id
    ev.rejected = store:event_status(id) == "rejected" or nil
    events[id] = ev
    queue[#queue + 1] = ev
  end
  for _, s in ipairs(sets) do for _, id in ipairs(s) do add(id) end end
  local i = 1
  while queue[i] do
    for _, r in ipairs(queue[i].auth_events or {}) do add(ref_id(r)) end
    i = i + 1
  end
  return events
end

-- The model's resolution of several stored states (arrays of event IDs),
-- as key -> event ID; states that are equal need no resolution.
function M.resolve(store, version, sets)
  local events = M.events_for(store, sets)
  local ids = assert(R.resolve(version, sets, events))
  local map = {}
  for _, id in ipairs(ids) do
    local ev = events[id]
    map[ev.type .. "\0" .. ev.state_key] = id
  end
  return map
end

-- The model's state where the events meet: the resolution of the states
-- after them.
function M.resolve_after(store, version, ids)
  local sets = {}
  for i, id in ipairs(ids) do sets[i] = M.ids_of(assert(store:state_after(id))) end
  return M.resolve(store, version, sets)
end

-- Seeded random forks that change state on both branches: four users join
-- `main`'s room and one gets power 50, then each of `rounds` rounds forks
-- the main line, takes 1-3 random actions on each branch (bans racing
-- messages, power changes racing joins, topics on both sides) and merges.
-- step(cursor, fn) ingests fn(cursor) (-> id | nil, err) and checks it;
-- it returns false to stop. before_merge(main, side), when given, runs
-- before each merge.
M.USERS = { "@u1:x", "@u2:x", "@u3:x", "@u4:x" }

function M.random_forks(main, rng, rounds, step, before_merge)
  local users = M.USERS
  for _, u in ipairs(users) do step(main, function(c) return c:join(u) end) end
  step(main, function(c)
    return c:state("m.room.power_levels", "", { users = { ["@alice:x"] = 100, ["@u1:x"] = 50 } })
  end)
  local ACTIONS = {
    function(c) return c:ban(users[rng(#users)], { by = "@alice:x" }) end,
    function(c) return c:send("hello", { sender = users[rng(#users)] }) end,
    function(c)
      local levels = { ["@alice:x"] = 100 }
      levels[users[rng(#users)]] = rng(2) == 1 and 50 or 0
      return c:state("m.room.power_levels", "", { users = levels })
    end,
    function(c) return c:join(users[rng(#users)]) end,
    function(c) return c:leave(users[rng(#users)]) end,
    function(c)
      local who = rng(2) == 1 and "@alice:x" or users[rng(#users)]
      return c:state("m.room.topic", "", { topic = "t" .. rng(1000) }, { sender = who })
    end,
  }
  for _ = 1, rounds do
    local side = main:at(main.head[1])
    local go = true
    for _ = 1, rng(3) do go = step(main, ACTIONS[rng(#ACTIONS)]) ~= false and go end
    for _ = 1, rng(3) do go = step(side, ACTIONS[rng(#ACTIONS)]) ~= false and go end
    if not go then return end
    if before_merge then before_merge(main, side) end
    if step(main, function(c) return c:merge(side) end) == false then return end
  end
end

return M
