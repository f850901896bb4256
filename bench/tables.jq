# results.json -> one markdown table per workload, schemes side by side.
# With several rounds a cell is the median over the rounds and, when the
# rounds differ, their min-max in parentheses; ratios to the ceiling are
# taken within each round.
def fmt(x): if x == null then "–"
  elif (x | type) == "number" then
    (if x >= 100 then (x | round | tostring)
     elif x >= 10 then ((x * 10 | round) / 10 | tostring)
     else ((x * 100 | round) / 100 | tostring) end)
  else (x | tostring) end;
def mb(x): if x == null then null else x / 1e6 end;
def median: sort | if length % 2 == 1 then .[(length - 1) / 2]
  else (.[length / 2 - 1] + .[length / 2]) / 2 end;
# median (min–max) of a list of numbers; the one value when all agree
def spread: map(select(. != null)) |
  if length == 0 then "–"
  elif min == max then fmt(.[0])
  else "\(fmt(median)) (\(fmt(min))–\(fmt(max)))" end;
. as $r
| ($r.runs | map(.system) | unique) as $ran
# the five schemes always; the authorization variants when they ran
| ["roomstate", "roomstate-auth", "roomstate-authev", "dendrite", "synapse", "continuwuity",
   "ceiling", "ceiling-authev"]
  | map(select(. as $s | ["roomstate", "dendrite", "synapse", "continuwuity", "ceiling"] | index($s)
                          or ($ran | index($s)))) as $sys
| ($r.runs | map(.workload) | unique) as $ws
| ["big-room", "many-rooms", "rewrites", "forks"] | map(select(. as $w | $ws | index($w))) | .[]
| . as $w
# every scheme's runs of this workload, one per round
| ($sys | map(. as $s | $r.runs | map(select(.workload == $w and .system == $s)))) as $cols
| def ceil_run($run; $name): ($r.runs | map(select(.workload == $w and .system == $name
                                                     and (.round // 1) == ($run.round // 1)))
                              | .[0]) // null;
  # the ceiling a run is measured against: fed the same events when it cites auth events
  def ceiling_for($run): if $run.auth_events then (ceil_run($run; "ceiling-authev") // ceil_run($run; "ceiling"))
                         else ceil_run($run; "ceiling") end;
  # f on each round's run: a number, or an array of numbers shown as "a / b"
  def cell(f): if length == 0 then "–" else
      (map([f] | .[0]) ) as $v
      | if ($v | map(type) | index("array")) then
          [range(0; ($v | map(select(type == "array")) | .[0] | length)) as $i
           | $v | map(if type == "array" then .[$i] else null end)
           | if $i == 0 then spread else (map(select(. != null)) | if length == 0 then "–" else fmt(median) end) end]
          | join(" / ")
        elif ($v | map(select(. != null)) | all(type == "number")) then $v | spread
        else $v[0] | fmt(.) end
    end;
  def row(lbl; f): "| \(lbl) | " + ($cols | map(cell(f)) | join(" | ")) + " |";
  def grow(p): (.growth | map(select(.percent == p)) | .[0].state_cost_us) // null;
  def lat(q): if (.latency[q].n // 0) > 0 then [.latency[q].median_us, .latency[q].p99_us] else null end;
  "### \($w)\n",
  "Rounds: \($cols | map(length) | max). Each cell: median (min–max) over the rounds.\n",
  "| figure | " + ($sys | join(" | ")) + " |",
  "|---|" + ($sys | map("---:") | join("|")) + "|",
  row("events ingested"; if .stopped then "\(.events) **(stopped: \(.stop_reason))**" else .events end),
  row("ingest, events/s"; .events_per_second),
  row("ingest, ratio to the SQLite ceiling (same round)";
      . as $run | (ceiling_for($run) | if . then .events_per_second else null end) as $c
      | if $c then .events_per_second / $c else null end),
  row("ingest seconds"; .ingest_seconds),
  row("cost per message, µs"; .message_cost_us),
  row("cost per state event (mean), µs"; .state_event_cost_us),
  (if $w == "rewrites" then row("cost per rewrite join, ms"; .rewrite_cost_ms) else empty end),
  (if $w == "forks" then
     row("merges (events with several prev events)"; .merges // null),
     row("cost per merge event (mean), µs"; .merge_cost_us // null),
     row("cost per other event (mean), µs"; .non_merge_cost_us // null),
     row("merge over other event"; .merge_over_non_merge // null),
     row("state resolutions run / answered by the cache";
         if .resolutions != null then [.resolutions, .resolution_cache_hits] else null end),
     row("state entries written per merge / per other event";
         if .entries_per_merge != null then [.entries_per_merge, .entries_per_non_merge] else null end),
     row("state bytes per merge / per other event (entries x pages per entry)";
         if .state_bytes_per_merge_est != null then [.state_bytes_per_merge_est, .state_bytes_per_non_merge_est] else null end)
   else empty end),
  (if $w == "big-room" then
     row("state event cost, 10–20% of members, µs"; .growth_windows.w10_20.state_cost_us // null),
     row("state event cost, 90–100% of members, µs"; .growth_windows.w90_100.state_cost_us // null),
     row("growth: 90–100% over 10–20%";
         if (.growth_windows.w10_20.state_cost_us // 0) > 0 and .growth_windows.w90_100.state_cost_us != null
         then .growth_windows.w90_100.state_cost_us / .growth_windows.w10_20.state_cost_us else null end),
     row("state events in each growth window"; .growth_windows.w10_20.state_events // null),
     row("state event cost at 1% of members, µs"; grow(1)),
     row("state event cost at 100% of members, µs"; grow(100))
   else empty end),
  row("state storage, MB (pages)"; mb(.state_disk_bytes)),
  row("state storage, bytes per event"; .state_disk_bytes_per_event),
  row("state payload, MB"; mb(.state_payload_bytes)),
  row("state payload, bytes per event"; .state_payload_bytes / .events),
  row("state records zstd, 4 KiB blocks, bytes per event"; if .state_zstd_4k_bytes then .state_zstd_4k_bytes / .events else null end),
  row("state records zstd, 64 KiB blocks, bytes per event"; if .state_zstd_64k_bytes then .state_zstd_64k_bytes / .events else null end),
  row("state records zstd -2, 512 B blocks, bytes per event"; if .state_zstd_512_bytes then .state_zstd_512_bytes / .events else null end),
  row("database file, MB"; mb(.db_file_bytes)),
  row("database file, bytes per event"; .db_file_bytes_per_event),
  row("peak RSS, MB"; .peak_rss_kb / 1024),
  row("bytes written per event (write(2) calls, WAL and checkpoints, close included)";
      if (.written_bytes_per_event // -1) >= 0 then .written_bytes_per_event else null end),
  row("bytes written, ratio to the SQLite ceiling (same round)";
      . as $run | (ceiling_for($run) | if . then .written_bytes_per_event // -1 else -1 end) as $c
      | if $c > 0 and (.written_bytes_per_event // -1) >= 0 then .written_bytes_per_event / $c else null end),
  row("current state load, median / p99 µs"; lat("current_load")),
  row("current state entries"; if (.latency.current_load.n // 0) > 0 then .latency.current_load.mean_size else null end),
  row("point lookup at a historic event, median / p99 µs"; lat("lookup")),
  row("same lookups again on that handle (caches warm), median / p99 µs"; lat("lookup_warm")),
  row("lookups at new points on a served handle, median / p99 µs"; lat("lookup_served")),
  row("diff of consecutive snapshots, median / p99 µs"; lat("diff")),
  row("state_before of a random event, median / p99 µs"; lat("state_before")),
  row("queries timed (load / lookup / diff / state_before)";
      if .latency.lookup.n > 0 then [.latency.current_load.n, .latency.lookup.n, .latency.diff.n, .latency.state_before.n] else null end),
  ""
