#!/usr/bin/env bash
# The W6 tail benchmark (issue 10): produce-to-consume latency at 20,000 records/s, synclog against Redis Streams
# (AOF off, XADD to XREAD BLOCK, bench/peers/redis_bench.c) in alternating rounds, each run watched by
# bench/hiccup/hiccup.c, which notes every millisecond in which a CPU of this VM could not run even a thread of the
# highest real-time priority (the host's steal, or the guest kernel). bench/tail_attr.py then splits synclog's slow
# records (end to end over 2 ms) into those the CPU stalls explain and those they do not.
#
# Both servers and both load generators run at SCHED_FIFO 50 (TAIL_RT=0: at normal priority, as in compare.sh), the
# server on core BENCH_SERVER_CPU (0) and the client on BENCH_CLIENT_CPU (1): on a machine other engineers share,
# their builds otherwise decide the tail. The watcher's threads (SCHED_FIFO 99) take about 1,000 wake-ups a second per
# CPU of a few microseconds: both systems pay it alike.
#
# Usage: bench/tail.sh [BUILD_DIR]     (needs synclog-bench, redis-bench and hiccup: make bench builds them)
#   BENCH_QUICK=1   two rounds of 3 s; figures go to BUILD_DIR/bench-quick/tail.json
#   TAIL_ROUNDS=N   rounds (default 5); TAIL_SECONDS=S: each run's length (default 10, the first second is warm-up)
#   TAIL_RT=0       no real-time priority for the servers and clients
# Writes bench/results/tail.json and tail.png.
set -euo pipefail
name=tail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init "${1:-build/release}"
for tool in redis-bench hiccup; do
	if [ ! -x "$bin/$tool" ]; then
		echo "$name: $bin/$tool is missing: run make bench" >&2
		exit 1
	fi
done
command -v redis-server >/dev/null || {
	echo "$name: redis-server is missing: run tools/install-deps.sh bench" >&2
	exit 1
}
rounds=${TAIL_ROUNDS:-5}
secs=${TAIL_SECONDS:-10}
[ "$quick" = 1 ] && rounds=2 secs=3
rt=${TAIL_RT:-1}
rate=20000
slow_ms=2
prio=()
[ "$rt" = 1 ] && prio=(chrt -f 50)
runs=$data/runs
mkdir -p "$runs"

steal_ms() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%d", $9 * 1000 / hz }' /proc/stat; }

watch_start() { # file
	"$bin/hiccup" --duration-s $((secs + 2)) --late-us 300 >"$1" &
	watch_pid=$!
	extra_pids+=("$watch_pid")
}

synclog_run() { # round
	local r=$1 d=$data/synclog-$1 s0
	broker_start "$d"
	[ "$rt" = 1 ] && chrt -f -a -p 50 "$broker_pid" >/dev/null
	watch_start "$runs/synclog-r$r.hiccup"
	s0=$(steal_ms)
	"${prio[@]}" taskset -c "$client_cpu" "$bin/synclog-bench" latency --broker "$broker_addr" --topic lat --create \
		--record-bytes 100 --rate $rate --duration-s "$secs" --linger-ms 0 --slow-us $((slow_ms * 1000)) \
		--json "$runs/synclog-r$r.json" >/dev/null 2>"$runs/synclog-r$r.slow"
	echo $(($(steal_ms) - s0)) >"$runs/synclog-r$r.steal"
	wait "$watch_pid" || true
	broker_stop
	python3 "$root/bench/tail_attr.py" "$runs/synclog-r$r.hiccup" "$runs/synclog-r$r.slow" "$runs/synclog-r$r.json" \
		$slow_ms >"$runs/synclog-r$r.attr"
	rm -rf "$d"
	sync
}

redis_run() { # round
	local r=$1 d=$data/redis-$1 port s0 rpid
	mkdir -p "$d"
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	"${prio[@]}" taskset -c "$server_cpu" redis-server --port "$port" --bind 127.0.0.1 --dir "$d" --save '' \
		--appendonly no --daemonize no --logfile "$d/log" &
	rpid=$!
	extra_pids+=("$rpid")
	for _ in $(seq 1 200); do
		grep -q "Ready to accept connections" "$d/log" 2>/dev/null && break
		sleep 0.05
	done
	watch_start "$runs/redis-r$r.hiccup"
	s0=$(steal_ms)
	"${prio[@]}" taskset -c "$client_cpu" "$bin/redis-bench" latency --port "$port" --rate $rate --duration-s "$secs" \
		--json "$runs/redis-r$r.json" >/dev/null
	echo $(($(steal_ms) - s0)) >"$runs/redis-r$r.steal"
	wait "$watch_pid" || true
	kill -TERM "$rpid" 2>/dev/null || true
	wait "$rpid" 2>/dev/null || true
	rm -rf "$d"
}

for r in $(seq 1 "$rounds"); do
	if [ $((r % 2)) = 1 ]; then
		synclog_run "$r"
		redis_run "$r"
	else
		redis_run "$r"
		synclog_run "$r"
	fi
	echo "round $r: synclog $(cat "$runs/synclog-r$r.attr")"
	echo "round $r: redis p99.9 $(json_get "$runs/redis-r$r.json" e2e_latency.p999_us) us," \
		"steal $(cat "$runs/redis-r$r.steal") ms, hiccup lines $(grep -vc '^#' "$runs/redis-r$r.hiccup" || true)"
done

out=$out_dir/tail.json
python3 - "$runs" "$rounds" "$rate" "$secs" "$rt" "$slow_ms" >"$out" <<'PY'
import json, statistics, sys
runs, rounds, rate, secs, rt, slow_ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], float(sys.argv[6])
def stalls(path):
    s = [float(l.split()[2]) for l in open(path) if not l.startswith("#") and len(l.split()) == 3]
    return {"late_wakeups": len(s), "late_ms_total": round(sum(s), 1), "late_ms_max": round(max(s), 1) if s else 0.0}
rows = []
for r in range(1, rounds + 1):
    a = json.load(open(f"{runs}/synclog-r{r}.attr"))
    red = json.load(open(f"{runs}/redis-r{r}.json"))["e2e_latency"]
    rows.append({"round": r,
                 "synclog": dict(a, steal_ms=int(open(f"{runs}/synclog-r{r}.steal").read())),
                 "redis": {"p50_us": red["p50_us"], "p99_us": red["p99_us"], "p999_us": red["p999_us"],
                           "records": red["count"], "steal_ms": int(open(f"{runs}/redis-r{r}.steal").read()),
                           **stalls(f"{runs}/redis-r{r}.hiccup")}})
med = lambda k, sys_: statistics.median(x[sys_][k] for x in rows)
json.dump({"rate": rate, "seconds": secs, "warmup_s": 1, "realtime": rt == "1", "slow_ms": slow_ms, "rounds": rows,
           "median": {"synclog_p999_us": med("p999_us", "synclog"), "redis_p999_us": med("p999_us", "redis"),
                      "synclog_p99_us": med("p99_us", "synclog"), "redis_p99_us": med("p99_us", "redis")},
           "synclog_rounds_p999_under_outside_stalls":
               sum(1 for x in rows if x["synclog"]["p999_under_outside_stalls"]),
           "synclog_rounds_without_stall_over_1ms":
               [x["round"] for x in rows if x["synclog"]["stall_ms_max"] < 1.0]}, sys.stdout, indent=1)
PY
bench_finish "$out"
