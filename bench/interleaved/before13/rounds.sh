#!/bin/sh
# interleaved rounds: old/new 6488bd6 vs 4ddab58, full scale, ingest only matters
set -u
B=/work/tmp-bench; O=$B/out; SCALE=${SCALE:-1}
run() { # build system workload round
  t=$1 s=$2 w=$3 r=$4
  case "$s" in *-authev) set -- --system "${s%-authev}" --auth-events ;; *) set -- --system "$s" ;; esac
  db=$B/$w-$s-$t.db; f=$O/$w-$s-$t-r$r.json
  st=$(date -u +%H:%M:%S); t0=$(date +%s)
  nice -n 19 /work/wt-$t/build-bench/bench/rsbench "$@" --workload $w --scale $SCALE --seed 1 \
     --samples 100 --query-seconds 0.25 --db $db --out $f.tmp 2>$O/$w-$s-$t-r$r.err
  rc=$?; t1=$(date +%s); rm -f $db $db-wal $db-shm
  c=$([ $t = old ] && echo 6488bd6 || echo 4ddab58)
  jq -c --argjson r $r --arg b $t --arg c $c --arg st "$st" --argjson wall $((t1-t0)) --argjson rc $rc \
     '. + {round: $r, build: $b, commit: $c, started_utc: $st, run_wall_seconds: $wall, rc: $rc}' $f.tmp > $f && rm -f $f.tmp
  echo "$(date -u +%H:%M:%S) r$r $w $s $t rc=$rc wall=$((t1-t0))s eps=$(jq .events_per_second $f)" >> $O/log
}
for r in $(seq ${FIRST:-1} ${LAST:-3}); do
  if [ $((r % 2)) = 1 ]; then A=old; Z=new; else A=new; Z=old; fi
  echo "$(date -u) round $r start, uptime: $(uptime)" >> $O/log
  for s in roomstate ceiling roomstate-auth ceiling-authev; do run $A $s big-room $r; run $Z $s big-room $r; done
  for s in roomstate ceiling; do run $A $s many-rooms $r; run $Z $s many-rooms $r; done
  echo "$(date -u) round $r end, uptime: $(uptime)" >> $O/log
done
