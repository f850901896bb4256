-- bench/resolve.lua - pure state resolution through roomstate.resolve
-- (issue 13 section 4), from LuaJIT:
--
--   luajit bench/resolve.lua BUILD_DIR [ROUNDS] [--n "1000 10000"]
--          [--versions "11 12"] [--shapes "members bans deep-bans pl-chain"]
--          [--check N] [--no-text] [--series FILE] [--raw FILE]
--
-- The shapes are bench/resolve_shapes.lua's. Each resolution is timed
-- inside one roomstate.resolve call, given the events as Lua tables and
-- as JSON text (encoded once, before any timing). Every case and form
-- runs once per round, in the same order each round, so a slow moment of
-- this shared machine lands on one round of each rather than on all of
-- one. Prints a markdown table: best and median (min-max) over the rounds
-- (default 3), the events given and the auth-chain events the walks
-- visited (opts.stats), and the time per conflicted event over n log2 n.
--
-- Before timing, every answer is checked: the tables' and the texts'
-- answers are equal, the shape's own expectation holds (all bans win),
-- and up to N = --check (default 1000) the answer is the naive model's
-- (spec/stateres_model.lua, with its own auth rules).
--
-- --series FILE: also writes "shape version n conflicted best_ms" lines
-- for bench/resolve_growth.gp. --raw FILE: every timed call, as lines
-- "shape version n form round ms", to compare runs round by round.
local script_dir = (arg[0]:match("^(.*)/[^/]*$") or ".")
local root = script_dir .. "/.."
local build = assert(arg[1], "usage: luajit bench/resolve.lua BUILD_DIR [ROUNDS] [options]")
package.path = root .. "/bench/?.lua;" .. root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;"
               .. root .. "/spec/?.lua;" .. package.path
package.cpath = build .. "/?.so;" .. package.cpath

local ROUNDS, NS, VERSIONS, SHAPES, CHECK_UP_TO, TEXT = 3, { 1000, 10000 }, { "11", "12" }, nil,
                                                       1000, true
local SERIES, RAW
local function words(s)
  local t = {}
  for w in s:gmatch("%S+") do t[#t + 1] = w end
  return t
end
do
  local i = 2
  while arg[i] do
    local a = arg[i]
    if a == "--n" then
      NS = {}
      for _, w in ipairs(words(arg[i + 1])) do NS[#NS + 1] = tonumber(w) end
      i = i + 1
    elseif a == "--versions" then VERSIONS = words(arg[i + 1]); i = i + 1
    elseif a == "--shapes" then SHAPES = words(arg[i + 1]); i = i + 1
    elseif a == "--check" then CHECK_UP_TO = tonumber(arg[i + 1]); i = i + 1
    elseif a == "--no-text" then TEXT = false
    elseif a == "--series" then SERIES = arg[i + 1]; i = i + 1
    elseif a == "--raw" then RAW = arg[i + 1]; i = i + 1
    elseif tonumber(a) then ROUNDS = tonumber(a)
    else error("bench/resolve.lua: unknown option " .. a) end
    i = i + 1
  end
end

local roomstate = require "roomstate"
local encode = require("roomstate.event").json.encode
local S = require "resolve_shapes"
local R = require "stateres_model"
SHAPES = SHAPES or S.SHAPES

local now = require "clock"

local function same(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

-- the cases, each checked once before any timing
local cases = {}
for _, n in ipairs(NS) do
  for _, v in ipairs(VERSIONS) do
    for _, name in ipairs(SHAPES) do
      local s = S.shape(name, v, n)
      local texts = {}
      for i, ev in ipairs(s.events) do texts[i] = encode(ev) end
      local stats = {}
      local got = assert(roomstate.resolve(v, s.sets, s.events, { stats = stats }))
      local from_text = assert(roomstate.resolve(v, s.sets, texts))
      assert(same(got, from_text), name .. ": tables and texts give different answers")
      if s.expect then assert(s.expect(got)) end
      local checked = "no"
      if n <= CHECK_UP_TO then
        local map = {}
        for _, ev in ipairs(s.events) do map[ev.event_id] = ev end
        local want = assert(R.resolve(v, s.sets, map))
        assert(same(want, got), name .. " v" .. v .. " n " .. n .. ": C and the model differ")
        checked = "yes"
      end
      cases[#cases + 1] = { name = name, v = v, n = n, s = s, texts = texts, stats = stats,
                            checked = checked, t = { tables = {}, text = {} } }
      io.stderr:write(("checked %s v%s n=%d (model: %s)\n"):format(name, v, n, checked))
    end
  end
end

local forms = TEXT and { "tables", "text" } or { "tables" }
local raw = RAW and assert(io.open(RAW, "w"))
for round = 1, ROUNDS do
  -- once a round: a full cycle leaves the next one twice the heap away,
  -- and a call allocates little, so no collection runs inside a timing
  collectgarbage()
  collectgarbage()
  for _, c in ipairs(cases) do
    for _, form in ipairs(forms) do
      local events = form == "tables" and c.s.events or c.texts
      local t0 = now()
      local out = roomstate.resolve(c.v, c.s.sets, events)
      local dt = now() - t0
      assert(out, "resolve failed in a timed run")
      local ts = c.t[form]
      ts[#ts + 1] = dt
      if raw then
        raw:write(("%s %s %d %s %d %.3f\n"):format(c.name, c.v, c.n, form, round, dt * 1e3))
      end
    end
  end
end

local function stats(v)
  local s = {}
  for i, x in ipairs(v) do s[i] = x end
  table.sort(s)
  local m = #s % 2 == 1 and s[(#s + 1) / 2] or (s[#s / 2] + s[#s / 2 + 1]) / 2
  return s[1], m, s[1], s[#s]
end

local function ms(x)
  x = x * 1e3
  if x >= 100 then return string.format("%.0f", x) end
  if x >= 10 then return string.format("%.1f", x) end
  return string.format("%.2f", x)
end

local function commas(n)
  local s = tostring(math.floor(n))
  while true do
    local k
    s, k = s:gsub("^(-?%d+)(%d%d%d)", "%1,%2")
    if k == 0 then return s end
  end
end

print(string.format("roomstate.resolve, %s, %d rounds (best of %d; median and min-max)",
                    jit and jit.version or _VERSION, ROUNDS, ROUNDS))
print("")
print("| shape | room version | N | events given | walked (gathered) | conflicted | model agrees "
      .. "| tables: best ms | median (min–max) | ns per n·log2 n | text: best ms | median (min–max) |")
print("|---|---|---:|---:|---:|---:|---|---:|---|---:|---:|---|")
local series = SERIES and assert(io.open(SERIES, "w"))
for _, c in ipairs(cases) do
  local best, med, lo, hi = stats(c.t.tables)
  local k = c.s.n_conflicted
  if series then series:write(("%s %s %d %d %.3f\n"):format(c.name, c.v, c.n, k, best * 1e3)) end
  local row = string.format("| %s | %s | %s | %s | %s | %s | %s | %s | %s (%s–%s) | %.1f |",
                            c.name, c.v, commas(c.n), commas(#c.s.events),
                            c.stats.walked and (commas(c.stats.walked) .. " (" ..
                              commas(c.stats.gathered) .. ")") or "–", commas(k),
                            c.checked, ms(best), ms(med), ms(lo), ms(hi),
                            best * 1e9 / (k * math.log(k) / math.log(2)))
  if TEXT then
    local tb, tm, tlo, thi = stats(c.t.text)
    row = row .. string.format(" %s | %s (%s–%s) |", ms(tb), ms(tm), ms(tlo), ms(thi))
  else
    row = row .. " | |"
  end
  print(row)
end
if series then series:close() end
if raw then raw:close() end
