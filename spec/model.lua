-- A naive model of room state for the specs: plain Lua tables of
-- "type\0state_key" -> event_id, replayed event by event. It shares no code
-- with the library; where the two disagree, one of them is wrong. Where
-- states differ (a merge, several extremities) it resolves them with the
-- naive state resolution (spec/stateres_model.lua). It applies no auth
-- rules: the streams that drive it send only events the rules allow.
local R = require "stateres_model"

local M = {}
M.__index = M

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end
M.copy = copy

local function key(ev) return ev.type .. "\0" .. ev.state_key end

function M.new()
  return setmetatable({
    events = {},      -- id -> pdu
    kind = {},        -- id -> "new"/"old"/"outlier"
    before = {},      -- id -> state table (nil: no state)
    after = {},
    children = {},    -- id -> true when some stored non-outlier lists it as prev
    rooms = {},       -- room -> { current = state, ext = {id=true} }
  }, M)
end

local function same(a, b)
  for k, v in pairs(a) do if b[k] ~= v then return false end end
  for k, v in pairs(b) do if a[k] ~= v then return false end end
  return true
end
M.same = same

-- The room versions the naive resolution knows ("1" to "12"); a room of
-- another (an older file's) has no algorithm: the store refuses differing
-- states there with STATE_CONFLICT.
local function known_version(v)
  local n = tonumber(v)
  return type(v) == "string" and n and tostring(n) == v and n >= 1 and n <= 12
end

-- The state where several states meet, as the store computes it: states
-- that are equal merge; differing ones are resolved by the naive
-- resolution of the room's version (spec/stateres_model.lua) over the
-- events the model holds. Returns the state, or nil and the code the
-- store must fail with.
function M:merge(version, states)
  local first = states[1]
  local differ = false
  for i = 2, #states do differ = differ or not same(first, states[i]) end
  if not differ then return first end
  if not known_version(version) then return nil, "STATE_CONFLICT" end
  local sets = {}
  for i, st in ipairs(states) do
    local ids = {}
    for _, id in pairs(st) do ids[#ids + 1] = id end
    table.sort(ids)
    sets[i] = ids
  end
  local ids = R.resolve(version, sets, self.events)
  if not ids then return nil, "MISSING_AUTH" end
  local out = {}
  for _, id in ipairs(ids) do out[key(self.events[id])] = id end
  return out
end

local function prev_ids(pdu)
  local out = {}
  for i, p in ipairs(pdu.prev_events) do out[i] = type(p) == "table" and p[1] or p end
  return out
end

-- Predicts what ingesting pdu with kind/state does. Returns "ok",
-- "duplicate", or an error code the library must also return.
function M:ingest(pdu, kind, state_ids)
  kind = kind or "new"
  local rank = { outlier = 1, old = 2, new = 3 }
  local id = pdu.event_id
  if self.kind[id] and rank[self.kind[id]] >= rank[kind] then return "duplicate" end
  local room = self.rooms[pdu.room_id]
  local version = room and room.version or pdu.content.room_version or "1"
  local is_create = pdu.type == "m.room.create" and pdu.state_key == ""
  if not room and not is_create then return "UNKNOWN_ROOM" end
  local before
  if kind ~= "outlier" then
    if state_ids then
      before = {}
      for _, sid in ipairs(state_ids) do
        local e = self.events[sid]
        if not e or e.state_key == nil or e.room_id ~= pdu.room_id then return "BAD_STATE" end
        if before[key(e)] and before[key(e)] ~= sid then return "BAD_STATE" end
        before[key(e)] = sid
      end
    else
      local prevs = prev_ids(pdu)
      if #prevs == 0 then
        before = {}
      else
        for _, p in ipairs(prevs) do
          if not self.after[p] then
            if kind == "new" then return "MISSING_PREV" end
            before = false
          end
        end
        if before == nil then
          local states = {}
          for i, p in ipairs(prevs) do states[i] = self.after[p] end
          local why
          before, why = self:merge(version, states)
          if not before then return why end
        end
      end
    end
  end
  local after
  if before then
    after = copy(before)
    if pdu.state_key ~= nil then after[key(pdu)] = id end
  end
  -- the new current state, checked before anything is recorded
  local new_ext, current
  if kind == "new" then
    if not room then room = { current = {}, ext = {} } end
    new_ext = {}
    if not state_ids then
      local prevs = {}
      for _, p in ipairs(prev_ids(pdu)) do prevs[p] = true end
      for e in pairs(room.ext) do if not prevs[e] and e ~= id then new_ext[e] = true end end
    end
    if not self.children[id] then new_ext[id] = true end
    local states, ids = {}, {}
    for e in pairs(new_ext) do ids[#ids + 1] = e end
    table.sort(ids) -- pairs order is not reproducible
    for i, e in ipairs(ids) do states[i] = e == id and after or self.after[e] end
    if #states > 0 then
      -- the event's own state after may be among them: the resolution
      -- reads it, though it is recorded only once all is known
      local had, why = self.events[id], nil
      self.events[id] = had or pdu
      current, why = self:merge(version, states)
      self.events[id] = had
      if not current then return why end
    end
    current = current or room.current
  end
  -- record
  self.events[id] = pdu
  self.kind[id] = kind
  if before then
    self.before[id], self.after[id] = before, after
  else
    self.before[id], self.after[id] = nil, nil
  end
  if kind ~= "outlier" then
    for _, p in ipairs(prev_ids(pdu)) do self.children[p] = true end
  end
  if not self.rooms[pdu.room_id] then
    self.rooms[pdu.room_id] = { current = {}, ext = {}, version = version }
  end
  if kind == "new" then
    local r = self.rooms[pdu.room_id]
    r.current, r.ext = current, new_ext
  end
  return "ok"
end

-- A State object's content as a model table.
function M.from_state(st)
  local t = {}
  for ty, sk, ev in st:entries() do t[ty .. "\0" .. sk] = ev end
  return t
end

-- A readable difference, for assertion messages.
function M.describe_diff(want, got)
  local lines = {}
  for k, v in pairs(want) do
    if got[k] ~= v then lines[#lines + 1] = ("%s: want %s got %s"):format((k:gsub("%z", "|")), v, tostring(got[k])) end
  end
  for k, v in pairs(got) do
    if want[k] == nil then lines[#lines + 1] = ("%s: want nil got %s"):format((k:gsub("%z", "|")), v) end
  end
  table.sort(lines)
  return table.concat(lines, "; ")
end

return M
