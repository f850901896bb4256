-- bench/resolve_room.lua - the room and cases of bench/store_resolve.lua
-- (and store_resolve_file.lua): a room of n joined members, room version
-- `version`, and forks of its head ingested as `old`, so that building
-- them resolves nothing. `one-key`: one member changes their displayname
-- on one branch while the other gets a message; `members-K` for each K of
-- ks: both branches change the displaynames of the same K members (2K
-- conflicted events). Returns the room ID and the cases, each
-- { name = ..., sets = { a, b } } with a and b the branches' heads.
local harness = require "roomstate.harness"
local assert, ipairs = assert, ipairs

return function(store, n, ks, version)
  local h = harness.new(store, { server = "bench", version = version })
  local main = assert(h:create_room("@alice:x"))
  for i = 1, n do assert(main:join("@m" .. i .. ":x")) end
  local base = main.head[1]
  local function rename(cursor, i, tag)
    local u = "@m" .. i .. ":x"
    return assert(cursor:state("m.room.member", u, { membership = "join", displayname = tag },
                               { sender = u, kind = "old" }))
  end
  local cases = {}
  local a, b = main:at(base), main:at(base)
  rename(a, 1, "one")
  assert(b:send("meanwhile", { sender = "@m2:x", kind = "old" }))
  cases[1] = { name = "one-key", sets = { a.head[1], b.head[1] } }
  for _, k in ipairs(ks) do
    a, b = main:at(base), main:at(base)
    for i = 1, k do rename(a, i, "a" .. k) end
    for i = 1, k do rename(b, i, "b" .. k) end
    cases[#cases + 1] = { name = "members-" .. k, sets = { a.head[1], b.head[1] } }
  end
  return main.room.id, cases
end
