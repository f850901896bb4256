-- bench/clock.lua - the monotonic clock of the LuaJIT benchmarks
-- (bench/auth_check.lua, bench/resolve.lua), in seconds, through the FFI.
local ffi = require "ffi"

ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } rs_bench_timespec;
  int clock_gettime(int clk, rs_bench_timespec *ts);
]]
local ts = ffi.new("rs_bench_timespec")

return function()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end
