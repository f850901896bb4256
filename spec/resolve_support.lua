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

return M
