-- roomstate.outbox: reading the output log and delivering it to named
-- subscribers.
--
-- Outputs are written by the C core in the same transaction as the state
-- change they describe. Here they are decoded into tables and handed to
-- callbacks. A subscriber's position lives in the database and advances
-- once per batch, after the callbacks returned, so a crash or a raising
-- callback means outputs are delivered again, never skipped.
local event = require "roomstate.event"

local json = event.json
local type, pairs, pcall, error, tostring = type, pairs, pcall, error, tostring
local table_sort, table_concat = table.sort, table.concat
local string_sub, math_min = string.sub, math.min

local _M = {}

local BATCH = 256

-- Decodes one output's JSON text, as the C core renders it, into a table.
local function decode(text)
  local out = json.decode(text)
  if type(out) ~= "table" then
    error("an output does not decode: " .. string_sub(text, 1, 40))
  end
  return out
end
_M.decode = decode

-- read_raw(core, from, limit) -> { JSON text of each output } | nil, err, code
-- The texts are the C core's, passed through: [] stays [], and the event
-- is byte for byte as ingested.
function _M.read_raw(core, from, limit)
  return core:outputs(from, limit or BATCH)
end

-- read_json(core, from, limit) -> JSON array text | nil, err, code
function _M.read_json(core, from, limit)
  local texts, err, code = core:outputs(from, limit or BATCH)
  if not texts then return nil, err, code end
  return "[" .. table_concat(texts, ",") .. "]"
end

local function decode_all(texts)
  local outs = {}
  for i = 1, #texts do outs[i] = decode(texts[i]) end
  return outs
end
_M.decode_all = decode_all

-- read(core, from, limit) -> array of outputs | nil, err, code
function _M.read(core, from, limit)
  local texts, err, code = core:outputs(from, limit or BATCH)
  if not texts then return nil, err, code end
  return decode_all(texts)
end

-- Registers `name`. A name already in the database keeps its position;
-- a new one starts at opts.from: "start" (default), "end", or a position.
function _M.subscribe(core, subs, name, fn, opts)
  local from = opts and opts.from or "start"
  local next_pos, err, code = core:consumer_get(name)
  if next_pos == nil then return nil, err, code end
  if next_pos == false then
    if from == "start" then
      next_pos = 1
    elseif from == "end" then
      local last; last, err, code = core:outputs_last()
      if not last then return nil, err, code end
      next_pos = last + 1
    elseif type(from) == "number" and from >= 1 then
      next_pos = from
    else
      error("bad option 'from' (\"start\", \"end\" or a position expected)", 3)
    end
    -- another handle may register the name between the get and here
    -- (nginx workers at start): the first position stored stands
    next_pos, err, code = core:consumer_add(name, next_pos)
    if not next_pos then return nil, err, code end
  end
  subs[name] = fn
  return next_pos
end

-- The next batch from `pos`. `recent` ({ first =, texts = }, contiguous
-- positions) holds outputs ingest has just read: when it holds `pos` they
-- are the rows a read would return, since rows are never rewritten, a
-- position is never reused and trimming stops below every consumer's
-- position. Anything after them comes from the database.
local function next_batch(core, recent, pos)
  local texts = recent and recent.texts
  local i = texts and pos - recent.first + 1
  if not i or i < 1 or i > #texts then return _M.read(core, pos, BATCH) end
  local outs = {}
  for j = i, math_min(#texts, i + BATCH - 1) do outs[#outs + 1] = decode(texts[j]) end
  return outs
end

-- A callback's raise as a failure: a table { code =, message = } keeps
-- its code (the nginx module stops on LEASE_LOST that way); anything else
-- is code CALLBACK with the raised value as text.
local function callback_failure(position, raised)
  if type(raised) == "table" and type(raised.code) == "string" then
    return { position = position, error = tostring(raised.message or raised.code),
             code = raised.code }
  end
  return { position = position, error = tostring(raised), code = "CALLBACK" }
end

-- Calls fn on each output of the batch until one raises; returns how many
-- returned and, if one raised, the failure.
local function run_callbacks(fn, batch)
  for i = 1, #batch do
    local ok, cb_err = pcall(fn, batch[i])
    if not ok then return i - 1, callback_failure(batch[i].position, cb_err) end
  end
  return #batch
end

-- Delivers to one subscriber until its log is drained or it fails.
-- Returns the number delivered and, on failure, the error. The position
-- is written once per batch, after its last callback or before the one
-- that raised: a crash repeats at most that batch (at least once).
local function deliver_one(core, name, fn, recent)
  local pos, err, code = core:consumer_get(name)
  if not pos then return 0, { position = nil, error = err or "consumer is not registered", code = code } end
  local n = 0
  while true do
    local batch
    batch, err, code = next_batch(core, recent, pos)
    if not batch then return n, { position = pos, error = err, code = code } end
    if #batch == 0 then return n end
    local done, failure = run_callbacks(fn, batch)
    if done > 0 then
      local acked
      acked, err, code = core:consumer_set(name, batch[done].position + 1)
      if not acked then return n, { position = pos, error = err, code = code } end
      n = n + done
      pos = batch[done].position + 1
    end
    if failure then return n, failure end
  end
end

-- deliver(core, subs [, name [, recent]]) -> delivered, errors
-- delivered: { [name] = count }; errors: { [name] = {position, error, code} }
-- or nil when none. One subscriber failing does not hold up the others.
-- recent: outputs just read, see next_batch.
function _M.deliver(core, subs, only, recent)
  local names = {}
  for name in pairs(subs) do
    if only == nil or only == name then names[#names + 1] = name end
  end
  table_sort(names)
  local delivered, errors = {}, nil
  for i = 1, #names do
    local name = names[i]
    local n, failure = deliver_one(core, name, subs[name], recent)
    delivered[name] = n
    if failure then
      errors = errors or {}
      errors[name] = failure
    end
  end
  return delivered, errors
end

return _M
