#!/bin/sh
# Corruption campaign (issue 14 §5): tests/torture/corrupt.sh [BUILD [TRIALS [SEED]]]
# Random writes by SQLite to rows of every table of a copy of one
# database, then check() and every query: see corrupt.lua for what is
# counted. Fails when any corruption was served as valid state.
set -eu
cd "$(dirname "$0")/../.."
build=${1:-build}
dir=$(mktemp -d /tmp/roomstate-corrupt-XXXXXX)
trap 'rm -rf "$dir"' EXIT
LUA_PATH="lua/?.lua;lua/?/init.lua;spec/?.lua;;" LUA_CPATH="$build/?.so;;" \
  luajit tests/torture/corrupt.lua "${2:-240}" "${3:-1}" "$dir"
