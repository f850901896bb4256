-- roomstate: the room-state store of a Matrix homeserver's room server.
--
--   local roomstate = require "roomstate"
--   local store = assert(roomstate.open("rooms.db"))
--   store:ingest(event_json)
--   local st = store:current_state(room_id)
--   print(st:get("m.room.member", "@alice:example.org"))
local core = require "roomstate.core"
local Store = require "roomstate.store"
local auth = require "roomstate.auth"

local _M = { _VERSION = "0.1.0" }

-- roomstate.open(path [, opts]) -> store | nil, err, code
_M.open = Store.open

-- roomstate.state_hash(entries) -> 16 hex digits, the same value outputs
-- carry in state_hash, from { {type=, state_key=, event_id=}, ... }.
_M.state_hash = core.state_hash

-- roomstate.state_hash_update(hex, removed, added) -> 16 hex digits: the
-- hash of a state after removing and adding entries (same tables), without
-- going over the whole state.
_M.state_hash_update = core.state_hash_update

-- roomstate.room_version(id) -> the rules of a known room version (a
-- table of named flags), or nil; roomstate.room_versions() -> their IDs.
_M.room_version = core.room_version
_M.room_versions = core.room_versions

-- roomstate.auth_check(room_version, event, auth_events) -> true | nil, reason
-- roomstate.auth_types(room_version, event) -> { {type, state_key}, ... }
_M.auth_check = auth.auth_check
_M.auth_types = auth.auth_types

-- roomstate.resolve(room_version, state_sets, events [, opts]) -> the
-- resolved state as sorted event IDs | nil, "MISSING_EVENTS: ...", code
_M.resolve = auth.resolve

-- The memberships store:members takes ("join", "invite", "leave", "ban",
-- "knock"), and a test for one, for front ends that check input first.
_M.MEMBERSHIPS = Store.MEMBERSHIPS
_M.is_membership = Store.is_membership

return _M
