#!/usr/bin/env bash
# Throughput over time (issue 21, "Charts people can read"): one producer sending as fast as it can for 60 s,
# its acknowledged records counted every 10 ms, so that a stall of the broker (a segment roll, a writeback burst,
# a housekeeping pass) shows as a dip that a 60-second average hides. Writes bench/results/timeline.json and
# timeline.png.
#
# What it does, per round, on a fresh broker: `synclog-bench produce --duration-s TIMELINE_SECONDS
# --timeline-ms 10`: 100 B records at `written` (TIMELINE_ACKS), one producer thread, the library's defaults,
# keyless into TIMELINE_PARTITIONS partitions. A minute at full speed is more than this disk holds (about 1.3 GB/s
# of segments), so the topic keeps TIMELINE_RETENTION_BYTES per partition (4 GiB) in 256 MiB segments and the
# broker checks retention every second: segment rolls and retention passes happen during the run, as they would
# on a broker that runs for days, and show in the timeline if they stall it. The chart bins the acknowledged count into TIMELINE_BIN_MS intervals
# (records/s per bin); the summary gives each round's mean after its first second, its lowest bin and the bins
# below half the mean (the stalls) with their times.
#
# Usage: bench/timeline.sh [BUILD_DIR]
#   BENCH_QUICK=1            smoke mode: a 5 s run, one round
#   TIMELINE_SECONDS=S       (default 60)          TIMELINE_ROUNDS=N (default 2)
#   TIMELINE_ACKS=written|fsync (default written) TIMELINE_RECORD_BYTES=N (default 100)
#   TIMELINE_PARTITIONS=N    (default 1)           TIMELINE_BIN_MS=N (default 100)
#   TIMELINE_RETENTION_BYTES=N (default 4 GiB)
# Beside each run, every 100 ms, what could explain a dip: /proc/meminfo's Dirty and Writeback (past the kernel's
# dirty thresholds, vm.dirty_background_ratio and vm.dirty_ratio, every write(2) of the broker waits for the disk),
# the CPU time the host stole from this VM (/proc/stat) and the broker's own CPU time, all threads and
# its loop's (the main thread) alone. The chart draws them under
# the throughput; the summary compares them in the stall bins and in the others.
set -euo pipefail
name=timeline
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init "${1:-build/release}"

if [ "$quick" = 1 ]; then
	seconds=${TIMELINE_SECONDS:-5}
	rounds=${TIMELINE_ROUNDS:-1}
else
	seconds=${TIMELINE_SECONDS:-60}
	rounds=${TIMELINE_ROUNDS:-2}
fi
acks=${TIMELINE_ACKS:-written}
record_bytes=${TIMELINE_RECORD_BYTES:-100}
partitions=${TIMELINE_PARTITIONS:-1}
bin_ms=${TIMELINE_BIN_MS:-100}
retention=${TIMELINE_RETENTION_BYTES:-$((4 << 30))}
segment_bytes=$((256 << 20))
# Room for the whole run at 20 M records/s: the count is only a cap.
count=$((seconds * 20000000))
# What retention keeps, plus what is written between two checks and a segment being removed.
need=$((partitions * (retention + 3 * segment_bytes) + (4 << 30)))
if [ "$(free_bytes "$data")" -lt "$need" ]; then
	echo "$name: $((need >> 30)) GiB free needed under $data (retention $((retention >> 20)) MiB per partition)" >&2
	exit 1
fi
runs=$data/runs
mkdir -p "$runs"

for r in $(seq 1 "$rounds"); do
	rm -rf "$data/broker"
	broker_start "$data/broker" --segment-bytes $segment_bytes --retention-check-ms 1000
	"$bin/synclog" --broker "$broker_addr" topic create tl --partitions "$partitions" --retention-bytes "$retention" \
		>/dev/null
	python3 - "$runs/dirty-r$r.txt" "$runs/stop-r$r" "$broker_pid" <<-'PY' &
		import os, sys, time
		out, stop, pid = open(sys.argv[1], "w"), sys.argv[2], sys.argv[3]
		t0 = time.monotonic()
		while not os.path.exists(stop):
		    m = dict(l.split(":", 1) for l in open("/proc/meminfo"))
		    steal = open("/proc/stat").readline().split()[8]
		    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
		    g = open(f"/proc/{pid}/task/{pid}/stat").read().rsplit(")", 1)[1].split()
		    out.write("%d %s %s %s %d %d\n" % ((time.monotonic() - t0) * 1000, m["Dirty"].split()[0],
		                                       m["Writeback"].split()[0], steal, int(f[11]) + int(f[12]),
		                                       int(g[11]) + int(g[12])))
		    time.sleep(0.1)
		PY
	sampler=$!
	extra_pids+=("$sampler")
	client "$bin/synclog-bench" produce --broker "$broker_addr" --topic tl --partitions "$partitions" \
		--record-bytes "$record_bytes" --acks "$acks" --count $count --duration-s "$seconds" --timeline-ms 10 \
		--json "$runs/r$r.json"
	touch "$runs/stop-r$r"
	wait "$sampler" || true
	broker_stop
	echo "  round $r: $(json_get "$runs/r$r.json" records_per_s) records/s over the run"
	rm -rf "$data/broker"
done

python3 - "$runs" "$rounds" "$seconds" "$acks" "$record_bytes" "$partitions" "$bin_ms" "$retention" \
	>"$data/result.json" <<-'PY'
	import json, os, sys
	runs, rounds, secs, acks, rb, parts, bin_ms, retention = sys.argv[1:]
	out = {"what": "acknowledged records over time, one producer as fast as it can", "duration_s": int(secs),
	       "segment_bytes": 256 << 20, "retention_check_ms": 1000,
	       "retention_bytes": int(retention),
	       "acks": acks, "record_bytes": int(rb), "partitions": int(parts), "bin_ms": int(bin_ms),
	       "vm_dirty_ratio": int(open("/proc/sys/vm/dirty_ratio").read()),
	       "vm_dirty_background_ratio": int(open("/proc/sys/vm/dirty_background_ratio").read()), "rounds": []}
	for r in range(1, int(rounds) + 1):
	    d = json.load(open(f"{runs}/r{r}.json"))
	    dirty = [l.split() for l in open(f"{runs}/dirty-r{r}.txt")]
	    out["rounds"].append({"round": r, "records": d["records"], "records_per_s": d["records_per_s"],
	                          "dirty_t_ms": [int(x[0]) for x in dirty], "dirty_kb": [int(x[1]) for x in dirty],
	                          "writeback_kb": [int(x[2]) for x in dirty],
	                          "steal_ticks": [int(x[3]) for x in dirty], "broker_cpu_ticks": [int(x[4]) for x in dirty],
	                          "broker_loop_cpu_ticks": [int(x[5]) for x in dirty],
	                          "clk_tck": os.sysconf("SC_CLK_TCK"),
	                          "t_ms": d["timeline"]["t_ms"], "acked": d["timeline"]["acked"],
	                          "ack_p99_us": d["ack_latency"]["p99_us"], "ack_max_us": d["ack_latency"]["max_us"],
	                          "error": d["error"]})
	json.dump(out, sys.stdout)
	PY
cp "$data/result.json" "$out_dir/$name.json"
bench_finish "$out_dir/$name.json"
