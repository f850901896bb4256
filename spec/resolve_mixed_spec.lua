-- roomstate.resolve given some events as Lua tables and the rest as JSON
-- text: with most of them tables the core looks IDs up by their strings'
-- addresses (csrc/state_res.c), and a text event's ID is a copy at
-- another address, found by binary search and then kept under that
-- address. The answers and failures must be the all-text ones.
package.path = "bench/?.lua;" .. package.path
local V = require "stateres_vectors"
local S = require "resolve_shapes"
local roomstate = require "roomstate"
local encode = require("roomstate.event").json.encode

-- every k-th event (by position, from `from`) as text, the rest tables
local function mixed(events, k, from)
  local t, i = {}, 0
  local keys = {}
  for key in pairs(events) do keys[#keys + 1] = key end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, key in ipairs(keys) do
    i = i + 1
    t[key] = (i % k == from) and assert(encode(events[key])) or events[key]
  end
  return t
end

local function texts(events)
  local t = {}
  for key, ev in pairs(events) do t[key] = assert(encode(ev)) end
  return t
end

local function verdict(v, sets, events)
  local stats = {}
  local out, err, code = roomstate.resolve(v, sets, events, { stats = stats })
  return { out = out, err = err, code = code }, stats
end

describe("roomstate.resolve, events partly tables and partly text", function()
  for _, v in ipairs({ "1", "2", "10", "11", "12" }) do
    it("gives the text answer on seeded random forks, room version " .. v, function()
      for seed = 1, 20 do
        local sets, events = V.random_forks(v, seed * 6151 + tonumber(v))
        local want = verdict(v, sets, texts(events))
        for _, k in ipairs({ 3, 5 }) do
          local got, stats = verdict(v, sets, mixed(events, k, seed % k))
          assert.is_true(stats.from_tables > 0, "some tables read")
          assert.same(want, got, ("v%s seed %d, every %d-th as text"):format(v, seed, k))
        end
      end
    end)
  end

  it("gives the text answer on the benchmark shapes, a missing event named", function()
    for _, name in ipairs(S.SHAPES) do
      for _, v in ipairs({ "11", "12" }) do
        local s = S.shape(name, v, 40)
        local want = verdict(v, s.sets, texts(s.events))
        assert.same(want, verdict(v, s.sets, mixed(s.events, 4, 1)), name .. " v" .. v)
        -- without one cited event: the same MISSING_EVENTS
        local less = {}
        for i = 1, #s.events do if i ~= 3 then less[#less + 1] = s.events[i] end end
        local w2 = verdict(v, s.sets, texts(less))
        assert.equal("MISSING_EVENTS", w2.code, name .. " v" .. v)
        assert.same(w2, verdict(v, s.sets, mixed(less, 4, 2)), name .. " v" .. v .. ", missing")
      end
    end
  end)
end)
