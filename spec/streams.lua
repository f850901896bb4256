-- Seeded random event streams for the property specs: messages, member
-- churn, state replacements, old events, forks (then merges) whose
-- branches send messages or change state, and federated-join rewrites to
-- a different state.
-- Each step ingests through the harness and replays the same event on the
-- naive model; `on_event(id, kind)` runs after every accepted event.
-- Every event passes the auth rules (the store applies them): memberships
-- move only as the rules allow, the creator keeps power 100, the room
-- stays public. The auth specs cover refused events.
local harness = require "roomstate.harness"
local Model = require "model"
local S = require "support"

local G = {}

function G.run(store, seed, nevents, on_event)
  local rng = S.rng(seed)
  local h = harness.new(store, { server = "s" .. seed })
  local model = Model.new()
  local count = 0
  local failure

  -- every emitted event goes to the model too; they must agree on success
  local function feed(cursor, fields, opts)
    opts = opts or {}
    local id, pdu = h:emit(cursor.room, opts.prev or cursor.head, fields,
                           { ingest = false, state = opts.state })
    local kind = opts.kind or "new"
    local want = model:ingest(pdu, kind, opts.state)
    local res, err, code = store:ingest(pdu, { kind = kind, state = opts.state })
    if want == "ok" or want == "duplicate" then
      if not res then
        failure = ("seed %d: %s failed: %s (model says %s)"):format(seed, id, tostring(err), want)
        return nil
      end
    elseif res or code ~= want then
      failure = ("seed %d: %s: model says %s, store says %s"):format(seed, id, want,
                                                                  res and "ok" or tostring(code))
      return nil
    end
    if not res then return nil end
    if res.rejected or res.soft_failed then
      failure = ("seed %d: %s refused by the auth rules: %s"):format(seed, id,
                                                                 res.rejected or res.soft_failed)
      return nil
    end
    if kind ~= "outlier" and not opts.keep_head then cursor.head = { id } end
    count = count + 1
    if on_event then
      local ok, msg = on_event(id, kind, model, cursor.room.id)
      if not ok then failure = ("seed %d, event %d (%s): %s"):format(seed, count, id, msg) end
    end
    return id
  end

  local room = {
    id = ("!r%d:s%d"):format(seed, seed), creator = "@creator:s" .. seed, version = "10",
  }
  local main = setmetatable({ h = h, room = room, head = {} }, harness.Cursor)
  room.create_id = feed(main, { type = "m.room.create", state_key = "",
    content = { creator = room.creator, room_version = "10" } })
  feed(main, { type = "m.room.member", state_key = room.creator, content = { membership = "join" },
               sender = room.creator })
  local function power() return { users = { [room.creator] = 100 }, v = rng(1000) } end
  feed(main, { type = "m.room.power_levels", state_key = "", content = power() })
  feed(main, { type = "m.room.join_rules", state_key = "", content = { join_rule = "public" } })
  local users = {}
  for i = 1, 12 do users[i] = ("@u%d:s%d"):format(i, seed) end
  local history = { main.head[1] }

  -- u's membership in a state (key -> event ID), nil for none
  local function membership_in(st, u)
    local e = st[("m.room.member\0%s"):format(u)]
    return e and model.events[e].content.membership
  end
  -- The moves the rules allow from each membership: {membership, by whom}.
  local MOVES = {
    none = { { "join", "self" }, { "invite", "creator" }, { "ban", "creator" } },
    leave = { { "join", "self" }, { "invite", "creator" }, { "ban", "creator" } },
    invite = { { "join", "self" }, { "leave", "self" }, { "leave", "creator" },
               { "ban", "creator" } },
    join = { { "leave", "self" }, { "leave", "creator" }, { "ban", "creator" },
             { "join", "self" } },
    ban = { { "leave", "creator" } },
  }
  local function member(cursor, opts)
    local u = users[rng(#users)]
    local moves = MOVES[membership_in(model.rooms[room.id].current, u) or "none"]
    local move = moves[rng(#moves)]
    return feed(cursor, { type = "m.room.member", state_key = u,
                          content = { membership = move[1] },
                          sender = move[2] == "self" and u or room.creator }, opts)
  end
  local function state(cursor, opts)
    local t = ({ "m.room.name", "m.room.topic", "m.room.power_levels", "m.room.join_rules" })[rng(4)]
    local content = { v = rng(1000) }
    if t == "m.room.power_levels" then content = power() end
    if t == "m.room.join_rules" then content.join_rule = "public" end
    return feed(cursor, { type = t, state_key = "", content = content }, opts)
  end
  local function message(cursor, opts)
    return feed(cursor, { type = "m.room.message", content = { body = "m" .. rng(1e6) } }, opts)
  end

  while count < nevents and not failure do
    local r = rng(100)
    local id
    if r <= 40 then
      id = message(main)
    elseif r <= 65 then
      id = member(main)
    elseif r <= 80 then
      id = state(main)
    elseif r <= 88 then
      -- a fork, then a merge: messages on both branches, or state changes
      -- on both, whose differing states the store and the model resolve
      local side = main:at(main.head[1])
      local act = rng(2) == 1 and message or state
      for _ = 1, rng(3) do if not failure then act(main) end end
      for _ = 1, rng(3) do if not failure then act(side) end end
      if not failure then
        local prev = { main.head[1], side.head[1] }
        id = feed(main, { type = "m.room.message", content = { body = "merge" } }, { prev = prev })
      end
    elseif r <= 94 then
      -- an old event hanging off some earlier event
      local at = history[rng(#history)]
      local side = main:at(at)
      if rng(2) == 1 then
        message(side, { kind = "old" })
      else
        state(side, { kind = "old" })
      end
    else
      -- a federated join: part of the state kept, part new, part gone;
      -- what the creator's power and the joins rest on is always kept
      local cur = model.rooms[room.id].current
      local keep = { ["m.room.create\0"] = true, ["m.room.power_levels\0"] = true,
                     ["m.room.join_rules\0"] = true,
                     [("m.room.member\0%s"):format(room.creator)] = true }
      local all, ids = {}, {}
      for k, ev in pairs(cur) do all[#all + 1] = { k, ev } end
      -- pairs order is not reproducible; the seed must be
      table.sort(all, function(a, b) return a[2] < b[2] end)
      for _, kv in ipairs(all) do
        if keep[kv[1]] or rng(3) ~= 1 then ids[#ids + 1] = kv[2] end
      end
      local remote_prev = { h:next_id("remote") }
      for _ = 1, rng(4) do
        local u = ("@remote%d:elsewhere"):format(rng(20))
        local out = feed(main, { type = "m.room.member", state_key = u,
                                 content = { membership = "join" }, sender = u },
                         { kind = "outlier", prev = remote_prev })
        if not out then break end
        -- a key may only appear once in the list
        local dup = false
        for i, e in ipairs(ids) do
          local pe = model.events[e]
          if pe.type == "m.room.member" and pe.state_key == u then ids[i] = out; dup = true end
        end
        if not dup then ids[#ids + 1] = out end
      end
      if not failure then
        local given = {}
        for _, e in ipairs(ids) do
          local pe = model.events[e]
          given[pe.type .. "\0" .. pe.state_key] = e
        end
        -- a banned user cannot join: a remote newcomer joins instead
        local j = users[rng(#users)]
        if membership_in(given, j) == "ban" then j = ("@joiner%d:elsewhere"):format(count) end
        id = feed(main, { type = "m.room.member", state_key = j, content = { membership = "join" },
                          sender = j }, { prev = remote_prev, state = ids })
      end
    end
    if id then history[#history + 1] = id end
  end
  return failure, count, model, room
end

return G
