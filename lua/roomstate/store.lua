-- roomstate.store: the Store object users hold.
--
-- One event takes one walk: decode and validate (roomstate.event), then
-- the C core stores it with its state, extremities, current state and
-- output in one SQLite transaction, then the outputs are read back and
-- delivered to subscribers (roomstate.outbox) after the commit.
local core = require "roomstate.core"
local json_tree_free = core.json_tree_free
local event = require "roomstate.event"
local outbox = require "roomstate.outbox"

local type, error, setmetatable, tostring, pcall, pairs, string_format, math_floor, math_huge =
      type, error, setmetatable, tostring, pcall, pairs, string.format, math.floor, math.huge
local table_concat = table.concat

local Store = {}
Store.__index = Store

local KINDS = { new = true, old = true, outlier = true }

-- A closed store is a caller mistake; the message names the method.
local function check_open(self, fname, level)
  if self._core:is_closed() then
    error(string_format("'%s' called on a closed store", fname), (level or 2) + 1)
  end
  return self._core
end

-- Caller mistakes in options raise, naming the function, the option and
-- the value, and for a batch the item.
local function check_opts(opts, what, level, item)
  local at = item and string_format("item %d: ", item) or ""
  local function bad(option, fmt, ...)
    error(string_format("bad option '%s' to '%s' (%s" .. fmt .. ")", option, what, at, ...), level + 1)
  end
  if opts == nil then return "new", nil end
  if type(opts) ~= "table" then
    error(string_format("bad argument #2 to '%s' (options table expected, got %s)", what, type(opts)), level)
  end
  local kind = opts.kind
  if kind == nil then kind = "new" end
  if not KINDS[kind] then
    bad("kind", "\"new\", \"old\" or \"outlier\" expected, got %s", tostring(kind))
  end
  local state = opts.state
  if state ~= nil then
    if type(state) ~= "table" then
      bad("state", "array of event IDs expected, got %s", type(state))
    end
    for i = 1, #state do
      if type(state[i]) ~= "string" then
        bad("state", "state[%d] is %s, not an event ID", i, type(state[i]))
      end
    end
    if kind == "outlier" then bad("state", "an outlier has no state") end
  end
  return kind, state
end

function Store.open(path, opts)
  if type(path) ~= "string" then
    error("bad argument #1 to 'open' (path string expected, got " .. type(path) .. ")", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #2 to 'open' (options table expected, got " .. type(opts) .. ")", 2)
  end
  local c, err, code = core.open(path, opts)
  if not c then return nil, err, code end
  return setmetatable({
    _core = c,
    _subs = {},
    _deliver = not (opts and opts.deliver == false),
    _delivering = false,
  }, Store)
end

function Store:close()
  self._core:close()
end

function Store:is_closed()
  return self._core:is_closed()
end

-- Validates and stores one event inside the open transaction.
local function ingest_one(c, ev, kind, state)
  local fields, err, code = event.decode(ev)
  if not fields then return nil, err, code end
  -- the result names the IDs the core stored it under: given, or computed
  local res, ierr, icode = c:ingest(fields, kind, state)
  -- the parsed tree, read by the core for this call only (or kept by its
  -- auth cache under a reference of its own), goes now, not at the next
  -- collection: a batch holds a thousand
  if fields.tree then json_tree_free(fields.tree) end
  return res, ierr, icode
end

-- Reads back the outputs the results produced, after the commit, in one
-- read: a batch's positions are increasing, so one range covers them.
-- Returns the texts read ({ first =, texts = }) for delivery to reuse when
-- their positions are contiguous, else false; nil, err, code on failure.
local function attach_outputs(c, results)
  local first, last
  for i = 1, #results do
    local p = results[i].position
    if p > 0 then
      first = first or p
      last = p
    end
  end
  local by_pos, recent = {}, nil
  if first then
    local texts, err, code = outbox.read_raw(c, first, last - first + 1)
    if not texts then return nil, err, code end
    local outs = outbox.decode_all(texts)
    for i = 1, #outs do by_pos[outs[i].position] = outs[i] end
    if #outs > 0 and outs[#outs].position - outs[1].position + 1 == #outs then
      recent = { first = outs[1].position, texts = texts }
    end
  end
  for i = 1, #results do
    local r = results[i]
    r.outputs = { by_pos[r.position] }
    r.position = nil
  end
  return recent or false
end

-- A callback that ingests or delivers does not deliver again from inside
-- the delivery: the running one picks its outputs up.
local function deliver_now(self, name, recent)
  if self._delivering then return {}, nil end
  self._delivering = true
  local ok, delivered, errors = pcall(outbox.deliver, self._core, self._subs, name, recent)
  self._delivering = false
  if not ok then error(delivered, 0) end
  return delivered, errors
end

local function run_batch(self, items, deliver, level, batch)
  local c = check_open(self, batch and "ingest_batch" or "ingest", level)
  if c:in_transaction() then error("ingest called from inside a batch", level) end
  local kinds, states = {}, {}
  for i = 1, #items do
    local it = items[i]
    if type(it) ~= "table" or it.event == nil then
      error(string_format("bad argument #1 to 'ingest_batch' (item %d: a table with an 'event' field expected)", i), level)
    end
    kinds[i], states[i] = check_opts(it, "ingest_batch", level + 1, i)
  end
  local ok, err, code = c:begin()
  if not ok then return nil, err, code end
  local results = {}
  for i = 1, #items do
    local res
    res, err, code = ingest_one(c, items[i].event, kinds[i], states[i])
    if not res then
      c:rollback()
      if #items > 1 or batch then
        err = string_format("%s: item %d: %s", code, i, err:gsub("^[%u_]+: ", "", 1))
      end
      return nil, err, code
    end
    results[i] = res
  end
  ok, err, code = c:commit()
  if not ok then return nil, err, code end
  local recent
  recent, err, code = attach_outputs(c, results)
  if recent == nil then return nil, err, code end
  if deliver then deliver_now(self, nil, recent or nil) end
  return results
end

local function wants_delivery(self, opts, fname)
  if opts ~= nil and type(opts) ~= "table" then
    error(string_format("bad argument #2 to '%s' (options table expected, got %s)", fname,
                        type(opts)), 3)
  end
  if opts and opts.deliver ~= nil then return opts.deliver end
  return self._deliver
end

-- store:ingest(event [, opts]) -> result | nil, err, code
function Store:ingest(ev, opts)
  if type(ev) ~= "string" and type(ev) ~= "table" then
    error("bad argument #1 to 'ingest' (JSON string or table expected, got " .. type(ev) .. ")", 2)
  end
  local kind, state = check_opts(opts, "ingest", 3)
  local results, err, code = run_batch(self, { { event = ev, kind = kind, state = state } },
                                       wants_delivery(self, opts, "ingest"), 3)
  if not results then return nil, err, code end
  return results[1]
end

-- store:ingest_batch(items [, opts]) -> results | nil, err, code
function Store:ingest_batch(items, opts)
  if type(items) ~= "table" then
    error("bad argument #1 to 'ingest_batch' (array of items expected, got " .. type(items) .. ")", 2)
  end
  -- `true`: errors name the item even in a list of one.
  local results, err, code = run_batch(self, items, wants_delivery(self, opts, "ingest_batch"), 3, true)
  return results, err, code
end

-- Caller mistakes in queries raise naming the method and the argument,
-- counted as the caller counts them: a tail call into C would leave Lua
-- only '?' to say. `level` as for error(), from the method's frame.
local function check_arg(ok, n, fname, expected, v, level)
  if ok then return end
  local got = type(v) == "string" and string_format("%q", v) or type(v)
  error(string_format("bad argument #%d to '%s' (%s expected, got %s)", n, fname, expected, got),
        (level or 2) + 1)
end

local function is_count(v)
  return type(v) == "number" and v >= 0 and v == math_floor(v) and v < math_huge
end

-- Queries: string IDs in, State objects or strings out. Those taking one
-- ID are the core's method of the same name.
local ONE_ID = {
  current_state = "room ID", state_before = "event ID", state_after = "event ID",
  latest_events = "room ID", event = "event ID", event_status = "event ID",
}
for name, what in pairs(ONE_ID) do
  local expected = what .. " string"
  Store[name] = function(self, id)
    check_arg(type(id) == "string", 1, name, expected, id)
    local c = check_open(self, name)
    return c[name](c, id)
  end
end

function Store:rooms() return check_open(self, "rooms"):rooms() end

-- The memberships the member index keeps: the Matrix spec's five.
local MEMBERSHIPS = { "join", "invite", "leave", "ban", "knock" }
local IS_MEMBERSHIP = {}
for i = 1, #MEMBERSHIPS do IS_MEMBERSHIP[MEMBERSHIPS[i]] = true end
local MEMBERSHIP_EXPECTED = table_concat(MEMBERSHIPS, ", ", 1, #MEMBERSHIPS - 1) .. " or "
                            .. MEMBERSHIPS[#MEMBERSHIPS]
Store.MEMBERSHIPS = MEMBERSHIPS
function Store.is_membership(m) return IS_MEMBERSHIP[m] == true end

-- A membership nobody has (a typo of "join") is a caller mistake, not an
-- empty list.
function Store:members(room_id, membership)
  check_arg(type(room_id) == "string", 1, "members", "room ID string", room_id)
  check_arg(membership == nil or IS_MEMBERSHIP[membership], 2, "members", MEMBERSHIP_EXPECTED,
            membership)
  return check_open(self, "members"):members(room_id, membership)
end

local function room_info(self, room_id, fname)
  check_arg(type(room_id) == "string", 1, fname, "room ID string", room_id, 3)
  return check_open(self, fname, 3):room_info(room_id)
end

function Store:room_version(room_id)
  local info, err, code = room_info(self, room_id, "room_version")
  if not info then return nil, err, code end
  return info.version
end

-- The room's current state hash (16 hex digits), as outputs carry it.
function Store:state_hash(room_id)
  local info, err, code = room_info(self, room_id, "state_hash")
  if not info then return nil, err, code end
  return info.state_hash
end

-- store:resolve(room_id, state_sets) -> sorted event IDs | nil, err, code
-- State resolution over the room's stored events. Each entry of
-- state_sets is an array of event IDs (a state) or an event ID standing
-- for the state after that event.
function Store:resolve(room_id, state_sets)
  check_arg(type(room_id) == "string", 1, "resolve", "room ID string", room_id)
  check_arg(type(state_sets) == "table", 2, "resolve", "array of state sets", state_sets)
  for i = 1, #state_sets do
    local s = state_sets[i]
    if type(s) == "table" then
      for j = 1, #s do
        if type(s[j]) ~= "string" then
          error(string_format("bad argument #2 to 'resolve' (state_sets[%d][%d]: event ID expected, got %s)",
                              i, j, type(s[j])), 2)
        end
      end
    elseif type(s) ~= "string" then
      error(string_format("bad argument #2 to 'resolve' (state_sets[%d]: event ID or array of event IDs expected, got %s)",
                          i, type(s)), 2)
    end
  end
  local c = check_open(self, "resolve")
  return c:resolve(room_id, state_sets)
end

-- Outbox and subscribers.
local function check_range(from, limit, fname)
  check_arg(is_count(from), 1, fname, "position (an integer >= 0)", from, 3)
  check_arg(limit == nil or is_count(limit), 2, fname, "limit (an integer >= 0)", limit, 3)
end

function Store:outputs(from, limit)
  check_range(from, limit, "outputs")
  return outbox.read(check_open(self, "outputs"), from, limit)
end

-- The same outputs as one JSON array text, for serving over HTTP, or as
-- a list of JSON texts, one per output (JSON lines). Built from the stored
-- bytes: [] stays [] and the event is byte for byte as ingested.
function Store:outputs_json(from, limit)
  check_range(from, limit, "outputs_json")
  return outbox.read_json(check_open(self, "outputs_json"), from, limit)
end

function Store:outputs_json_list(from, limit)
  check_range(from, limit, "outputs_json_list")
  return outbox.read_raw(check_open(self, "outputs_json_list"), from, limit)
end

-- store:try_lease(name, owner, ttl_ms [, now_ms]) -> true | false | nil, err, code
-- Takes or renews a lease held in the database, so that among several
-- processes (nginx workers) one at a time does a job such as delivering
-- to a named consumer. now_ms defaults to the wall clock in milliseconds.
-- A negative ttl_ms gives the holder's lease up, for another to take at once.
function Store:try_lease(name, owner, ttl_ms, now_ms)
  check_arg(type(name) == "string", 1, "try_lease", "consumer name string", name)
  check_arg(type(owner) == "string", 2, "try_lease", "owner string", owner)
  check_arg(type(ttl_ms) == "number" and ttl_ms == math_floor(ttl_ms) and ttl_ms >= -1e12
            and ttl_ms <= 1e12, 3, "try_lease", "ttl_ms integer", ttl_ms)
  check_arg(now_ms == nil or is_count(now_ms), 4, "try_lease", "now_ms (an integer >= 0)", now_ms)
  return check_open(self, "try_lease"):lease(name, owner, ttl_ms, now_ms and math_floor(now_ms))
end

function Store:subscribe(name, fn, opts)
  if type(name) ~= "string" or name == "" then
    error("bad argument #1 to 'subscribe' (consumer name expected)", 2)
  end
  if type(fn) ~= "function" then
    error("bad argument #2 to 'subscribe' (function expected, got " .. type(fn) .. ")", 2)
  end
  return outbox.subscribe(check_open(self, "subscribe"), self._subs, name, fn, opts)
end

function Store:unsubscribe(name)
  if type(name) ~= "string" then
    error("bad argument #1 to 'unsubscribe' (consumer name expected, got " .. type(name) .. ")", 2)
  end
  self._subs[name] = nil
end

-- store:deliver([name]) -> delivered, errors
function Store:deliver(name)
  check_open(self, "deliver")
  return deliver_now(self, name)
end

function Store:trim_outputs() return check_open(self, "trim_outputs"):trim_outputs() end
function Store:purge_room(room_id)
  check_arg(type(room_id) == "string", 1, "purge_room", "room ID string", room_id)
  local c = check_open(self, "purge_room")
  local pos, err, code = c:purge_room(room_id)
  if not pos then return nil, err, code end
  if self._deliver then self:deliver() end
  return pos
end

-- Verifies every stored invariant; true or nil, "CORRUPT: ...", "CORRUPT".
function Store:check() return check_open(self, "check"):check() end

-- The low-level surface: numeric IDs, counts, raw snapshots. For tests and
-- tools only; applications never need it.
function Store:debug() return check_open(self, "debug") end

function Store:__tostring()
  return "roomstate.Store (" .. (self._core:is_closed() and "closed" or "open") .. ")"
end

return Store
