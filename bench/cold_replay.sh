#!/usr/bin/env bash
# Cold replay against the disk (issue 21, "Cold replay"): a replay of segments that are not in the page cache, and
# fio's sequential buffered read of the same segment files, in the same run. Writes bench/results/cold_replay.json
# and cold_replay.png.
#
# What it does: one broker, one topic of one partition, filled with COLD_REPLAY_BYTES of 1 KiB records (1 GiB
# segments, the default; `written` acks). Then, per round, in alternating order:
#   synclog  sync, echo 3 > /proc/sys/vm/drop_caches, then `synclog-bench replay` from the earliest offset to the
#            end (the client library's fetcher: one Fetch in flight, 1 MiB per partition per Fetch, every record's
#            CRC checked and every value looked at). MB/s of stored bytes (the segment bytes the broker read and
#            sent); the broker's CPU seconds per GB replayed (/proc/PID/stat, every thread).
#   fio      the same drop, then fio reading the same .log files in order: --rw=read, buffered (--direct=0),
#            --ioengine=io_uring, --bs=1M and --iodepth=1: the broker's read size and depth (one io_uring read of up
#            to 1 MiB per partition per Fetch, one Fetch at a time).
# Target: synclog's MB/s at least 0.8 of fio's (ratio of medians).
#
# Usage: bench/cold_replay.sh [BUILD_DIR]
#   BENCH_QUICK=1            smoke mode: 256 MiB, one round, figures in BUILD_DIR/bench-quick/ (about 20 s)
#   COLD_REPLAY_BYTES=N      log size (default 5 GiB: larger than what a cached run could hide behind)
#   COLD_REPLAY_ROUNDS=N     rounds (default 3)
#   COLD_REPLAY_BROKER_FLAGS extra synclogd flags, e.g. to compare fetch settings
set -euo pipefail
name=cold_replay
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init "${1:-build/release}"
command -v fio >/dev/null || {
	echo "$name: fio is missing: run tools/install-deps.sh bench" >&2
	exit 1
}

if [ "$quick" = 1 ]; then
	bytes=${COLD_REPLAY_BYTES:-$((256 << 20))}
	rounds=${COLD_REPLAY_ROUNDS:-1}
else
	bytes=${COLD_REPLAY_BYTES:-$((5 << 30))}
	rounds=${COLD_REPLAY_ROUNDS:-3}
fi
record_bytes=1024
fetch_bytes=$((1 << 20))
read -r -a broker_flags <<<"${COLD_REPLAY_BROKER_FLAGS:-}"
bench_replay_log cold "$bytes" "$record_bytes" "${broker_flags[@]}"
mapfile -t files < <(find "$data/broker/data/topics/cold" -name '*.log' | sort) # names are zero-padded base offsets
stored=$(json_get "$runs/fill.json" stored_bytes)

synclog_round() { # round
	local how cpu0 cpu1 res
	how=$(drop_caches "$data/broker/data")
	res=$(resident_bytes "$data/broker/data")
	cpu0=$(broker_cpu_s)
	client "$bin/synclog-bench" replay --broker "$broker_addr" --topic cold --count $count \
		--fetch-bytes $fetch_bytes --label "synclog-r$1" --json "$runs/synclog-r$1.json"
	cpu1=$(broker_cpu_s)
	echo "{\"round\":$1,\"drop\":\"$how\",\"resident_bytes_at_start\":$res,\"broker_cpu_s\":$(awk -v a="$cpu0" \
		-v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')}" >"$runs/synclog-r$1.meta"
}

fio_round() { # round
	local how
	how=$(drop_caches "$data/broker/data")
	taskset -c "$server_cpu" fio --name=coldread --rw=read --direct=0 --ioengine=io_uring --bs=$fetch_bytes \
		--iodepth=1 --file_service_type=sequential --filename="$(
			IFS=:
			echo "${files[*]}"
		)" --output-format=json --output="$runs/fio-r$1.json" >/dev/null
	echo "{\"round\":$1,\"drop\":\"$how\"}" >"$runs/fio-r$1.meta"
}

for r in $(seq 1 "$rounds"); do
	if [ $((r % 2)) = 1 ]; then
		synclog_round "$r"
		fio_round "$r"
	else
		fio_round "$r"
		synclog_round "$r"
	fi
	python3 - "$runs" "$r" "$stored" <<-'PY'
		import json, sys
		runs, r, stored = sys.argv[1], sys.argv[2], int(sys.argv[3])
		s = json.load(open(f"{runs}/synclog-r{r}.json"))
		f = json.load(open(f"{runs}/fio-r{r}.json"))["jobs"][0]["read"]
		print(f"  round {r}: synclog {stored / s['seconds'] / 1e6:,.0f} MB/s, fio {f['bw_bytes'] / 1e6:,.0f} MB/s")
	PY
done
broker_stop

python3 - "$runs" "$rounds" "$stored" "$count" "$record_bytes" "$fetch_bytes" "${#files[@]}" \
	"${COLD_REPLAY_BROKER_FLAGS:-}" >"$data/result.json" <<-'PY'
	import json, sys
	runs, rounds, stored, count, rb, fb, nfiles, flags = sys.argv[1:]
	out = {"what": "replay of a log not in the page cache against fio's sequential buffered read of the same files",
	       "log_bytes": int(stored), "records": int(count), "record_bytes": int(rb), "segments": int(nfiles),
	       "fetch_bytes": int(fb), "broker_flags": flags,
	       "fio": {"rw": "read", "direct": 0, "ioengine": "io_uring", "bs": int(fb), "iodepth": 1,
	               "file_service_type": "sequential"},
	       "rounds": []}
	for r in range(1, int(rounds) + 1):
	    s = json.load(open(f"{runs}/synclog-r{r}.json"))
	    sm = json.load(open(f"{runs}/synclog-r{r}.meta"))
	    f = json.load(open(f"{runs}/fio-r{r}.json"))["jobs"][0]["read"]
	    gb = int(stored) / 1e9
	    out["rounds"].append({
	        "round": r, "drop": sm["drop"], "resident_bytes_at_start": sm["resident_bytes_at_start"],
	        "synclog": {"seconds": s["seconds"], "mb_per_s": int(stored) / s["seconds"] / 1e6,
	                    "payload_mb_per_s": s["mb_per_s"], "records_per_s": s["records_per_s"],
	                    "broker_cpu_s": sm["broker_cpu_s"], "broker_cpu_s_per_gb": sm["broker_cpu_s"] / gb,
	                    "client_cpu_s": s["cpu_s"], "error": s["error"]},
	        "fio": {"seconds": f["runtime"] / 1e3, "mb_per_s": f["bw_bytes"] / 1e6, "bytes": f["io_bytes"]}})
	json.dump(out, sys.stdout)
	PY
cp "$data/result.json" "$out_dir/$name.json"
bench_finish "$out_dir/$name.json"
