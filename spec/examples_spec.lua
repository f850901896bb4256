-- Every example runs, with the module under test.
local S = require "support"

local function run(script, args)
  local cpath = package.cpath:match("^([^;]+)")
  local cmd = ("LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='%s;;' luajit %s %s 2>&1"):format(
    cpath, script, args or "")
  local p = io.popen(cmd .. "; echo \"exit:$?\"")
  local out = p:read("*a")
  p:close()
  return out:match("exit:(%d+)%s*$") == "0", out
end

describe("examples", function()
  it("quickstart.lua runs on a database file", function()
    local dir = S.tmpdir()
    local ok, out = run("examples/quickstart.lua", dir .. "/q.db")
    assert.is_true(ok, out)
    assert.matches("rewrites_state=true", out, 1, true)
    assert.matches("resyncs 0", out, 1, true)
    S.rmdir(dir)
  end)

  it("harness_script.lua runs", function()
    local ok, out = run("examples/harness_script.lua")
    assert.is_true(ok, out)
    assert.matches("merge resolved", out, 1, true)
  end)
end)
