#!/usr/bin/env bash
# The idle connection curve (issue 21, "Curves, as work grows"): the broker's memory per idle connection at 10,
# 1,000 and 10,000 connections, and the live produce p99 while they are open. Writes
# bench/results/curve_connections.json and curve_connections.png.
#
# Per count N, on a fresh broker (--connections-max above N; the descriptor limit raised to the hard limit):
#   held      `synclog-bench idle --connections N`: N connections that each said Hello (the client library's
#             sl_conn_connect) and then send nothing; broker RSS and descriptors before they open and once all are
#             open and the broker had a second to settle: RSS per connection = growth / N;
#   latency   with them still open, `synclog-bench latency`: 100 B records offered at 20,000/s for
#             CURVE_CONNECTIONS_SECONDS (linger 0, a consumer following): acknowledgement and produce-to-consume
#             p99 (the same run with no idle connection is the baseline).
#
# Usage: bench/curve_connections.sh [BUILD_DIR]
#   BENCH_QUICK=1                  smoke mode: N = 10, 100, 1,000; 3 s latency runs
#   CURVE_CONNECTIONS_COUNTS="10 1000 10000"
#   CURVE_CONNECTIONS_SECONDS=S    each latency run (default 10)
set -euo pipefail
name=curve_connections
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init "${1:-build/release}"

if [ "$quick" = 1 ]; then
	counts=${CURVE_CONNECTIONS_COUNTS:-10 100 1000}
	seconds=${CURVE_CONNECTIONS_SECONDS:-3}
else
	counts=${CURVE_CONNECTIONS_COUNTS:-10 1000 10000}
	seconds=${CURVE_CONNECTIONS_SECONDS:-10}
fi
rate=20000
ulimit -n "$(ulimit -Hn)"
fd_limit=$(ulimit -n)
runs=$data/runs
mkdir -p "$runs"

latency() { # json
	client "$bin/synclog-bench" latency --broker "$broker_addr" --topic lat --create --record-bytes 100 \
		--rate $rate --duration-s "$seconds" --linger-ms 0 --json "$1" || true
}

rm -rf "$data/broker"
broker_start "$data/broker"
latency "$runs/baseline.json"
broker_stop

for n in $counts; do
	rm -rf "$data/broker"
	broker_start "$data/broker" --connections-max $((n + 100))
	before=$(broker_rss_kb)
	fds_before=$(broker_fds)
	rm -f "$runs/idle-$n.json"
	client_bg "$bin/synclog-bench" idle --broker "$broker_addr" --connections "$n" --json "$runs/idle-$n.json"
	holder=$bg_pid
	for _ in $(seq 1 1200); do
		[ -s "$runs/idle-$n.json" ] && break
		kill -0 "$holder" 2>/dev/null || break
		sleep 0.1
	done
	sleep 1
	held=$(broker_rss_kb)
	fds=$(broker_fds)
	latency "$runs/latency-$n.json"
	kill -TERM "$holder" 2>/dev/null || true
	wait "$holder" 2>/dev/null || true
	broker_stop
	echo "{\"connections\":$n,\"rss_kb_before\":$before,\"rss_kb_held\":$held,\"fds_before\":$fds_before,\"fds\":$fds}" \
		>"$runs/point-$n.json"
	python3 - "$runs" "$n" <<-'PY'
		import json, sys
		runs, n = sys.argv[1], sys.argv[2]
		p = json.load(open(f"{runs}/point-{n}.json"))
		i = json.load(open(f"{runs}/idle-{n}.json"))
		l = json.load(open(f"{runs}/latency-{n}.json"))
		print(f"  {int(n):>6} idle ({i['opened']} opened in {i['open_seconds']} s): RSS +"
		      f"{(p['rss_kb_held'] - p['rss_kb_before']) / 1024:,.1f} MiB, {p['fds']} fds; ack p99 "
		      f"{l['ack_latency']['p99_us']:,.0f} us, produce-to-consume p99 {l['e2e_latency']['p99_us']:,.0f} us"
		      + (f"  ERROR {i['error']}" if i["error"] else ""))
	PY
done

python3 - "$runs" "$rate" "$seconds" "$fd_limit" $counts >"$data/result.json" <<-'PY'
	import json, sys
	runs, rate, secs, fd_limit, counts = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
	def lat(path):
	    try:
	        d = json.load(open(path))
	    except (OSError, ValueError):
	        return {"ack_p99_us": None, "e2e_p99_us": None, "error": "no result"}
	    return {"ack_p50_us": d["ack_latency"]["p50_us"], "ack_p99_us": d["ack_latency"]["p99_us"],
	            "e2e_p50_us": d["e2e_latency"]["p50_us"], "e2e_p99_us": d["e2e_latency"]["p99_us"],
	            "e2e_p999_us": d["e2e_latency"]["p999_us"], "latency_error": d["error"]}
	out = {"what": "broker memory per idle connection and live latency with them open", "rate": rate,
	       "seconds": secs, "fd_limit": fd_limit, "baseline": lat(f"{runs}/baseline.json"), "points": []}
	for n in counts:
	    p = json.load(open(f"{runs}/point-{n}.json"))
	    i = json.load(open(f"{runs}/idle-{n}.json"))
	    p.update(lat(f"{runs}/latency-{n}.json"))
	    p["opened"] = i["opened"]
	    p["open_seconds"] = i["open_seconds"]
	    p["error"] = i["error"] or p.get("latency_error")
	    out["points"].append(p)
	json.dump(out, sys.stdout)
	PY
cp "$data/result.json" "$out_dir/$name.json"
bench_finish "$out_dir/$name.json"
