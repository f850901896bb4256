-- Child process of durability_spec: ingests a random stream with a
-- subscriber and dies at a chosen output, by os.exit inside the callback
-- or by SIGKILL after applying and before acknowledging.
-- args: db log seed mode(exit|kill|none) die_at_output
local db, log_path, seed, mode, die_at = arg[1], arg[2], tonumber(arg[3]), arg[4], tonumber(arg[5])
local roomstate = require "roomstate"
local Consumer = require "roomstate.consumer"
local G = require "streams"

local function pid()
  local f = assert(io.open("/proc/self/stat"))
  local p = f:read("*l"):match("^(%d+)")
  f:close()
  return p
end

-- the consumer's own durable record: positions it applied
local last = 0
local f = io.open(log_path, "r")
if f then
  for line in f:lines() do
    local p = tonumber(line:match("^A (%d+)"))
    if p and p > last then last = p end
  end
  f:close()
end
local log = assert(io.open(log_path, "a"))
local function write(s) log:write(s, "\n"); log:flush() end

local store = assert(roomstate.open(db))
local consumer = Consumer.new(store)
consumer.last_position = last
local delivered = 0
write("START " .. tostring(store:debug():consumer_get("durable")))
store:subscribe("durable", function(o)
  delivered = delivered + 1
  write("D " .. o.position)
  if mode == "exit" and delivered == die_at then os.exit(3) end
  if consumer:apply(o) then write("A " .. o.position) else write("S " .. o.position) end
  if mode == "kill" and delivered == die_at then os.execute("kill -9 " .. pid()) end
end)
-- anything left from a previous process first
store:deliver()
local failure = G.run(store, seed, 80, function(id)
  write("I " .. id)
  return true
end)
if failure then write("FAIL " .. failure) end
store:close()
write("END")
