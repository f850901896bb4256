#!/bin/sh
# kill -9 torture (issue 14 §5): tests/torture/kill9.sh [BUILD [TRIALS [SEED [MODE]]]]
# Each trial starts a writer (kill9_writer.lua) on a fresh database, which
# ingests batches of messages and single joins and logs each event once
# the call that stored it returned; kills it with SIGKILL after a seeded
# random delay (0.05 to 1.5 s: inside an open, a batch, a commit or the
# log write); then kill9_check.lua reopens the file (SQLite recovers the
# hot -wal), runs check(), looks up every acknowledged event and checks
# the outputs' positions. A process kill leaves the page cache alone, so
# every acknowledged commit must survive in either synchronous mode (a
# power cut is the other model: spec/powercut_spec.lua, RELIABILITY.md).
# MODE is the synchronous setting (default full). Fails on any loss.
set -eu
cd "$(dirname "$0")/../.."
build=${1:-build}
trials=${2:-30}
seed=${3:-1}
mode=${4:-full}
dir=$(mktemp -d /tmp/roomstate-kill9-XXXXXX)
trap 'rm -rf "$dir"' EXIT
export LUA_PATH="lua/?.lua;lua/?/init.lua;spec/?.lua;;" LUA_CPATH="$build/?.so;;"
total_acked=0 total_lost=0 failed=0
t=1
while [ "$t" -le "$trials" ]; do
  rm -f "$dir"/k.db* "$dir/ack.log"
  : > "$dir/ack.log"
  delay=$(awk -v s="$((seed * 100003 + t))" 'BEGIN { srand(s); printf "%.3f", 0.05 + rand() * 1.45 }')
  luajit tests/torture/kill9_writer.lua "$dir/k.db" "$dir/ack.log" "$((seed * 1000 + t))" "$mode" \
    2> "$dir/writer.err" &
  pid=$!
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if grep -q . "$dir/writer.err" && ! grep -q Killed "$dir/writer.err"; then
    echo "trial $t: the writer failed before the kill:"; cat "$dir/writer.err"; failed=$((failed + 1))
  fi
  if out=$(luajit tests/torture/kill9_check.lua "$dir/k.db" "$dir/ack.log"); then :; else
    failed=$((failed + 1))
  fi
  echo "trial $t (killed after $delay s): $out"
  acked=$(echo "$out" | awk '{print $2}') lost=$(echo "$out" | awk '{print $4}')
  total_acked=$((total_acked + acked)) total_lost=$((total_lost + lost))
  t=$((t + 1))
done
echo "kill -9, synchronous=$mode: $trials trials, $total_acked events acknowledged, $total_lost lost, $failed trials failed"
[ "$failed" -eq 0 ]
