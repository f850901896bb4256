-- Canonical JSON and signed JSON in C (csrc/canonical_json.c, signatures.c,
-- through the roomstate.core test helpers) held against matrix.org's own
-- Python libraries, canonicaljson and signedjson, on seeded random JSON
-- (issue 12 §4). The oracle is Debian's /usr/bin/python3 with
-- python3-canonicaljson and python3-signedjson, a test dependency only.
local core = require "roomstate.core"
local cjson = require "cjson"
local S = require "support"

local PYTHON = S.PYTHON
local ORACLE = "spec/support/crypto_oracle.py"
-- the appendices' test signing key ("Cryptographic Test Vectors")
local SEED = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"
local PUB = "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI"
local CASES = 400

local function have_oracle() return S.python_has("canonicaljson, signedjson") end

-- Runs the oracle on a list of request lines; returns its answers, decoded.
local function oracle(lines) return S.python_oracle(ORACLE, lines) end

-- ---- random JSON text, with the escapes and forms canonical JSON rewrites ----

local function utf8(cp)
  if cp < 0x80 then return string.char(cp) end
  if cp < 0x800 then
    return string.char(0xc0 + math.floor(cp / 64), 0x80 + cp % 64)
  end
  if cp < 0x10000 then
    return string.char(0xe0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64,
                       0x80 + cp % 64)
  end
  return string.char(0xf0 + math.floor(cp / 262144), 0x80 + math.floor(cp / 4096) % 64,
                     0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
end

local function u_escape(cp)
  if cp < 0x10000 then return string.format("\\u%04X", cp) end
  local v = cp - 0x10000
  return string.format("\\u%04x\\u%04x", 0xd800 + math.floor(v / 1024), 0xdc00 + v % 1024)
end

local SHORT = { [8] = "\\b", [9] = "\\t", [10] = "\\n", [12] = "\\f", [13] = "\\r",
                [34] = '\\"', [92] = "\\\\", [47] = "\\/" }

-- A code point from one of the ranges canonical JSON treats apart.
local function codepoint(rnd, in_key)
  local k = rnd(8)
  if k == 1 then return in_key and 1 + rnd(31) - 1 or rnd(32) - 1 end -- controls
  if k == 2 then return ({ 34, 92, 47, 127 })[rnd(4)] end
  if k == 3 then return 0x80 + rnd(0x780) - 1 end
  if k == 4 then
    local cp = 0x800 + rnd(0xf800) - 1
    return (cp >= 0xd800 and cp <= 0xdfff) and 0x4e00 or cp -- no lone surrogates
  end
  if k == 5 then return 0x10000 + rnd(0x100000) - 1 end
  return 32 + rnd(95) - 1
end

-- A JSON string literal; the characters it stands for are the second value.
local function str(rnd, maxlen, in_key)
  local text, bytes = { '"' }, {}
  for i = 1, rnd(maxlen + 1) - 1 do
    local cp = codepoint(rnd, in_key)
    bytes[i] = utf8(cp)
    local form = rnd(3)
    if SHORT[cp] and form ~= 3 then
      text[#text + 1] = SHORT[cp]
    elseif cp < 32 or cp == 34 or cp == 92 or form == 1 then
      text[#text + 1] = u_escape(cp)
    else
      text[#text + 1] = bytes[i]
    end
  end
  text[#text + 1] = '"'
  return table.concat(text), table.concat(bytes)
end

local MAX = 9007199254740991 -- 2^53 - 1
local function int(rnd)
  local k = rnd(6)
  if k == 1 then return ({ string.format("%d", MAX), string.format("%d", -MAX), "0", "-0" })[rnd(4)] end
  if k == 2 then return string.format("%d", math.floor(rnd() * MAX)) end
  if k == 3 then return string.format("%d", -math.floor(rnd() * 1e12)) end
  return tostring(rnd(201) - 101)
end

local function ws(rnd)
  return ({ "", "", "", " ", "\t", "  " })[rnd(6)]
end

local value
local function object(rnd, depth, top)
  local parts, seen = {}, {}
  for _ = 1, rnd(7) - 1 do
    local k, chars = str(rnd, 8, true)
    if not seen[chars] and chars ~= "signatures" then
      seen[chars] = true
      parts[#parts + 1] = ws(rnd) .. k .. ws(rnd) .. ":" .. ws(rnd) .. value(rnd, depth + 1)
    end
  end
  -- what a signature leaves out, now and then
  if top and rnd(4) == 1 then parts[#parts + 1] = '"unsigned": {"age_ts": 7}' end
  return "{" .. table.concat(parts, ",") .. ws(rnd) .. "}"
end

local function array(rnd, depth)
  local parts = {}
  for i = 1, rnd(6) - 1 do parts[i] = ws(rnd) .. value(rnd, depth + 1) end
  return "[" .. table.concat(parts, ",") .. "]"
end

function value(rnd, depth)
  local k = rnd(depth >= 4 and 6 or 8)
  if k <= 3 then return (str(rnd, 12)) end
  if k == 4 then return int(rnd) end
  if k == 5 then return ({ "true", "false", "null" })[rnd(3)] end
  if k == 6 then return int(rnd) end
  if k == 7 then return array(rnd, depth) end
  return object(rnd, depth)
end

local function random_objects(seed, n)
  local rnd, out = S.rng(seed), {}
  for i = 1, n do out[i] = object(rnd, 0, true) end
  return out
end

-- ---- signatures ----

-- The signature domain's ed25519:1 key wrote in a JSON text.
local function signature_in(text)
  return text:match('"ed25519:1":%s*"([^"]+)"')
end

-- The text with one character of its signature changed, inside the first
-- 84 of 86 (the last carries bits no byte uses): right length, wrong bytes.
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function corrupt(text, rnd)
  local sig = assert(signature_in(text))
  local i = rnd(84)
  local c = sig:sub(i, i)
  local j = (B64:find(c, 1, true) + rnd(63) - 1) % 64 + 1
  local bad = sig:sub(1, i - 1) .. B64:sub(j, j) .. sig:sub(i + 1)
  assert(#bad == #sig and bad ~= sig)
  local a, b = text:find(sig, 1, true)
  return text:sub(1, a - 1) .. bad .. text:sub(b + 1)
end

describe("canonical and signed JSON against matrix.org's Python libraries", function()
  if not have_oracle() then
    pending(PYTHON .. " lacks canonicaljson or signedjson: apt-get install "
            .. "python3-canonicaljson python3-signedjson (see .ci/packages)")
    return
  end

  local objects = random_objects(1212, CASES)
  local answers
  setup(function()
    local lines = {}
    for i, text in ipairs(objects) do
      lines[2 * i - 1] = '{"canon": ' .. text .. '}'
      lines[2 * i] = '{"sign": ' .. text .. ', "seed": "' .. SEED .. '"}'
    end
    answers = oracle(lines)
  end)

  it("writes the canonical JSON that canonicaljson writes, on " .. CASES .. " random objects",
     function()
    for i, text in ipairs(objects) do
      local mine, err = core.canonical_json(text)
      assert(mine, err)
      assert.equal(answers[2 * i - 1].canon, mine, "object " .. i .. ": " .. text)
      assert.equal(mine, core.canonical_json(mine), "canonical JSON is a fixed point")
    end
  end)

  it("accepts what signedjson signed and refuses it corrupted or changed", function()
    local rnd = S.rng(99)
    for i = 1, CASES do
      local signed = answers[2 * i].signed
      assert.is_true(core.verify_json(signed, "domain", "ed25519:1", PUB), "object " .. i)
      local _, err, code = core.verify_json(corrupt(signed, rnd), "domain", "ed25519:1", PUB)
      assert.equal("MISMATCH", code, err)
      local changed = signed:gsub("^{", '{"an added key": 1, ', 1)
      assert.equal("MISMATCH", select(3, core.verify_json(changed, "domain", "ed25519:1", PUB)))
    end
  end)

  it("signs as signedjson does, and signedjson accepts ours and refuses it corrupted",
     function()
    local rnd, lines, mine = S.rng(7), {}, {}
    for i, text in ipairs(objects) do
      mine[i] = assert(core.sign_json(text, "domain", "ed25519:1", SEED))
      -- Ed25519 is deterministic: the same bytes signed give the same signature
      assert.equal(signature_in(answers[2 * i].signed), signature_in(mine[i]), "object " .. i)
      lines[2 * i - 1] = '{"verify": ' .. mine[i] .. ', "pub": "' .. PUB .. '"}'
      lines[2 * i] = '{"verify": ' .. corrupt(mine[i], rnd) .. ', "pub": "' .. PUB .. '"}'
    end
    local verdicts = oracle(lines)
    for i = 1, CASES do
      assert.is_true(verdicts[2 * i - 1].ok, "object " .. i)
      assert.is_false(verdicts[2 * i].ok, "corrupted object " .. i)
    end
  end)
end)

describe("core crypto helpers", function()
  it("refuse what has no canonical JSON, and raise on caller mistakes", function()
    assert.equal("NOT_CANONICAL", select(3, core.canonical_json('{"a": 1.5}')))
    assert.equal("NOT_CANONICAL", select(3, core.canonical_json("[9007199254740992]")))
    assert.equal("NOT_JSON", select(3, core.canonical_json('{"a": 1, "a": 2}')))
    assert.equal('{"a":0,"b":10000000000}', core.canonical_json('{"b": 1e10, "a": -0}'))
    assert.has_error(function() core.event_id("1", "{}") end)
    assert.has_error(function() core.room_id("11", "{}") end)
    assert.has_error(function() core.reference_hash("13", "{}") end)
    assert.has_error(function() core.verify_json("{}", "d", "ed25519:1", "short") end)
  end)

  it("give the reference hash, event and room IDs of a PDU", function()
    -- gomatrixserverlib eventversion_test.go, re-expressed: a create event
    -- whose ID is "$RrGxF28UrHLmoASHndYb9Jb/1SFww2ptmtur9INS438" in v3
    local create = '{"auth_events": [], "prev_events": [], "type": "m.room.create",'
      .. ' "room_id": "!uXDCzlYgCTHtiWCkEx:jki.re", "sender": "@erikj:jki.re",'
      .. ' "content": {"room_version": "5", "predecessor": {"room_id":'
      .. ' "!gdRMqOrTFdOCYHNwOo:half-shot.uk", "event_id":'
      .. ' "$LP7ROBc4b+cMc1UE9haIz8q5AK2AIW4eJ90FfKLvyZI"}, "creator": "@erikj:jki.re"},'
      .. ' "depth": 1, "prev_state": [], "state_key": "", "origin": "jki.re",'
      .. ' "origin_server_ts": 1560284621137, "hashes": {"sha256":'
      .. ' "IX6zuNiJpJPNf70BLleL3HSCpjKeq9Uhu7uUpyDjBmc"}, "signatures": {}}'
    assert.equal("RrGxF28UrHLmoASHndYb9Jb/1SFww2ptmtur9INS438", core.reference_hash("3", create))
    assert.equal("$RrGxF28UrHLmoASHndYb9Jb/1SFww2ptmtur9INS438", core.event_id("3", create))
    assert.equal("$RrGxF28UrHLmoASHndYb9Jb_1SFww2ptmtur9INS438", core.event_id("10", create))
    local v12 = '{"type": "m.room.create", "state_key": "", "sender": "@a:x", "depth": 1,'
      .. ' "content": {"room_version": "12"}, "auth_events": [], "prev_events": [],'
      .. ' "origin_server_ts": 1}'
    local room = assert(core.room_id("12", v12))
    assert.equal("!" .. core.event_id("12", v12):sub(2), room)
    assert.equal("BAD_EVENT", select(3, core.room_id("12", '{"type": "m.room.message"}')))
  end)

  it("redact per room version", function()
    local pl = '{"type": "m.room.power_levels", "origin": "x", "content": {"invite": 0, "ban": 50}}'
    assert.equal('{"content":{"ban":50},"origin":"x","type":"m.room.power_levels"}',
                 core.redact("10", pl))
    assert.equal('{"content":{"ban":50,"invite":0},"type":"m.room.power_levels"}',
                 core.redact("11", pl))
  end)
end)
