-- roomstate.outbox: reading the output log and delivering it to named
-- subscribers.
--
-- Outputs are written by the C core in the same transaction as the state
-- change they describe. Here they are decoded into tables and handed to
-- callbacks. A subscriber's position lives in the database and advances
-- only after its callback returns, so a crash or a raising callback means
-- the output is delivered again, never skipped.
local event = require "roomstate.event"

local json = event.json
local type, pairs, pcall, error, tostring = type, pairs, pcall, error, tostring
local table_sort, table_concat = table.sort, table.concat
local string_format, string_find, string_sub = string.format, string.find, string.sub

local _M = {}

local BATCH = 256

-- Decodes one raw row ({position, body, event}) into an output table.
local function decode(row)
  local out = json.decode(row.body)
  if not out then
    error(string_format("output %d does not decode", row.position))
  end
  out.position = row.position
  local inner = out[out.type]
  if row.event and inner then
    inner.event = json.decode(row.event)
  end
  return out
end
_M.decode = decode

-- The same output as JSON text, built from the stored bytes without a
-- decode/encode round trip (so [] stays [], and the event stays byte for
-- byte as ingested). The C core writes bodies as {"type":T,"T":{...}}.
local function raw_json(row)
  local body, ev = row.body, row.event
  local head = string_format('{"position":%d,', row.position)
  if not ev then return head .. string_sub(body, 2) end
  local open = string_find(body, '":{', 1, true)
  local rest = string_sub(body, open + 3)
  local sep = string_sub(rest, 1, 1) == "}" and "" or ","
  return head .. string_sub(body, 2, open + 2) .. '"event":' .. ev .. sep .. rest
end
_M.raw_json = raw_json

-- read_raw(core, from, limit) -> { JSON text of each output } | nil, err, code
function _M.read_raw(core, from, limit)
  local rows, err, code = core:outputs(from, limit or BATCH)
  if not rows then return nil, err, code end
  for i = 1, #rows do rows[i] = raw_json(rows[i]) end
  return rows
end

-- read_json(core, from, limit) -> JSON array text | nil, err, code
function _M.read_json(core, from, limit)
  local rows, err, code = _M.read_raw(core, from, limit)
  if not rows then return nil, err, code end
  return "[" .. table_concat(rows, ",") .. "]"
end

-- outputs(core, from, limit) -> array of outputs | nil, err, code
function _M.read(core, from, limit)
  local rows, err, code = core:outputs(from, limit or BATCH)
  if not rows then return nil, err, code end
  for i = 1, #rows do rows[i] = decode(rows[i]) end
  return rows
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
    local ok; ok, err, code = core:consumer_set(name, next_pos)
    if not ok then return nil, err, code end
  end
  subs[name] = fn
  return next_pos
end

-- Delivers to one subscriber until its log is drained or it fails.
-- Returns the number delivered and, on failure, the error.
local function deliver_one(core, name, fn)
  local pos, err, code = core:consumer_get(name)
  if not pos then return 0, { position = nil, error = err or "consumer is not registered", code = code } end
  local n = 0
  while true do
    local batch
    batch, err, code = _M.read(core, pos, BATCH)
    if not batch then return n, { position = pos, error = err, code = code } end
    if #batch == 0 then return n end
    for i = 1, #batch do
      local out = batch[i]
      local ok, cb_err = pcall(fn, out)
      if not ok then
        return n, { position = out.position, error = tostring(cb_err), code = "CALLBACK" }
      end
      local acked
      acked, err, code = core:consumer_set(name, out.position + 1)
      if not acked then return n, { position = out.position, error = err, code = code } end
      n = n + 1
      pos = out.position + 1
    end
  end
end

-- deliver(core, subs [, name]) -> delivered, errors
-- delivered: { [name] = count }; errors: { [name] = {position, error, code} }
-- or nil when none. One subscriber failing does not hold up the others.
function _M.deliver(core, subs, only)
  local names = {}
  for name in pairs(subs) do
    if only == nil or only == name then names[#names + 1] = name end
  end
  table_sort(names)
  local delivered, errors = {}, nil
  for i = 1, #names do
    local name = names[i]
    local n, failure = deliver_one(core, name, subs[name])
    delivered[name] = n
    if failure then
      errors = errors or {}
      errors[name] = failure
    end
  end
  return delivered, errors
end

return _M
