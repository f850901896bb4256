-- bench/store_resolve_file.lua - bench/store_resolve.lua's room and cases
-- kept in a file, so that one build serves many measurements (under
-- callgrind, or old and new builds in turn):
--
--   luajit bench/store_resolve_file.lua BUILD_DIR build FILE [N] [--k "5000"]
--   luajit bench/store_resolve_file.lua BUILD_DIR run FILE CASE CALLS [ID_CACHE_ENTRIES]
--
-- `build` writes a room of N joined members (default 100,000, version 10)
-- and the cases one-key and members-K into FILE, their state sets into
-- FILE.cases. `run` opens FILE and calls store:resolve(room, { a, b })
-- for CASE CALLS times on one handle, printing each call's CPU time
-- (os.clock), its answer's size and a checksum of its text. Under
-- callgrind, `--toggle-collect=l_resolve_stored --dump-after=l_resolve_stored`
-- gives each call its own profile: the first is the fresh handle's, the
-- later ones the warm calls'.
local build, mode, file = arg[1], arg[2], arg[3]
assert(build and mode and file, "usage: BUILD_DIR build|run FILE ...")
local script_dir = (arg[0]:match("^(.*)/[^/]*$") or ".")
local root = script_dir .. "/.."
package.path = root .. "/bench/?.lua;" .. root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = build .. "/?.so;" .. package.cpath
local roomstate = require "roomstate"
local clock = os.clock

if mode == "build" then
  local N, KS = tonumber(arg[4]) or 100000, { 5000 }
  for i = 4, #arg do
    if arg[i] == "--k" then
      KS = {}
      for w in arg[i + 1]:gmatch("%S+") do KS[#KS + 1] = tonumber(w) end
    end
  end
  os.remove(file)
  local store = assert(roomstate.open(file))
  local rid, cases = require("resolve_room")(store, N, KS, "10")
  local out = assert(io.open(file .. ".cases", "w"))
  out:write(rid, "\n")
  for _, c in ipairs(cases) do out:write(c.name, " ", c.sets[1], " ", c.sets[2], "\n") end
  out:close()
  store:close()
  return
end

assert(mode == "run", "mode is build or run")
local case, calls, entries = arg[4], tonumber(arg[5]) or 3, tonumber(arg[6])
local f = assert(io.open(file .. ".cases"))
local rid, sets = f:read("*l"), nil
for line in f:lines() do
  local name, a, b = line:match("^(%S+) (%S+) (%S+)$")
  if name == case then sets = { a, b } end
end
f:close()
assert(sets, "no case " .. tostring(case))
local store = assert(roomstate.open(file, { id_cache_entries = entries }))
for i = 1, calls do
  local t0 = clock()
  local got = assert(store:resolve(rid, sets))
  local t = clock() - t0
  local text = table.concat(got, "\n")
  local sum = 0
  for j = 1, #text, 7 do sum = (sum * 31 + text:byte(j)) % 2147483647 end
  print(("%s call %d: %.1f ms, %d IDs, check %d"):format(case, i, t * 1000, #got, sum))
end
store:close()
