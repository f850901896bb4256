-- roomstate.nginx: an HTTP API over one roomstate database, for nginx with
-- lua-nginx-module (Debian's libnginx-mod-http-lua) or OpenResty.
--
--   init_by_lua_block {
--     require("roomstate.nginx").configure{ db = "/var/lib/roomstate/rooms.db",
--                                           prefix = "/_roomstate" }
--   }
--   init_worker_by_lua_block { require("roomstate.nginx").init_worker() }
--   location /_roomstate/ {
--     content_by_lua_block { require("roomstate.nginx").serve() }
--   }
--
-- Routes, under the prefix (IDs percent-encoded in the path):
--   POST /rooms/{room_id}/events                 one item or an array of items
--   GET  /rooms                                  known rooms
--   GET  /rooms/{room_id}/state                  current state and its hash
--   GET  /rooms/{room_id}/state/{type}/{key}     one entry and its event
--   GET  /rooms/{room_id}/members[?membership=]  members (default: join)
--   GET  /rooms/{room_id}/latest                 forward extremities
--   GET  /events/{event_id}                      the event as ingested
--   GET  /events/{event_id}/state_before         state before the event
--   GET  /events/{event_id}/state_after          state after the event
--   GET  /outputs?from=N&limit=M                 the output log, as JSON
--   GET  /stats                                  this worker's timings
-- An item is an event or {"event": {...}, "kind": ..., "state": [...]}, as
-- `roomstate import` reads them (see roomstate.cli); ?kind= sets the kind of
-- items that name none. A body's items are ingested in one transaction:
-- all of them or none.
--
-- The database is opened lazily, by the first request or timer of each
-- worker, and reopened if the worker's pid changes: SQLite handles must not
-- cross a fork, so nothing is opened at require time or in init_by_lua*.
-- Subscribers (opts.consumers) are delivered to from ngx.timer, never from
-- a request, and a named consumer by one worker at a time, under a lease
-- kept in the database.
local roomstate = require "roomstate"
local item_format = require "roomstate.items"

local ngx = ngx -- nil outside nginx: only functions called in nginx use it
local type, tostring, tonumber, ipairs, pcall, xpcall, error, setmetatable =
      type, tostring, tonumber, ipairs, pcall, xpcall, error, setmetatable
local string_format, string_sub, string_find, string_match, string_gsub, string_char =
      string.format, string.sub, string.find, string.match, string.gsub, string.char
local table_concat = table.concat
local math_max = math.max
local io_open = io.open
local debug_traceback = debug.traceback

local json = item_format.json
local parse_items = item_format.parse_items
local show = item_format.show

local _M = { MAX_BODY = 1048576, MAX_ID_BYTES = 255 }
local MAX_POSITION = 9007199254740991 -- 2^53 - 1: the largest output position

-- Error codes to HTTP statuses.
local STATUS = {
  BAD_REQUEST = 400, BAD_EVENT = 400, NOT_JSON = 400, BAD_STATE = 400, INVALID = 400,
  ROOM_MISMATCH = 400, BAD_PATH = 400,
  NOT_FOUND = 404, UNKNOWN_ROOM = 404, NO_STATE = 404,
  METHOD_NOT_ALLOWED = 405,
  STATE_CONFLICT = 409, MISSING_PREV = 409, EVENT_MISMATCH = 409,
  TOO_LARGE = 413,
  BUSY = 503, OPEN = 503, FILE_REPLACED = 503,
}

-- A monotonic clock in seconds, for measuring how long a worker is blocked.
local clock = require("roomstate.core").clock

local function q(s) return (json.encode(s)) end

local function strings_json(list)
  local parts = {}
  for i = 1, #list do parts[i] = q(list[i]) end
  return "[" .. table_concat(parts, ",") .. "]"
end

-- A failure the client caused or should know about: status, code, message.
local function reply_error(code, msg, status)
  return status or STATUS[code] or 500,
         string_format('{"errcode":%s,"error":%s}', q(code), q(msg))
end

-- From a library failure (nil, "CODE: message", "CODE").
local function from_failure(err, code)
  code = code or string_match(tostring(err), "^([%u_]+):") or "INTERNAL"
  return reply_error(code, tostring(err))
end

local function bad(code, fmt, ...)
  return reply_error(code, code .. ": " .. string_format(fmt, ...))
end

-- Percent-decoding of one path segment: %XX only ("+" stays "+").
local function pct_decode(s)
  if not string_find(s, "%", 1, true) then return s end
  local broken = false
  local out = string_gsub(s, "%%(..?)", function(h)
    if #h == 2 and string_match(h, "^%x%x$") then return string_char(tonumber(h, 16)) end
    broken = true
    return ""
  end)
  if broken or string_sub(s, -1) == "%" then return nil end
  return out
end

local App = {}
App.__index = App

local function check_number(opts, name, dflt, min)
  local v = opts[name]
  if v == nil then return dflt end
  if type(v) ~= "number" or v < min then
    error(string_format("bad option '%s' (number of at least %s expected, got %s)",
                        name, tostring(min), show(v)), 4)
  end
  return v
end

-- roomstate.nginx.new(opts) -> app. Options:
--   db               the database file (required)
--   prefix           the path the API lives under, e.g. "/_roomstate" (default "")
--   max_body         request body limit in bytes (default 1 MiB)
--   busy_timeout     ms a writer waits for another (default 5000)
--   synchronous      "full" (default) or "normal"; an acknowledged POST must
--                    survive a power cut, which "normal" does not promise
--   outputs_limit    most outputs one GET /outputs returns (default 1000)
--   consumers        { {name=, handler=function(output) end, from=}, ... }
--   delivery_interval seconds between delivery rounds (default 0.5)
--   lease_ttl        ms a delivering worker holds a consumer (default 10000);
--                    it must exceed the slowest handler call
function _M.new(opts)
  if type(opts) ~= "table" then
    error("bad argument #1 to 'new' (options table expected, got " .. type(opts) .. ")", 2)
  end
  if type(opts.db) ~= "string" or opts.db == "" then
    error("bad option 'db' (database path expected, got " .. show(opts.db) .. ")", 2)
  end
  local prefix = opts.prefix or ""
  if type(prefix) ~= "string" or (prefix ~= "" and (string_sub(prefix, 1, 1) ~= "/"
                                                    or string_sub(prefix, -1) == "/")) then
    error("bad option 'prefix' (a path like \"/api\" expected, got " .. show(prefix) .. ")", 2)
  end
  if opts.synchronous ~= nil and opts.synchronous ~= "normal" and opts.synchronous ~= "full" then
    error("bad option 'synchronous' (\"normal\" or \"full\" expected, got "
          .. show(opts.synchronous) .. ")", 2)
  end
  local consumers = opts.consumers or {}
  if type(consumers) ~= "table" then
    error("bad option 'consumers' (array expected, got " .. type(consumers) .. ")", 2)
  end
  for i, c in ipairs(consumers) do
    if type(c) ~= "table" or type(c.name) ~= "string" or c.name == ""
        or type(c.handler) ~= "function" then
      error(string_format("bad option 'consumers' (consumers[%d] needs a name and a handler)", i), 2)
    end
  end
  local self = setmetatable({
    db = opts.db,
    prefix = prefix,
    max_body = check_number(opts, "max_body", _M.MAX_BODY, 1),
    busy_timeout = check_number(opts, "busy_timeout", 5000, 1),
    synchronous = opts.synchronous or "full",
    outputs_limit = check_number(opts, "outputs_limit", 1000, 1),
    consumers = consumers,
    delivery_interval = check_number(opts, "delivery_interval", 0.5, 0.001),
    lease_ttl = check_number(opts, "lease_ttl", 10000, 1),
    _store = nil, _pid = nil, _stale = {},
    _lease_at = {}, _kick = false,
    _stats = { requests = 0, total = 0, max = 0, deliveries = 0, delivered = 0 },
  }, App)
  return self
end

-- The worker's store, opened on first use and again after a fork.
function App:store()
  local pid = ngx.worker.pid()
  local s = self._store
  if s and self._pid == pid then return s end
  if s then
    -- A handle from another process: never use or close it here, and keep
    -- it referenced so the garbage collector does not close it either.
    self._stale[#self._stale + 1] = s
    self._store, self._pid = nil, nil
  end
  local err, code
  s, err, code = roomstate.open(self.db, { busy_timeout = self.busy_timeout,
                                           synchronous = self.synchronous, deliver = false })
  if not s then return nil, err, code end
  for _, c in ipairs(self.consumers) do
    local name, handler = c.name, c.handler
    local ok
    ok, err, code = s:subscribe(name, function(out)
      -- Renew the lease while draining; stop if another worker took it.
      local now = clock() * 1000
      if now - (self._lease_at[name] or 0) > self.lease_ttl / 3 then
        ngx.update_time()
        local got = s:try_lease(name, self.owner, self.lease_ttl, ngx.now() * 1000)
        if not got then
          -- a table keeps its code through deliver(), so deliver_round
          -- knows this raise by its code; a handler's own error is code
          -- CALLBACK whatever its text, unless it raises this code itself
          error({ code = "LEASE_LOST",
                  message = "another worker took the lease of consumer " .. name }, 0)
        end
        self._lease_at[name] = now
      end
      return handler(out)
    end, { from = c.from })
    if not ok then
      s:close()
      return nil, err, code
    end
  end
  self.owner = string_format("nginx/%d/%d", pid, ngx.worker.id() or -1)
  self._store, self._pid = s, pid
  return s
end

-- One delivery round: every consumer whose lease this worker gets.
function App:deliver_round()
  local s, err = self:store()
  if not s then
    ngx.log(ngx.ERR, "roomstate: cannot open ", self.db, ": ", err)
    return
  end
  for _, c in ipairs(self.consumers) do
    local name = c.name
    ngx.update_time()
    local got, lerr = s:try_lease(name, self.owner, self.lease_ttl, ngx.now() * 1000)
    if got == nil then
      ngx.log(ngx.WARN, "roomstate: lease for consumer ", name, ": ", lerr)
    elseif got then
      self._lease_at[name] = clock() * 1000
      local t0 = clock()
      local delivered, errors = s:deliver(name)
      local st = self._stats
      st.deliveries = st.deliveries + 1
      st.delivered = st.delivered + (delivered[name] or 0)
      st.max_delivery = math_max(st.max_delivery or 0, clock() - t0)
      local e = errors and errors[name]
      if e and e.code ~= "LEASE_LOST" then
        ngx.log(ngx.ERR, "roomstate: consumer ", name, " failed at output ",
                tostring(e.position), ": ", tostring(e.error))
      end
    end
  end
end

-- Gives up this worker's leases so another worker takes over at once.
function App:release_leases()
  local s = self._store
  if not s or self._pid ~= ngx.worker.pid() then return end
  ngx.update_time()
  for _, c in ipairs(self.consumers) do
    pcall(s.try_lease, s, c.name, self.owner, -1, ngx.now() * 1000)
  end
end

-- Starts the delivery timer; call from init_worker_by_lua*. Does not open
-- the database.
function App:init_worker()
  if #self.consumers == 0 then return true end
  local ok, err = ngx.timer.every(self.delivery_interval, function(premature)
    if premature then return self:release_leases() end
    local good, e = xpcall(function() self:deliver_round() end, debug_traceback)
    if not good then ngx.log(ngx.ERR, "roomstate: delivery: ", e) end
  end)
  if not ok then ngx.log(ngx.ERR, "roomstate: cannot start the delivery timer: ", err) end
  return ok, err
end

-- Delivers soon, from a timer, after a request stored outputs.
function App:kick()
  if #self.consumers == 0 or self._kick then return end
  self._kick = true
  local ok, err = ngx.timer.at(0, function(premature)
    self._kick = false
    if premature then return end
    local good, e = xpcall(function() self:deliver_round() end, debug_traceback)
    if not good then ngx.log(ngx.ERR, "roomstate: delivery: ", e) end
  end)
  if not ok then
    self._kick = false
    ngx.log(ngx.WARN, "roomstate: cannot schedule delivery: ", err)
  end
end

---------------------------------------------------------------------------
-- Request handlers: each returns status, body.

-- An ID from a path: its sigil and length, or a 400 naming it.
local function check_id(id, sigil, what)
  if string_sub(id, 1, 1) ~= sigil or #id > _M.MAX_ID_BYTES then
    return bad("BAD_REQUEST", "%s starts with '%s' and has at most %d bytes, got %s",
               what, sigil, _M.MAX_ID_BYTES, show(id))
  end
end

local function read_body(self)
  local max = self.max_body
  local len = tonumber(ngx.var.http_content_length)
  if len and len > max then
    return nil, bad("TOO_LARGE", "the body is %d bytes, more than %d", len, max)
  end
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body then
    local file = ngx.req.get_body_file()
    if file then
      local f = io_open(file, "rb")
      if f then
        body = f:read(max + 1)
        f:close()
      end
    end
  end
  body = body or ""
  if #body > max then
    return nil, bad("TOO_LARGE", "the body is more than %d bytes", max)
  end
  if not string_find(body, "%S") then
    return nil, bad("BAD_REQUEST", "the request has no body; send an event or an array of them")
  end
  return body
end

local KINDS = { new = true, old = true, outlier = true }

local function post_events(self, store, room, body)
  local args = ngx.req.get_uri_args(16)
  local kind = args.kind
  if kind ~= nil and not KINDS[kind] then
    return bad("BAD_REQUEST", "kind must be new, old or outlier, got %s", show(kind))
  end
  local items, err, code = parse_items(body, { kind = kind })
  if not items then return from_failure(err, code) end
  local batch = {}
  for i, it in ipairs(items) do
    local rid = it.decoded.room_id
    if type(rid) == "string" and rid ~= room then
      return bad("ROOM_MISMATCH", "item %d is in room %s, but was posted to %s",
                 i, show(rid), show(room))
    end
    batch[i] = { event = it.event, kind = it.kind, state = it.state }
  end
  local results
  results, err, code = store:ingest_batch(batch)
  if not results then return from_failure(err, code) end
  local parts, outputs = {}, false
  for i, r in ipairs(results) do
    local pos = {}
    for j, o in ipairs(r.outputs) do pos[j] = string_format("%d", o.position) end
    outputs = outputs or #pos > 0
    -- An event the auth rules failed is stored and answered 200 like the
    -- rest, so its result is the only place a client learns of it.
    local verdict = ""
    if r.rejected then
      verdict = ',"rejected":' .. q(r.rejected)
    elseif r.soft_failed then
      verdict = ',"soft_failed":' .. q(r.soft_failed)
    end
    parts[i] = string_format('{"event_id":%s,"duplicate":%s,"rewrote":%s,"state_known":%s,' ..
                             '"positions":[%s]%s}', q(r.event_id), tostring(r.duplicate),
                             tostring(r.rewrote), tostring(r.state_known), table_concat(pos, ","),
                             verdict)
  end
  if outputs then self:kick() end
  return 200, '{"results":[' .. table_concat(parts, ",") .. "]}"
end

local function state_json(st)
  local iter, err, code = st:entries()
  if not iter then return nil, err, code end
  local parts, entries = {}, {}
  for t, k, e in iter do
    parts[#parts + 1] = string_format('{"type":%s,"state_key":%s,"event_id":%s}', q(t), q(k), q(e))
    entries[#entries + 1] = { type = t, state_key = k, event_id = e }
  end
  return "[" .. table_concat(parts, ",") .. "]", roomstate.state_hash(entries)
end

local function get_room_state(store, room)
  local st, err, code = store:current_state(room)
  if not st then return from_failure(err, code) end
  local text, hash, c2 = state_json(st)
  if not text then return from_failure(hash, c2) end
  return 200, string_format('{"room_id":%s,"state_hash":"%s","state":%s}', q(room), hash, text)
end

local function get_state_entry(store, room, etype, key)
  if etype == "" or #etype > _M.MAX_ID_BYTES or #key > _M.MAX_ID_BYTES then
    return bad("BAD_REQUEST", "bad state type or key: %s, %s", show(etype), show(key))
  end
  local st, err, code = store:current_state(room)
  if not st then return from_failure(err, code) end
  local id
  id, err, code = st:get(etype, key)
  if not id then
    if err then return from_failure(err, code) end
    return bad("NOT_FOUND", "no (%s, %s) in the current state of %s", show(etype), show(key),
               show(room))
  end
  local text
  text, err, code = store:event(id)
  if not text then return from_failure(err, code) end
  return 200, string_format('{"event_id":%s,"event":%s}', q(id), text)
end

local function get_event_state(store, id, which)
  local st, err, code
  if which == "state_before" then st, err, code = store:state_before(id)
  else st, err, code = store:state_after(id) end
  if not st then return from_failure(err, code) end
  local text, hash, c2 = state_json(st)
  if not text then return from_failure(hash, c2) end
  return 200, string_format('{"event_id":%s,"state_hash":"%s","state":%s}', q(id), hash, text)
end

local function get_members(store, room)
  local m = ngx.req.get_uri_args(16).membership or "join"
  if not roomstate.is_membership(m) then
    return bad("BAD_REQUEST", "membership must be one of %s, got %s",
               table_concat(roomstate.MEMBERSHIPS, ", "), show(m))
  end
  local list, err, code = store:members(room, m)
  if not list then return from_failure(err, code) end
  return 200, string_format('{"room_id":%s,"membership":%s,"members":%s}', q(room), q(m),
                            strings_json(list))
end

local function get_latest(store, room)
  local list, err, code = store:latest_events(room)
  if not list then return from_failure(err, code) end
  return 200, string_format('{"room_id":%s,"latest":%s}', q(room), strings_json(list))
end

local function int_arg(args, name, dflt, min, max)
  local v = args[name]
  if v == nil then return dflt end
  local n = type(v) == "string" and string_match(v, "^%d+$") and tonumber(v)
  if not n or n < min or (max and n > max) then
    return nil, string_format("%s must be an integer from %d%s, got %s", name, min,
                              max and string_format(" to %d", max) or "", show(v))
  end
  return n
end

local function get_outputs(self, store)
  local args = ngx.req.get_uri_args(16)
  -- positions are exact in a double up to 2^53 - 1, as the store takes them
  local from, err = int_arg(args, "from", 1, 0, MAX_POSITION)
  if not from then return bad("BAD_REQUEST", "%s", err) end
  local limit
  limit, err = int_arg(args, "limit", 100, 1, self.outputs_limit)
  if not limit then return bad("BAD_REQUEST", "%s", err) end
  local text, e2, code = store:outputs_json(from, limit)
  if not text then return from_failure(e2, code) end
  return 200, text
end

local function get_stats(self)
  local st = self._stats
  return 200, string_format(
    '{"worker_pid":%d,"requests":%d,"block_ms_total":%.3f,"block_ms_max":%.3f,' ..
    '"block_ms_avg":%.3f,"deliveries":%d,"delivered":%d,"delivery_ms_max":%.3f}',
    ngx.worker.pid(), st.requests, st.total * 1000, st.max * 1000,
    st.requests > 0 and st.total * 1000 / st.requests or 0, st.deliveries, st.delivered,
    (st.max_delivery or 0) * 1000)
end

local function not_allowed(allow)
  ngx.header["Allow"] = allow
  return bad("METHOD_NOT_ALLOWED", "use %s here", allow)
end

-- Splits the raw request path (not nginx's normalised $uri, so that
-- encoded slashes stay inside IDs and no ".." is resolved for us).
local function segments(self)
  local raw = ngx.var.request_uri or ""
  local path = string_match(raw, "^[^?#]*")
  local prefix = self.prefix
  if string_sub(path, 1, #prefix) ~= prefix or string_sub(path, #prefix + 1, #prefix + 1) ~= "/" then
    return nil, bad("NOT_FOUND", "no such path: %s", show(path))
  end
  local rest = string_sub(path, #prefix + 1)
  local segs, i = {}, 2
  while true do
    local j = string_find(rest, "/", i, true)
    local seg = string_sub(rest, i, (j or 0) - 1)
    if seg == "." or seg == ".." then
      return nil, bad("BAD_PATH", "the path segment %s is not allowed: %s", show(seg), show(path))
    end
    local dec = pct_decode(seg)
    if not dec then
      return nil, bad("BAD_PATH", "bad percent-encoding in %s", show(seg))
    end
    if string_find(dec, "%z") then
      return nil, bad("BAD_PATH", "a NUL byte in the path segment %s", show(seg))
    end
    segs[#segs + 1] = dec
    if not j then break end
    i = j + 1
  end
  return segs
end

function App:route(t_start)
  local segs, status, body = segments(self)
  if not segs then return status, body end
  local method = ngx.req.get_method()
  local n, head = #segs, segs[1]
  local is_get = method == "GET" or method == "HEAD"

  if head == "stats" and n == 1 then
    if not is_get then return not_allowed("GET") end
    return get_stats(self)
  end

  if head == "outputs" and n == 1 then
    if not is_get then return not_allowed("GET") end
    local store, err, code = self:store()
    if not store then return from_failure(err, code) end
    return get_outputs(self, store)
  end

  if head == "rooms" and n == 1 then
    if not is_get then return not_allowed("GET") end
    local store, err, code = self:store()
    if not store then return from_failure(err, code) end
    local list
    list, err, code = store:rooms()
    if not list then return from_failure(err, code) end
    return 200, '{"rooms":' .. strings_json(list) .. "}"
  end

  if head == "rooms" and n >= 3 then
    local room, what = segs[2], segs[3]
    local route
    if what == "events" and n == 3 then route = "POST"
    elseif what == "state" and (n == 3 or n == 4 or n == 5) then route = "GET"
    elseif (what == "members" or what == "latest") and n == 3 then route = "GET"
    end
    if route then
      local s, b = check_id(room, "!", "a room ID")
      if s then return s, b end
      if route == "POST" and method ~= "POST" then return not_allowed("POST") end
      if route == "GET" and not is_get then return not_allowed("GET") end
      local payload
      if route == "POST" then
        payload, s, b = read_body(self)
        if not payload then return s, b end
        t_start[1] = clock() -- the body is in: from here on the worker is busy
      end
      local store, err, code = self:store()
      if not store then return from_failure(err, code) end
      if what == "events" then return post_events(self, store, room, payload) end
      if what == "members" then return get_members(store, room) end
      if what == "latest" then return get_latest(store, room) end
      if n == 3 then return get_room_state(store, room) end
      return get_state_entry(store, room, segs[4], segs[5] or "")
    end
  end

  if head == "events" and (n == 2 or (n == 3 and (segs[3] == "state_before"
                                                  or segs[3] == "state_after"))) then
    local id = segs[2]
    local s, b = check_id(id, "$", "an event ID")
    if s then return s, b end
    if not is_get then return not_allowed("GET") end
    local store, err, code = self:store()
    if not store then return from_failure(err, code) end
    if n == 3 then return get_event_state(store, id, segs[3]) end
    local text
    text, err, code = store:event(id)
    if not text then return from_failure(err, code) end
    return 200, text
  end

  return bad("NOT_FOUND", "no such path: %s", show(ngx.var.request_uri))
end

-- The content handler: content_by_lua_block { app:serve() }.
function App:serve()
  local t = { clock() }
  local ok, status, body = xpcall(function() return self:route(t) end, debug_traceback)
  if not ok then
    ngx.log(ngx.ERR, "roomstate: ", status)
    status, body = reply_error("INTERNAL", "INTERNAL: the request failed; see the error log", 500)
  end
  local blocked = clock() - t[1]
  local st = self._stats
  st.requests = st.requests + 1
  st.total = st.total + blocked
  if blocked > st.max then st.max = blocked end
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Content-Length"] = #body
  ngx.header["Server-Timing"] = string_format("roomstate;dur=%.3f", blocked * 1000)
  if status == 503 then ngx.header["Retry-After"] = "1" end
  if ngx.req.get_method() ~= "HEAD" then ngx.print(body) end
end

---------------------------------------------------------------------------
-- The default app, for a server with one database.

local default

-- configure(opts): sets up the default app (see new); call from
-- init_by_lua*. Opens nothing.
function _M.configure(opts)
  default = _M.new(opts)
  return default
end

local function get_default()
  if not default then
    error("roomstate.nginx is not configured: call configure{db = ...} in init_by_lua", 3)
  end
  return default
end

function _M.init_worker() return get_default():init_worker() end
function _M.serve() return get_default():serve() end
function _M.app() return default end

_M.App = App
_M.pct_decode = pct_decode
_M.STATUS = STATUS
return _M
