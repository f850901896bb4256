#!/bin/sh
# Runs the OpenResty example from a checkout: starts nginx with nginx.conf in
# a scratch directory, creates a room and sends events with curl, reads the
# state back, shows the subscriber's log and stops nginx.
#
#   examples/openresty/run.sh           (after building into build/)
#   ROOMSTATE_BUILD=build-web PORT=9000 examples/openresty/run.sh
#   ROOMSTATE_NGINX=/usr/local/openresty/nginx/sbin/nginx examples/openresty/run.sh
#
# Needs nginx and libnginx-mod-http-lua (Debian), lua-cjson and curl.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${ROOMSTATE_BUILD:-build}
case $build in /*) ;; *) build=$repo/$build ;; esac
port=${PORT:-8089}
base="http://127.0.0.1:$port/_roomstate"
prefix=$(mktemp -d "${TMPDIR:-/tmp}/roomstate-openresty.XXXXXX")
mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/tmp"
sed "s/127\.0\.0\.1:8089/127.0.0.1:$port/" "$here/nginx.conf" > "$prefix/conf/nginx.conf"
cat > "$prefix/conf/lua_paths.conf" <<PATHS
lua_package_path "$repo/lua/?.lua;$repo/lua/?/init.lua;;";
lua_package_cpath "$build/?.so;;";
PATHS
# As root, nginx would run its workers as "nobody", who cannot write here.
user=""
if [ "$(id -u)" = 0 ]; then user="user root;"; fi

stop() {
  status=$?
  if [ $status -ne 0 ] && [ -f "$prefix/logs/error.log" ]; then
    echo "--- the end of nginx's error log:" >&2; tail -n 20 "$prefix/logs/error.log" >&2
  fi
  if [ -f "$prefix/logs/nginx.pid" ]; then
    pid=$(cat "$prefix/logs/nginx.pid")
    kill -QUIT "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  fi
  rm -rf "$prefix"
}
trap stop EXIT INT TERM

${ROOMSTATE_NGINX:-nginx} -p "$prefix/" -e logs/error.log -c conf/nginx.conf ${user:+-g "$user"}
i=0
until curl -s -m 5 -o /dev/null "$base/rooms"; do
  i=$((i + 1))
  if [ $i -gt 50 ]; then echo "nginx did not start:" >&2; cat "$prefix/logs/error.log" >&2; exit 1; fi
  sleep 0.1
done

failures=0
# call EXPECTED_STATUS METHOD PATH [BODY]: prints the response, checks the status
# and that no event was rejected or soft-failed.
call() {
  want=$1 method=$2 path=$3
  if [ $# -ge 4 ]; then
    out=$(curl -s -m 10 -X "$method" -w '\n%{http_code}' --data-binary "$4" "$base$path")
  else
    out=$(curl -s -m 10 -X "$method" -w '\n%{http_code}' "$base$path")
  fi
  status=$(printf '%s\n' "$out" | tail -n 1)
  printf '%s %s -> %s\n  %s\n' "$method" "$path" "$status" "$(printf '%s\n' "$out" | sed '$d')"
  if [ "$status" != "$want" ]; then echo "  expected $want" >&2; failures=$((failures + 1)); fi
  # A stored event that the auth rules failed is answered 200 too.
  case $out in
    *'"rejected":'*|*'"soft_failed":'*)
      echo "  the auth rules failed an event" >&2; failures=$((failures + 1)) ;;
  esac
}

room='!demo:example.org'
r=%21demo%3Aexample.org            # the room ID percent-encoded for paths
# AUTH is what the auth rules select from the state before the event: the
# create event, the power levels, the sender's membership, and for a join
# the join rules.
ev() { # ev ID DEPTH PREV TYPE STATE_KEY_JSON CONTENT SENDER AUTH
  printf '{"event_id":"%s","room_id":"%s","sender":"%s","type":"%s",%s"content":%s,"prev_events":%s,"auth_events":%s,"depth":%s,"origin_server_ts":%s}' \
    "$1" "$room" "$7" "$4" "$5" "$6" "$3" "$8" "$2" "$((1700000000000 + $2))"
}
by_alice='["$create","$power","$alice"]'
by_bob='["$create","$power","$bob"]'

echo "== a room: create, join, power levels, join rules, a message"
call 200 POST "/rooms/$r/events" "$(ev '$create' 1 '[]' m.room.create '"state_key":"",' '{"creator":"@alice:example.org","room_version":"10"}' @alice:example.org '[]')"
call 200 POST "/rooms/$r/events" "[$(ev '$alice' 2 '["$create"]' m.room.member '"state_key":"@alice:example.org",' '{"membership":"join"}' @alice:example.org '["$create"]'),
$(ev '$power' 3 '["$alice"]' m.room.power_levels '"state_key":"",' '{"users":{"@alice:example.org":100}}' @alice:example.org '["$create","$alice"]'),
$(ev '$join-rules' 4 '["$power"]' m.room.join_rules '"state_key":"",' '{"join_rule":"public"}' @alice:example.org "$by_alice"),
$(ev '$hello' 5 '["$join-rules"]' m.room.message '' '{"msgtype":"m.text","body":"hello"}' @alice:example.org "$by_alice")]"
echo "== an item with a kind: bob's join, then the topic"
call 200 POST "/rooms/$r/events" "{\"event\":$(ev '$bob' 6 '["$hello"]' m.room.member '"state_key":"@bob:example.org",' '{"membership":"join"}' @bob:example.org '["$create","$power","$join-rules"]'),\"kind\":\"new\"}"
call 200 POST "/rooms/$r/events" "$(ev '$topic' 7 '["$bob"]' m.room.topic '"state_key":"",' '{"topic":"roomstate demo"}' @alice:example.org "$by_alice")"
echo "== sending an event again is not an error: duplicate is true"
call 200 POST "/rooms/$r/events" "$(ev '$topic' 7 '["$bob"]' m.room.topic '"state_key":"",' '{"topic":"roomstate demo"}' @alice:example.org "$by_alice")"

echo "== reads"
call 200 GET "/rooms/$r/state"
call 200 GET "/rooms/$r/state/m.room.topic/"
call 200 GET "/rooms/$r/members"
call 200 GET "/rooms/$r/latest"
call 200 GET "/events/%24topic/state_before"
call 200 GET "/outputs?from=6&limit=2"

echo "== mistakes get a JSON error and change nothing"
call 400 POST "/rooms/$r/events" '{"event_id": '
call 404 POST "/rooms/%21nowhere%3Aexample.org/events" "$(room='!nowhere:example.org'; ev '$x' 8 '["$topic"]' m.room.message '' '{}' @bob:example.org "$by_bob")"
call 400 POST "/rooms/%21nowhere%3Aexample.org/events" "$(ev '$x' 8 '["$topic"]' m.room.message '' '{}' @bob:example.org "$by_bob")"
call 409 POST "/rooms/$r/events" "$(ev '$y' 9 '["$unknown"]' m.room.message '' '{}' @bob:example.org "$by_bob")"
call 404 GET "/rooms/%21nowhere%3Aexample.org/state"

# The subscriber runs from a timer: give it a moment.
i=0
count() { cat "$prefix/logs/outputs.log" 2>/dev/null | wc -l; }
while [ "$(count)" -lt 7 ] && [ $i -lt 50 ]; do
  sleep 0.1; i=$((i + 1))
done
echo "== the audit subscriber's log (one line per output, in order)"
cat "$prefix/logs/outputs.log" || true
[ "$(count)" -eq 7 ] || { echo "expected 7 outputs delivered" >&2; failures=$((failures + 1)); }
call 200 GET "/stats"

if grep -q '\[error\]' "$prefix/logs/error.log"; then
  echo "errors in the nginx log:" >&2; grep '\[error\]' "$prefix/logs/error.log" >&2
  failures=$((failures + 1))
fi
if [ $failures -ne 0 ]; then echo "$failures checks failed" >&2; exit 1; fi
echo "all checks passed"
