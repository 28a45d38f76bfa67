#!/usr/bin/env bash
# The group curve (issue 21, "Curves, as work grows"): 1, 100 and 1,000 consumer groups, each committing once a
# second: the commit p99 and the broker's CPU. Writes bench/results/curve_groups.json and curve_groups.png.
#
# Per count G, on a fresh broker: topic `g` (one partition, 1,000 records); `groups-bench commit-groups`: G groups of
# one member each (the client library's group consumer, two connections each: coordination and fetch; spread over up
# to 64 threads), joined first; then for CURVE_GROUPS_SECONDS every group commits one offset per second
# (synchronously: the answer comes once the broker fsynced its offsets log) and polls once (its heartbeats). Commit
# latency from the request to the answer; the broker's CPU (/proc/PID/stat, every thread) from the moment all groups
# joined to the end, as a percentage of one core; its RSS at the end. A broker whose flags include
# --initial-rebalance-delay gets 0, so that joining 1,000 groups does not wait 1,000 delays.
#
# Usage: bench/curve_groups.sh [BUILD_DIR]
#   BENCH_QUICK=1              smoke mode: G = 1, 10, 100; 5 s
#   CURVE_GROUPS_COUNTS="1 100 1000"
#   CURVE_GROUPS_SECONDS=S     committing time per point (default 30)
set -euo pipefail
name=curve_groups
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init "${1:-build/release}"
[ -x "$bin/groups-bench" ] || {
	echo "$name: $bin/groups-bench is missing: run make bench" >&2
	exit 1
}

if [ "$quick" = 1 ]; then
	counts=${CURVE_GROUPS_COUNTS:-1 10 100}
	seconds=${CURVE_GROUPS_SECONDS:-5}
else
	counts=${CURVE_GROUPS_COUNTS:-1 100 1000}
	seconds=${CURVE_GROUPS_SECONDS:-30}
fi
interval_ms=1000
ulimit -n "$(ulimit -Hn)"
flags=()
# The help is read whole before it is searched: `synclogd --help | grep -q` under pipefail failed whenever grep quit
# before synclogd finished writing (SIGPIPE), about half the time, and the broker then kept its 3 s delay.
broker_help=$("$bin/synclogd" --help 2>&1 || true)
if grep -q -- --initial-rebalance-delay <<<"$broker_help"; then
	flags+=(--initial-rebalance-delay 0)
fi
runs=$data/runs
mkdir -p "$runs"

for g in $counts; do
	rm -rf "$data/broker"
	# Two connections per group (the client library's group consumer keeps its coordination requests off the
	# fetchers' connection, as Kafka's clients do), plus the produce and a margin: below that the broker closes
	# the least recently active connections to make room, and the curve measures reconnects, not groups.
	broker_start "$data/broker" --connections-max $((2 * g + 100)) "${flags[@]}"
	client "$bin/synclog-bench" produce --broker "$broker_addr" --topic g --create --count 1000 --json /dev/null
	client_bg "$bin/groups-bench" commit-groups --broker "$broker_addr" --topic g --group cg --groups "$g" \
		--seconds "$seconds" --interval-ms $interval_ms >"$runs/commit-$g.json" 2>"$runs/commit-$g.err"
	gb=$bg_pid
	for _ in $(seq 1 3000); do
		grep -q 'groups joined' "$runs/commit-$g.err" && break
		kill -0 "$gb" 2>/dev/null || break
		sleep 0.1
	done
	cpu0=$(broker_cpu_s)
	t0=$(now_ms)
	wait "$gb" || true
	cpu1=$(broker_cpu_s)
	t1=$(now_ms)
	rss=$(broker_rss_kb)
	broker_stop
	python3 - "$runs/commit-$g.json" "$cpu0" "$cpu1" "$t0" "$t1" "$rss" >"$runs/point-$g.json" <<-'PY'
		import json, sys
		path, c0, c1, t0, t1, rss = sys.argv[1:]
		try:
		    d = json.load(open(path))
		except ValueError:
		    d = {"error": "groups-bench wrote no result", "latency": {}}
		wall = (int(t1) - int(t0)) / 1e3
		print(json.dumps({
		    "groups": d.get("groups"), "threads": d.get("threads"), "join_seconds": d.get("join_seconds"),
		    "commits": d.get("commits"), "commits_per_s": d.get("commits_per_s"), "late_ticks": d.get("late_ticks"),
		    "commit_p50_us": d["latency"].get("p50_us"), "commit_p99_us": d["latency"].get("p99_us"),
		    "commit_p999_us": d["latency"].get("p999_us"), "commit_max_us": d["latency"].get("max_us"),
		    "broker_cpu_s": float(c1) - float(c0), "wall_s": wall,
		    "broker_cpu_percent": 100 * (float(c1) - float(c0)) / wall if wall > 0 else None,
		    "rss_kb": int(rss), "error": d.get("error")}))
	PY
	python3 - "$runs/point-$g.json" <<-'PY'
		import json, sys
		p = json.load(open(sys.argv[1]))
		print(f"  {p['groups']:>5} groups (joined in {p['join_seconds']} s): {p['commits_per_s'] or 0:,.0f} commits/s,"
		      f" p99 {p['commit_p99_us'] or 0:,.0f} us, broker CPU {p['broker_cpu_percent'] or 0:.1f}%"
		      + (f"  ERROR {p['error']}" if p["error"] else ""))
	PY
done

python3 - "$runs" "$seconds" "$interval_ms" $counts >"$data/result.json" <<-'PY'
	import json, sys
	runs, secs, interval, counts = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
	out = {"what": "groups committing once per interval: commit latency and broker CPU", "seconds": secs,
	       "interval_ms": interval, "points": [json.load(open(f"{runs}/point-{g}.json")) for g in counts]}
	json.dump(out, sys.stdout)
	PY
cp "$data/result.json" "$out_dir/$name.json"
bench_finish "$out_dir/$name.json"
