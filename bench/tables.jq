# results.json -> one markdown table per workload, schemes side by side.
def fmt(x): if x == null then "–"
  elif (x | type) == "number" then
    (if x >= 100 then (x | round | tostring)
     elif x >= 10 then ((x * 10 | round) / 10 | tostring)
     else ((x * 100 | round) / 100 | tostring) end)
  else (x | tostring) end;
def mb(x): if x == null then null else x / 1e6 end;
. as $r
| ($r.runs | map(.system) | unique) as $ran
# the four schemes always; the authorization variants when they ran
| ["roomstate", "roomstate-auth", "roomstate-authev", "dendrite", "synapse", "ceiling",
   "ceiling-authev"]
  | map(select(. as $s | ["roomstate", "dendrite", "synapse", "ceiling"] | index($s)
                          or ($ran | index($s)))) as $sys
| ($r.runs | map(.workload) | unique) as $ws
| ["big-room", "many-rooms", "rewrites"] | map(select(. as $w | $ws | index($w))) | .[]
| . as $w
| ($sys | map(. as $s | ($r.runs | map(select(.workload == $w and .system == $s)) | .[0]))) as $cols
| ($cols | map(select(. != null and .system == "ceiling")) | .[0].events_per_second) as $ceil
# a run fed the authorizable events is held against the ceiling fed them, when it ran
| ($cols | map(select(. != null and .system == "ceiling-authev")) | .[0].events_per_second
  // $ceil) as $ceil_ae
| def row(lbl; f): "| \(lbl) | " + ($cols | map(if . == null then "–" else fmt(f) end) | join(" | ")) + " |";
  def grow(p): (.growth | map(select(.percent == p)) | .[0]) as $g | if $g then "\(fmt($g.state_cost_us)) (\($g.members))" else "–" end;
  "### \($w)\n",
  "| figure | " + ($sys | join(" | ")) + " |",
  "|---|" + ($sys | map("---:") | join("|")) + "|",
  row("events ingested"; (.events | tostring) + (if .stopped then " **(stopped: \(.stop_reason))**" else "" end)),
  row("ingest, events/s"; .events_per_second),
  row("ingest, ratio to the SQLite ceiling";
      (if .auth_events then $ceil_ae else $ceil end) as $c
      | if $c then .events_per_second / $c else null end),
  row("ingest seconds"; .ingest_seconds),
  row("cost per message, µs"; .message_cost_us),
  row("cost per state event (mean), µs"; .state_event_cost_us),
  (if $w == "rewrites" then row("cost per rewrite join, ms"; .rewrite_cost_ms) else empty end),
  (if $w == "big-room" then
     row("state event cost at 1% of members, µs (members)"; grow(1)),
     row("state event cost at 10% of members, µs (members)"; grow(10)),
     row("state event cost at 100% of members, µs (members)"; grow(100))
   else empty end),
  row("state storage, MB (pages)"; mb(.state_disk_bytes)),
  row("state storage, bytes per event"; .state_disk_bytes_per_event),
  row("state payload, MB"; mb(.state_payload_bytes)),
  row("database file, MB"; mb(.db_file_bytes)),
  row("database file, bytes per event"; .db_file_bytes_per_event),
  row("peak RSS, MB"; .peak_rss_kb / 1024),
  row("current state load, median / p99 µs (entries)";
      if .latency.current_load.n > 0 then "\(fmt(.latency.current_load.median_us)) / \(fmt(.latency.current_load.p99_us)) (\(.latency.current_load.mean_size | round))" else null end),
  row("point lookup at a historic event, median / p99 µs";
      if .latency.lookup.n > 0 then "\(fmt(.latency.lookup.median_us)) / \(fmt(.latency.lookup.p99_us))" else null end),
  row("same lookups again on that handle (caches warm), median / p99 µs";
      if (.latency.lookup_warm.n // 0) > 0 then "\(fmt(.latency.lookup_warm.median_us)) / \(fmt(.latency.lookup_warm.p99_us))" else null end),
  row("lookups at new points on a served handle, median / p99 µs";
      if (.latency.lookup_served.n // 0) > 0 then "\(fmt(.latency.lookup_served.median_us)) / \(fmt(.latency.lookup_served.p99_us))" else null end),
  row("diff of consecutive snapshots, median / p99 µs";
      if .latency.diff.n > 0 then "\(fmt(.latency.diff.median_us)) / \(fmt(.latency.diff.p99_us))" else null end),
  row("state_before of a random event, median / p99 µs (entries)";
      if .latency.state_before.n > 0 then "\(fmt(.latency.state_before.median_us)) / \(fmt(.latency.state_before.p99_us)) (\(.latency.state_before.mean_size | round))" else null end),
  row("queries timed (load / lookup / diff / state_before)";
      if .latency.lookup.n > 0 then "\(.latency.current_load.n) / \(.latency.lookup.n) / \(.latency.diff.n) / \(.latency.state_before.n)" else null end),
  ""
