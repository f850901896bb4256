# Combines the per-run objects (jq -s) into results.json with the machine,
# the command and the ratios against the targets of issues 5 and 15.
# Runs come in rounds (.round; 1 when absent): every ratio is taken within
# a round, and each figure is given as the median of the rounds with the
# min, the max and the per-round values.
def run(w; s; r): (map(select(.workload == w and .system == s and (.round // 1) == r)) | .[0]) // null;
def ratio(a; b): if (a != null and b != null and b != 0) then (a / b) else null end;
def median: sort | if length == 0 then null
  elif length % 2 == 1 then .[(length - 1) / 2]
  else (.[length / 2 - 1] + .[length / 2]) / 2 end;
def spread: map(select(. != null)) |
  if length == 0 then {median: null} else {median: median, min: min, max: max, rounds: .} end;
def win(r; k): (r.growth_windows[k].state_cost_us) // null;
. as $runs
| ($runs | map(.round // 1) | unique) as $rounds
| def per_round(f): [$rounds[] | f] | spread;
  def big(s; r): run("big-room"; s; r);
  def bytes_per_event(x): if x == null then null else x / .events end;
{
    schema: 2,
    machine: {cpu: $cpu, cores: ($cores | tonumber), mem_kb: ($memkb | tonumber),
              kernel: $kernel, sqlite: $sqlite, gcc: $gcc},
    commit: $commit,
    command: $cmd,
    mode: $mode,
    scale: ($scale | tonumber),
    rounds: ($rounds | length),
    budget: {ingest_seconds: ($budget_s | tonumber), db_bytes: ($budget_b | tonumber)},
    wall_seconds: ($secs | tonumber),
    runs: $runs,
    targets: {
      ingest_vs_ceiling: ({target: ">= 0.5 (issue 5); >= 0.8 (issue 15 §3)",
        basis: "big-room events/s, roomstate over the ceiling of the same round"}
        + per_round(. as $r | ratio($runs | big("roomstate"; $r) | .events_per_second;
                                     $runs | big("ceiling"; $r) | .events_per_second))),
      authorized_ingest_vs_ceiling: ({target: ">= 0.75",
        basis: "roomstate-auth against the ceiling fed the same events (ceiling-authev, else ceiling), same round"}
        + per_round(. as $r | ratio($runs | big("roomstate-auth"; $r) | .events_per_second;
                                     ($runs | big("ceiling-authev"; $r) // big("ceiling"; $r)) | .events_per_second))),
      written_bytes_vs_ceiling: ({target: "<= 1.1 (issue 15 §3)",
        basis: "big-room bytes handed to write(2) per event (/proc/self/io wchar, ingest and close), roomstate over the ceiling of the same round"}
        + per_round(. as $r | ratio($runs | big("roomstate"; $r) | .written_bytes_per_event;
                                     $runs | big("ceiling"; $r) | .written_bytes_per_event))),
      state_bytes_dendrite_over_roomstate: ({target: ">= 10",
        basis: "state bytes per event (dbstat pages of the state tables)"}
        + per_round(. as $r | ratio($runs | big("dendrite"; $r) | .state_disk_bytes_per_event;
                                     $runs | big("roomstate"; $r) | .state_disk_bytes_per_event))),
      state_bytes_synapse_over_roomstate: ({target: ">= 50",
        basis: "state bytes per event (dbstat pages of the state tables)",
        synapse_stopped: ([$rounds[] as $r | $runs | big("synapse"; $r) | .stopped // empty] | any)}
        + per_round(. as $r | ratio($runs | big("synapse"; $r) | .state_disk_bytes_per_event;
                                     $runs | big("roomstate"; $r) | .state_disk_bytes_per_event))),
      state_bytes_continuwuity_raw_over_roomstate: ({target: ">= 3 (issue 15 §3)",
        basis: "continuwuity's stored records (key + value bytes) per event over roomstate's state pages per event"}
        + per_round(. as $r | ratio($runs | big("continuwuity"; $r) | bytes_per_event(.state_payload_bytes);
                                     $runs | big("roomstate"; $r) | .state_disk_bytes_per_event))),
      state_bytes_continuwuity_zstd_over_roomstate: ({target: ">= 2 (issue 15 §3)",
        basis: "continuwuity's records zstd-compressed in 4 KiB blocks, per event, over roomstate's state pages per event (64 KiB blocks: zstd_64k_measured)",
        zstd_64k_measured: per_round(. as $r | ratio($runs | big("continuwuity"; $r) | bytes_per_event(.state_zstd_64k_bytes);
                                     $runs | big("roomstate"; $r) | .state_disk_bytes_per_event))}
        + per_round(. as $r | ratio($runs | big("continuwuity"; $r) | bytes_per_event(.state_zstd_4k_bytes);
                                     $runs | big("roomstate"; $r) | .state_disk_bytes_per_event))),
      state_cost_90_100_over_10_20: ({target: "<= 2",
        basis: "roomstate's mean ingest time per state event while the room grew from 90% to 100% of its members, over the same from 10% to 20%",
        cost_10_20_us: per_round(. as $r | win($runs | big("roomstate"; $r); "w10_20")),
        cost_90_100_us: per_round(. as $r | win($runs | big("roomstate"; $r); "w90_100"))}
        + per_round(. as $r | ratio(win($runs | big("roomstate"; $r); "w90_100");
                                     win($runs | big("roomstate"; $r); "w10_20")))),
      forks_ingest_vs_ceiling: ({target: "reported (issue 13 §4)",
        basis: "forks events/s, roomstate-auth over ceiling-authev of the same round"}
        + per_round(. as $r | ratio($runs | run("forks"; "roomstate-auth"; $r) | .events_per_second;
                                     $runs | run("forks"; "ceiling-authev"; $r) | .events_per_second))),
      forks_merge_over_non_merge: ({target: "< 10 (issue 13 §4, for branches differing in one key)",
        basis: "forks, roomstate-auth: mean ingest time of a merge event over that of any other event after the setup"}
        + per_round(. as $r | ($runs | run("forks"; "roomstate-auth"; $r) | .merge_over_non_merge) // null)),
      current_load_median_ms: ({target: "< 20",
        entries: (($runs | map(select(.workload == "big-room" and .system == "roomstate")) | .[0].latency.current_load.mean_size) // null)}
        + per_round(. as $r | ($runs | big("roomstate"; $r) | .latency.current_load.median_us // null)
                              | if . == null then null else . / 1000 end)),
      lookup_median_us: ({target: "< 20; within 1.2x of lookup_probe's floor (issue 15 §3)",
        basis: "measured: fresh handle (SQLite and roomstate caches cold, OS cache warm); served_measured: new points after ~19k lookups at others; warm_measured: the fresh handle's points again",
        p99_us: per_round(. as $r | ($runs | big("roomstate"; $r) | .latency.lookup.p99_us) // null),
        warm_measured: per_round(. as $r | ($runs | big("roomstate"; $r) | .latency.lookup_warm.median_us) // null),
        served_measured: per_round(. as $r | ($runs | big("roomstate"; $r) | .latency.lookup_served.median_us) // null)}
        + per_round(. as $r | ($runs | big("roomstate"; $r) | .latency.lookup.median_us) // null))
    }
  }
