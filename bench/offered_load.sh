#!/usr/bin/env bash
# Latency against offered load (issue 21, "Charts people can read"): W6's produce-to-consume latency at 10%, 50%,
# 80% and 95% of the peak rate of that same path, measured in the same round. Writes bench/results/offered_load.json
# and offered_load.png.
#
# What it does, per round, each measurement on a fresh broker (as bench/compare.sh does):
#   W1       `synclog-bench produce` of 100 B records at `written`, one producer process, batched with the
#            library's defaults: records/s. Kept for reference: it is not W6's peak. W6's producer lingers 0 ms and
#            shares the load generators' core with its consumer, so it tops out well below W1 (a first run offered
#            shares of W1's 7.2-11.5 M records/s and got 2.5-4.0 M at every share from 50% up: the points past
#            that measured the client's own queue, not the broker).
#   peak     `synclog-bench latency` exactly as at the points, offered W1's rate for OFFERED_LOAD_PEAK_SECONDS:
#            the rate it achieved is the peak of the path the points measure.
#   points   for each percentage P, `synclog-bench latency` offering P% of that round's peak for
#            OFFERED_LOAD_SECONDS (linger 0, a consumer thread following; the first second not counted): p50, p99
#            and p99.9 from each record's intended send time to its receipt, and the rate achieved.
#
# Usage: bench/offered_load.sh [BUILD_DIR]
#   BENCH_QUICK=1              smoke mode: a 1 M-record peak, 3 s points, one round (about 30 s)
#   OFFERED_LOAD_PERCENTS="10 50 80 95"
#   OFFERED_LOAD_SECONDS=S     each point (default 10)
#   OFFERED_LOAD_ROUNDS=N      rounds (default 3)
#   OFFERED_LOAD_PEAK_SECONDS=S  the peak run (default 2: W1's rate for 2 s is 7-12 s of W6's path)
set -euo pipefail
name=offered_load
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init "${1:-build/release}"

if [ "$quick" = 1 ]; then
	peak_count=1000000
	seconds=${OFFERED_LOAD_SECONDS:-3}
	rounds=${OFFERED_LOAD_ROUNDS:-1}
else
	peak_count=5000000
	seconds=${OFFERED_LOAD_SECONDS:-10}
	rounds=${OFFERED_LOAD_ROUNDS:-3}
fi
read -r -a percents <<<"${OFFERED_LOAD_PERCENTS:-10 50 80 95}"
runs=$data/runs
mkdir -p "$runs"

for r in $(seq 1 "$rounds"); do
	rm -rf "$data/broker"
	broker_start "$data/broker"
	client "$bin/synclog-bench" produce --broker "$broker_addr" --topic peak --create --record-bytes 100 \
		--count $peak_count --producer-kind process --json "$runs/w1-r$r.json"
	broker_stop
	w1=$(json_get "$runs/w1-r$r.json" records_per_s)
	rm -rf "$data/broker"
	broker_start "$data/broker"
	client "$bin/synclog-bench" latency --broker "$broker_addr" --topic lat --create --record-bytes 100 \
		--rate "$(printf '%.0f' "$w1")" --duration-s "${OFFERED_LOAD_PEAK_SECONDS:-2}" --linger-ms 0 \
		--json "$runs/peak-r$r.json" || true
	broker_stop
	peak=$(json_get "$runs/peak-r$r.json" achieved_rate)
	echo "  round $r: peak $(printf '%.0f' "$peak") records/s (W1 $(printf '%.0f' "$w1"))"
	for p in "${percents[@]}"; do
		rate=$(awk -v k="$peak" -v p="$p" 'BEGIN { printf "%d", int(k * p / 100 / 1000) * 1000 }')
		[ "$rate" -ge 1000 ] || rate=1000
		rm -rf "$data/broker"
		broker_start "$data/broker"
		client "$bin/synclog-bench" latency --broker "$broker_addr" --topic lat --create --record-bytes 100 \
			--rate "$rate" --duration-s "$seconds" --linger-ms 0 --json "$runs/p$p-r$r.json" || true
		broker_stop
		python3 - "$runs/p$p-r$r.json" "$p" "$rate" <<-'PY'
			import json, sys
			d = json.load(open(sys.argv[1])); e = d["e2e_latency"]
			print(f"    {sys.argv[2]:>3}% ({int(sys.argv[3]):,} records/s, achieved {d['achieved_rate']:,.0f}): p50 "
			      f"{e['p50_us']:,.0f} us, p99 {e['p99_us']:,.0f} us, p99.9 {e['p999_us']:,.0f} us"
			      + (f"  ERROR {d['error']}" if d["error"] else ""))
		PY
	done
done

python3 - "$runs" "$rounds" "$seconds" "${percents[@]}" >"$data/result.json" <<-'PY'
	import json, statistics, sys
	runs, rounds, secs, percents = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
	out = {"what": "W6 produce-to-consume latency at shares of W6's own peak", "record_bytes": 100, "seconds": secs,
	       "peak_rounds": [json.load(open(f"{runs}/peak-r{r}.json"))["achieved_rate"] for r in range(1, rounds + 1)],
	       "w1_rounds": [json.load(open(f"{runs}/w1-r{r}.json"))["records_per_s"] for r in range(1, rounds + 1)],
	       "points": []}
	for p in percents:
	    rr = []
	    for r in range(1, rounds + 1):
	        d = json.load(open(f"{runs}/p{p}-r{r}.json"))
	        e = d["e2e_latency"]
	        rr.append({"round": r, "rate": d["rate"], "achieved_rate": d["achieved_rate"], "p50_us": e["p50_us"],
	                   "p99_us": e["p99_us"], "p999_us": e["p999_us"], "max_us": e["max_us"],
	                   "ack_p99_us": d["ack_latency"]["p99_us"], "error": d["error"]})
	    out["points"].append({"percent": int(p), "rate": statistics.median(x["rate"] for x in rr), "rounds": rr})
	json.dump(out, sys.stdout)
	PY
cp "$data/result.json" "$out_dir/$name.json"
bench_finish "$out_dir/$name.json"
