-- Issue 12 §4: the C auth rules (roomstate.auth_check) against the naive
-- Lua model written from the spec text (spec/auth_model.lua), over seeded
-- random rooms: random senders on two servers, memberships, power changes
-- with every value form a version allows or refuses, join rules, bans,
-- joins by strangers, state under others' user IDs, aliases and
-- redactions. Every candidate event is checked by both against the auth
-- events the selection picks from the room's state; both must agree on
-- allowed or refused, and on the reason code. Allowed state events join
-- the state.
local roomstate = require "roomstate"
local model = require "auth_model"
local streams = require "auth_streams"

local LIGHT = os.getenv("ROOMSTATE_SPEC_LIGHT")
local SEEDS = LIGHT and 6 or 40
local STEPS = LIGHT and 60 or 150

local code_of = streams.code_of

local function same_types(v, ev)
  local a = assert(roomstate.auth_types(v, ev))
  local b = model.auth_types(v, ev)
  local function set(l)
    local s = {}
    for _, t in ipairs(l) do s[#s + 1] = t[1] .. "|" .. t[2] end
    table.sort(s)
    return table.concat(s, ",")
  end
  return set(a) == set(b), set(a), set(b)
end

describe("the C auth rules against the naive model", function()
  for _, v in ipairs(roomstate.room_versions()) do
    it("agree on every event of random rooms, room version " .. v, function()
      local checked, allowed, refused = 0, 0, {}
      for seed = 1, SEEDS do
        local room = streams.seeded_room(v, seed * 131 + tonumber(v))
        for _ = 1, STEPS do
          local ev = room:candidate()
          local ok_types, c_types, m_types = same_types(v, ev)
          assert(ok_types, ("v%s seed %d: auth types C %s, model %s"):format(v, seed, c_types, m_types))
          local list, map = room:auth_for(ev)
          local c_ok, c_reason = roomstate.auth_check(v, ev, list)
          local m_ok, m_reason = model.check(v, ev, map)
          local c_code, m_code = code_of(c_reason), code_of(m_reason)
          if (c_ok == true) ~= (m_ok == true) or c_code ~= m_code then
            error(("v%s seed %d event %s (%s %s by %s): C says %s, model says %s\n%s"):format(
              v, seed, ev.event_id, ev.type, tostring(ev.state_key), ev.sender,
              tostring(c_reason or c_ok), tostring(m_reason or m_ok),
              require("cjson").encode(ev)))
          end
          checked = checked + 1
          if c_ok then
            allowed = allowed + 1
            room:accept(ev)
          else
            refused[c_code] = (refused[c_code] or 0) + 1
          end
        end
      end
      -- the streams must reach both outcomes, or agreement proves little
      assert.is_true(allowed > checked / 20, "allowed " .. allowed .. " of " .. checked)
      local kinds = 0
      for _ in pairs(refused) do kinds = kinds + 1 end
      assert.is_true(kinds >= 5, "refusal codes seen: " .. kinds)
    end)
  end
end)
