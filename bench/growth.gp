# growth.gp - big-room as it grows: ingest cost per state event and state
# bytes, per scheme. Run in the directory holding big-room-*.dat; set
# outfile with -e "outfile='...'".
set terminal pngcairo size 1200,480 font ",10"
set output outfile
set multiplot layout 1,2 title "big-room: one room growing (x: joined members, log scale)"
set logscale x
set grid
set key top left
set xlabel "joined members"
set ylabel "µs per state event (mean over the last doubling)"
set logscale y
set title "ingest cost per state event"
plot "big-room-roomstate.dat" using 1:3 with linespoints lw 2 title "roomstate", \
     "big-room-dendrite.dat" using 1:3 with linespoints title "Dendrite scheme", \
     "big-room-synapse.dat" using 1:3 with linespoints title "Synapse scheme", \
     "big-room-continuwuity.dat" using 1:3 with linespoints title "continuwuity scheme"
set ylabel "state payload written, bytes"
set title "state bytes"
plot "big-room-roomstate.dat" using 1:4 with linespoints lw 2 title "roomstate", \
     "big-room-dendrite.dat" using 1:4 with linespoints title "Dendrite scheme", \
     "big-room-synapse.dat" using 1:4 with linespoints title "Synapse scheme", \
     "big-room-continuwuity.dat" using 1:4 with linespoints title "continuwuity scheme"
unset multiplot
