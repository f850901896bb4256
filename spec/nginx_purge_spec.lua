-- Issue 14 §1.1 over HTTP: nginx workers that read a room keep serving
-- the truth after another process purges it and builds a new room. Before
-- the fix, the new room's events took the purged events' numeric IDs, and
-- a worker that had cached them answered the new room's state with the old
-- room's event IDs. Each worker is reached on a connection of its own.
local server_mod = require "support.nginx_server"
local http = require "support.http"
local harness = require "roomstate.harness"
local cjson = require "cjson"
local S = require "support"
local sorted = S.sorted

local enc = http.enc

if not server_mod.find_nginx() then
  describe("a purge seen by nginx workers", function()
    it("is skipped: nginx is not installed", function()
      pending("nginx is not installed: install nginx and libnginx-mod-http-lua to run these")
    end)
  end)
  return
end

local INIT = [[
    require("roomstate.nginx").configure{ db = ngx.config.prefix() .. "rooms.db", prefix = "/v1" }
]]

describe("a purge seen by nginx workers", function()
  local server, start_err, conns

  -- One keep-alive connection per worker: new connections until two
  -- worker pids answered, the others closed.
  local function pinned(n)
    local by_pid, extra = {}, {}
    for _ = 1, 200 do
      local c = assert(http.connect("127.0.0.1", server.port, 10))
      local status, body = c:request("GET", server.url("/stats"))
      assert.equal(200, status)
      local pid = cjson.decode(body).worker_pid
      if by_pid[pid] then extra[#extra + 1] = c else by_pid[pid] = c end
      local got = {}
      for _, conn in pairs(by_pid) do got[#got + 1] = conn end
      if #got == n then
        for _, e in ipairs(extra) do e:close() end
        return got
      end
    end
    error("could not reach " .. n .. " workers")
  end

  local function state_ids(conn, room)
    local status, body = conn:request("GET", server.url("/rooms/" .. enc(room) .. "/state"))
    assert.equal(200, status, body)
    local ids = {}
    for _, e in ipairs(cjson.decode(body).state) do ids[#ids + 1] = e.event_id end
    table.sort(ids)
    return ids
  end

  setup(function()
    server, start_err = server_mod.start({ init = INIT, workers = 2, prefix = "/v1",
                                           body_size = "1m", reuseport = true })
    if server then conns = pinned(2) end
  end)

  teardown(function()
    for _, c in ipairs(conns or {}) do c:close() end
    if server then server.cleanup() end
  end)

  it("serves the new room's event IDs, not the purged room's, from every worker", function()
    assert(server, "nginx did not start: " .. tostring(start_err))
    local roomstate = require "roomstate"
    local store = assert(roomstate.open(server.dir .. "/rooms.db"))
    local ha = harness.new(store, { seed = "a" })
    local a = assert(ha:create_room("@alice:x", { room_id = "!shared:x" }))
    assert(a:send("cached by the workers"))
    local old = sorted(store:current_state("!shared:x"):event_ids())
    -- every worker reads room A, caching its IDs
    for _, c in ipairs(conns) do assert.same(old, state_ids(c, "!shared:x")) end
    -- this process purges it and builds the room again from other events
    assert(store:purge_room("!shared:x"))
    local hb = harness.new(store, { seed = "b" })
    local b = assert(hb:create_room("@bob:x", { room_id = "!shared:x" }))
    assert(b:send("from the new room"))
    local new = sorted(store:current_state("!shared:x"):event_ids())
    for _, id in ipairs(new) do assert.is_true(id:find("^%$b%-") ~= nil, id) end
    for i, c in ipairs(conns) do
      assert.same(new, state_ids(c, "!shared:x"), "worker " .. i)
      local status, body = c:request("GET", server.url("/rooms/" .. enc("!shared:x") .. "/latest"))
      assert.equal(200, status, body)
      assert.same(store:latest_events("!shared:x"), cjson.decode(body).latest)
    end
    store:close()
  end)
end)
