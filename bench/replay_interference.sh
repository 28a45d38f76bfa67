#!/usr/bin/env bash
# A cold replay must not delay the live traffic (issue 21, "Cold replay"): the produce-to-consume p99 at 20,000
# records/s while one consumer replays a large log from disk, against the same p99 without the replay. Writes
# bench/results/replay_interference.json and replay_interference.png.
#
# What it does: one broker; topic `big` (one partition) filled with INTERFERENCE_BYTES of 1 KiB records; then per
# round, in alternating order:
#   alone        page cache dropped (sync; echo 3 > /proc/sys/vm/drop_caches), then `synclog-bench latency` on
#                topic `lat`: 100 B records offered at 20,000/s for INTERFERENCE_SECONDS, linger 0, a consumer
#                thread following; each record's latency from its intended send time to its receipt (W6's method).
#   with_replay  the same drop, then a replayer reading `big` from its start to its end over and over, its files
#                dropped from the page cache again before each pass (dd iflag=nocache), for as long as the same
#                latency run lasts. The replayer runs on the load generators' core at nice 19, so that it takes
#                that core only when the latency client does not need it: what is measured is the broker's delay.
# Target: p99 with the replay at most 1.5 times p99 alone (ratio of medians).
#
# Usage: bench/replay_interference.sh [BUILD_DIR]
#   BENCH_QUICK=1               smoke mode: 256 MiB, 3 s runs, one round (about 30 s)
#   INTERFERENCE_BYTES=N        the replayed log (default 5 GiB, the issue's)
#   INTERFERENCE_SECONDS=S      each latency run (default 20: a replay pass of 5 GiB takes a few seconds)
#   INTERFERENCE_ROUNDS=N       rounds (default 3)
#   INTERFERENCE_BROKER_FLAGS   extra synclogd flags
#   INTERFERENCE_COLD=0         keep the replayed files in the page cache (a warm replay: what of the delay is not
#                               the disk's)
set -euo pipefail
name=replay_interference
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init "${1:-build/release}"

if [ "$quick" = 1 ]; then
	bytes=${INTERFERENCE_BYTES:-$((256 << 20))}
	seconds=${INTERFERENCE_SECONDS:-3}
	rounds=${INTERFERENCE_ROUNDS:-1}
else
	bytes=${INTERFERENCE_BYTES:-$((5 << 30))}
	seconds=${INTERFERENCE_SECONDS:-20}
	rounds=${INTERFERENCE_ROUNDS:-3}
fi
rate=20000
record_bytes=1024
cold=${INTERFERENCE_COLD:-1}
read -r -a broker_flags <<<"${INTERFERENCE_BROKER_FLAGS:-}"
bench_replay_log big "$bytes" "$record_bytes" "${broker_flags[@]}"
big_dir=$data/broker/data/topics/big

latency_run() { # json
	client "$bin/synclog-bench" latency --broker "$broker_addr" --topic lat --create --record-bytes 100 \
		--rate $rate --duration-s "$seconds" --linger-ms 0 --json "$1"
}

# The replayer: passes over `big` until $1 exists; each pass's JSON is $2-N.json.
replayer() { # stop_file json_prefix pid_file
	local n=0
	while [ ! -e "$1" ]; do
		[ "$cold" = 0 ] || find "$big_dir" -type f -exec dd if={} iflag=nocache count=0 status=none \;
		n=$((n + 1))
		taskset -c "$client_cpu" nice -n 19 "$bin/synclog-bench" replay --broker "$broker_addr" --topic big \
			--count $count --json "$2-$n.json" &
		echo $! >"$3"
		wait $! || true
	done
}

alone() { # round
	[ "$cold" = 0 ] || drop_caches "$data/broker/data" >/dev/null
	latency_run "$runs/alone-r$1.json"
}

with_replay() { # round
	local stop=$runs/stop-r$1 pidf=$runs/replayer-r$1.pid rp
	[ "$cold" = 0 ] || drop_caches "$data/broker/data" >/dev/null
	replayer "$stop" "$runs/replay-r$1" "$pidf" &
	rp=$!
	extra_pids+=("$rp")
	sleep 0.5 # the first pass is under way
	latency_run "$runs/with-r$1.json"
	touch "$stop"
	# The pass under way is cut short: its JSON, if any, counts only when it finished (error null, all records).
	kill -TERM "$(cat "$pidf")" 2>/dev/null || true
	wait "$rp" 2>/dev/null || true
}

for r in $(seq 1 "$rounds"); do
	if [ $((r % 2)) = 1 ]; then
		alone "$r"
		with_replay "$r"
	else
		with_replay "$r"
		alone "$r"
	fi
	python3 - "$runs" "$r" <<-'PY'
		import json, sys
		runs, r = sys.argv[1], sys.argv[2]
		a = json.load(open(f"{runs}/alone-r{r}.json"))["e2e_latency"]
		w = json.load(open(f"{runs}/with-r{r}.json"))["e2e_latency"]
		print(f"  round {r}: p99 alone {a['p99_us']:,.0f} us, with the cold replay {w['p99_us']:,.0f} us")
	PY
done
broker_stop

python3 - "$runs" "$rounds" "$rate" "$(json_get "$runs/fill.json" stored_bytes)" "$record_bytes" "$seconds" "$cold" \
	>"$data/result.json" <<-'PY'
	import glob, json, sys
	runs, rounds, rate, stored, rb, secs, cold = sys.argv[1:]
	def lat(path):
	    d = json.load(open(path))
	    pick = lambda h: {k: h[k] for k in ("p50_us", "p90_us", "p99_us", "p999_us", "max_us", "count")}
	    return {"e2e": pick(d["e2e_latency"]), "ack": pick(d["ack_latency"]), "achieved_rate": d["achieved_rate"],
	            "error": d["error"]}
	out = {"what": "live produce-to-consume latency with and without one consumer replaying a log from disk",
	       "rate": int(rate), "record_bytes": 100, "replay_record_bytes": int(rb), "replay_bytes": int(stored),
	       "seconds": float(secs), "cold": cold == "1", "rounds": []}
	for r in range(1, int(rounds) + 1):
	    w = lat(f"{runs}/with-r{r}.json")
	    passes = []
	    for p in sorted(glob.glob(f"{runs}/replay-r{r}-*.json")):
	        try:
	            d = json.load(open(p))
	        except ValueError:
	            continue  # cut short before it wrote its result
	        if d.get("error") is None and d["records"] == d["expected"]:
	            passes.append(d)
	    secs_all = sum(d["seconds"] for d in passes)
	    w["replay_passes"] = len(passes)
	    w["replay_mb_per_s"] = len(passes) * int(stored) / secs_all / 1e6 if secs_all else None
	    out["rounds"].append({"round": r, "alone": lat(f"{runs}/alone-r{r}.json"), "with_replay": w})
	json.dump(out, sys.stdout)
	PY
cp "$data/result.json" "$out_dir/$name.json"
bench_finish "$out_dir/$name.json"
