-- roomstate.resolve given events as Lua tables, which the core reads
-- without JSON text (csrc/lua_event.c), against the same events as the
-- JSON text lua-cjson makes of them: the same answers and the same
-- failures over the vectors, the seeded random forks and the shapes of
-- bench/resolve_shapes.lua; and, event by event, tables that only their
-- text can speak for (reals, sparse arrays, invalid UTF-8, functions...)
-- give the text path's verdict.
package.path = "bench/?.lua;" .. package.path
local V = require "stateres_vectors"
local S = require "resolve_shapes"
local R = require "stateres_model"
local roomstate = require "roomstate"
local encode = require("roomstate.event").json.encode
local cjson = require "cjson"

local function texts_of(events)
  local t = {}
  for k, ev in pairs(events) do t[k] = encode(ev) end
  return t
end

-- Both forms through the same line, so a raise reads alike; the stats
-- say whether the tables were read straight.
local function run(v, sets, events)
  local stats = {}
  local ok, out, err, code = pcall(roomstate.resolve, v, sets, events, { stats = stats })
  return { ok = ok, out = out, err = err, code = code }, stats
end

local function text_verdict(v, sets, events)
  local texts = {}
  for k, ev in pairs(events) do
    local s, why = encode(ev)
    if not s then return { raises = why } end
    texts[k] = s
  end
  return run(v, sets, texts)
end

-- The table path's verdict is the text path's; returns the stats.
local function agree(v, sets, events, where)
  local want = text_verdict(v, sets, events)
  local got, stats = run(v, sets, events)
  if want.raises then
    assert.is_false(got.ok, where)
    assert.is_truthy(tostring(got.out):find("cannot be encoded: " .. want.raises, 1, true),
                     where .. ": " .. tostring(got.out))
  else
    assert.same(want, got, where)
  end
  return stats
end

local read_straight = 0
V.set_resolver(function(v, sets, events)
  local stats = agree(v, sets, events, "a vector")
  read_straight = read_straight + (stats.from_tables or 0)
  return assert(roomstate.resolve(v, sets, events))
end)

describe("roomstate.resolve, tables against their JSON text", function()
  for _, vec in ipairs(V.VECTORS) do
    it(vec[1], function() vec[2](nil) end)
  end
  it("read the vectors' tables straight", function()
    assert.is_true(read_straight > 100, "read " .. read_straight)
  end)

  for _, v in ipairs({ "1", "2", "6", "10", "11", "12" }) do
    it("agrees on seeded random forks, room version " .. v, function()
      for seed = 1, V.LIGHT and 10 or 50 do
        local sets, events = V.random_forks(v, seed * 7877 + tonumber(v))
        local stats = agree(v, sets, events, ("v%s seed %d"):format(v, seed))
        local n = 0
        for _ in pairs(events) do n = n + 1 end
        assert.equal(n, stats.from_tables, "every event read from its table")
        -- as an array, with the IDs from the events
        local list = {}
        for _, ev in pairs(events) do list[#list + 1] = ev end
        agree(v, sets, list, ("v%s seed %d, an array"):format(v, seed))
      end
    end)
  end

  for _, name in ipairs(S.SHAPES) do
    it("agrees on the benchmark shape " .. name, function()
      for _, v in ipairs({ "11", "12" }) do
        local s = S.shape(name, v, 30)
        local stats = agree(v, s.sets, s.events, name .. " v" .. v)
        assert.equal(#s.events, stats.from_tables)
        assert.is_true(stats.walked > 0)
        if s.expect then assert(s.expect(assert(roomstate.resolve(v, s.sets, s.events)))) end
      end
    end)
  end
end)

describe("roomstate.resolve, a table only its text can speak for", function()
  -- a small room, then one event of it changed
  local function room(v)
    local s = S.shape("bans", v, 3)
    return s.sets, s.events
  end
  local function copy(t)
    if type(t) ~= "table" then return t end
    local c = {}
    for k, x in pairs(t) do c[k] = copy(x) end
    return setmetatable(c, getmetatable(t))
  end
  -- change(ev) alters a copy of the i-th event (a member, by default the
  -- first user's join) and returns the stats of the table path
  local function case(v, change, i)
    local sets, events = room(v)
    local evs = copy(events)
    change(evs[i or 7], evs)
    return agree(v, sets, evs, "v" .. v)
  end
  local function nested(depth)
    local t = {}
    local top = t
    for _ = 2, depth do
      t.x = {}
      t = t.x
    end
    return top
  end

  local CASES = {
    { "invalid UTF-8 in a signature", function(ev)
      ev.signatures["example.org"]["ed25519:a1"] = "\xff\xfe" end },
    { "an overlong form", function(ev) ev.content.displayname = "\xc0\xaf" end },
    { "a surrogate", function(ev) ev.content.displayname = "\xed\xa0\x80" end },
    { "a code point past U+10FFFF", function(ev) ev.content.displayname = "\xf4\x90\x80\x80" end },
    { "a cut sequence", function(ev) ev.content.displayname = "ab\xe2\x82" end },
    { "valid UTF-8 of every length", function(ev)
      ev.content.displayname = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" end, true },
    { "invalid UTF-8 in a key", function(ev) ev.content["\xc3"] = 1 end },
    -- the event's own keys: a field's name is checked by its address, any other key by its bytes
    { "invalid UTF-8 in a top-level key", function(ev) ev["\xc3"] = 1 end },
    { "NUL in a top-level key", function(ev) ev["sender\0"] = "@x:y" end },
    { "an unknown top-level key", function(ev) ev.unsigned = { age = 5 } end, true },
    { "invalid UTF-8 in the sender", function(ev) ev.sender = "@\xff:example.org" end },
    { "invalid UTF-8 in the state_key", function(ev) ev.state_key = "\xed\xa0\x80" end },
    { "NUL in the sender", function(ev) ev.sender = "@a\0b:example.org" end, true },
    { "a real origin_server_ts", function(ev) ev.origin_server_ts = 1.5 end },
    { "a real in an auth_events entry", function(ev) ev.auth_events[2] = 0.5 end },
    { "NUL in a value", function(ev) ev.content.displayname = "a\0b" end, true },
    { "NUL in a key", function(ev) ev.content["a\0b"] = 1 end },
    { "a real number", function(ev) ev.content.x = 0.5 end },
    { "an integer of 14 digits", function(ev) ev.origin_server_ts = 99999999999999 end, true },
    { "10^14, printed as a real", function(ev) ev.origin_server_ts = 1e14 end },
    { "2^53", function(ev) ev.depth = 2 ^ 53 end },
    { "negative zero", function(ev) ev.depth = -0.0 end, true },
    { "a real that %.14g prints as an integer", function(ev) ev.depth = 12345678901234.5 end },
    { "NaN", function(ev) ev.content.x = 0 / 0 end },
    { "infinity", function(ev) ev.content.x = math.huge end },
    { "a sparse array", function(ev) ev.prev_events = { [1] = "$a", [3] = "$b" } end },
    { "an excessively sparse array", function(ev) ev.content.x = { [20] = "x" } end },
    { "number keys with string keys", function(ev) ev.content[1] = "a" end },
    { "a boolean key", function(ev) ev.content[true] = 1 end },
    { "a function", function(ev) ev.content.x = print end },
    { "a userdata", function(ev) ev.content.x = io.stdout end },
    { "64 tables deep", function(ev) ev.content.x = nested(62) end, true },
    { "65 tables deep", function(ev) ev.content.x = nested(63) end },
    { "cjson.null as state_key", function(ev) ev.state_key = cjson.null end, true },
    { "cjson.null as content", function(ev) ev.content = cjson.null end, true },
    { "content as an array", function(ev) ev.content = { "join" } end, true },
    { "content empty", function(ev) ev.content = {} end, true },
    { "membership absent", function(ev) ev.content.membership = nil end, true },
    { "membership null", function(ev) ev.content.membership = cjson.null end, true },
    { "a number state_key", function(ev) ev.state_key = 5 end, true },
    { "no state_key", function(ev) ev.state_key = nil end, true },
    { "a number sender", function(ev) ev.sender = 7 end, true },
    { "auth_events as [ID, hashes] pairs", function(ev)
      for i, id in ipairs(ev.auth_events) do ev.auth_events[i] = { id, { sha256 = "x" } } end
    end, true },
    { "auth_events empty", function(ev) ev.auth_events = {} end, true },
    { "auth_events an object", function(ev) ev.auth_events = { a = "$x" } end, true },
    { "an auth event an object", function(ev) ev.auth_events[1] = { id = "$x" } end, true },
    { "prev_events absent", function(ev) ev.prev_events = nil end, true },
    { "origin_server_ts a string", function(ev) ev.origin_server_ts = "5" end, true },
    { "a metatable's __index", function(ev)
      ev.content = setmetatable({}, { __index = { membership = "join" } }) end, true },
    { "join_authorised_via_users_server", function(ev)
      ev.content.join_authorised_via_users_server = "@admin:example.org" end, true },
    { "third_party_invite", function(ev)
      ev.content.third_party_invite = { signed = { mxid = "@x:y", token = "t" } } end, true },
    { "no event_id (its hash)", function(ev) ev.event_id = nil end },
  }

  for _, v in ipairs({ "11", "12" }) do
    for _, c in ipairs(CASES) do
      it(c[1] .. ", room version " .. v, function()
        local stats = case(v, c[2])
        if c[3] then -- in the subset: read straight, not by the fallback
          assert.is_true((stats.from_tables or 0) > 0, "read from the tables")
        end
      end)
    end
  end

  it("a ban with a join_authorised_via, a create without room_version: alike", function()
    for _, v in ipairs({ "11", "12" }) do
      case(v, function(ev) ev.content.join_authorised_via_users_server = "@mod:example.org" end, 10)
      case(v, function(ev) ev.content.room_version = nil end, 1)
      case(v, function(ev) ev.content.users = { ["@admin:example.org"] = 10 } end, 3)
      case(v, function(ev) ev.content.users = { ["@admin:example.org"] = 0.5 } end, 3)
      -- 10^14 is written 1e+14, a real, which v10 on refuses as a level
      case(v, function(ev) ev.content.users = { ["@admin:example.org"] = 1e14 } end, 3)
      case(v, function(ev) ev.content.users = { ["@admin:example.org"] = 99999999999999 } end, 3)
    end
  end)

  -- The power levels' content is read from its table (csrc/lua_power.c),
  -- not from a tree of its text: every form a level can take, in every
  -- room version's rules, on a conflicted power event of pl-chain (its
  -- first change, 6, or its last, 8, which decides the answer).
  local PL_CASES = {
    { "a level as a string", function(c) c.ban = " +50 " end },
    { "a user's level as a string", function(c) c.users["@admin:example.org"] = "100" end },
    { "a user's level as a bad string", function(c) c.users["@admin:example.org"] = "1 0" end },
    { "a level with NUL after digits", function(c) c.state_default = "50\0x" end },
    { "users an array", function(c) c.users = { "@admin:example.org" } end },
    { "users empty", function(c) c.users = {} end },
    { "users of forty", function(c)
      for i = 1, 40 do c.users[("@u%d:example.org"):format(i)] = i end end },
    { "users a string", function(c) c.users = "@admin:example.org" end },
    { "users null", function(c) c.users = cjson.null end },
    { "users absent", function(c) c.users = nil end },
    { "a users key not a user ID", function(c) c.users.admin = 100 end },
    { "both faults in users", function(c)
      c.users.admin, c.users["@x:example.org"] = 100, true end },
    { "events an array", function(c) c.events = { 100 } end },
    { "an event level null", function(c) c.events["m.room.power_levels"] = cjson.null end },
    { "an event level a table", function(c) c.events["m.room.name"] = { 1 } end },
    { "notifications with a string", function(c) c.notifications = { room = "x" } end },
    { "notifications an array", function(c) c.notifications = { 1 } end },
    { "a level true", function(c) c.kick = true end },
    { "a level an object", function(c) c.invite = { x = 1 } end },
    { "a level of 14 digits", function(c) c.redact = -99999999999999 end },
    { "the admin lowered", function(c) c.users["@admin:example.org"] = 10 end },
    { "only users", function(c)
      for k in pairs(c) do if k ~= "users" then c[k] = nil end end end },
    { "content empty", function(c) for k in pairs(c) do c[k] = nil end end },
  }
  local model_checked = 0
  for _, v in ipairs({ "1", "6", "10", "11", "12" }) do
    for _, c in ipairs(PL_CASES) do
      it("power levels: " .. c[1] .. ", room version " .. v, function()
        for _, i in ipairs({ 6, 8 }) do
          local s = S.shape("pl-chain", v, 3)
          local evs = copy(s.events)
          assert.equal("m.room.power_levels", evs[i].type)
          c[2](evs[i].content)
          local stats = agree(v, s.sets, evs, "v" .. v .. " event " .. i)
          assert.equal(#evs, stats.from_tables, "read from the tables")
          -- and the model, whose rules read the levels themselves: the two
          -- paths share power_levels.c's pieces, so agreeing is not enough
          local map = {}
          for _, ev in ipairs(evs) do map[ev.event_id] = ev end
          local ok, want = pcall(R.resolve, v, s.sets, map)
          if ok and want then
            assert.same(want, assert(roomstate.resolve(v, s.sets, evs)), "the model")
            model_checked = model_checked + 1
          end
        end
      end)
    end
  end

  it("power levels: most cases checked against the model", function()
    assert.is_true(model_checked >= #PL_CASES * 5, "checked " .. model_checked)
  end)

  it("a map's key stands for the ID; a table still raises where cjson would", function()
    local sets, events = room("11")
    local map = {}
    for _, ev in ipairs(events) do
      local c = copy(ev)
      c.event_id = nil
      map[ev.event_id] = c
    end
    agree("11", sets, map, "a map")
    local _, stats = run("11", sets, map)
    assert.equal(#events, stats.from_tables)
    -- in an array, one without event_id is named by its hash
    local list = copy(events)
    local extra = copy(events[#events])
    extra.event_id, extra.origin_server_ts = nil, 5
    list[#list + 1] = extra
    agree("11", sets, list, "an event named by its hash")
    _, stats = run("11", sets, list)
    assert.equal(#list, stats.from_tables)
    map[events[1].event_id].content.x = print
    local got = run("11", sets, map)
    assert.is_false(got.ok)
    assert.matches("bad argument #3 to 'resolve' %(events%[\"%$", got.out)
  end)

  it("a string event's failure still waits for the tables after it", function()
    local sets, events = room("11")
    local evs = copy(events)
    evs[2] = "{nope"
    evs[#evs].content.x = print -- the text path encoded every table first
    local got = run("11", sets, evs)
    assert.is_false(got.ok)
    assert.matches("cannot be encoded", got.out)
    evs[#evs].content.x = nil
    got = run("11", sets, evs)
    assert.equal("BAD_EVENT", got.code)
  end)
end)
