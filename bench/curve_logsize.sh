#!/usr/bin/env bash
# The log size curve (issue 21, "Curves, as work grows"): with 1, 10 and 50 GiB of sealed data in one partition
# (as far as the disk allows), the broker's start time (after a clean stop and after kill -9), the latency of a
# fetch by timestamp, and the time of a retention pass. None of them may grow with the sealed data beyond the
# index reads they need. Writes bench/results/curve_logsize.json and curve_logsize.png.
#
# One broker data directory grows from size to size (1 KiB records, `written`, the default 1 GiB segments). At
# each size:
#   crash      kill -9 right after the fill (its tail only in the page cache), then start: time from exec to the
#              readiness line, CURVE_LOGSIZE_STARTS times (kill -9 again after each);
#   clean      SIGTERM, then start the same way, CURVE_LOGSIZE_STARTS times;
#   by time    page cache dropped, then `synclog-bench list-time`: 200 ListOffsets-by-timestamp requests at
#              timestamps spread over the whole log's time span: the first request (cold) and the p99 of the rest;
#   retention  broker stopped, then `storage-bench retain` on the partition's directory: sl_log_open, a retention
#              pass that drops nothing (what every pass costs), and one that drops the oldest segment (detach, the
#              part on the broker's loop; then the file removal, on its thread pool). The next size's fill makes up
#              for the dropped segment.
# A size that would take more than 60% of the free space is left out, and the JSON says so.
#
# Usage: bench/curve_logsize.sh [BUILD_DIR]
#   BENCH_QUICK=1               smoke mode: 128, 256 and 512 MiB in 64 MiB segments, one start of each kind
#   CURVE_LOGSIZE_GIB="1 10 50"
#   CURVE_LOGSIZE_STARTS=N      timed starts of each kind (default 3)
set -euo pipefail
name=curve_logsize
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init "${1:-build/release}"
[ -x "$bin/storage-bench" ] || {
	echo "$name: $bin/storage-bench is missing: run make" >&2
	exit 1
}

if [ "$quick" = 1 ]; then
	sizes_mib=${CURVE_LOGSIZE_MIB:-128 256 512}
	segment_bytes=$((64 << 20))
	starts=${CURVE_LOGSIZE_STARTS:-1}
else
	sizes_mib=""
	for g in ${CURVE_LOGSIZE_GIB:-1 10 50}; do
		sizes_mib="$sizes_mib $((g * 1024))"
	done
	segment_bytes=$((1 << 30))
	starts=${CURVE_LOGSIZE_STARTS:-3}
fi
record_bytes=1024
runs=$data/runs
mkdir -p "$runs"
broker_flags=(--segment-bytes $segment_bytes)
part_dir=$data/broker/data/topics/big/0

broker_start "$data/broker" "${broker_flags[@]}"
"$bin/synclog" --broker "$broker_addr" topic create big --partitions 1 >/dev/null
from_ms=$(now_ms)
stored=0
skipped=()

for mib in $sizes_mib; do
	want=$((mib << 20))
	need=$((want - stored))
	if [ "$need" -gt 0 ] && [ $((need * 10 / 6)) -gt "$(free_bytes "$data")" ]; then
		echo "  $mib MiB: left out, $((need >> 20)) MiB more would take over 60% of the free space"
		skipped+=("$mib")
		continue
	fi
	[ -n "$broker_pid" ] || broker_start "$data/broker" "${broker_flags[@]}"
	if [ "$need" -gt 0 ]; then
		client "$bin/synclog-bench" produce --broker "$broker_addr" --topic big --record-bytes $record_bytes \
			--count $((need / (record_bytes + 12) + 1)) --json "$runs/fill-$mib.json"
		stored=$(json_get "$runs/fill-$mib.json" stored_bytes)
	fi
	to_ms=$(now_ms)
	crash=() clean=()
	for _ in $(seq 1 "$starts"); do
		broker_kill
		broker_start "$data/broker" "${broker_flags[@]}"
		crash+=("$broker_start_ms")
	done
	for _ in $(seq 1 "$starts"); do
		broker_stop
		broker_start "$data/broker" "${broker_flags[@]}"
		clean+=("$broker_start_ms")
	done
	drop_caches "$data/broker/data" >/dev/null
	client "$bin/synclog-bench" list-time --broker "$broker_addr" --topic big --count 200 --from-ms "$from_ms" \
		--to-ms "$to_ms" --json "$runs/listtime-$mib.json"
	broker_stop
	"$bin/storage-bench" retain --dir "$part_dir" --rounds 1 --json "$runs/retain-$mib.json" >/dev/null
	segments=$(find "$part_dir" -name '*.log' | wc -l)
	stored=$(find "$part_dir" -name '*.log' -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f\n", s }')
	echo "{\"mib\":$mib,\"segments_after_retain\":$segments,\"start_ms_crash\":[$(
		IFS=,
		echo "${crash[*]}"
	)],\"start_ms_clean\":[$(
		IFS=,
		echo "${clean[*]}"
	)]}" >"$runs/point-$mib.json"
	python3 - "$runs" "$mib" <<-'PY'
		import json, sys
		runs, mib = sys.argv[1], sys.argv[2]
		p = json.load(open(f"{runs}/point-{mib}.json"))
		l = json.load(open(f"{runs}/listtime-{mib}.json"))
		r = json.load(open(f"{runs}/retain-{mib}.json"))
		print(f"  {int(mib) / 1024:g} GiB ({r['segments_before']} segments): start {p['start_ms_crash']} ms after kill -9,"
		      f" {p['start_ms_clean']} ms clean; by timestamp first {l['first_us']:,.0f} us, p99 "
		      f"{l['latency']['p99_us']:,.0f} us; retention pass {r['idle_pass_ms']:.3f} ms, detach "
		      f"{r['detach_ms']:.3f} ms + remove {r['remove_ms']:.1f} ms")
	PY
done

python3 - "$runs" "$record_bytes" "$segment_bytes" "$starts" "${skipped[*]:-}" $sizes_mib >"$data/result.json" <<-'PY'
	import json, os, statistics, sys
	runs, rb, seg, starts, skipped, sizes = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]),
	                                         sys.argv[5].split(), sys.argv[6:])
	def s(v):
	    return {"median": statistics.median(v), "min": min(v), "max": max(v), "rounds": len(v)} if v else None
	out = {"what": "start time, fetch by timestamp and retention against the sealed data of one partition",
	       "record_bytes": rb, "segment_bytes": seg, "starts_per_kind": starts,
	       "left_out_mib": [int(x) for x in skipped], "points": []}
	for mib in sizes:
	    if not os.path.exists(f"{runs}/point-{mib}.json"):
	        continue
	    p = json.load(open(f"{runs}/point-{mib}.json"))
	    l = json.load(open(f"{runs}/listtime-{mib}.json"))
	    r = json.load(open(f"{runs}/retain-{mib}.json"))
	    out["points"].append({
	        "gib": int(mib) / 1024, "bytes": r["bytes_before"], "segments": r["segments_before"],
	        "start_ms_crash": s(p["start_ms_crash"]), "start_ms_clean": s(p["start_ms_clean"]),
	        "list_time_first_us": l["first_us"], "list_time_p50_us": l["latency"]["p50_us"],
	        "list_time_p99_us": l["latency"]["p99_us"], "list_time_requests": l["requests"],
	        "retention_open_ms": r["open_ms"], "retention_idle_ms": r["idle_pass_ms"],
	        "retention_detach_ms": r["detach_ms"], "retention_remove_ms": r["remove_ms"],
	        "retention_dropped": r["segments_dropped"], "error": l["error"] or r["error"]})
	json.dump(out, sys.stdout)
	PY
cp "$data/result.json" "$out_dir/$name.json"
bench_finish "$out_dir/$name.json"
