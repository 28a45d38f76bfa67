#!/usr/bin/env bash
# The broker's CPU per GB of replay with fetch answers sent from the segment files by the kernel (issue 21, "Fetch
# sends stored batches to the socket without copying them through user space"): --fetch-zero-copy on against off
# (the copy path: an io_uring read into a buffer, protobuf-c packing it into the frame, a write to the socket), the
# same binary and data, through the native listener and through the Kafka listener. Writes
# bench/results/zerocopy.json.
#
# What it does: one topic of one partition filled with ZC_BYTES of 1 KiB records (default segments). Then, per round,
# both settings in alternating order (odd rounds off first, even rounds on first), each on a broker started for it:
#   warm  the segment files read into the page cache first (cat), then `synclog-bench replay` from the earliest
#         offset to the end (one Fetch in flight, 1 MiB per Fetch, every record's CRC checked by the client);
#   cold  sync, echo 3 > /proc/sys/vm/drop_caches, then the same replay;
#   kafka the segment files read into the page cache, then a librdkafka consumer (`kafka-bench consume`: assigned
#         partition, no group, librdkafka's defaults: 1 MiB per partition, 50 MiB per Fetch) from the beginning
#         to the end through the Kafka listener (--kafka-listen), whose Fetch answers go from the files the same
#         way (broker/kafka/kafka_impl.h invariant 5).
# Each replay records the broker's CPU seconds (/proc/PID/stat, every thread: io-wq workers that do the splices and
# reads count), the replay's MB/s of stored bytes, and the host's steal ticks (/proc/stat) and load average while
# it ran. The summary is the median over rounds of CPU seconds per GB of stored bytes, per setting and page cache.
#
# Usage: bench/zerocopy.sh [BUILD_DIR]
#   BENCH_QUICK=1  smoke mode: 256 MiB, one round, figures in BUILD_DIR/bench-quick/
#   ZC_BYTES=N     log size (default 2 GiB)
#   ZC_ROUNDS=N    rounds (default 5)
#   ZC_RUNS=LIST   which replays each round makes (default "warm cold kafka")
set -euo pipefail
name=zerocopy
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init "${1:-build/release}"
bench_paths "${1:-build/release}" kafka-bench
runs_each=${ZC_RUNS:-warm cold kafka}

if [ "$quick" = 1 ]; then
	bytes=${ZC_BYTES:-$((256 << 20))}
	rounds=${ZC_ROUNDS:-1}
else
	bytes=${ZC_BYTES:-$((2 << 30))}
	rounds=${ZC_ROUNDS:-5}
fi
record_bytes=1024
fetch_bytes=$((1 << 20))
bench_replay_log zc "$bytes" "$record_bytes"
stored=$(json_get "$runs/fill.json" stored_bytes)
broker_stop
mapfile -t files < <(find "$data/broker/data/topics/zc" -name '*.log' | sort)

steal_ticks() { awk '/^cpu / { print $9 }' /proc/stat; }

replay() { # setting cache round
	local setting=$1 cache=$2 r=$3 how cpu0 cpu1 st0 st1 l0 res kafka_addr
	if [ "$cache" = kafka ]; then
		broker_start "$data/broker" --fetch-zero-copy "$setting" --kafka-listen 127.0.0.1:0
		kafka_addr=$(sed -n 's/^synclogd ready on .* kafka //p' "$data/broker/out")
	else
		broker_start "$data/broker" --fetch-zero-copy "$setting"
	fi
	if [ "$cache" != cold ]; then
		cat "${files[@]}" >/dev/null
		how=cached
	else
		how=$(drop_caches "$data/broker/data")
	fi
	res=$(resident_bytes "$data/broker/data")
	l0=$(loadavg)
	st0=$(steal_ticks)
	cpu0=$(broker_cpu_s)
	if [ "$cache" = kafka ]; then
		client "$bin/kafka-bench" consume "$kafka_addr" zc $count >"$runs/$setting-$cache-r$r.json"
	else
		client "$bin/synclog-bench" replay --broker "$broker_addr" --topic zc --count $count \
			--fetch-bytes $fetch_bytes --label "$setting-$cache-r$r" --json "$runs/$setting-$cache-r$r.json" \
			>/dev/null
	fi
	cpu1=$(broker_cpu_s)
	st1=$(steal_ticks)
	echo "{\"setting\":\"$setting\",\"cache\":\"$cache\",\"round\":$r,\"page_cache\":\"$how\"," \
		"\"resident_bytes_at_start\":$res,\"loadavg_1m\":$l0,\"steal_ticks\":$((st1 - st0))," \
		"\"broker_cpu_s\":$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')}" \
		>"$runs/$setting-$cache-r$r.meta"
	broker_stop
	python3 - "$runs/$setting-$cache-r$r" "$stored" <<-'PY'
		import json, sys
		base, stored = sys.argv[1], int(sys.argv[2])
		s, m = json.load(open(base + ".json")), json.load(open(base + ".meta"))
		print("  round %d %-4s %-4s: %5.0f MB/s, broker %.2f CPU-s (%.3f per GB), steal %d ticks, load %.1f"
		      % (m["round"], m["setting"], m["cache"], stored / s["seconds"] / 1e6, m["broker_cpu_s"],
		         m["broker_cpu_s"] / (stored / 1e9), m["steal_ticks"], m["loadavg_1m"]))
	PY
}

for r in $(seq 1 "$rounds"); do
	if [ $((r % 2)) = 1 ]; then order="off on"; else order="on off"; fi
	for setting in $order; do
		for run in $runs_each; do
			replay "$setting" "$run" "$r"
		done
	done
done

python3 - "$runs" "$rounds" "$stored" "$count" "$record_bytes" "$fetch_bytes" "${#files[@]}" "$runs_each" \
	>"$data/result.json" <<-'PY'
	import json, statistics, sys
	runs, rounds, stored, count, rb, fb, nfiles, runs_each = sys.argv[1:]
	caches = runs_each.split()
	stored, gb = int(stored), int(stored) / 1e9
	out = {"what": "broker CPU seconds per GB of a replay, fetch answers sent from the segment files "
	               "(--fetch-zero-copy on) against the copy path (off): synclog-bench replay through the native "
	               "listener with a warm and a cold page cache (warm, cold), and a librdkafka consumer "
	               "(kafka-bench consume) through the Kafka listener with a warm page cache (kafka)",
	       "log_bytes": stored, "records": int(count), "record_bytes": int(rb), "segments": int(nfiles),
	       "fetch_bytes": int(fb), "rounds": [], "summary": {}}
	for r in range(1, int(rounds) + 1):
	    for setting in ("off", "on"):
	        for cache in caches:
	            base = f"{runs}/{setting}-{cache}-r{r}"
	            s, m = json.load(open(base + ".json")), json.load(open(base + ".meta"))
	            m.update({"seconds": s["seconds"], "mb_per_s": stored / s["seconds"] / 1e6,
	                      "broker_cpu_s_per_gb": m["broker_cpu_s"] / gb,
	                      "client_cpu_s": s["cpu_s"] if "cpu_s" in s else s["client_cpu_s"],
	                      "error": s.get("error", "" if s.get("records") == int(count) else "records missing")})
	            out["rounds"].append(m)
	for cache in caches:
	    row = {}
	    for setting in ("off", "on"):
	        rs = [x for x in out["rounds"] if x["setting"] == setting and x["cache"] == cache]
	        cpu = [x["broker_cpu_s_per_gb"] for x in rs]
	        row[setting] = {"broker_cpu_s_per_gb_median": statistics.median(cpu),
	                        "broker_cpu_s_per_gb_min": min(cpu), "broker_cpu_s_per_gb_max": max(cpu),
	                        "mb_per_s_median": statistics.median(x["mb_per_s"] for x in rs),
	                        "steal_ticks_median": statistics.median(x["steal_ticks"] for x in rs)}
	    row["cpu_ratio_on_to_off"] = (row["on"]["broker_cpu_s_per_gb_median"] /
	                                  row["off"]["broker_cpu_s_per_gb_median"])
	    out["summary"][cache] = row
	json.dump(out, sys.stdout)
	PY
python3 - "$data/result.json" <<-'PY'
	import json, sys
	d = json.load(open(sys.argv[1]))
	for cache, row in d["summary"].items():
	    print("%s: off %.3f CPU-s/GB (%.0f MB/s), on %.3f CPU-s/GB (%.0f MB/s), on/off %.2f (medians)"
	          % (cache, row["off"]["broker_cpu_s_per_gb_median"], row["off"]["mb_per_s_median"],
	             row["on"]["broker_cpu_s_per_gb_median"], row["on"]["mb_per_s_median"], row["cpu_ratio_on_to_off"]))
	PY
cp "$data/result.json" "$out_dir/$name.json"
bench_finish "$out_dir/$name.json"
