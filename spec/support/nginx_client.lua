-- One writer for the nginx specs and the load run: a separate process that
-- sends events over one keep-alive connection and writes what happened to
-- a JSON file.
--
--   luajit spec/support/nginx_client.lua PORT PREFIX CLIENT_ID PLAN_FILE OUT_FILE
--
-- PLAN_FILE (JSON): { "n": events to send,
--   "owned":  ROOM   a room only this client changes: members, a counter,
--             the topic, messages; some requests carry arrays of 3 events,
--   "shared": [ROOM, ...] rooms every client writes messages to on its own
--             branch, sometimes merging every branch it sees in GET /latest }
-- ROOM: a room record of support.nginx_rooms (room, head, depth, and the
-- auth events the client's events cite), with the client among its members.
-- OUT_FILE gets { "sent": [[room, event_id, type, state_key|false], ...] in
-- the order stored, "statuses": {code: count}, "failures": [...],
-- "timings": [Server-Timing ms, ...], "latency": [request ms, ...],
-- "seconds": wall time }.
local http = require "support.http"
local rooms_mod = require "support.nginx_rooms"
local cjson = require "cjson"

local port, prefix, client, plan_file, out_file = tonumber(arg[1]), arg[2], arg[3], arg[4], arg[5]
assert(port and prefix and client and plan_file and out_file,
       "usage: nginx_client.lua PORT PREFIX CLIENT_ID PLAN_FILE OUT_FILE")
local f = assert(io.open(plan_file))
local plan = cjson.decode(f:read("*a"))
f:close()

local function enc(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

local conn = http.client("127.0.0.1", port, 60)
local heads, records = {}, {}
local function track(r)
  heads[r.room] = { id = r.head, depth = r.depth }
  records[r.room] = r
end
track(plan.owned)
for _, r in ipairs(plan.shared or {}) do track(r) end

local out = { sent = {}, statuses = {}, failures = {}, timings = {}, latency = {} }
local seq = 0
local members = {}
local me = rooms_mod.writer(client)

local function new_event(room, prev, depth, etype, state_key, content, sender)
  seq = seq + 1
  local id = string.format("$c%s-%d:test", client, seq)
  sender = sender or me
  local rec = records[room]
  local e = { event_id = id, room_id = room, sender = sender,
              type = etype, state_key = state_key, content = content,
              prev_events = prev, auth_events = rooms_mod.auth_events(rec, sender, content.membership),
              depth = depth, origin_server_ts = 1700000000000 + seq }
  -- the next member event of this user cites this one
  if etype == "m.room.member" then rec.members[state_key] = id end
  return e
end

local function post(room, events)
  local body
  if #events == 1 and seq % 2 == 0 then
    body = cjson.encode(events[1])
  elseif #events == 1 then
    body = cjson.encode({ event = events[1], kind = "new" })
  else
    local parts = {}
    for i, e in ipairs(events) do parts[i] = cjson.encode(e) end
    body = "[" .. table.concat(parts, ",") .. "]"
  end
  local t0 = http.gettime()
  local status, rbody, hdrs = conn:request("POST", prefix .. "/rooms/" .. enc(room) .. "/events",
                                           body, { ["Content-Type"] = "application/json" })
  out.latency[#out.latency + 1] = (http.gettime() - t0) * 1000
  local key = tostring(status)
  out.statuses[key] = (out.statuses[key] or 0) + 1
  if hdrs and hdrs["server-timing"] then
    out.timings[#out.timings + 1] = tonumber(hdrs["server-timing"]:match("dur=([%d%.]+)"))
  end
  if status ~= 200 then
    out.failures[#out.failures + 1] = { status = status or 0, body = tostring(rbody),
                                        event = events[1].event_id }
    return false
  end
  local res = cjson.decode(rbody).results
  for i, e in ipairs(events) do
    if res[i].event_id ~= e.event_id or res[i].duplicate then
      out.failures[#out.failures + 1] = { status = 200, body = rbody, event = e.event_id }
    end
    out.sent[#out.sent + 1] = { room, e.event_id, e.type, e.state_key or false }
  end
  return true
end

local t_start = http.gettime()
local n, k = plan.n, 0
local shared = plan.shared or {}
while k < n do
  if #shared > 0 and k % 4 == 3 then
    -- A message on this client's branch of a shared room; now and then a
    -- merge of every branch the room has.
    local r = shared[(math.floor(k / 4) % #shared) + 1].room
    local h = heads[r]
    local prev = { h.id }
    if k % 20 == 3 then
      local status, body = conn:request("GET", prefix .. "/rooms/" .. enc(r) .. "/latest")
      if status == 200 then prev = cjson.decode(body).latest end
    end
    local e = new_event(r, prev, h.depth + 1, "m.room.message", nil,
                        { msgtype = "m.text", body = "shared " .. k })
    if post(r, { e }) then heads[r] = { id = e.event_id, depth = e.depth } end
    k = k + 1
  else
    local r = plan.owned.room
    local m = (k % 8 == 0) and math.min(3, n - k) or 1
    local h = heads[r]
    local batch, prev, depth = {}, h.id, h.depth
    for _ = 1, m do
      local j = k + #batch
      local e
      if j % 5 == 0 then
        local user = string.format("@c%su%d:test", client, (j / 5) % 10)
        members[user] = members[user] == "join" and "leave" or "join"
        e = new_event(r, { prev }, depth + 1, "m.room.member", user,
                      { membership = members[user] }, user)
      elseif j % 5 == 1 then
        e = new_event(r, { prev }, depth + 1, "org.test.counter", "c" .. client, { n = j })
      elseif j % 5 == 2 then
        e = new_event(r, { prev }, depth + 1, "m.room.topic", "", { topic = "topic " .. j })
      else
        e = new_event(r, { prev }, depth + 1, "m.room.message", nil,
                      { msgtype = "m.text", body = "message " .. j })
      end
      batch[#batch + 1] = e
      prev, depth = e.event_id, e.depth
    end
    if post(r, batch) then heads[r] = { id = prev, depth = depth } end
    k = k + m
  end
end
out.seconds = http.gettime() - t_start
conn:close()

local o = assert(io.open(out_file, "w"))
o:write(cjson.encode(out))
o:close()
