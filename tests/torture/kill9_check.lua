-- The checker of kill9.sh: opens the database a killed writer left,
-- runs check(), looks up every acknowledged event, and checks that the
-- outputs are numbered 1..n without a gap. Prints
-- "acked <n> lost <n> outputs <n> check ok|<error>"; exits 1 on any loss.
local db, log_path = arg[1], arg[2]
local roomstate = require "roomstate"
local acked, lost = 0, 0
local store, err = roomstate.open(db)
if not store then
  -- a writer killed inside its first open may leave no usable file: only
  -- acceptable when it acknowledged nothing
  for line in io.lines(log_path) do
    if line:match("^A ") then acked = acked + 1 end
  end
  print(("acked %d lost %d outputs 0 check open failed: %s"):format(acked, acked, err))
  os.exit(acked == 0 and 0 or 1)
end
for line in io.lines(log_path) do
  local id = line:match("^A (%S+)")
  if id then
    acked = acked + 1
    if not store:event(id) then lost = lost + 1 end
  end
end
local ok, cerr = store:check()
local outs = assert(store:outputs(1, 1e7))
local gaps = 0
for i, o in ipairs(outs) do
  if o.position ~= i then gaps = gaps + 1 end
end
print(("acked %d lost %d outputs %d gaps %d check %s"):format(acked, lost, #outs, gaps,
                                                         ok and "ok" or tostring(cerr)))
store:close()
os.exit((lost == 0 and ok and gaps == 0) and 0 or 1)
