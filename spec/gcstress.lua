-- gcstress.lua - runs a Lua process with the garbage collector never at
-- rest: pause 0 starts a new cycle as soon as one ends, and a high step
-- multiplier makes each step collect more. A value the C module still uses
-- but no longer anchors is then collected at once instead of hours later in
-- production. .ci/run loads this through busted's --helper, and through
-- LUA_INIT in every luajit the specs start (the CLI, examples, children).
local STEPMUL = tonumber(os.getenv("ROOMSTATE_GC_STEPMUL")) or 1000

collectgarbage("setpause", 0)
collectgarbage("setstepmul", STEPMUL)
-- Each setter returns the previous value: reading it back proves the
-- interpreter took the setting.
assert(collectgarbage("setpause", 0) == 0, "gcstress: pause is not 0")
assert(collectgarbage("setstepmul", STEPMUL) == STEPMUL, "gcstress: stepmul not set")

-- LUA_INIT has run this file already in busted's own process; the report
-- below is wanted once, and only where busted can say when the suite ends.
local busted = package.loaded.busted
if not busted or package.loaded["spec.gcstress"] then return end
package.loaded["spec.gcstress"] = true

-- Each proxy, when finalised, makes the next: one count per completed cycle.
local cycles = 0
local function sentinel()
  getmetatable(newproxy(true)).__gc = function()
    cycles = cycles + 1
    sentinel()
  end
end
sentinel()

busted.subscribe({ "suite", "end" }, function()
  local pause = collectgarbage("setpause", 0)
  io.stderr:write(("gcstress: pause %d, stepmul %d, %d collection cycles, %.0f KiB in use\n")
    :format(pause, STEPMUL, cycles, collectgarbage("count")))
  assert(pause == 0, "gcstress: a spec changed the collector's pause")
  return nil, true
end)
