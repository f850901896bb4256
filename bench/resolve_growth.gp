# resolve_growth.gp - roomstate.resolve's growth over N (bench/resolve.lua
# --series): left, the best time per call; right, that time over n·log2 n,
# n the conflicted events, which stays level or falls when the cost grows
# no faster than n log n. Run with -e "infile='...'; outfile='...'".
set terminal pngcairo size 1200,480 font ",10"
set output outfile
set multiplot layout 1,2 title "roomstate.resolve from Lua tables (best of 3 per point)"
set logscale x
set grid
set key top left
set xlabel "conflicted events n"
set ylabel "ms per resolution"
set logscale y
set title "time"
plot for [s in "members bans deep-bans pl-chain"] for [v in "11 12"] \
     infile using 4:(strcol(1) eq s && strcol(2) eq v ? $5 : NaN) with linespoints \
     title s." v".v
unset logscale y
set ylabel "ns per n·log2 n"
set yrange [0:*]
set title "time / (n log2 n)"
plot for [s in "members bans deep-bans pl-chain"] for [v in "11 12"] \
     infile using 4:(strcol(1) eq s && strcol(2) eq v ? $5 * 1e6 / ($4 * log($4) / log(2)) : NaN) \
     with linespoints title s." v".v
unset multiplot
