-- The load figure for BENCHMARKS.md: ingest and state reads through nginx.
--
--   ROOMSTATE_BUILD=build luajit spec/support/nginx_load.lua [WRITERS [EVENTS [SECONDS]]]
--
-- Run from the repository root (LUA_PATH is set up below). Starts nginx with
-- 2 workers, has WRITERS processes (default 4) send EVENTS events each
-- (default 2000) over keep-alive connections, then runs wrk (if installed)
-- for SECONDS (default 10) against GET /rooms/{id}/state of a writer's room,
-- one state entry, and GET /outputs (100 outputs). Prints the figures.
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
local server_mod = require "support.nginx_server"
local http = require "support.http"
local rooms_mod = require "support.nginx_rooms"
local cjson = require "cjson"

local WRITERS = tonumber(arg[1]) or 4
local EVENTS = tonumber(arg[2]) or 2000
local SECONDS = tonumber(arg[3]) or 10

local function enc(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

local server = assert(server_mod.start({ workers = 2, prefix = "/v1", init = [[
    require("roomstate.nginx").configure{ db = ngx.config.prefix() .. "rooms.db", prefix = "/v1" }
]] }))
local ok, err = pcall(function()
  local conn = http.client("127.0.0.1", server.port, 30)
  local rooms, writers, setup = {}, {}, {}
  for c = 1, WRITERS do
    rooms[c] = "!load" .. c .. ":test"
    writers[c] = rooms_mod.writer(c)
  end
  rooms[#rooms + 1] = "!shared:test"
  for i, room in ipairs(rooms) do
    local body
    body, setup[room] = rooms_mod.setup(room, i <= WRITERS and { writers[i] } or writers)
    local status, rbody = conn:request("POST", "/v1/rooms/" .. enc(room) .. "/events", body)
    assert(status == 200, rbody)
  end
  -- Ingest: WRITERS processes at once.
  local procs = {}
  local t0 = http.gettime()
  for c = 1, WRITERS do
    local plan = { n = EVENTS, owned = setup[rooms[c]], shared = { setup["!shared:test"] } }
    local f = assert(io.open(server.dir .. "/plan" .. c .. ".json", "w"))
    f:write(cjson.encode(plan))
    f:close()
    procs[c] = io.popen(string.format("LUA_PATH='spec/?.lua;;' luajit spec/support/nginx_client.lua " ..
                                      "%d /v1 %d %s/plan%d.json %s/out%d.json 2>&1",
                                      server.port, c, server.dir, c, server.dir, c))
  end
  local timings, latency, events, requests, failures = {}, {}, 0, 0, 0
  for c = 1, WRITERS do
    local out = procs[c]:read("*a")
    procs[c]:close()
    local f = assert(io.open(server.dir .. "/out" .. c .. ".json"), out)
    local r = cjson.decode(f:read("*a"))
    f:close()
    events = events + #r.sent
    requests = requests + #r.latency
    failures = failures + #r.failures
    for _, t in ipairs(r.timings) do timings[#timings + 1] = t end
    for _, t in ipairs(r.latency) do latency[#latency + 1] = t end
  end
  local wall = http.gettime() - t0
  table.sort(timings)
  table.sort(latency)
  local function pct(list, p) return list[math.max(1, math.ceil(#list * p))] or 0 end
  print(string.format("ingest: %d writers, %d events in %d requests (1-3 events each), %.2f s: " ..
                      "%.0f events/s, %.0f requests/s, %d failed",
                      WRITERS, events, requests, wall, events / wall, requests / wall, failures))
  print(string.format("  worker blocked per request (Server-Timing): p50 %.2f ms, p90 %.2f ms, " ..
                      "p99 %.2f ms, max %.2f ms", pct(timings, 0.5), pct(timings, 0.9),
                      pct(timings, 0.99), timings[#timings]))
  print(string.format("  request latency at the client: p50 %.2f ms, p99 %.2f ms, max %.2f ms",
                      pct(latency, 0.5), pct(latency, 0.99), latency[#latency]))
  local status, body = conn:request("GET", "/v1/rooms/" .. enc(rooms[1]) .. "/state")
  local entries = #cjson.decode(body).state
  conn:close()
  local wrk = server_mod.sh("command -v wrk") == 0
  if wrk then
    for _, target in ipairs({ "/v1/rooms/" .. enc(rooms[1]) .. "/state",
                              "/v1/rooms/" .. enc(rooms[1]) .. "/state/m.room.topic/",
                              "/v1/outputs?from=1000&limit=100" }) do
      local _, out = server_mod.sh(string.format("wrk -t2 -c16 -d%ds --latency 'http://127.0.0.1:%d%s'",
                                                 SECONDS, server.port, target))
      local rps = out:match("Requests/sec:%s*([%d%.]+)")
      local p50 = out:match("50%%%s+([%d%.]+%a+)")
      local p99 = out:match("99%%%s+([%d%.]+%a+)")
      local non2xx = out:match("Non%-2xx or 3xx responses: (%d+)") or "0"
      print(string.format("wrk -t2 -c16 -d%ds GET %s: %s requests/s, latency p50 %s, p99 %s, non-2xx %s",
                          SECONDS, target, tostring(rps), tostring(p50), tostring(p99), non2xx))
    end
    print(string.format("  (the state read returns %d entries)", entries))
  else
    print("wrk is not installed: no read figures")
  end
  -- Each worker's own view of how long it was blocked.
  local seen = {}
  for _ = 1, 40 do
    local c = http.connect("127.0.0.1", server.port, 5)
    local s2, b2 = c:request("GET", "/v1/stats")
    c:close()
    if s2 == 200 then
      local d = cjson.decode(b2)
      seen[d.worker_pid] = d
    end
  end
  for pid, d in pairs(seen) do
    print(string.format("  worker %d: %d requests, blocked avg %.3f ms, max %.3f ms",
                        pid, d.requests, d.block_ms_avg, d.block_ms_max))
  end
end)
server.cleanup()
if not ok then error(err, 0) end
