-- Issue 4 §6: durability. Child processes ingest and die at random points;
-- a new process under the same consumer name receives exactly the outputs
-- after its last acknowledgement, in order; none is lost, none applied twice.
local roomstate = require "roomstate"
local S = require "support"

local function lua_cmd()
  local cpath = package.cpath:match("([^;]*roomstate[^;]*)") or ""
  return ("LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' LUA_CPATH='%s;;' luajit spec/support/durable_child.lua"):format(
    package.cpath:match("^([^;]+)") or cpath)
end

describe("durability", function()
  it("loses and repeats nothing across killed processes", function()
    local dir = S.tmpdir()
    local db, log = dir .. "/d.db", dir .. "/consumer.log"
    local rng = S.rng(99)
    local trials = {}
    for t = 1, 10 do
      local mode = ({ "exit", "kill", "none" })[rng(3)]
      trials[t] = mode
      os.execute(("%s %s %s %d %s %d >/dev/null 2>&1"):format(lua_cmd(), db, log, 500 + t, mode, rng(60)))
    end
    -- a final clean process drains what is left
    os.execute(("%s %s %s %d none 0 >/dev/null 2>&1"):format(lua_cmd(), db, log, 999))

    local store = assert(roomstate.open(db))
    local outs = store:outputs(1, 1e6)
    for i, o in ipairs(outs) do assert.equal(i, o.position) end
    local applied, last_applied = {}, 0
    local expect_start = nil
    local ingested = {}
    for line in io.lines(log) do
      local tag, v = line:match("^(%S+) ?(.*)$")
      if tag == "START" then
        expect_start = tonumber(v) or 1
      elseif tag == "D" then
        local p = tonumber(v)
        if expect_start then
          -- the first output a process receives is the one after its last ack
          assert.equal(expect_start, p)
          expect_start = nil
        end
      elseif tag == "A" then
        local p = tonumber(v)
        assert.is_nil(applied[p], "output applied twice: " .. p)
        assert.equal(last_applied + 1, p)
        applied[p], last_applied = true, p
      elseif tag == "I" then
        ingested[#ingested + 1] = v
      elseif tag == "FAIL" then
        error(v)
      end
    end
    assert.equal(#outs, last_applied)
    -- every acknowledged ingest is stored
    for _, id in ipairs(ingested) do assert.is_string(store:event(id)) end
    assert.is_true(#ingested > 100)
    assert.is_true(store:check())
    store:close()
    if os.getenv("KEEP_DURABLE") then print(dir) else S.rmdir(dir) end
  end)
end)
