# Combines the per-run objects (jq -s) into results.json with the machine,
# the command and the ratios against the targets of issue 5.
def run(w; s): (map(select(.workload == w and .system == s)) | .[0]) // null;
def pct(r; p): (r.growth // [] | map(select(.percent == p)) | .[0].state_cost_us) // null;
def ratio(a; b): if (a != null and b != null and b != 0) then (a / b) else null end;
. as $runs
| run("big-room"; "roomstate") as $rs
| run("big-room"; "dendrite") as $de
| run("big-room"; "synapse") as $sy
| run("big-room"; "ceiling") as $ce
| run("big-room"; "roomstate-auth") as $ra
| (run("big-room"; "roomstate-authev") // $rs) as $roff
| (run("big-room"; "ceiling-authev") // $ce) as $cae
| {
    schema: 1,
    machine: {cpu: $cpu, cores: ($cores | tonumber), mem_kb: ($memkb | tonumber),
              kernel: $kernel, sqlite: $sqlite, gcc: $gcc},
    commit: $commit,
    command: $cmd,
    mode: $mode,
    scale: ($scale | tonumber),
    budget: {ingest_seconds: ($budget_s | tonumber), db_bytes: ($budget_b | tonumber)},
    wall_seconds: ($secs | tonumber),
    runs: $runs,
    targets: {
      ingest_vs_ceiling: {
        target: ">= 0.5",
        measured: ratio($rs.events_per_second; $ce.events_per_second)},
      authorized_ingest_vs_ceiling: {
        target: ">= 0.75",
        basis: "roomstate-auth against the ceiling fed the same events (ceiling-authev, else ceiling)",
        measured: ratio($ra.events_per_second; $cae.events_per_second)},
      authorization_share_of_ingest: {
        basis: "1 - ingest seconds with authorization off / on, off being roomstate-authev (the same events), else roomstate",
        measured: (if ($ra != null and $roff != null) then 1 - $roff.ingest_seconds / $ra.ingest_seconds else null end)},
      state_bytes_dendrite_over_roomstate: {
        target: ">= 10",
        basis: "state bytes per event (dbstat pages of the state tables)",
        dendrite_stopped: (if $de then $de.stopped else null end),
        measured: ratio($de.state_disk_bytes_per_event; $rs.state_disk_bytes_per_event)},
      state_bytes_synapse_over_roomstate: {
        target: ">= 50",
        basis: "state bytes per event (dbstat pages of the state tables)",
        synapse_stopped: (if $sy then $sy.stopped else null end),
        measured: ratio($sy.state_disk_bytes_per_event; $rs.state_disk_bytes_per_event)},
      state_cost_100pct_over_1pct: {
        target: "<= 2",
        cost_1pct_us: pct($rs; 1), cost_10pct_us: pct($rs; 10), cost_100pct_us: pct($rs; 100),
        measured: ratio(pct($rs; 100); pct($rs; 1))},
      current_load_median_ms: {
        target: "< 20",
        entries: ($rs.latency.current_load.mean_size // null),
        measured: (if $rs then $rs.latency.current_load.median_us / 1000 else null end)},
      lookup_median_us: {
        target: "< 20",
        basis: "measured: fresh handle (SQLite and roomstate caches cold, OS cache warm); served_measured: new points after ~19k lookups at others; warm_measured: the fresh handle's points again",
        measured: (if $rs then $rs.latency.lookup.median_us else null end),
        warm_measured: (if $rs then ($rs.latency.lookup_warm.median_us // null) else null end),
        served_measured: (if $rs then ($rs.latency.lookup_served.median_us // null) else null end)}
    }
  }
