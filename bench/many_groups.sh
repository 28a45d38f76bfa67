#!/usr/bin/env bash
# Many consumers (issue 21, "Many consumers"): 8 consumer groups replaying the same topic from 8 different points
# while a producer appends, against 1 group alone: the groups' total replay MB/s and the producer's p99. Writes
# bench/results/many_groups.json and many_groups.png.
#
# What it does: one broker; topic `hist` (one partition) filled with MANY_GROUPS_BYTES of 1 KiB records (N
# records). Then per round three phases, each with the page cache dropped first (MANY_GROUPS_COLD=1, the default:
# groups that rebuild from last month read from disk) and a producer on topic `live` offering
# MANY_GROUPS_RATE records/s of 100 B for MANY_GROUPS_SECONDS (`synclog-bench latency`: its acknowledgement
# latency and produce-to-consume latency):
#   baseline  the producer alone;
#   one       one new group (groups-bench replay: one member, auto-commit) reads N/8 records from offset 0;
#   many      8 new groups at once, group i reading N/8 records from offset i*N/8: together the whole log, each
#             group from its own point.
# The replays start half a second into the producer's run; the groups' total MB/s is their key and value bytes
# over the time from the first group's start to the last one's end.
#
# Usage: bench/many_groups.sh [BUILD_DIR]
#   BENCH_QUICK=1             smoke mode: 256 MiB, 4 s phases, one round (about 30 s)
#   MANY_GROUPS_BYTES=N       the topic's size (default 4 GiB)
#   MANY_GROUPS_GROUPS=N      groups of the `many` phase (default 8)
#   MANY_GROUPS_RATE=R        the producer's records/s (default 20000)
#   MANY_GROUPS_SECONDS=S     each phase (default 15)
#   MANY_GROUPS_COLD=0        keep the page cache (a warm replay)
#   MANY_GROUPS_ROUNDS=N      rounds (default 3)
set -euo pipefail
name=many_groups
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init "${1:-build/release}"
[ -x "$bin/groups-bench" ] || {
	echo "$name: $bin/groups-bench is missing: run make bench" >&2
	exit 1
}

if [ "$quick" = 1 ]; then
	bytes=${MANY_GROUPS_BYTES:-$((256 << 20))}
	seconds=${MANY_GROUPS_SECONDS:-4}
	rounds=${MANY_GROUPS_ROUNDS:-1}
else
	bytes=${MANY_GROUPS_BYTES:-$((4 << 30))}
	seconds=${MANY_GROUPS_SECONDS:-15}
	rounds=${MANY_GROUPS_ROUNDS:-3}
fi
groups=${MANY_GROUPS_GROUPS:-8}
rate=${MANY_GROUPS_RATE:-20000}
cold=${MANY_GROUPS_COLD:-1}
record_bytes=1024
bench_replay_log hist "$bytes" "$record_bytes"
per_group=$((count / groups))
# The producer's topic exists before the first phase, so that no phase pays for its creation.
client "$bin/synclog-bench" produce --broker "$broker_addr" --topic live --create --count 1 --json /dev/null

phase() { # round phase_name group_count
	local r=$1 ph=$2 n=$3 lp i pids=()
	[ "$cold" = 1 ] && drop_caches "$data/broker/data" >/dev/null
	client_bg "$bin/synclog-bench" latency --broker "$broker_addr" --topic live --record-bytes 100 --rate "$rate" \
		--duration-s "$seconds" --linger-ms 0 --json "$runs/$ph-r$r-producer.json"
	lp=$bg_pid
	sleep 0.5
	for i in $(seq 0 $((n - 1))); do
		client_bg "$bin/groups-bench" replay --broker "$broker_addr" --topic hist --group "g-r$r-$ph-$i" \
			--start-offset $((i * per_group)) --records $per_group >"$runs/$ph-r$r-group$i.json"
		pids+=("$bg_pid")
	done
	for i in "${pids[@]}"; do
		wait "$i"
	done
	wait "$lp"
}

for r in $(seq 1 "$rounds"); do
	phase "$r" baseline 0
	phase "$r" one 1
	phase "$r" many "$groups"
	python3 - "$runs" "$r" "$groups" <<-'PY'
		import glob, json, sys
		runs, r, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
		for ph in ("baseline", "one", "many"):
		    p = json.load(open(f"{runs}/{ph}-r{r}-producer.json"))
		    gs = [json.load(open(f)) for f in glob.glob(f"{runs}/{ph}-r{r}-group*.json")]
		    mb = (sum(g["bytes"] for g in gs) / ((max(g["end_mono_ns"] for g in gs) - min(g["start_mono_ns"] for g in gs)) / 1e9) / 1e6) if gs else 0
		    print(f"  round {r} {ph:>8}: {len(gs)} group(s) {mb:,.0f} MB/s; producer ack p99 "
		          f"{p['ack_latency']['p99_us']:,.0f} us, produce-to-consume p99 {p['e2e_latency']['p99_us']:,.0f} us")
	PY
done
broker_stop

python3 - "$runs" "$rounds" "$groups" "$rate" "$per_group" "$record_bytes" "$cold" "$seconds" \
	>"$data/result.json" <<-'PY'
	import glob, json, sys
	runs, rounds, groups, rate, per_group, rb, cold, secs = sys.argv[1:]
	def producer(path):
	    d = json.load(open(path))
	    pick = lambda h: {k: h[k] for k in ("p50_us", "p99_us", "p999_us", "max_us", "count")}
	    return {"ack": pick(d["ack_latency"]), "e2e": pick(d["e2e_latency"]), "achieved_rate": d["achieved_rate"],
	            "error": d["error"]}
	out = {"what": "consumer groups replaying one topic from different points while a producer appends",
	       "groups": int(groups), "producer_rate": int(rate), "records_per_group": int(per_group),
	       "bytes_per_group": int(per_group) * int(rb), "record_bytes": int(rb), "cold": cold == "1",
	       "seconds": float(secs), "rounds": []}
	for r in range(1, int(rounds) + 1):
	    rr = {"round": r}
	    for ph in ("baseline", "one", "many"):
	        gs = [json.load(open(f)) for f in sorted(glob.glob(f"{runs}/{ph}-r{r}-group*.json"))]
	        e = {"producer": producer(f"{runs}/{ph}-r{r}-producer.json"), "groups": gs}
	        if gs:
	            span = (max(g["end_mono_ns"] for g in gs) - min(g["start_mono_ns"] for g in gs)) / 1e9
	            e["replay_seconds"] = span
	            e["replay_mb_per_s"] = sum(g["bytes"] for g in gs) / span / 1e6
	            e["replay_records_per_s"] = sum(g["records"] for g in gs) / span
	        rr[ph] = e
	    out["rounds"].append(rr)
	json.dump(out, sys.stdout)
	PY
cp "$data/result.json" "$out_dir/$name.json"
bench_finish "$out_dir/$name.json"
