-- The naive auth-rules model (spec/auth_model.lua) against the spec text:
-- for each rule, an allowed and a refused case per room version where the
-- rule differs, asserting the reason code; then test vectors of Ruma,
-- Synapse and gomatrixserverlib, re-expressed as our own data.
local A = require "auth_model"
local roomstate = require "roomstate"

-- The C rules take the events the selection picks from the state (for v12
-- the create event too), as a list.
local function c_check(v, e, st)
  local list = {}
  for _, t in ipairs(A.auth_types(v, e)) do
    list[#list + 1] = st[t[1] .. "\0" .. t[2]]
  end
  if v == "12" then list[#list + 1] = st["m.room.create\0"] end
  return roomstate.auth_check(v, e, list)
end

local ALL = {}
for i = 1, 12 do ALL[i] = tostring(i) end

local function range(lo, hi)
  local t = {}
  for i = lo, hi do t[#t + 1] = tostring(i) end
  return t
end

local ROOM = "!room:a.org"
local ALICE = "@alice:a.org" -- the creator
local BOB = "@bob:a.org"     -- moderator (50)
local CAROL = "@carol:b.org" -- plain user (0), another server
local DAVE = "@dave:a.org"   -- a stranger
-- The create event's ID is the room ID with the sigil `$`, as v12 requires
-- (v12 rule 2); earlier versions do not care.
local CREATE_ID = "$room:a.org"

local function copy(t)
  if type(t) ~= "table" then return t end
  local c = {}
  for k, v in pairs(t) do c[k] = copy(v) end
  return c
end

local function merge(a, b)
  local c = copy(a)
  for k, v in pairs(b or {}) do c[k] = copy(v) end
  return c
end

local n = 0
local function ev(t)
  n = n + 1
  return merge({ room_id = ROOM, content = {}, prev_events = { "$prev" .. n .. ":a.org" },
                 event_id = "$ev" .. n .. ":a.org" }, t)
end

local function put(st, e) st[e.type .. "\0" .. e.state_key] = e; return st end

local function create_event(v, content)
  local c = content or {}
  if A.rules(v).creator_field and c.creator == nil then c.creator = ALICE end
  local e = { type = "m.room.create", state_key = "", sender = ALICE, room_id = ROOM,
              event_id = CREATE_ID, content = c, prev_events = {}, auth_events = {} }
  if v == "12" then e.room_id = nil end
  return e
end

local function member(user, membership, extra, sender)
  return ev({ type = "m.room.member", state_key = user, sender = sender or user,
              content = merge({ membership = membership }, extra) })
end

-- Power levels with alice at 100 (v1-v11; in v12 she is a creator and may
-- not be listed) and bob at 50, then `content` on top.
local function pl(v, content)
  local users = { [BOB] = 50 }
  if v ~= "12" then users[ALICE] = 100 end
  local c = merge({ users = users }, content)
  if content and content.users then c.users = merge(users, content.users) end
  return ev({ type = "m.room.power_levels", state_key = "", sender = ALICE, content = c })
end

local function join_rules(rule)
  return ev({ type = "m.room.join_rules", state_key = "", sender = ALICE,
              content = { join_rule = rule } })
end

-- A room: create, alice/bob/carol joined, power levels, join rules public.
-- o.pl: extra power-levels content (false: no power-levels event);
-- o.jr: join rule (false: none); o.members: user -> membership on top.
local function room(v, o)
  o = o or {}
  local st = {}
  put(st, create_event(v, o.create))
  put(st, member(ALICE, "join"))
  put(st, member(BOB, "join"))
  put(st, member(CAROL, "join"))
  if o.pl ~= false then put(st, pl(v, o.pl)) end
  if o.jr ~= false then put(st, join_rules(o.jr or "public")) end
  for u, m in pairs(o.members or {}) do
    if m == false then st["m.room.member\0" .. u] = nil else put(st, member(u, m, nil, ALICE)) end
  end
  for _, e in ipairs(o.extra or {}) do put(st, e) end
  return st
end

local function code_of(why) return why and why:match("^([%u_]+):") end

local count = 0
-- case(name, versions, build(v) -> event, state, want): want is true or a
-- reason code; one `it` per version.
local function case(name, versions, build, want)
  for _, v in ipairs(versions) do
    count = count + 1
    for who, check in pairs({ model = A.check, C = c_check }) do
      it("v" .. v .. ": " .. name .. " (" .. who .. ")", function()
        local e, st = build(v)
        local ok, why = check(v, e, st)
        if want == true then
          assert.is_true(ok, why)
        else
          assert.is_nil(ok, name .. " was allowed")
          assert.equal(want, code_of(why), why)
          assert.truthy(why:match("^[%u_]+: %S"), "reason has words: " .. tostring(why))
        end
      end)
    end
  end
end

-- The same, where the answer depends on the version: want(v).
local function case_by(name, versions, build, want)
  for _, v in ipairs(versions) do case(name, { v }, build, want(v)) end
end

local function msg(sender, extra)
  return ev(merge({ type = "m.room.message", sender = sender, content = { body = "hi" } }, extra))
end

describe("auth model: rule 1, m.room.create", function()
  case("a create event is allowed", ALL, function(v) return create_event(v), {} end, true)
  case("1.1 a create event with prev_events is refused", ALL, function(v)
    local e = create_event(v); e.prev_events = { "$x:a.org" }; return e, {}
  end, "CREATE_INVALID")
  case("1.2 a room ID on another domain than the sender's is refused", range(1, 11), function(v)
    local e = create_event(v); e.room_id = "!room:b.org"; return e, {}
  end, "CREATE_INVALID")
  case("1.2 v12: a create event with a room_id is refused", { "12" }, function(v)
    local e = create_event(v); e.room_id = ROOM; return e, {}
  end, "CREATE_INVALID")
  case("1.3 an unknown content.room_version is refused", ALL, function(v)
    return create_event(v, { room_version = "99" }), {}
  end, "CREATE_INVALID")
  case("1.3 a known content.room_version is allowed", ALL, function(v)
    return create_event(v, { room_version = v }), {}
  end, true)
  case_by("1.4 no creator: refused v1-v10, allowed v11+", ALL, function(v)
    local e = create_event(v); e.content.creator = nil; return e, {}
  end, function(v) return tonumber(v) <= 10 and "CREATE_INVALID" or true end)
  case_by("v12 1.4 additional_creators not an array", ALL, function(v)
    return create_event(v, { additional_creators = "@x:a.org" }), {}
  end, function(v) return v == "12" and "CREATE_INVALID" or true end)
  case_by("v12 1.4 additional_creators holding a non-user ID", ALL, function(v)
    return create_event(v, { additional_creators = { "@ok:b.org", "bob" } }), {}
  end, function(v) return v == "12" and "CREATE_INVALID" or true end)
  case("v12 1.4 additional_creators of user IDs is allowed", { "11", "12" }, function(v)
    return create_event(v, { additional_creators = { "@ok:b.org", BOB } }), {}
  end, true)
  case("a create event whose state_key is not empty is malformed", ALL, function(v)
    local e = create_event(v); e.state_key = "x"; return e, {}
  end, "BAD_FORMAT")
end)

describe("auth model: rule 2, the auth events", function()
  case("2.4 no create event among the auth events", ALL, function(v)
    local st = room(v); st["m.room.create\0"] = nil
    return msg(ALICE), st
  end, "NO_CREATE")
  case("2.5 an auth event of another room", ALL, function(v)
    local st = room(v); st["m.room.member\0" .. ALICE].room_id = "!other:a.org"
    return msg(ALICE), st
  end, "AUTH_EVENTS_INVALID")
  case("a message with all auth events of the room is allowed", ALL, function(v)
    return msg(ALICE), room(v)
  end, true)
end)

describe("auth model: rule 3, m.federate", function()
  case("a sender of another server in an unfederated room", ALL, function(v)
    return msg(CAROL), room(v, { create = { ["m.federate"] = false } })
  end, "NOT_FEDERATED")
  case("a sender of the creator's server in an unfederated room", ALL, function(v)
    return msg(BOB), room(v, { create = { ["m.federate"] = false } })
  end, true)
  case("m.federate true lets other servers in", ALL, function(v)
    return msg(CAROL), room(v, { create = { ["m.federate"] = true } })
  end, true)
  case("a join from another server in an unfederated room", ALL, function(v)
    return member(DAVE:gsub("a.org", "c.org"), "join"), room(v, { create = { ["m.federate"] = false } })
  end, "NOT_FEDERATED")
end)

describe("auth model: v1-v5 rule 4, m.room.aliases", function()
  local function aliases(sender, sk)
    return ev({ type = "m.room.aliases", sender = sender, state_key = sk,
                content = { aliases = { "#a:" .. tostring(sk) } } })
  end
  case("a stranger's aliases for its own domain (no membership needed)", range(1, 5), function(v)
    return aliases("@x:c.org", "c.org"), room(v)
  end, true)
  case("aliases for another domain", range(1, 5), function(v)
    return aliases(ALICE, "b.org"), room(v)
  end, "ALIASES_INVALID")
  case("aliases with no state_key", range(1, 5), function(v)
    return aliases(ALICE, nil), room(v)
  end, "ALIASES_INVALID")
  case("v6+: aliases are an ordinary state event, a stranger is not joined", range(6, 12), function(v)
    return aliases("@x:c.org", "c.org"), room(v)
  end, "SENDER_NOT_JOINED")
  case("v6+: aliases for another domain by a joined creator", range(6, 12), function(v)
    return aliases(ALICE, "b.org"), room(v)
  end, true)
end)

describe("auth model: membership 4.1 and 4.8", function()
  case("4.1 no membership in content", ALL, function(v)
    local e = member(DAVE, "join"); e.content.membership = nil; return e, room(v)
  end, "MEMBER_INVALID")
  case("4.1 no state_key", ALL, function(v)
    local e = member(DAVE, "join"); e.state_key = nil; return e, room(v)
  end, "MEMBER_INVALID")
  case("4.8 an unknown membership", ALL, function(v)
    return member(DAVE, "dance"), room(v)
  end, "MEMBER_INVALID")
end)

describe("auth model: 4.3 join", function()
  local function first_join(v, user, create_content)
    local st = put({}, create_event(v, create_content))
    local e = member(user, "join"); e.prev_events = { CREATE_ID }
    if v == "1" or v == "2" then e.prev_events = { { CREATE_ID, { sha256 = "x" } } } end
    return e, st
  end
  case("4.3.1 the creator's join right after the create event", ALL, function(v)
    return first_join(v, ALICE)
  end, true)
  case_by("4.3.1 content.creator is the creator v1-v10; the sender from v11", ALL, function(v)
    return first_join(v, DAVE, { creator = DAVE })
  end, function(v) return tonumber(v) <= 10 and true or "JOIN_NOT_ALLOWED" end)
  case("4.3.1 another user right after the create event", ALL, function(v)
    return first_join(v, DAVE)
  end, "JOIN_NOT_ALLOWED")
  case("4.3.1 the creator, but the prev event is not the create event", ALL, function(v)
    local e, st = first_join(v, ALICE); e.prev_events = { "$other:a.org" }; return e, st
  end, "JOIN_NOT_ALLOWED")
  case("4.3.2 joining someone else", ALL, function(v)
    return member(DAVE, "join", nil, BOB), room(v)
  end, "JOIN_NOT_ALLOWED")
  case("4.3.3 a banned user joining a public room", ALL, function(v)
    return member(DAVE, "join"), room(v, { members = { [DAVE] = "ban" } })
  end, "JOIN_NOT_ALLOWED")
  case("4.3.4 invite rule: an invited user joins", ALL, function(v)
    return member(DAVE, "join"), room(v, { jr = "invite", members = { [DAVE] = "invite" } })
  end, true)
  case("4.3.4 invite rule: a joined user joins again", ALL, function(v)
    return member(BOB, "join"), room(v, { jr = "invite" })
  end, true)
  case("4.3.4 invite rule: an uninvited user", ALL, function(v)
    return member(DAVE, "join"), room(v, { jr = "invite" })
  end, "JOIN_NOT_ALLOWED")
  case("4.3.4 no join rules event reads as invite", ALL, function(v)
    return member(DAVE, "join"), room(v, { jr = false })
  end, "JOIN_NOT_ALLOWED")
  case_by("4.3.4 knock rule: an invited user joins from v7", ALL, function(v)
    return member(DAVE, "join"), room(v, { jr = "knock", members = { [DAVE] = "invite" } })
  end, function(v) return tonumber(v) >= 7 and true or "JOIN_NOT_ALLOWED" end)
  case("4.3.4 knock rule: a user who only knocked", range(7, 12), function(v)
    return member(DAVE, "join"), room(v, { jr = "knock", members = { [DAVE] = "knock" } })
  end, "JOIN_NOT_ALLOWED")
  case("4.3.6 public rule", ALL, function(v)
    return member(DAVE, "join"), room(v)
  end, true)
  case("4.3.7 an unknown join rule", ALL, function(v)
    return member(DAVE, "join"), room(v, { jr = "private" })
  end, "JOIN_NOT_ALLOWED")
end)

describe("auth model: 4.2 and 4.3.5 restricted joins", function()
  local function signed_by(e, server)
    e.signatures = { [server] = { ["ed25519:k"] = "c2ln" } }
    return e
  end
  local function via(user)
    return signed_by(member(DAVE, "join", { join_authorised_via_users_server = user }), "a.org")
  end
  case_by("restricted: authorised by a joined user with the invite level, from v8", ALL, function(v)
    return via(BOB), room(v, { jr = "restricted" })
  end, function(v) return tonumber(v) >= 8 and true or "JOIN_NOT_ALLOWED" end)
  case_by("knock_restricted: authorised join, from v10", ALL, function(v)
    return via(BOB), room(v, { jr = "knock_restricted" })
  end, function(v) return tonumber(v) >= 10 and true or "JOIN_NOT_ALLOWED" end)
  case("4.3.5.1 restricted: an invited user needs no authoriser", range(8, 12), function(v)
    return member(DAVE, "join"), room(v, { jr = "restricted", members = { [DAVE] = "invite" } })
  end, true)
  case("4.3.5.1 knock_restricted: an invited user", range(10, 12), function(v)
    return member(DAVE, "join"), room(v, { jr = "knock_restricted", members = { [DAVE] = "invite" } })
  end, true)
  case("4.3.5.2 restricted: no authoriser", range(8, 12), function(v)
    return member(DAVE, "join"), room(v, { jr = "restricted" })
  end, "JOIN_NOT_ALLOWED")
  case("4.3.5.2 restricted: the authoriser is not joined", range(8, 12), function(v)
    return via("@eve:a.org"), room(v, { jr = "restricted" })
  end, "JOIN_NOT_ALLOWED")
  case("4.3.5.2 restricted: the authoriser is below the invite level", range(8, 12), function(v)
    local e = signed_by(member(DAVE, "join", { join_authorised_via_users_server = CAROL }), "b.org")
    return e, room(v, { jr = "restricted", pl = { invite = 10 } })
  end, "JOIN_NOT_ALLOWED")
  case("4.3.5 restricted: banned users stay out", range(8, 12), function(v)
    return via(BOB), room(v, { jr = "restricted", members = { [DAVE] = "ban" } })
  end, "JOIN_NOT_ALLOWED")
  case("4.2 an authoriser whose server did not sign the event", range(8, 12), function(v)
    return member(DAVE, "join", { join_authorised_via_users_server = BOB }), room(v)
  end, "MEMBER_INVALID")
  case("4.2 signed by the wrong server", range(8, 12), function(v)
    local e = signed_by(member(DAVE, "join", { join_authorised_via_users_server = CAROL }), "a.org")
    return e, room(v)
  end, "MEMBER_INVALID")
  case("4.2 an authoriser that is not a user ID", range(8, 12), function(v)
    return via("bob"), room(v, { jr = "restricted" })
  end, "MEMBER_INVALID")
  case("before v8 join_authorised_via_users_server means nothing", range(1, 7), function(v)
    return member(DAVE, "join", { join_authorised_via_users_server = BOB }), room(v)
  end, true)
  it("4.2 calls the replaceable M.verify_event_signed with the authoriser's server", function()
    local saved, asked = A.verify_event_signed, nil
    A.verify_event_signed = function(_, server) asked = server; return false end
    local ok, why = A.check("9", via(BOB), room("9", { jr = "restricted" }))
    A.verify_event_signed = saved
    assert.is_nil(ok)
    assert.equal("MEMBER_INVALID", code_of(why))
    assert.equal("a.org", asked)
  end)
end)

describe("auth model: 4.4 invite", function()
  case("4.4.4 a joined user at the invite level invites", ALL, function(v)
    return member(DAVE, "invite", nil, CAROL), room(v)
  end, true)
  case("4.4.2 a sender who is not joined", ALL, function(v)
    return member(DAVE, "invite", nil, "@eve:a.org"), room(v)
  end, "INVITE_NOT_ALLOWED")
  case("4.4.3 the target is joined", ALL, function(v)
    return member(BOB, "invite", nil, CAROL), room(v)
  end, "INVITE_NOT_ALLOWED")
  case("4.4.3 the target is banned", ALL, function(v)
    return member(DAVE, "invite", nil, BOB), room(v, { members = { [DAVE] = "ban" } })
  end, "INVITE_NOT_ALLOWED")
  case("4.4.5 the sender is below the invite level", ALL, function(v)
    return member(DAVE, "invite", nil, CAROL), room(v, { pl = { invite = 10 } })
  end, "INVITE_NOT_ALLOWED")
  case("4.4.4 invite level 0 by default, with no power-levels event", ALL, function(v)
    return member(DAVE, "invite", nil, CAROL), room(v, { pl = false })
  end, true)
  case("4.4.3 re-inviting an invited user", ALL, function(v)
    return member(DAVE, "invite", nil, BOB), room(v, { members = { [DAVE] = "invite" } })
  end, true)
end)

describe("auth model: 4.4.1 third-party invites", function()
  -- A real key and signature, so the C core's Ed25519 check passes too:
  -- {"mxid": "@dave:a.org", "token": "tok"} signed by id.org's ed25519:0,
  -- the key of the spec's signing example (seed YJDBA9Xnr2sVqXD9Vj7X...),
  -- made with Debian's python3-signedjson.
  local PUB = "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI"
  local SIG = "mon3+mrqJyT+GTYGZ7AqcFHshgGzq4631ks4O+HKJv3XXKgS3jC4RkXRGPboQDbUXpQmU0L76ogbAqZPMK8sAg"
  local function tpi_event(sender, content)
    return ev({ type = "m.room.third_party_invite", state_key = "tok", sender = sender,
                content = merge({ display_name = "d***", key_validity_url = "https://id.org/v",
                                  public_key = PUB }, content) })
  end
  local function invite3(signed, sender)
    local s = merge({ mxid = DAVE, token = "tok",
                      signatures = { ["id.org"] = { ["ed25519:0"] = SIG } } }, signed)
    return member(DAVE, "invite", { third_party_invite = { display_name = "d***", signed = s } },
                  sender or BOB)
  end
  local function room3(v, o)
    o = o or {}
    local st = room(v, o)
    put(st, tpi_event(o.tpi_sender or BOB, o.tpi))
    return st
  end
  case("4.4.1.7 a signature and a public key: allowed", ALL, function(v)
    return invite3(), room3(v)
  end, true)
  case("4.4.1.7 public_keys list only", ALL, function(v)
    local st = room3(v, { tpi = { public_key = false } })
    st["m.room.third_party_invite\0tok"].content.public_key = nil
    st["m.room.third_party_invite\0tok"].content.public_keys = { { public_key = PUB } }
    return invite3(), st
  end, true)
  case("4.4.1 needs no membership of the sender (only rule 4.4.1.6)", ALL, function(v)
    return invite3(nil, "@eve:a.org"), room3(v, { tpi_sender = "@eve:a.org" })
  end, true)
  case("4.4.1.1 the target is banned", ALL, function(v)
    return invite3(), room3(v, { members = { [DAVE] = "ban" } })
  end, "INVITE_NOT_ALLOWED")
  case("4.4.1.2 no signed", ALL, function(v)
    return member(DAVE, "invite", { third_party_invite = { display_name = "d" } }, BOB), room3(v)
  end, "THIRD_PARTY_INVITE_INVALID")
  case("4.4.1.3 signed has no token", ALL, function(v)
    local e = invite3(); e.content.third_party_invite.signed.token = nil; return e, room3(v)
  end, "THIRD_PARTY_INVITE_INVALID")
  case("4.4.1.3 signed has no mxid", ALL, function(v)
    local e = invite3(); e.content.third_party_invite.signed.mxid = nil; return e, room3(v)
  end, "THIRD_PARTY_INVITE_INVALID")
  case("4.4.1.4 mxid is not the state_key", ALL, function(v)
    return invite3({ mxid = "@eve:a.org" }), room3(v)
  end, "THIRD_PARTY_INVITE_INVALID")
  case("4.4.1.5 no third-party invite for the token", ALL, function(v)
    return invite3({ token = "other" }), room3(v)
  end, "THIRD_PARTY_INVITE_INVALID")
  case("4.4.1.6 the third-party invite has another sender", ALL, function(v)
    return invite3(), room3(v, { tpi_sender = CAROL })
  end, "THIRD_PARTY_INVITE_INVALID")
  case("4.4.1.8 no signatures", ALL, function(v)
    local e = invite3(); e.content.third_party_invite.signed.signatures = nil; return e, room3(v)
  end, "THIRD_PARTY_INVITE_INVALID")
  case("4.4.1.8 signatures of another algorithm only", ALL, function(v)
    return invite3({ signatures = { ["id.org"] = { ["curve25519:0"] = SIG } } }), room3(v)
  end, "THIRD_PARTY_INVITE_INVALID")
  case("4.4.1.8 no public key in the third-party invite", ALL, function(v)
    local st = room3(v); st["m.room.third_party_invite\0tok"].content.public_key = nil
    return invite3(), st
  end, "THIRD_PARTY_INVITE_INVALID")
  it("4.4.1.7 asks the replaceable M.verify_signed with the keys", function()
    local saved, keys = A.verify_signed, nil
    A.verify_signed = function(_, k) keys = k; return false end
    local st = room3("10")
    st["m.room.third_party_invite\0tok"].content.public_keys = { { public_key = "b3RoZXI" } }
    local ok, why = A.check("10", invite3(), st)
    A.verify_signed = saved
    assert.is_nil(ok)
    assert.equal("THIRD_PARTY_INVITE_INVALID", code_of(why))
    assert.same({ PUB, "b3RoZXI" }, keys)
  end)
end)

describe("auth model: 4.5 leave", function()
  case("4.5.1 a joined user leaves", ALL, function(v)
    return member(CAROL, "leave"), room(v)
  end, true)
  case("4.5.1 an invited user declines", ALL, function(v)
    return member(DAVE, "leave"), room(v, { members = { [DAVE] = "invite" } })
  end, true)
  case_by("4.5.1 a knocking user withdraws, from v7", ALL, function(v)
    return member(DAVE, "leave"), room(v, { members = { [DAVE] = "knock" } })
  end, function(v) return tonumber(v) >= 7 and true or "LEAVE_NOT_ALLOWED" end)
  case("4.5.1 a user with no membership", ALL, function(v)
    return member(DAVE, "leave"), room(v)
  end, "LEAVE_NOT_ALLOWED")
  case("4.5.1 a banned user cannot unban themself", ALL, function(v)
    return member(DAVE, "leave"), room(v, { members = { [DAVE] = "ban" } })
  end, "LEAVE_NOT_ALLOWED")
  case("4.5.1 a user who left leaves again", ALL, function(v)
    return member(DAVE, "leave"), room(v, { members = { [DAVE] = "leave" } })
  end, "LEAVE_NOT_ALLOWED")
  case("4.5.4 a moderator kicks a user", ALL, function(v)
    return member(CAROL, "leave", nil, BOB), room(v)
  end, true)
  case("4.5.2 a kick by a sender who is not joined", ALL, function(v)
    return member(CAROL, "leave", nil, BOB), room(v, { members = { [BOB] = "leave" } })
  end, "LEAVE_NOT_ALLOWED")
  case("4.5.5 a user kicks a moderator", ALL, function(v)
    return member(BOB, "leave", nil, CAROL), room(v, { pl = { kick = 0 } })
  end, "LEAVE_NOT_ALLOWED")
  case("4.5.5 kick between equals", ALL, function(v)
    return member(BOB, "leave", nil, "@m2:a.org"),
           room(v, { pl = { users = { ["@m2:a.org"] = 50 } }, members = { ["@m2:a.org"] = "join" } })
  end, "LEAVE_NOT_ALLOWED")
  case("4.5.5 below the kick level", ALL, function(v)
    return member(CAROL, "leave", nil, BOB), room(v, { pl = { kick = 60 } })
  end, "LEAVE_NOT_ALLOWED")
  case("4.5.4 a moderator unbans", ALL, function(v)
    return member(DAVE, "leave", nil, BOB), room(v, { members = { [DAVE] = "ban" } })
  end, true)
  case("4.5.3 unban below the ban level", ALL, function(v)
    return member(DAVE, "leave", nil, BOB), room(v, { pl = { ban = 60 }, members = { [DAVE] = "ban" } })
  end, "LEAVE_NOT_ALLOWED")
end)

describe("auth model: 4.6 ban", function()
  case("4.6.2 a moderator bans a user", ALL, function(v)
    return member(CAROL, "ban", nil, BOB), room(v)
  end, true)
  case("4.6.2 a moderator bans a stranger", ALL, function(v)
    return member(DAVE, "ban", nil, BOB), room(v)
  end, true)
  case("4.6.1 a sender who is not joined", ALL, function(v)
    return member(CAROL, "ban", nil, BOB), room(v, { members = { [BOB] = "invite" } })
  end, "BAN_NOT_ALLOWED")
  case("4.6.3 below the ban level", ALL, function(v)
    return member(DAVE, "ban", nil, CAROL), room(v)
  end, "BAN_NOT_ALLOWED")
  case("4.6.3 a user of equal level", ALL, function(v)
    return member(BOB, "ban", nil, CAROL), room(v, { pl = { users = { [CAROL] = 50 } } })
  end, "BAN_NOT_ALLOWED")
end)

describe("auth model: 4.7 knock", function()
  case_by("a stranger knocks on a knock room (knock from v7)", ALL, function(v)
    return member(DAVE, "knock"), room(v, { jr = "knock" })
  end, function(v) return tonumber(v) >= 7 and true or "MEMBER_INVALID" end)
  case_by("4.7.1 knock_restricted admits knocks from v10", range(7, 12), function(v)
    return member(DAVE, "knock"), room(v, { jr = "knock_restricted" })
  end, function(v) return tonumber(v) >= 10 and true or "KNOCK_NOT_ALLOWED" end)
  case("4.7.1 a public room", range(7, 12), function(v)
    return member(DAVE, "knock"), room(v)
  end, "KNOCK_NOT_ALLOWED")
  case("4.7.1 a restricted room", range(8, 12), function(v)
    return member(DAVE, "knock"), room(v, { jr = "restricted" })
  end, "KNOCK_NOT_ALLOWED")
  case("4.7.2 knocking for someone else", range(7, 12), function(v)
    return member(DAVE, "knock", nil, BOB), room(v, { jr = "knock" })
  end, "KNOCK_NOT_ALLOWED")
  case("4.7.4 a banned user", range(7, 12), function(v)
    return member(DAVE, "knock"), room(v, { jr = "knock", members = { [DAVE] = "ban" } })
  end, "KNOCK_NOT_ALLOWED")
  case("4.7.4 an invited user", range(7, 12), function(v)
    return member(DAVE, "knock"), room(v, { jr = "knock", members = { [DAVE] = "invite" } })
  end, "KNOCK_NOT_ALLOWED")
  case("4.7.4 a joined user", range(7, 12), function(v)
    return member(CAROL, "knock"), room(v, { jr = "knock" })
  end, "KNOCK_NOT_ALLOWED")
  case("4.7.3 a user who left knocks again", range(7, 12), function(v)
    return member(DAVE, "knock"), room(v, { jr = "knock", members = { [DAVE] = "leave" } })
  end, true)
end)

describe("auth model: v12 creators", function()
  local EXTRA = "@zed:z.org"
  local function room12(v, o)
    o = o or {}
    o.create = { additional_creators = { EXTRA } }
    o.members = merge({ [EXTRA] = "join" }, o.members)
    return room(v, o)
  end
  case_by("a moderator at 100 kicks a listed additional creator (v12: infinite)", { "11", "12" }, function(v)
    return member(EXTRA, "leave", nil, BOB), room12(v, { pl = { users = { [BOB] = 100 } } })
  end, function(v) return v == "12" and "LEAVE_NOT_ALLOWED" or true end)
  case_by("an additional creator bans a moderator at 100", { "11", "12" }, function(v)
    return member(BOB, "ban", nil, EXTRA), room12(v, { pl = { users = { [BOB] = 100 } } })
  end, function(v) return v == "12" and true or "BAN_NOT_ALLOWED" end)
  case("creators cannot ban each other (infinite is not below infinite)", { "12" }, function(v)
    return member(ALICE, "ban", nil, EXTRA), room12(v)
  end, "BAN_NOT_ALLOWED")
  case("a creator sends state above any level", { "12" }, function(v)
    return ev({ type = "m.room.topic", state_key = "", sender = ALICE, content = {} }),
           room12(v, { pl = { state_default = 9007199254740991 } })
  end, true)
  case("an additional creator sends state with no power-levels event", { "12" }, function(v)
    return ev({ type = "m.room.topic", state_key = "", sender = EXTRA, content = {} }),
           room12(v, { pl = false })
  end, true)
  case_by("10.4 power levels listing the creator", { "11", "12" }, function(v)
    return pl(v, { users = { [ALICE] = 100 } }), room(v)
  end, function(v) return v == "12" and "POWER_LEVELS_INVALID" or true end)
  case_by("10.4 power levels listing an additional creator", { "11", "12" }, function(v)
    return pl(v, { users = { [EXTRA] = 1 } }), room12(v)
  end, function(v) return v == "12" and "POWER_LEVELS_INVALID" or true end)
  case("4.3.1 v12: an additional creator is not 'the sender of the create event'", { "12" }, function(v)
    local st = put({}, create_event(v, { additional_creators = { EXTRA } }))
    local e = member(EXTRA, "join"); e.prev_events = { CREATE_ID }
    return e, st
  end, "JOIN_NOT_ALLOWED")
end)

describe("auth model: rules 5 to 8", function()
  case("5 a message from a user who is not joined", ALL, function(v)
    return msg(DAVE), room(v)
  end, "SENDER_NOT_JOINED")
  case("5 a message from an invited user", ALL, function(v)
    return msg(DAVE), room(v, { members = { [DAVE] = "invite" } })
  end, "SENDER_NOT_JOINED")
  case("5 a message from a banned user", ALL, function(v)
    return msg(CAROL), room(v, { members = { [CAROL] = "ban" } })
  end, "SENDER_NOT_JOINED")
  local function tpi(sender)
    return ev({ type = "m.room.third_party_invite", state_key = "t", sender = sender,
                content = { public_key = "cHVi" } })
  end
  case("6 a third-party invite at the invite level, whatever state_default", ALL, function(v)
    return tpi(CAROL), room(v, { pl = { state_default = 100 } })
  end, true)
  case("6 a third-party invite below the invite level", ALL, function(v)
    return tpi(CAROL), room(v, { pl = { invite = 1, events = { ["m.room.third_party_invite"] = 0 } } })
  end, "POWER_TOO_LOW")
  case("7 a message below events_default", ALL, function(v)
    return msg(CAROL), room(v, { pl = { events_default = 1 } })
  end, "POWER_TOO_LOW")
  case("7 a message type listed in events above the sender", ALL, function(v)
    return msg(BOB), room(v, { pl = { events = { ["m.room.message"] = 51 } } })
  end, "POWER_TOO_LOW")
  case("7 events lowers a state type below state_default", ALL, function(v)
    return ev({ type = "m.room.topic", state_key = "", sender = CAROL, content = {} }),
           room(v, { pl = { events = { ["m.room.topic"] = 0 } } })
  end, true)
  case("7 state below state_default (50 when absent)", ALL, function(v)
    return ev({ type = "m.room.topic", state_key = "", sender = CAROL, content = {} }), room(v)
  end, "POWER_TOO_LOW")
  case("7 state at state_default", ALL, function(v)
    return ev({ type = "m.room.topic", state_key = "", sender = BOB, content = {} }), room(v)
  end, true)
  case("7 no power-levels event: the creator sends state", ALL, function(v)
    return ev({ type = "m.room.topic", state_key = "", sender = ALICE, content = {} }), room(v, { pl = false })
  end, true)
  case("7 no power-levels event: others cannot send state", ALL, function(v)
    return ev({ type = "m.room.topic", state_key = "", sender = BOB, content = {} }), room(v, { pl = false })
  end, "POWER_TOO_LOW")
  case("7 no power-levels event: others send messages", ALL, function(v)
    return msg(CAROL), room(v, { pl = false })
  end, true)
  case("8 a state_key of another user", ALL, function(v)
    return ev({ type = "m.custom", state_key = CAROL, sender = BOB, content = {} }), room(v)
  end, "STATE_KEY_NOT_SENDER")
  case("8 a state_key of the sender", ALL, function(v)
    return ev({ type = "m.custom", state_key = CAROL, sender = CAROL, content = {} }),
           room(v, { pl = { state_default = 0 } })
  end, true)
  case("8 a state_key starting with @ and a suffix", ALL, function(v)
    return ev({ type = "m.custom", state_key = CAROL .. "_x", sender = CAROL, content = {} }),
           room(v, { pl = { state_default = 0 } })
  end, "STATE_KEY_NOT_SENDER")
  case("10 an event that passes all rules", ALL, function(v)
    return ev({ type = "m.custom", state_key = "x", sender = BOB, content = {} }), room(v)
  end, true)
end)

describe("auth model: rule 9, m.room.power_levels", function()
  local function change(v, sender, content, o)
    local e = pl(v, content); e.sender = sender
    return e, room(v, o)
  end
  case("9.1 a users key that is not a user ID", ALL, function(v)
    return change(v, ALICE, { users = { bob = 10 } })
  end, "POWER_LEVELS_INVALID")
  case("9.1 users is not an object", ALL, function(v)
    local e = pl(v); e.content.users = { 1, 2 }; return e, room(v)
  end, "POWER_LEVELS_INVALID")
  case_by("9.1 a users value as a string: v1-v9 yes, v10+ no", ALL, function(v)
    return change(v, ALICE, { users = { [CAROL] = "20" } })
  end, function(v) return tonumber(v) <= 9 and true or "POWER_LEVELS_INVALID" end)
  case_by("string format: whitespace, sign, leading zeroes", range(1, 10), function(v)
    return change(v, ALICE, { users = { [CAROL] = " +0020 " } })
  end, function(v) return tonumber(v) <= 9 and true or "POWER_LEVELS_INVALID" end)
  case("string format: a decimal point is not an integer string", range(1, 9), function(v)
    return change(v, ALICE, { users = { [CAROL] = "20.5" } })
  end, "POWER_LEVELS_INVALID")
  case("string format: letters", range(1, 9), function(v)
    return change(v, ALICE, { users = { [CAROL] = "2x" } })
  end, "POWER_LEVELS_INVALID")
  case("string format: two signs", range(1, 9), function(v)
    return change(v, ALICE, { users = { [CAROL] = "+-2" } })
  end, "POWER_LEVELS_INVALID")
  case_by("floats: truncated v1-v5, refused from v6", ALL, function(v)
    return change(v, ALICE, { users = { [CAROL] = 20.75 } })
  end, function(v) return tonumber(v) <= 5 and true or "POWER_LEVELS_INVALID" end)
  case("floats: a truncated float is compared as its integer (50.9 is 50)", range(1, 5), function(v)
    return change(v, BOB, { users = { [CAROL] = 50.9 } })
  end, true)
  case("floats: 51.2 is 51, above the moderator", range(1, 5), function(v)
    return change(v, BOB, { users = { [CAROL] = 51.2 } })
  end, "POWER_CHANGE_NOT_ALLOWED")
  case_by("v10 9.1 ban as a string", ALL, function(v)
    return change(v, ALICE, { ban = "50" })
  end, function(v) return tonumber(v) <= 9 and true or "POWER_LEVELS_INVALID" end)
  case("9.1 a top-level value that is no number at all", ALL, function(v)
    return change(v, ALICE, { kick = "lots" })
  end, "POWER_LEVELS_INVALID")
  case("9.1 a top-level boolean", ALL, function(v)
    return change(v, ALICE, { redact = true })
  end, "POWER_LEVELS_INVALID")
  case_by("v10 9.2 an events value as a string", ALL, function(v)
    return change(v, ALICE, { events = { ["m.room.name"] = "50" } })
  end, function(v) return tonumber(v) <= 9 and true or "POWER_LEVELS_INVALID" end)
  case("v10 9.2 events not an object", ALL, function(v)
    return change(v, ALICE, { events = "50" })
  end, "POWER_LEVELS_INVALID")
  case_by("v10 9.2 a notifications value as a string (read from v6)", ALL, function(v)
    return change(v, ALICE, { notifications = { room = "50" } })
  end, function(v) return tonumber(v) <= 9 and true or "POWER_LEVELS_INVALID" end)
  case_by("notifications that are not levels: ignored v1-v5", ALL, function(v)
    return change(v, ALICE, { notifications = { room = "many" } })
  end, function(v) return tonumber(v) <= 5 and true or "POWER_LEVELS_INVALID" end)
  case("9.2 the first power-levels event may set anything", ALL, function(v)
    local e = pl(v, { ban = 1000, users = { [CAROL] = 1000 } })
    local st = room(v, { pl = false })
    return e, st
  end, true)
  case("9.3 the creator raises kick", ALL, function(v)
    return change(v, ALICE, { kick = 80 })
  end, true)
  case("9.3.2 a new value above the sender", ALL, function(v)
    return change(v, BOB, { ban = 51 })
  end, "POWER_CHANGE_NOT_ALLOWED")
  case("9.3.1 a current value above the sender", ALL, function(v)
    return change(v, BOB, { ban = 10 }, { pl = { ban = 60 } })
  end, "POWER_CHANGE_NOT_ALLOWED")
  case("9.3 a change within the sender's level", ALL, function(v)
    return change(v, BOB, { ban = 40, users_default = 5 })
  end, true)
  case("9.3 an unchanged value above the sender is no alteration", ALL, function(v)
    return change(v, BOB, { redact = 90 }, { pl = { redact = 90 } })
  end, true)
  case("9.3 removing a value: only the current value is compared", ALL, function(v)
    return change(v, BOB, {}, { pl = { invite = 30 } })
  end, true)
  case("9.3 removing a value above the sender", ALL, function(v)
    return change(v, BOB, {}, { pl = { invite = 70 } })
  end, "POWER_CHANGE_NOT_ALLOWED")
  case("9.3 v1-v9: the string \"50\" and 50 are the same value", range(1, 9), function(v)
    local ev40 = { ["m.room.power_levels"] = 40 }
    return change(v, "@m4:a.org", { ban = 50, events = ev40, users = { ["@m4:a.org"] = 40 } },
                  { pl = { ban = "50", events = ev40, users = { ["@m4:a.org"] = 40 } },
                    members = { ["@m4:a.org"] = "join" } })
  end, true)
  case("9.4 changing an events entry above the sender", ALL, function(v)
    return change(v, BOB, { events = { ["m.room.name"] = 0 } },
                  { pl = { events = { ["m.room.name"] = 100 } } })
  end, "POWER_CHANGE_NOT_ALLOWED")
  case("9.4 removing an events entry above the sender", ALL, function(v)
    return change(v, BOB, { events = {} }, { pl = { events = { ["m.room.name"] = 100 } } })
  end, "POWER_CHANGE_NOT_ALLOWED")
  case("9.5 adding an events entry above the sender", ALL, function(v)
    return change(v, BOB, { events = { ["m.room.name"] = 51 } })
  end, "POWER_CHANGE_NOT_ALLOWED")
  case("9.5 adding an events entry at the sender's level", ALL, function(v)
    return change(v, BOB, { events = { ["m.room.name"] = 50 } })
  end, true)
  case_by("9.4 notifications checked from v6", ALL, function(v)
    return change(v, BOB, { notifications = { room = 0 } }, { pl = { notifications = { room = 100 } } })
  end, function(v) return tonumber(v) >= 6 and "POWER_CHANGE_NOT_ALLOWED" or true end)
  case_by("9.5 notifications added above the sender, checked from v6", ALL, function(v)
    return change(v, BOB, { notifications = { room = 100 } })
  end, function(v) return tonumber(v) >= 6 and "POWER_CHANGE_NOT_ALLOWED" or true end)
  case("9.6 demoting another user of equal level", ALL, function(v)
    return change(v, BOB, { users = { ["@m2:a.org"] = 0 } },
                  { pl = { users = { ["@m2:a.org"] = 50 } } })
  end, "POWER_CHANGE_NOT_ALLOWED")
  case("9.6 removing another user of equal level", ALL, function(v)
    local e, st = change(v, BOB, {}, { pl = { users = { ["@m2:a.org"] = 50 } } })
    return e, st
  end, "POWER_CHANGE_NOT_ALLOWED")
  case("9.6 demoting oneself", ALL, function(v)
    return change(v, BOB, { users = { [BOB] = 10 } })
  end, true)
  case("9.6 demoting a user below the sender", ALL, function(v)
    return change(v, BOB, { users = { [CAROL] = 0 } }, { pl = { users = { [CAROL] = 49 } } })
  end, true)
  case("9.7 promoting a user to the sender's level", ALL, function(v)
    return change(v, BOB, { users = { [CAROL] = 50 } })
  end, true)
  case("9.7 promoting a user above the sender", ALL, function(v)
    return change(v, BOB, { users = { [CAROL] = 51 } })
  end, "POWER_CHANGE_NOT_ALLOWED")
  case("9.7 promoting oneself above one's level", ALL, function(v)
    return change(v, BOB, { users = { [BOB] = 51 } })
  end, "POWER_CHANGE_NOT_ALLOWED")
  case("7 before 9: a sender below the power-levels event's level", ALL, function(v)
    return change(v, CAROL, { users = { [CAROL] = 0 } })
  end, "POWER_TOO_LOW")
end)

describe("auth model: v1-v2 rule 11, m.room.redaction", function()
  local function redaction(sender, target, extra)
    local e = ev(merge({ type = "m.room.redaction", sender = sender, event_id = "$red:a.org" }, extra))
    e.redacts = target
    e.content.redacts = target
    return e
  end
  case("11.2 a redaction of an event of the same event ID domain", { "1", "2" }, function(v)
    return redaction(CAROL, "$x:a.org"), room(v)
  end, true)
  case("11.3 a redaction of another domain's event below the redact level", { "1", "2" }, function(v)
    return redaction(CAROL, "$x:b.org"), room(v)
  end, "REDACTION_NOT_ALLOWED")
  case("11.1 at the redact level any event", { "1", "2" }, function(v)
    return redaction(BOB, "$x:b.org"), room(v)
  end, true)
  case("11.1 the redact level from the power levels", { "1", "2" }, function(v)
    return redaction(BOB, "$x:b.org"), room(v, { pl = { redact = 60 } })
  end, "REDACTION_NOT_ALLOWED")
  case("v3+: redactions pass the auth rules (checked when applied)", range(3, 12), function(v)
    return redaction(CAROL, "$x:b.org"), room(v)
  end, true)
  case("7 still applies: events[m.room.redaction]", ALL, function(v)
    return redaction(CAROL, "$x:a.org"), room(v, { pl = { events = { ["m.room.redaction"] = 1 } } })
  end, "POWER_TOO_LOW")
  case_by("redacts only at the top level: v11 moved it into content", ALL, function(v)
    local e = redaction(BOB, "$x:a.org"); e.content.redacts = nil; return e, room(v)
  end, function(v) return tonumber(v) >= 11 and "BAD_FORMAT" or true end)
  case_by("redacts only in content: before v11 it is top-level", ALL, function(v)
    local e = redaction(BOB, "$x:a.org"); e.redacts = nil; return e, room(v)
  end, function(v) return tonumber(v) >= 11 and true or "BAD_FORMAT" end)
end)

describe("auth model: format", function()
  case("a sender that is not a user ID", ALL, function(v)
    return msg("alice"), room(v)
  end, "BAD_FORMAT")
  case("content that is not an object", ALL, function(v)
    local e = msg(ALICE); e.content = "x"; return e, room(v)
  end, "BAD_FORMAT")
  case("a state_key that is not a string", ALL, function(v)
    local e = msg(ALICE); e.state_key = 5; return e, room(v)
  end, "BAD_FORMAT")
  it("raises on an unknown version and a missing state", function()
    assert.has_error(function() A.check("13", msg(ALICE), {}) end)
    assert.has_error(function() A.check("1", msg(ALICE)) end)
    assert.has_error(function() A.auth_types("v1", msg(ALICE)) end)
  end)
end)

describe("auth model: M.rules", function()
  -- From the room version pages: what each version introduced or removed.
  local introduced = {
    special_case_redaction = { 1, 2 }, special_case_aliases = { 1, 5 },
    float_power_levels = { 1, 5 }, string_power_levels = { 1, 9 },
    notifications_power = { 6, 12 }, knocking = { 7, 12 }, restricted = { 8, 12 },
    knock_restricted = { 10, 12 }, integer_power_levels = { 10, 12 },
    creator_field = { 1, 10 }, room_id_domain = { 1, 11 },
    room_id_is_create_hash = { 12, 12 }, explicit_creators = { 12, 12 },
    create_in_auth_events = { 1, 11 },
  }
  for _, v in ipairs(ALL) do
    it("v" .. v .. " has the spec's variants", function()
      local r = A.rules(v)
      local nv = tonumber(v)
      for name, span in pairs(introduced) do
        assert.equal(nv >= span[1] and nv <= span[2], r[name], name)
      end
      for name in pairs(r) do assert.truthy(introduced[name], "undocumented " .. name) end
    end)
  end
  it("knows no other versions", function()
    for _, v in ipairs({ "0", "13", "01", "1.0", "", "org.matrix.msc" }) do
      assert.is_nil(A.rules(v))
    end
    assert.is_nil(A.rules(1))
  end)
end)

describe("auth model: auth events selection", function()
  local function pairs_of(list)
    local s = {}
    for _, p in ipairs(list) do s[#s + 1] = p[1] .. "|" .. p[2] end
    table.sort(s)
    return s
  end
  local function want(v, list)
    local t = {}
    for _, x in ipairs(list) do t[#t + 1] = x end
    if v ~= "12" then t[#t + 1] = "m.room.create|" end
    table.sort(t)
    return t
  end
  for _, v in ipairs(ALL) do
    it("v" .. v .. ": create, message, join, invite, leave, knock", function()
      assert.same({}, A.auth_types(v, create_event(v)))
      assert.same(want(v, { "m.room.power_levels|", "m.room.member|" .. CAROL }),
                  pairs_of(A.auth_types(v, msg(CAROL))))
      assert.same(want(v, { "m.room.power_levels|", "m.room.member|" .. DAVE, "m.room.join_rules|" }),
                  pairs_of(A.auth_types(v, member(DAVE, "join"))))
      assert.same(want(v, { "m.room.power_levels|", "m.room.member|" .. BOB,
                            "m.room.member|" .. DAVE, "m.room.join_rules|" }),
                  pairs_of(A.auth_types(v, member(DAVE, "invite", nil, BOB))))
      assert.same(want(v, { "m.room.power_levels|", "m.room.member|" .. BOB, "m.room.member|" .. DAVE }),
                  pairs_of(A.auth_types(v, member(DAVE, "leave", nil, BOB))))
      assert.same(want(v, { "m.room.power_levels|", "m.room.member|" .. DAVE, "m.room.join_rules|" }),
                  pairs_of(A.auth_types(v, member(DAVE, "knock"))))
    end)
    it("v" .. v .. ": a third-party invite's token", function()
      local e = member(DAVE, "invite", { third_party_invite = { signed = { mxid = DAVE, token = "tok" } } }, BOB)
      assert.same(want(v, { "m.room.power_levels|", "m.room.member|" .. BOB, "m.room.member|" .. DAVE,
                            "m.room.join_rules|", "m.room.third_party_invite|tok" }),
                  pairs_of(A.auth_types(v, e)))
    end)
    it("v" .. v .. ": join_authorised_via_users_server from v8", function()
      local e = member(DAVE, "join", { join_authorised_via_users_server = BOB })
      local list = { "m.room.power_levels|", "m.room.member|" .. DAVE, "m.room.join_rules|" }
      if tonumber(v) >= 8 then list[#list + 1] = "m.room.member|" .. BOB end
      assert.same(want(v, list), pairs_of(A.auth_types(v, e)))
    end)
  end
end)

-- Vectors of other implementations' tests, re-expressed as our data.
describe("auth model: vectors from Ruma, Synapse, gomatrixserverlib", function()
  -- ruma/ruma crates/ruma-state-res/src/event_auth/room_member/tests.rs
  local ruma = "ruma/ruma room_member/tests.rs "
  case(ruma .. "join_after_create_creator_match", range(1, 10), function(v)
    local st = put({}, create_event(v))
    local e = member(ALICE, "join"); e.prev_events = { CREATE_ID }
    return e, st
  end, true)
  case(ruma .. "join_after_create_sender_mismatch", range(11, 12), function(v)
    local st = put({}, create_event(v))
    local e = member(DAVE, "join"); e.prev_events = { CREATE_ID }
    return e, st
  end, "JOIN_NOT_ALLOWED")
  case(ruma .. "join_knock_join_rule_not_supported", range(1, 6), function(v)
    return member(DAVE, "join"), room(v, { jr = "knock", members = { [DAVE] = "invite" } })
  end, "JOIN_NOT_ALLOWED")
  case(ruma .. "join_restricted_join_rule_not_supported", range(1, 7), function(v)
    return member(DAVE, "join"), room(v, { jr = "restricted", members = { [DAVE] = "invite" } })
  end, "JOIN_NOT_ALLOWED")
  case(ruma .. "join_knock_restricted_join_rule_not_supported", range(1, 9), function(v)
    return member(DAVE, "join"), room(v, { jr = "knock_restricted", members = { [DAVE] = "invite" } })
  end, "JOIN_NOT_ALLOWED")
  case(ruma .. "leave_after_knock_not_supported", range(1, 6), function(v)
    return member(DAVE, "leave"), room(v, { members = { [DAVE] = "knock" } })
  end, "LEAVE_NOT_ALLOWED")
  case(ruma .. "leave_kick_greater_power", ALL, function(v)
    return member(BOB, "leave", nil, CAROL), room(v, { pl = { kick = 0, users = { [CAROL] = 10 } } })
  end, "LEAVE_NOT_ALLOWED")
  case(ruma .. "ban_greater_power", ALL, function(v)
    return member(BOB, "ban", nil, CAROL), room(v, { pl = { ban = 0, users = { [CAROL] = 10 } } })
  end, "BAN_NOT_ALLOWED")
  case(ruma .. "knock_sender_state_key_mismatch", range(7, 12), function(v)
    return member(DAVE, "knock", nil, CAROL), room(v, { jr = "knock" })
  end, "KNOCK_NOT_ALLOWED")
  case(ruma .. "invite_via_third_party_invite_with_wrong_signing_algorithm", ALL, function(v)
    local st = room(v)
    put(st, ev({ type = "m.room.third_party_invite", state_key = "t", sender = BOB,
                 content = { public_key = "cHVi" } }))
    local e = member(DAVE, "invite", { third_party_invite = { signed = {
      mxid = DAVE, token = "t", signatures = { ["id.org"] = { ["ed448:0"] = "c2ln" } } } } }, BOB)
    return e, st
  end, "THIRD_PARTY_INVITE_INVALID")

  -- element-hq/synapse tests/test_event_auth.py
  local syn = "element-hq/synapse test_event_auth.py "
  case(syn .. "test_random_users_cannot_send_state_before_first_pl (creator)", ALL, function(v)
    return ev({ type = "test.state", state_key = "", sender = ALICE, content = {} }), room(v, { pl = false })
  end, true)
  case(syn .. "test_random_users_cannot_send_state_before_first_pl (joiner)", ALL, function(v)
    return ev({ type = "test.state", state_key = "", sender = CAROL, content = {} }), room(v, { pl = false })
  end, "POWER_TOO_LOW")
  local function stringy(v) return { state_default = "30", users = { [CAROL] = "29", [DAVE] = "30" },
                                      } end
  case(syn .. "test_state_default_level (pleb at \"29\")", range(1, 9), function(v)
    return ev({ type = "test.state", state_key = "", sender = CAROL, content = {} }),
           room(v, { pl = stringy(v), members = { [DAVE] = "join" } })
  end, "POWER_TOO_LOW")
  case(syn .. "test_state_default_level (king at \"30\")", range(1, 9), function(v)
    return ev({ type = "test.state", state_key = "", sender = DAVE, content = {} }),
           room(v, { pl = stringy(v), members = { [DAVE] = "join" } })
  end, true)
  case(syn .. "test_alias_event (state_key \"\")", { "1" }, function(v)
    return ev({ type = "m.room.aliases", state_key = "", sender = ALICE, content = {} }), room(v)
  end, "ALIASES_INVALID")
  case(syn .. "test_msc2432_alias_event (state_key test.com)", { "6" }, function(v)
    return ev({ type = "m.room.aliases", state_key = "test.com", sender = ALICE, content = {} }), room(v)
  end, true)
  case_by(syn .. "test_notifications (pleb at \"30\" sets notifications.room 100)", { "1", "6", "9" }, function(v)
    return (function()
      local e = pl(v, { state_default = "30", users = { [CAROL] = "30" }, notifications = { room = 100 } })
      e.sender = CAROL
      return e, room(v, { pl = { state_default = "30", users = { [CAROL] = "30" } } })
    end)()
  end, function(v) return v == "1" and true or "POWER_CHANGE_NOT_ALLOWED" end)
  case(syn .. "test_room_v10_rejects_string_power_levels", range(10, 12), function(v)
    return pl(v, { users = { [CAROL] = "0" } }), room(v)
  end, "POWER_LEVELS_INVALID")
  case(syn .. "test_room_v10_rejects_other_non_integer_power_levels", range(10, 12), function(v)
    return pl(v, { events_default = 0.5 }), room(v)
  end, "POWER_LEVELS_INVALID")
  case(syn .. "test_join_rules_invite (a banned user cannot join)", ALL, function(v)
    return member(DAVE, "join"), room(v, { jr = "invite", members = { [DAVE] = "ban" } })
  end, "JOIN_NOT_ALLOWED")

  -- matrix-org/gomatrixserverlib eventauth_test.go
  local gmsl = "matrix-org/gomatrixserverlib eventauth_test.go "
  local U1, U2 = "@u1:a", "@u2:a"
  local function gmsl_room(v, content)
    local st = {}
    put(st, { type = "m.room.create", state_key = "", sender = U1, room_id = "!r1:a", event_id = "$e1:a",
              content = { creator = U1, room_version = "1" }, prev_events = {} })
    put(st, { type = "m.room.member", state_key = U1, sender = U1, room_id = "!r1:a", event_id = "$e2:a",
              content = { membership = "join" } })
    put(st, { type = "m.room.member", state_key = U2, sender = U2, room_id = "!r1:a", event_id = "$e4:a",
              content = { membership = "join" } })
    put(st, { type = "m.room.power_levels", state_key = "", sender = U1, room_id = "!r1:a", event_id = "$e3:a",
              content = content or { users_default = 100, users = { [U1] = 100 }, redact = 100 } })
    return st
  end
  local function gmsl_pl(sender, content)
    return { type = "m.room.power_levels", state_key = "", sender = sender, room_id = "!r1:a",
             event_id = "$e5:a", content = content, prev_events = { "$e4:a" } }
  end
  case(gmsl .. "TestDemoteUserDefaultPowerLevelBelowOwn", { "1" }, function(v)
    return gmsl_pl(U1, { users_default = 50, users = { [U1] = 100 }, redact = 100 }), gmsl_room(v)
  end, true)
  case(gmsl .. "TestPromoteUserDefaultLevelAboveOwn", { "1" }, function(v)
    return gmsl_pl(U2, { users_default = 500, users = { [U1] = 100 }, redact = 100 }), gmsl_room(v)
  end, "POWER_CHANGE_NOT_ALLOWED")
  case(gmsl .. "TestNegativePowerLevels", { "1", "10" }, function(v)
    local low = -9007199254740990
    return { type = "m.room.message", sender = U1, room_id = "!r1:a", event_id = "$e5:a",
             content = { stuff = "i am a message event" }, prev_events = { "$e4:a" } },
           gmsl_room(v, { events_default = low, state_default = low, users_default = low, users = {} })
  end, true)
  case(gmsl .. "TestAllowedNoFederation", ALL, function(v)
    return msg("@u3:b"), room(v, { create = { ["m.federate"] = false }, members = { ["@u3:b"] = "join" } })
  end, "NOT_FEDERATED")
  case(gmsl .. "TestJoinRuleKnockRestricted (knock)", range(10, 12), function(v)
    return member(DAVE, "knock"), room(v, { jr = "knock_restricted" })
  end, true)

  it("has well over 100 cases", function()
    assert.truthy(count > 100, tostring(count))
  end)
end)
