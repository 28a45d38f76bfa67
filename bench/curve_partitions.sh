#!/usr/bin/env bash
# The partition curve (issue 21, "Curves, as work grows"): how the broker's cost grows with its partitions, as
# one topic of N partitions and as N topics of one partition each. Writes bench/results/curve_partitions.json and
# curve_partitions.png.
#
# Per layout and N (1, 100, 1,000, 10,000), on a fresh broker:
#   empty     broker RSS (VmRSS) and open descriptors before any topic exists;
#   idle      the same once the partitions exist (`synclog topic create`, or `synclog-bench create-topics`): RSS
#             and descriptors per idle partition;
#   produce   CURVE_PARTITIONS_RECORDS records of 100 B at `written` spread over every partition: one topic with
#             the library's producer and 16-byte keys (keyed spreading, the library's batching per partition);
#             many topics with `synclog-bench produce-topics` (one connection, one batch per request, 16 requests
#             outstanding, each partition's share of the records in one batch); records/s, then RSS and
#             descriptors;
#   crash     kill -9 right after producing, then start: time from exec to the readiness line (every partition
#             recovered), CURVE_PARTITIONS_STARTS times (kill -9 again after each);
#   clean     SIGTERM, then start the same way, CURVE_PARTITIONS_STARTS times.
# Partitions that failed to open (the broker's "partition ... unavailable" lines) are counted at every start: the
# descriptor limit is raised to the hard limit (recorded) and whatever still fails is reported, not hidden.
#
# Usage: bench/curve_partitions.sh [BUILD_DIR]
#   BENCH_QUICK=1                   smoke mode: N = 1, 10, 100; 200,000 records; one start of each kind
#   CURVE_PARTITIONS_COUNTS="1 100 1000 10000"
#   CURVE_PARTITIONS_LAYOUTS="one-topic many-topics"
#   CURVE_PARTITIONS_RECORDS=N      records per point (default 2,000,000)
#   CURVE_PARTITIONS_STARTS=N       timed starts of each kind (default 3)
set -euo pipefail
name=curve_partitions
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init "${1:-build/release}"

if [ "$quick" = 1 ]; then
	counts=${CURVE_PARTITIONS_COUNTS:-1 10 100}
	records=${CURVE_PARTITIONS_RECORDS:-200000}
	starts=${CURVE_PARTITIONS_STARTS:-1}
else
	counts=${CURVE_PARTITIONS_COUNTS:-1 100 1000 10000}
	records=${CURVE_PARTITIONS_RECORDS:-2000000}
	starts=${CURVE_PARTITIONS_STARTS:-3}
fi
layouts=${CURVE_PARTITIONS_LAYOUTS:-one-topic many-topics}
ulimit -n "$(ulimit -Hn)"
fd_limit=$(ulimit -n)
runs=$data/runs
mkdir -p "$runs"

# Partitions that failed to open at the last start: the broker's recovery event says so (unavailable=N); a broker
# without it prints one "topic T partition P unavailable" line each.
unavailable() {
	local n
	n=$(broker_event_field recovery unavailable)
	[ -n "$n" ] || n=$(grep -c 'partition [0-9]* unavailable' "$data/broker/err" 2>/dev/null || true)
	echo "${n:-0}"
}
# The broker's own account of its recovery (the recovery event's took_ms), or null.
recovery_ms() {
	local n
	n=$(broker_event_field recovery took_ms)
	echo "${n:-null}"
}

point() { # layout partitions
	local layout=$1 n=$2 tag=$1-$2 i f=$runs/$1-$2
	rm -rf "$data/broker"
	broker_start "$data/broker" --connections-max 100000
	echo "\"rss_kb_empty\":$(broker_rss_kb),\"fds_empty\":$(broker_fds)," >"$f.kv"
	local t0
	t0=$(now_ms)
	if [ "$layout" = one-topic ]; then
		"$bin/synclog" --broker "$broker_addr" topic create t --partitions "$n" >/dev/null
	else
		client "$bin/synclog-bench" create-topics --broker "$broker_addr" --topic t --topics "$n" \
			--json "$f.create.json" >/dev/null
	fi
	echo "\"create_seconds\":$(awk -v a="$t0" -v b="$(now_ms)" 'BEGIN { print (b - a) / 1000 }')," >>"$f.kv"
	sleep 1 # let the loop settle before reading its memory
	echo "\"rss_kb_idle\":$(broker_rss_kb),\"fds_idle\":$(broker_fds)," >>"$f.kv"
	if [ "$layout" = one-topic ]; then
		client "$bin/synclog-bench" produce --broker "$broker_addr" --topic t --partitions "$n" --key-bytes 16 \
			--record-bytes 100 --count "$records" --json "$f.produce.json" || true
	else
		client "$bin/synclog-bench" produce-topics --broker "$broker_addr" --topic t --topics "$n" \
			--record-bytes 100 --count "$records" --inflight 16 --json "$f.produce.json" || true
	fi
	echo "\"rss_kb_after\":$(broker_rss_kb),\"fds\":$(broker_fds),\"unavailable_at_create\":$(grep -c 'partition [0-9]* unavailable' "$data/broker/err" || true)," \
		>>"$f.kv"
	local crash=() clean=() bad=() rec_crash=() rec_clean=()
	for i in $(seq 1 "$starts"); do
		broker_kill
		: >"$data/broker/err"
		broker_start "$data/broker" --connections-max 100000
		crash+=("$broker_start_ms")
		rec_crash+=("$(recovery_ms)")
		bad+=("$(unavailable)")
	done
	for i in $(seq 1 "$starts"); do
		broker_stop
		: >"$data/broker/err"
		broker_start "$data/broker" --connections-max 100000
		clean+=("$broker_start_ms")
		rec_clean+=("$(recovery_ms)")
		bad+=("$(unavailable)")
	done
	echo "\"rss_kb_restarted\":$(broker_rss_kb),\"fds_restarted\":$(broker_fds)," >>"$f.kv"
	broker_stop
	echo "\"start_ms_crash\":[$(
		IFS=,
		echo "${crash[*]}"
	)],\"start_ms_clean\":[$(
		IFS=,
		echo "${clean[*]}"
	)],\"recovery_ms_crash\":[$(
		IFS=,
		echo "${rec_crash[*]}"
	)],\"recovery_ms_clean\":[$(
		IFS=,
		echo "${rec_clean[*]}"
	)],\"unavailable_at_starts\":[$(
		IFS=,
		echo "${bad[*]}"
	)]" >>"$f.kv"
	echo "{\"layout\":\"$layout\",\"partitions\":$n,$(tr -d '\n' <"$f.kv")}" >"$f.point.json"
	python3 - "$f.point.json" "$f.produce.json" <<-'PY'
		import json, sys
		p = json.load(open(sys.argv[1]))
		try:
		    d = json.load(open(sys.argv[2]))
		except (OSError, ValueError):
		    d = {"records_per_s": None, "error": "the producer wrote no result"}
		print(f"  {p['layout']:>11} {p['partitions']:>6}: {d['records_per_s'] or 0:,.0f} records/s, RSS "
		      f"{p['rss_kb_after'] / 1024:,.0f} MiB, {p['fds']} fds, start {p['start_ms_crash']} ms after kill -9, "
		      f"{p['start_ms_clean']} ms clean" + (f", unavailable {p['unavailable_at_starts']}"
		                                          if any(p['unavailable_at_starts']) else "")
		      + (f"  ERROR {d['error']}" if d.get("error") else ""))
	PY
	rm -rf "$data/broker"
}

for layout in $layouts; do
	for n in $counts; do
		point "$layout" "$n"
	done
done

python3 - "$runs" "$records" "$fd_limit" "$starts" >"$data/result.json" <<-'PY'
	import glob, json, statistics, sys
	runs, records, fd_limit, starts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
	def s(v):
	    return {"median": statistics.median(v), "min": min(v), "max": max(v), "rounds": len(v)} if v else None
	out = {"what": "broker cost against partitions: one topic of N, or N topics of one", "record_bytes": 100,
	       "records_per_point": records, "fd_limit": fd_limit, "starts_per_kind": starts, "points": []}
	for f in sorted(glob.glob(f"{runs}/*.point.json")):
	    p = json.load(open(f))
	    try:
	        d = json.load(open(f.replace(".point.json", ".produce.json")))
	    except (OSError, ValueError):
	        d = {"records_per_s": None, "error": "the producer wrote no result"}
	    p["records_per_s"] = d.get("records_per_s")
	    p["produce_error"] = d.get("error")
	    p["ack_p99_us"] = d.get("ack_latency", {}).get("p99_us")
	    p["start_ms_crash"] = s(p["start_ms_crash"])
	    p["start_ms_clean"] = s(p["start_ms_clean"])
	    p["error"] = p["produce_error"] or (f"partitions unavailable: {p['unavailable_at_starts']}"
	                                        if any(p["unavailable_at_starts"]) or p["unavailable_at_create"] else None)
	    out["points"].append(p)
	out["points"].sort(key=lambda p: (p["layout"], p["partitions"]))
	json.dump(out, sys.stdout)
	PY
cp "$data/result.json" "$out_dir/$name.json"
bench_finish "$out_dir/$name.json"
