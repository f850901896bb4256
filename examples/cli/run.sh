#!/bin/sh
# Imports a room from a JSON-lines file with the command-line tool and
# inspects it: state, members, a diff, the output log, sizes and a check.
#
#   examples/cli/run.sh                  (from a checkout built into build/)
#   ROOMSTATE_BUILD=build-web examples/cli/run.sh
#   ROOMSTATE=roomstate examples/cli/run.sh      (the installed tool)
#
# room.jsonl holds one item a line: a plain event, or
# {"event": {...}, "kind": "outlier"|"old"|"new", "state": ["$id", ...]}.
# It is a small room: members, a topic, two messages sent at once (a fork)
# and a merge, a leave, then a federated join: the remote server's state
# arrives as outliers and Erin's join names it as its state, which replaces
# the room's state (rewrites_state).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
rs=${ROOMSTATE:-$here/../../bin/roomstate}
dir=$(mktemp -d "${TMPDIR:-/tmp}/roomstate-cli.XXXXXX")
trap 'rm -rf "$dir"' EXIT
db=$dir/planning.db
room='!planning:example.org'

show() { printf '\n$ roomstate %s\n' "$*"; "$rs" "$@"; }

show import "$db" "$here/room.jsonl"
# Importing again stores nothing: every event is a duplicate.
show import "$db" "$here/room.jsonl"
show state "$db" "$room"
show members "$db" "$room"
# The state as it was once the topic was set, and before Erin's join.
show state "$db" "$room" --at '$topic:example.org'
# What the federated join changed:
show diff "$db" '$bob-leaves:example.org' '$erin-joins:example.org'
show outputs "$db" --from 14
show outputs "$db" --from 16 --json
show stats "$db"
show check "$db"

# Scripts use --json and the exit status.
summary=$("$rs" import "$dir/again.db" "$here/room.jsonl" --json)
case $summary in
  *'"rejected":0,"soft_failed":0,'*) ;;
  *) echo "every event should pass the auth rules: $summary" >&2; exit 1 ;;
esac
members=$("$rs" members "$db" "$room" --json)
case $members in
  *'"@erin:example.org"'*) ;;
  *) echo "Erin should be a member: $members" >&2; exit 1 ;;
esac
if "$rs" state "$db" '!nowhere:example.org' 2>"$dir/err"; then
  echo "an unknown room should fail" >&2; exit 1
fi
printf '\n$ roomstate state %s %s   (fails: one line, exit status 1)\n' "$db" '!nowhere:example.org'
cat "$dir/err"
echo "all checks passed"
