import json, glob, statistics, sys
runs = [json.load(open(f)) for f in sorted(glob.glob(sys.argv[1] + "/*.json"))]
rounds = sorted({x["round"] for x in runs})
def get(w, s, b, r):
    return next((x for x in runs if x["workload"] == w and x["system"] == s and x["build"] == b and x["round"] == r), None)
def st(v):
    v = [x for x in v if x is not None]
    return statistics.median(v), min(v), max(v), v
def n(m): return f"{m[0]:,.0f} ({m[1]:,.0f}–{m[2]:,.0f})"
def f(m): return f"{m[0]:.2f} ({m[1]:.2f}–{m[2]:.2f})"
cases = [("big-room", "roomstate", "ceiling"), ("many-rooms", "roomstate", "ceiling"),
         ("big-room", "roomstate-auth", "ceiling-authev")]
print("| workload: system / its ceiling | build | ingest, events/s | ceiling, events/s | ratio to this build's ceiling | ratio to 4ddab58's ceiling |")
print("|---|---|---:|---:|---:|---:|")
R = {}
for w, s, c in cases:
    for b, name in [("old", "6488bd6"), ("new", "4ddab58")]:
        e = st([get(w, s, b, r)["events_per_second"] for r in rounds if get(w, s, b, r)])
        ce = st([get(w, c, b, r)["events_per_second"] for r in rounds if get(w, c, b, r)])
        own = st([get(w, s, b, r)["events_per_second"] / get(w, c, b, r)["events_per_second"] for r in rounds if get(w, s, b, r) and get(w, c, b, r)])
        nc = st([get(w, s, b, r)["events_per_second"] / get(w, c, "new", r)["events_per_second"] for r in rounds if get(w, s, b, r) and get(w, c, "new", r)])
        R[(w, s, b)] = (own, nc)
        print(f"| {w}: {s} / {c} | {name} | {n(e)} | {n(ce)} | {f(own)} | {f(nc)} |")
print()
print("| workload: system | basis | 6488bd6 ratio | 4ddab58 ratio | needed (old − 0.1) | met? | rounds: new − old |")
print("|---|---|---:|---:|---:|---|---|")
for w, s, c in cases:
    for i, basis in [(0, "each build's own ceiling"), (1, "4ddab58's ceiling")]:
        o, nw = R[(w, s, "old")][i], R[(w, s, "new")][i]
        d = ", ".join(f"{a - b:+.2f}" for a, b in zip(nw[3], o[3]))
        print(f"| {w}: {s} | {basis} | {o[0]:.2f} | {nw[0]:.2f} | {o[0]-0.1:.2f} | {'yes' if nw[0] >= o[0]-0.1 else '**no**'} | {d} |")
print()
print("| round | order | " + " | ".join(f"{w} {s} {b}" for w, s, c in cases for b in ("old", "new")) + " |")
print("|---|---|" + "---:|" * 6)
for r in rounds:
    cells = []
    for w, s, c in cases:
        for b in ("old", "new"):
            a, cc = get(w, s, b, r), get(w, c, b, r)
            cells.append(f"{a['events_per_second']:,.0f} / {cc['events_per_second']:,.0f} = {a['events_per_second']/cc['events_per_second']:.2f}" if a and cc else "–")
    print(f"| {r} | {'old first' if r % 2 else 'new first'} | " + " | ".join(cells) + " |")
print()
print("| same round, 4ddab58 over 6488bd6 | median (min–max) | rounds |")
print("|---|---:|---|")
for w, s in [("big-room", "roomstate"), ("big-room", "ceiling"), ("many-rooms", "roomstate"), ("many-rooms", "ceiling"), ("big-room", "roomstate-auth"), ("big-room", "ceiling-authev")]:
    v = [get(w, s, "new", r)["events_per_second"] / get(w, s, "old", r)["events_per_second"] for r in rounds if get(w, s, "new", r) and get(w, s, "old", r)]
    if v: print(f"| {w} {s} ingest events/s | {f(st(v))} | " + ", ".join(f"{x:.2f}" for x in v) + " |")
