#!/usr/bin/env bash
# The comparison benchmark: synclog against Redis Streams, NATS JetStream and the disk itself (fio) on workloads
# W1-W6, in interleaved rounds, each server pinned to one core and its load generator to the other; plus the
# broker matrix of issue 3. Writes bench/results/latest.{json,md,png} and bench/results/broker.json through
# bench/report.py; bench/README.md says what is measured and why.
#
# Usage: bench/compare.sh [BUILD_DIR]        (default build/release; `make bench` runs it through bench/run.sh)
#   BENCH_QUICK=1          smaller counts and shorter latency runs (make bench-quick); figures go to BUILD_DIR
#   BENCH_ROUNDS=N         rounds (default 3; at least 3 for a median with a spread)
#   BENCH_SERVER_CPU=N     core of every server (default 0); BENCH_CLIENT_CPU=N: of every load generator (1)
#   BENCH_OTHER_CPU_MAX=F  a measurement during which other processes used more than this fraction of one core
#                          (default 0.15: another engineer's build on these 2 cores) is run again once, after a
#                          pause; the report flags it if it was disturbed again
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_paths "${1:-}" synclogd synclog-bench nats-bench redis-bench storage-bench
bin=$build/bin
for tool in fio redis-server redis-benchmark redis-cli nats-server python3 gnuplot fincore; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "compare.sh: $tool is missing: run tools/install-deps.sh bench" >&2
		exit 1
	fi
done

quick=${BENCH_QUICK:-0}
rounds=${BENCH_ROUNDS:-3}
server_cpu=${BENCH_SERVER_CPU:-0}
client_cpu=${BENCH_CLIENT_CPU:-1}
other_cpu_max=${BENCH_OTHER_CPU_MAX:-0.15}

# Counts per system: every run lasts about a second or more at that system's speed, so that the rate is not
# a measure of start-up; the workload (record size, batching, durability) is the same for all.
if [ "$quick" = 1 ]; then
	n100_synclog=1000000 n100_fsync=1000000 n1k_synclog=500000
	n100_redis=500000 n1k_redis=200000 n100_redis_always=200000
	n100_nats=200000 n1k_nats=100000
	n_one=300 latency_s=3 matrix_full=0
	out_dir=$build/bench-quick
else
	n100_synclog=5000000 n100_fsync=3000000 n1k_synclog=1000000
	n100_redis=2000000 n1k_redis=500000 n100_redis_always=500000
	n100_nats=1000000 n1k_nats=300000
	n_one=2000 latency_s=10 matrix_full=1
	out_dir=$root/bench/results
fi
n_replay=1000000  # W5 is one million records in every mode
w6_rate=20000     # W6: below the saturation of every system (NATS's W1 peak is about 200,000 records/s here)
record_small=100
record_large=1024
batch_bytes=262144 # the producer's default batch: fio writes blocks of this size
fio_iodepth=16     # as bench/storage.sh: the window of writes in flight
redis_clients=50   # redis-benchmark's best here among 1-100 clients and pipelines of 32-512 (README)
redis_pipeline=128
nats_window=4096 # async publish acks outstanding: larger windows gave no more (README)

# Servers and fio write under the repository (one filesystem for all); the per-run JSON files stay in
# BUILD_DIR/bench-runs after the run, for a second look.
data=$root/build/bench-compare
runs=$build/bench-runs
rm -rf "$data" "$runs"
mkdir -p "$data" "$runs" "$out_dir"
srv_pid=
cleanup() {
	if [ -n "$srv_pid" ] && kill -0 "$srv_pid" 2>/dev/null; then
		kill -TERM "$srv_pid" 2>/dev/null || true
		wait "$srv_pid" 2>/dev/null || true
	fi
	rm -rf "$data"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# CPU seconds the server process (every thread, io_uring workers included) used so far.
server_cpu_s() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$srv_pid/stat" 2>/dev/null || echo 0; }

# One run's dirty pages must not be written back during the next, nor its deletion (discard) land there.
settle() {
	sync
	rm -rf "$@"
	sync
}

# Before a run that fills the page cache: warm the VM's free memory (bench/README.md, "Warm memory").
warm() { "$bin/storage-bench" warm-memory --bytes "$1"; }

wait_for() { # file pattern seconds
	for _ in $(seq 1 $(($3 * 20))); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		kill -0 "$srv_pid" 2>/dev/null || break
		sleep 0.05
	done
	echo "compare.sh: server did not become ready; its output:" >&2
	cat "$1" >&2
	return 1
}

stop_server() {
	[ -n "$srv_pid" ] || return 0
	kill -TERM "$srv_pid" 2>/dev/null || true
	wait "$srv_pid" 2>/dev/null || true
	srv_pid=
}

# ---- servers: each on a fresh data directory, on 127.0.0.1, stopped by PID ----
# Each is started by taskset directly (taskset execs it), so that $! is the server's own PID.

start_synclogd() { # [data dir to reuse]
	local dir=${1:-$data/synclogd}
	[ -n "${1:-}" ] || rm -rf "$dir"
	mkdir -p "$dir"
	taskset -c "$server_cpu" "$bin/synclogd" --data-dir "$dir/data" --listen 127.0.0.1:0 --metrics off \
		>"$dir/out" 2>"$dir/err" &
	srv_pid=$!
	wait_for "$dir/out" "ready on" 10
	srv_addr=$(sed -n 's/^synclogd ready on //p' "$dir/out")
}

start_redis() { # off|everysec|always
	local dir=$data/redis args
	rm -rf "$dir"
	mkdir -p "$dir"
	srv_port=$(free_port)
	args=(--port "$srv_port" --bind 127.0.0.1 --dir "$dir" --save '' --daemonize no --logfile "$dir/log"
		--auto-aof-rewrite-percentage 0)
	if [ "$1" = off ]; then
		args+=(--appendonly no)
	else
		args+=(--appendonly yes --appendfsync "$1")
	fi
	taskset -c "$server_cpu" redis-server "${args[@]}" &
	srv_pid=$!
	wait_for "$dir/log" "Ready to accept connections" 10
}

start_nats() {
	local dir=$data/nats
	rm -rf "$dir"
	mkdir -p "$dir"
	srv_port=$(free_port)
	taskset -c "$server_cpu" nats-server -js -a 127.0.0.1 -p "$srv_port" -sd "$dir/store" >"$dir/log" 2>&1 &
	srv_pid=$!
	wait_for "$dir/log" "Server is ready" 10
}

# ---- one measurement: writes runs/NAME.json (the tool's output) and runs/NAME.meta ----
#
# Around each measurement: the 1-minute load average at its start, the server's CPU time, and the CPU time of
# every process outside this script's own tree (bench/others_cpu.py): another engineer's build or tests on these
# 2 cores. That is the disturbance the report flags.

begin() {
	m_load=$(loadavg)
	m_cpu0=$(server_cpu_s)
	python3 "$root/bench/others_cpu.py" snap "$data/others.snap" $$
	m_t0=$(date +%s.%N)
}

meta() { # name system workload variant durability round
	local cpu1 t1 other
	t1=$(date +%s.%N)
	cpu1=$(server_cpu_s)
	other=$(python3 "$root/bench/others_cpu.py" diff "$data/others.snap" $$)
	awk -v name="$1" -v sys="$2" -v w="$3" -v v="$4" -v d="$5" -v r="$6" -v load="$m_load" -v c0="$m_cpu0" \
		-v c1="$cpu1" -v other="$other" -v t0="$m_t0" -v t1="$t1" -v rerun="${m_rerun:-0}" 'BEGIN {
		printf "{\"name\":\"%s\",\"system\":\"%s\",\"workload\":\"%s\",\"variant\":\"%s\",", name, sys, w, v
		printf "\"durability\":\"%s\",\"round\":%d,\"loadavg_1m\":%s,\"wall_s\":%.2f,", d, r, load, t1 - t0
		printf "\"server_cpu_s\":%.2f,\"other_cpu_s\":%.2f,\"rerun\":%s}\n", c1 - c0, other, rerun ? "true" : "false"
	}' >"$runs/$1.meta"
	last_meta=$runs/$1.meta
}

# Run a measurement unit (a function that starts its server, measures, writes a meta and stops the server);
# run it again once, after a pause, when others used more than other_cpu_max of a core meanwhile.
unit() {
	local t0
	t0=$(date +%s.%N)
	m_rerun=0
	"$@"
	if python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); sys.exit(0 if m["other_cpu_s"] > float(sys.argv[2]) * max(m["wall_s"], 1) else 1)' \
		"$last_meta" "$other_cpu_max"; then
		echo "  (disturbed: $(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print("others used %.1f CPU-s in %.1f s, load %.2f" % (m["other_cpu_s"], m["wall_s"], m["loadavg_1m"]))' "$last_meta"); running it again)"
		sleep 5
		m_rerun=1
		"$@"
		m_rerun=0
	fi
	echo "$* $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')" >>"$runs/units.log"
}

say() { printf '  %-44s %s\n' "$1" "$2"; }
rate_of() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.0f rec/s %.1f MB/s" % (d.get("records_per_s", 0), d.get("mb_per_s", 0)))' "$1"; }
p_of() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))[sys.argv[2]]; print("p50 %.0f us  p99 %.0f us  p99.9 %.0f us" % (d["p50_us"], d["p99_us"], d["p999_us"]))' "$1" "$2"; }
json_num() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# ---- the disk ceiling: fio, io_uring engine, on the same filesystem, on the servers' core ----

fio_mb() { python3 -c 'import json,sys; w=json.load(open(sys.argv[1]))["jobs"][0]["write"]; print("%.1f MB/s" % (w["bw_bytes"] / 1e6))' "$1"; }

# Buffered: what the page cache takes in blocks of our batch size, W1 and W2's ceiling.
fio_buffered() { # round
	local name=fio-buffered-r$1 bytes=$((n1k_synclog * 1100)) count
	count=$(((bytes + batch_bytes - 1) / batch_bytes))
	mkdir -p "$data/fio"
	warm $((bytes * 5 / 4))
	begin
	taskset -c "$server_cpu" fio --name=buffered --ioengine=io_uring --fallocate=none --rw=write --bs=$batch_bytes \
		--size=$((count * batch_bytes)) --iodepth=$fio_iodepth --directory="$data/fio" --output-format=json \
		--output="$runs/$name.json" >/dev/null
	meta "$name" fio ceiling buffered buffered "$1"
	settle "$data/fio"
}

# With fdatasync at synclog's W3 cadence: the broker's mean write size and writes per fdatasync, counted in a
# calibration run before round 1. fio 3.33's --fdatasync misfires at iodepth > 1 (bench/README.md), so the
# writes and datasyncs are replayed from an iolog, as bench/storage.sh does.
fio_fdatasync() { # round
	local name=fio-fdatasync-r$1 bs n bytes=$((n100_fsync * 110)) count
	read -r bs n _ <"$runs/synclog-w3-cadence.txt"
	count=$(((bytes + bs - 1) / bs))
	mkdir -p "$data/fio"
	awk -v f="$data/fio/sync.0" -v bs="$bs" -v count="$count" -v n="$n" 'BEGIN {
		print "fio version 2 iolog"; print f " add"; print f " open"
		for (i = 0; i < count; i++) {
			print f " write " i * bs " " bs
			if ((i + 1) % n == 0) print f " datasync 0 0"
		}
		print f " datasync 0 0"
	}' >"$data/fio.iolog"
	warm $((bytes * 5 / 4))
	begin
	taskset -c "$server_cpu" fio --name=fdatasync --ioengine=io_uring --read_iolog="$data/fio.iolog" --iodepth=$fio_iodepth \
		--output-format=json --output="$runs/$name.json" >/dev/null
	meta "$name" fio ceiling "fdatasync-every-$n-of-$bs" fdatasync "$1"
	settle "$data/fio" "$data/fio.iolog"
}

# W4's yardstick: one 4 KiB write and its fdatasync at a time.
fio_sync4k() { # round
	local name=fio-sync4k-r$1
	mkdir -p "$data/fio"
	begin
	taskset -c "$server_cpu" fio --name=sync4k --ioengine=io_uring --fallocate=none --rw=write --bs=4096 --size=$((n_one * 4096)) \
		--iodepth=1 --fdatasync=1 --directory="$data/fio" --output-format=json --output="$runs/$name.json" \
		>/dev/null
	meta "$name" fio W4 sync4k fdatasync "$1"
	settle "$data/fio"
}

# The storage engine alone at the broker's batch size with 1 KiB records at `written`: issue 3's yardstick.
engine_append() { # round
	local name=engine-r$1 bytes=$((n1k_synclog * 1100))
	warm $((bytes * 5 / 4))
	begin
	taskset -c "$server_cpu" "$bin/storage-bench" append --dir "$data/engine" --bytes $bytes --batch-bytes $batch_bytes \
		--record-bytes $record_large --level written --inflight $fio_iodepth --json "$runs/$name.json" >/dev/null
	meta "$name" storage-engine engine written written "$1"
	settle "$data/engine"
}

disk_round() { # round
	local r=$1 bs n how
	read -r bs n how <"$runs/synclog-w3-cadence.txt"
	echo "round $r: disk ($(fio --version), io_uring engine)"
	unit fio_buffered "$r"
	say "fio buffered, $((batch_bytes >> 10)) KiB writes" "$(fio_mb "$runs/fio-buffered-r$r.json")"
	unit fio_fdatasync "$r"
	say "fio, fdatasync every $n writes of $bs B ($how)" "$(fio_mb "$runs/fio-fdatasync-r$r.json")"
	unit fio_sync4k "$r"
	say "fio 4 KiB write + fdatasync, one at a time" "$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["jobs"][0]["sync"]["lat_ns"]["percentile"]; print("fdatasync p50 %.0f us  p99 %.0f us" % (s["50.000000"] / 1e3, s["99.000000"] / 1e3))' "$runs/fio-sync4k-r$r.json")"
	unit engine_append "$r"
	say "storage engine, 1 KiB records, written" "$(python3 -c 'import json,sys; print("%.1f MB/s" % json.load(open(sys.argv[1]))["mb_per_s"])' "$runs/engine-r$r.json")"
}

# ---- synclog ----

synclog_produce() { # name workload variant round acks record_bytes count producers partitions [extra flags...]
	local name=$1 workload=$2 variant=$3 round=$4 acks=$5 rb=$6 count=$7 producers=$8 parts=$9
	shift 9
	start_synclogd
	warm $((count * (rb + 12) * 5 / 4))
	begin
	client "$bin/synclog-bench" produce --broker "$srv_addr" --topic bench --create --partitions "$parts" \
		--record-bytes "$rb" --count "$count" --producers "$producers" --producer-kind process --acks "$acks" \
		--label "$name" --json "$runs/$name.json" "$@"
	meta "$name" synclog "$workload" "$variant" "$acks" "$round"
	stop_server
	settle "$data/synclogd"
}

# W3's cadence for fio: the broker's writes and fdatasyncs counted at the io_uring tracepoint during one W3 run.
synclog_w3_cadence() {
	start_synclogd
	# Without perf (or its tracepoints) the counts stay empty and the cadence is assumed (see below).
	: >"$runs/w3-cadence.perf"
	perf stat -x, -o "$runs/w3-cadence.perf" -e io_uring:io_uring_submit_req --filter 'opcode == 3' \
		-e io_uring:io_uring_submit_req --filter 'opcode == 2' -p "$srv_pid" 2>/dev/null &
	local perf_pid=$!
	sleep 0.3
	client "$bin/synclog-bench" produce --broker "$srv_addr" --topic bench --create --record-bytes $record_small \
		--count $n100_fsync --acks fsync --json "$runs/w3-cadence.json"
	kill -INT "$perf_pid" 2>/dev/null || true
	wait "$perf_pid" || true
	stop_server
	settle "$data/synclogd"
	python3 - "$runs/w3-cadence.perf" "$runs/w3-cadence.json" >"$runs/synclog-w3-cadence.txt" <<-'PY'
		import json, sys
		counts = [int(l.split(",")[0]) for l in open(sys.argv[1]) if l[:1].isdigit()]
		stored = json.load(open(sys.argv[2]))["stored_bytes"]
		if len(counts) == 2 and counts[0] > 0 and counts[1] > 0:
		    fsyncs, writes = counts
		    print(max(4096, stored // writes), max(1, round(writes / fsyncs)), "measured")
		else:
		    # perf could not count (no tracepoint access): the producer's batch, 4 per fdatasync.
		    print(262144, 4, "assumed")
	PY
}

synclog_replay() { # round
	local r=$1
	start_synclogd
	client "$bin/synclog-bench" produce --broker "$srv_addr" --topic replay --create --record-bytes $record_small \
		--count $n_replay --json "$runs/fill-synclog-r$r.json"
	begin
	client "$bin/synclog-bench" replay --broker "$srv_addr" --topic replay --count $n_replay \
		--label "synclog-replay-r$r" --json "$runs/synclog-replay-r$r.json"
	meta "synclog-replay-r$r" synclog W5 warm written "$r"
	# Issue 3's cold start: the broker restarted on the same log, whose pages are dropped from the page cache.
	stop_server
	find "$data/synclogd/data" -type f -exec dd if={} iflag=nocache count=0 status=none \;
	find "$data/synclogd/data" -type f -exec fincore -b -n -o RES {} + |
		awk '{ s += $1 } END { printf "%.0f\n", s }' >"$runs/synclog-replay-cold-r$r.resident"
	start_synclogd "$data/synclogd"
	begin
	client "$bin/synclog-bench" replay --broker "$srv_addr" --topic replay --count $n_replay \
		--label "synclog-replay-cold-r$r" --json "$runs/synclog-replay-cold-r$r.json"
	meta "synclog-replay-cold-r$r" synclog cold cold written "$r"
	stop_server
	settle "$data/synclogd"
}

# Linger 0: a batch closes as soon as a request slot is free, and grows by itself while requests are in flight.
synclog_latency() { # name workload rate round
	start_synclogd
	begin
	client "$bin/synclog-bench" latency --broker "$srv_addr" --topic lat --create --record-bytes $record_small \
		--rate "$3" --duration-s $latency_s --linger-ms 0 --label "$1" --json "$runs/$1.json"
	meta "$1" synclog "$2" "rate$3" written "$4"
	stop_server
	settle "$data/synclogd"
}

synclog_round() { # round
	local r=$1 acks rb producers parts count w name peak rate
	echo "round $r: synclog"
	# Issue 3's matrix; its cells with one producer and one partition are W1, W2 and W3.
	for acks in written fsync; do
		for rb in $record_small $record_large; do
			for producers in 1 4; do
				for parts in 1 16; do
					if [ "$matrix_full" = 0 ] && [ "$producers-$parts" != 1-1 ] &&
						[ "$producers-$parts" != 4-16 ]; then
						continue
					fi
					count=$n1k_synclog
					[ "$rb" = $record_small ] && count=$n100_synclog
					[ "$rb-$acks" = $record_small-fsync ] && count=$n100_fsync
					case $acks-$rb-$producers-$parts in
					"written-$record_small-1-1") w=W1 ;;
					"written-$record_large-1-1") w=W2 ;;
					"fsync-$record_small-1-1") w=W3 ;;
					*) w=matrix ;;
					esac
					name=synclog-$acks-$rb-p$producers-part$parts-r$r
					unit synclog_produce "$name" "$w" "p$producers-part$parts" "$r" "$acks" "$rb" "$count" \
						"$producers" "$parts"
					say "$acks $rb B, $producers producer(s), $parts partition(s)" "$(rate_of "$runs/$name.json")"
				done
			done
		done
	done
	# W4: one record at a time, acknowledged after fdatasync; W4w the same acknowledged when written.
	unit synclog_produce "synclog-one-fsync-r$r" W4 one "$r" fsync $record_small $n_one 1 1 --one-at-a-time
	say "W4 one at a time, fsync" "$(p_of "$runs/synclog-one-fsync-r$r.json" ack_latency)"
	unit synclog_produce "synclog-one-written-r$r" W4w one "$r" written $record_small $n_one 1 1 --one-at-a-time
	say "W4w one at a time, written" "$(p_of "$runs/synclog-one-written-r$r.json" ack_latency)"
	unit synclog_replay "$r"
	say "W5 replay 1M from the start (page cache warm)" "$(rate_of "$runs/synclog-replay-r$r.json")"
	say "replay 1M after restart, pages dropped (cold)" "$(rate_of "$runs/synclog-replay-cold-r$r.json"), $(cat \
		"$runs/synclog-replay-cold-r$r.resident") B of the log resident at start"
	unit synclog_latency "synclog-latency-w6-r$r" W6 $w6_rate "$r"
	say "W6 produce-to-consume at $w6_rate rec/s" "$(p_of "$runs/synclog-latency-w6-r$r.json" e2e_latency)"
	# Issue 3's latency at 10% of this round's W1 peak, rounded down to a thousand.
	peak=$(json_num "$runs/synclog-written-$record_small-p1-part1-r$r.json" records_per_s)
	rate=$(awk -v p="$peak" 'BEGIN { printf "%d", int(p / 10000) * 1000 }')
	unit synclog_latency "synclog-latency-peak10-r$r" peak10 "$rate" "$r"
	say "produce-to-consume at 10% of peak, $rate rec/s" "$(p_of "$runs/synclog-latency-peak10-r$r.json" e2e_latency)"
}

# ---- Redis ----

redis_w123() { # name workload aof round record_bytes count
	local value
	value=$(head -c "$5" /dev/zero | tr '\0' x)
	start_redis "$3"
	warm $(($6 * ($5 + 64) * 5 / 4))
	begin
	client redis-benchmark -h 127.0.0.1 -p "$srv_port" -n "$6" -c $redis_clients -P $redis_pipeline --csv \
		XADD bench '*' d "$value" >"$runs/$1.csv"
	meta "$1" redis "$2" "aof-$3" "aof-$3" "$4"
	stop_server
	settle "$data/redis"
	# The CSV's data row as the JSON fields every tool writes ("test","rps","avg","min","p50","p95","p99","max").
	awk -F'"' -v rb="$5" -v n="$6" 'NR == 2 {
		printf "{\"tool\":\"redis-benchmark\",\"record_bytes\":%d,\"records\":%d,\"records_per_s\":%s,", rb, n, $4
		printf "\"mb_per_s\":%.3f,\"seconds\":%.6f,\"ack_latency\":{\"p50_us\":%.1f,\"p99_us\":%.1f,", \
			$4 * rb / 1e6, n / $4, $10 * 1000, $14 * 1000
		printf "\"max_us\":%.1f},\"error\":null}\n", $16 * 1000
	}' "$runs/$1.csv" >"$runs/$1.json"
}

redis_one() { # name workload aof round
	start_redis "$3"
	begin
	client "$bin/redis-bench" xadd --port "$srv_port" --count $n_one --one-at-a-time --label "$1" \
		--json "$runs/$1.json"
	meta "$1" redis "$2" one "aof-$3" "$4"
	stop_server
	settle "$data/redis"
}

redis_replay() { # round
	local name=redis-replay-r$1
	start_redis off
	client "$bin/redis-bench" xadd --port "$srv_port" --count $n_replay --pipeline 256 \
		--json "$runs/fill-redis-r$1.json"
	begin
	client "$bin/redis-bench" replay --port "$srv_port" --count $n_replay --batch 10000 --label "$name" \
		--json "$runs/$name.json"
	meta "$name" redis W5 xrange aof-off "$1"
	stop_server
	settle "$data/redis"
}

redis_latency() { # round
	local name=redis-latency-w6-r$1
	start_redis off
	begin
	client "$bin/redis-bench" latency --port "$srv_port" --rate $w6_rate --duration-s $latency_s --label "$name" \
		--json "$runs/$name.json"
	meta "$name" redis W6 "rate$w6_rate" aof-off "$1"
	stop_server
	settle "$data/redis"
}

redis_round() { # round
	local r=$1 aof
	echo "round $r: Redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') Streams"
	for aof in off everysec; do
		unit redis_w123 "redis-w1-$aof-r$r" W1 $aof "$r" $record_small $n100_redis
		say "W1 XADD 100 B, AOF $aof" "$(rate_of "$runs/redis-w1-$aof-r$r.json")"
		unit redis_w123 "redis-w2-$aof-r$r" W2 $aof "$r" $record_large $n1k_redis
		say "W2 XADD 1 KiB, AOF $aof" "$(rate_of "$runs/redis-w2-$aof-r$r.json")"
	done
	unit redis_w123 "redis-w3-always-r$r" W3 always "$r" $record_small $n100_redis_always
	say "W3 XADD 100 B, AOF always" "$(rate_of "$runs/redis-w3-always-r$r.json")"
	unit redis_one "redis-one-always-r$r" W4 always "$r"
	say "W4 one XADD at a time, AOF always" "$(p_of "$runs/redis-one-always-r$r.json" ack_latency)"
	unit redis_one "redis-one-off-r$r" W4w off "$r"
	say "W4w one XADD at a time, AOF off" "$(p_of "$runs/redis-one-off-r$r.json" ack_latency)"
	unit redis_replay "$r"
	say "W5 XRANGE replay 1M (COUNT 10000)" "$(rate_of "$runs/redis-replay-r$r.json")"
	unit redis_latency "$r"
	say "W6 XADD to XREAD BLOCK at $w6_rate rec/s" "$(p_of "$runs/redis-latency-w6-r$r.json" e2e_latency)"
}

# ---- NATS ----

nats_publish() { # name workload round record_bytes count [extra flags...]
	local name=$1 workload=$2 round=$3 rb=$4 count=$5
	shift 5
	start_nats
	warm $((count * (rb + 100) * 5 / 4))
	begin
	client "$bin/nats-bench" publish --url "nats://127.0.0.1:$srv_port" --create --stream bench --record-bytes "$rb" \
		--count "$count" --label "$name" --json "$runs/$name.json" "$@"
	meta "$name" nats "$workload" publish ack-before-fsync "$round"
	stop_server
	settle "$data/nats"
}

nats_replay() { # round
	local name=nats-replay-r$1
	start_nats
	client "$bin/nats-bench" publish --url "nats://127.0.0.1:$srv_port" --create --stream replay --count $n_replay \
		--window $nats_window --json "$runs/fill-nats-r$1.json"
	begin
	client "$bin/nats-bench" replay --url "nats://127.0.0.1:$srv_port" --stream replay --count $n_replay \
		--label "$name" --json "$runs/$name.json"
	meta "$name" nats W5 ordered-consumer ack-before-fsync "$1"
	stop_server
	settle "$data/nats"
}

nats_latency() { # round
	local name=nats-latency-w6-r$1
	start_nats
	begin
	client "$bin/nats-bench" latency --url "nats://127.0.0.1:$srv_port" --create --stream lat --rate $w6_rate \
		--duration-s $latency_s --label "$name" --json "$runs/$name.json"
	meta "$name" nats W6 "rate$w6_rate" ack-before-fsync "$1"
	stop_server
	settle "$data/nats"
}

nats_round() { # round
	local r=$1
	echo "round $r: NATS $(nats-server --version | sed 's/.*v//') JetStream, file storage (acknowledges before fsync)"
	unit nats_publish "nats-w1-r$r" W1 "$r" $record_small $n100_nats --window $nats_window
	say "W1 async publish 100 B" "$(rate_of "$runs/nats-w1-r$r.json")"
	unit nats_publish "nats-w2-r$r" W2 "$r" $record_large $n1k_nats --window $nats_window
	say "W2 async publish 1 KiB" "$(rate_of "$runs/nats-w2-r$r.json")"
	unit nats_publish "nats-one-r$r" W4w "$r" $record_small $n_one --one-at-a-time
	say "W4w sync publish, one at a time" "$(p_of "$runs/nats-one-r$r.json" ack_latency)"
	unit nats_replay "$r"
	say "W5 ordered consumer replay 1M" "$(rate_of "$runs/nats-replay-r$r.json")"
	unit nats_latency "$r"
	say "W6 publish to ordered consumer at $w6_rate rec/s" "$(p_of "$runs/nats-latency-w6-r$r.json" e2e_latency)"
}

start=$(date +%s)
echo "compare: $rounds rounds, servers on core $server_cpu, load generators on core $client_cpu, data in $data"
synclog_w3_cadence
for round in $(seq 1 "$rounds"); do
	disk_round "$round"
	synclog_round "$round"
	redis_round "$round"
	nats_round "$round"
done
python3 "$root/bench/report.py" --runs "$runs" --out "$out_dir" --quick "$quick" --rounds "$rounds" \
	--data-dir "$data" --server-cpu "$server_cpu" --client-cpu "$client_cpu"
echo "compare took $(($(date +%s) - start)) s"
