-- bench/median.lua - the median (the lower middle of an even count), min
-- and max of a list of timings, for bench/fork_cost.lua and
-- bench/store_resolve.lua.
local sort, floor = table.sort, math.floor

return function(v)
  local t = {}
  for i, x in ipairs(v) do t[i] = x end
  sort(t)
  return t[floor((#t + 1) / 2)], t[1], t[#t]
end
