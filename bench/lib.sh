# Shared pieces of the benchmarks: sourced, never run. Every benchmark script takes its build directory with
# bench_paths and, when it needs one plain broker, starts it with bench_synclogd (both at the end of this file).
# The scale benchmarks (bench/cold_replay.sh, bench/replay_interference.sh, bench/many_groups.sh,
# bench/offered_load.sh, bench/timeline.sh, bench/curve_*.sh) use the rest: each sets `name` (its
# results are bench/results/$name.json and .png, or BUILD_DIR/bench-quick/ in smoke mode) and calls bench_init
# with its build directory; then it starts brokers with broker_start, measures, and calls bench_finish with the
# JSON file it wrote, which draws the chart (bench/charts.py).
#
# What every scale script shares: a broker on 127.0.0.1 port 0 with a fresh data directory under build/bench-$name
# (the repository's filesystem), stopped by PID; the broker pinned to core BENCH_SERVER_CPU (0) and the load
# generators to BENCH_CLIENT_CPU (1), as in bench/compare.sh; the 1-minute load average recorded at the start and
# end of the run and a warning when it is above 0.5 (the machine is shared: such figures are noisy); and
# BENCH_QUICK=1, the smoke mode: small sizes, a run of seconds, figures kept out of bench/results.

bench_init() { # build_dir
	bench_paths "${1:-}" synclogd synclog-bench
	bin=$build/bin
	quick=${BENCH_QUICK:-0}
	server_cpu=${BENCH_SERVER_CPU:-0}
	client_cpu=${BENCH_CLIENT_CPU:-1}
	if [ "$quick" = 1 ]; then
		out_dir=$build/bench-quick
	else
		out_dir=$root/bench/results
	fi
	data=$root/build/bench-$name
	rm -rf "$data"
	mkdir -p "$data" "$out_dir"
	broker_pid=
	extra_pids=()
	trap bench_cleanup EXIT
	load_start=$(loadavg)
	bench_t0=$(date +%s)
	if awk -v l="$load_start" 'BEGIN { exit !(l > 0.5) }'; then
		echo "$name: load average $load_start (above 0.5): the machine is busy, figures of this run are noisy" >&2
	fi
}

bench_cleanup() {
	local p
	for p in "${extra_pids[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	if [ -n "$broker_pid" ]; then
		kill -KILL "$broker_pid" 2>/dev/null || true
		wait "$broker_pid" 2>/dev/null || true
	fi
	[ "${BENCH_KEEP_DATA:-0}" = 1 ] || rm -rf "$data"
}

loadavg() { cut -d' ' -f1 /proc/loadavg; }
client() { taskset -c "$client_cpu" "$@"; }
# A load generator in the background, pinned like client; bg_pid is its own PID (taskset execs it), so that it can
# be stopped by PID. It is killed at exit if still running.
client_bg() {
	taskset -c "$client_cpu" "$@" &
	bg_pid=$!
	extra_pids+=("$bg_pid")
}
now_ns() { date +%s%N; }
now_ms() { date +%s%3N; }
json_get() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d=d[int(k)] if isinstance(d, list) else d[k]
print(d)' "$1" "$2"; }

# ---- the broker ----

# Start synclogd on DIR (kept if it exists) with extra flags; sets broker_pid, broker_addr and broker_start_ms:
# from just before the exec to the write of its readiness line, read from the modification time of its stdout file
# (the broker writes nothing else there), so that the poller's own start-up is not counted. The file time comes
# from the kernel's coarse clock: a few milliseconds of resolution. Fails if it is not ready within 120 s.
broker_start() { # dir [flags...]
	local dir=$1 t0
	shift
	broker_dir=$dir
	mkdir -p "$dir"
	: >"$dir/out"
	t0=$(now_ns)
	taskset -c "$server_cpu" "$bin/synclogd" --data-dir "$dir/data" --listen 127.0.0.1:0 --metrics off "$@" \
		>"$dir/out" 2>>"$dir/err" &
	broker_pid=$!
	broker_start_ms=$(python3 - "$dir/out" "$t0" "$broker_pid" <<-'PY'
		import os, sys, time
		path, t0, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
		deadline = time.time() + 120
		while time.time() < deadline:
		    with open(path) as f:
		        if any(l.startswith("synclogd ready on ") for l in f):
		            print("%.1f" % ((os.stat(path).st_mtime_ns - t0) / 1e6))
		            sys.exit(0)
		    if not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z":
		        break
		    time.sleep(0.001)
		sys.exit(1)
	PY
	) || {
		echo "$name: synclogd did not become ready; its stderr:" >&2
		tail -20 "$dir/err" >&2
		return 1
	}
	broker_addr=$(sed -n 's/^synclogd ready on //p' "$dir/out")
}

# Clean stop (SIGTERM: the broker closes every log and leaves its clean markers).
broker_stop() {
	[ -n "$broker_pid" ] || return 0
	kill -TERM "$broker_pid" 2>/dev/null || true
	wait "$broker_pid" 2>/dev/null || true
	broker_pid=
}

# A crash: SIGKILL, no marker written; the next start recovers every partition's tail.
broker_kill() {
	[ -n "$broker_pid" ] || return 0
	kill -KILL "$broker_pid" 2>/dev/null || true
	wait "$broker_pid" 2>/dev/null || true
	broker_pid=
}

# A field of the broker's last structured event of that name in its stderr (text format: "EVENT k=v ..."), or
# empty: e.g. broker_event_field recovery took_ms.
broker_event_field() { # event field [dir]
	sed -n "s/.* INFO $1 .*\b$2=\([^ ]*\).*/\1/p" "${3:-$broker_dir}/err" 2>/dev/null | tail -1
}

broker_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$broker_pid/status"; }
broker_fds() { find "/proc/$broker_pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
# CPU seconds the broker used so far (every thread, io_uring workers included).
broker_cpu_s() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$broker_pid/stat"; }

# ---- the page cache ----

# Drop the page cache, as the issue asks: sync, then echo 3 > /proc/sys/vm/drop_caches (needs root). Without root,
# the files under the given directories are dropped one by one (dd iflag=nocache: POSIX_FADV_DONTNEED), which
# works for clean pages. Prints how it was done.
drop_caches() { # dir...
	sync
	if [ -w /proc/sys/vm/drop_caches ]; then
		echo 3 >/proc/sys/vm/drop_caches
		echo "drop_caches"
	else
		find "$@" -type f -exec dd if={} iflag=nocache count=0 status=none \;
		echo "fadvise-dontneed"
	fi
}

# Bytes of the files under the directories that are in the page cache (fincore).
resident_bytes() { # dir...
	find "$@" -type f -exec fincore -b -n -o RES {} + 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'
}

# Free bytes on the filesystem of dir.
free_bytes() { df -P -B1 "$1" | awk 'NR == 2 { print $4 }'; }

# The log a replay benchmark reads: exit 1 unless 1.5 x BYTES are free under $data (the segments, their indexes and
# room to spare), then a broker on $data/broker with FLAGS, and TOPIC filled by synclog-bench with BYTES of
# RECORD_BYTES-byte records (count of them, 12 bytes of overhead each), its result in $runs/fill.json
# (runs=$data/runs). Sets count and runs.
bench_replay_log() { # topic bytes record_bytes [flags...]
	local topic=$1 bytes=$2 record_bytes=$3
	shift 3
	count=$((bytes / (record_bytes + 12)))
	if [ "$(free_bytes "$data")" -lt $((bytes * 3 / 2)) ]; then
		echo "$name: $((bytes * 3 / 2 >> 20)) MiB free needed under $data" >&2
		exit 1
	fi
	runs=$data/runs
	mkdir -p "$runs"
	broker_start "$data/broker" "$@"
	echo "$name: filling $((bytes >> 20)) MiB ($count records of $record_bytes B)"
	client "$bin/synclog-bench" produce --broker "$broker_addr" --topic "$topic" --create \
		--record-bytes "$record_bytes" --count "$count" --json "$runs/fill.json"
}

# ---- the end ----

# The run's facts every result carries (merged into the script's JSON by bench_finish).
bench_finish() { # json_file
	local json=$1
	python3 - "$json" "$name" "$quick" "$load_start" "$(loadavg)" "$(($(date +%s) - bench_t0))" "$server_cpu" \
		"$client_cpu" <<-'PY'
		import json, os, platform, sys, datetime
		path, name, quick, l0, l1, secs, scpu, ccpu = sys.argv[1:]
		d = json.load(open(path))
		model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
		mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
		d["benchmark"] = name
		d["generated_at"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
		d["quick"] = quick == "1"
		d["host"] = {"cpus": os.cpu_count(), "cpu_model": model, "memory_gb": round(mem / 1e6, 1),
		             "kernel": platform.release(), "server_cpu": int(scpu), "client_cpu": int(ccpu),
		             "loadavg_1m_start": float(l0), "loadavg_1m_end": float(l1),
		             "noisy": max(float(l0), float(l1)) > 0.5}
		d["run_seconds"] = int(secs)
		json.dump(d, open(path, "w"), indent=1)
	PY
	python3 "$root/bench/charts.py" "$name" "$json" "${json%.json}.png" || echo "$name: no chart" >&2
	echo "$name: $json, ${json%.json}.png ($(($(date +%s) - bench_t0)) s)"
}

# ---- what every benchmark script shares ----

# Sets root (the repository) and build (BUILD_DIR made absolute; build/release when empty), and exits naming the
# first TOOL missing from build/bin.
bench_paths() { # build_dir tool...
	local tool
	root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	build=${1:-build/release}
	shift || true
	case $build in
	/*) ;;
	*) build=$root/$build ;;
	esac
	for tool in "$@"; do
		if [ ! -x "$build/bin/$tool" ]; then
			echo "${0##*/}: $build/bin/$tool is missing: run make bench (or make $build/bin/$tool)" >&2
			exit 1
		fi
	done
}

# One synclogd, unpinned, with its data in DIR/broker (stdout DIR/broker.out, stderr DIR/broker.err), on
# 127.0.0.1 port 0 with metrics off and FLAGS added; waits up to 10 s for its readiness line. Sets broker_pid, native
# (its address) and kafka (the Kafka listener's with --kafka-listen, else empty); exits with its stderr when it did
# not start. The scale benchmarks use broker_start instead (pinned, start-up timed).
bench_synclogd() { # dir [flags...]
	local dir=$1
	shift
	"$build/bin/synclogd" --data-dir "$dir/broker" --listen 127.0.0.1:0 --metrics off "$@" >"$dir/broker.out" \
		2>"$dir/broker.err" &
	broker_pid=$!
	for _ in $(seq 1 200); do
		grep -qs '^synclogd ready on ' "$dir/broker.out" && break
		sleep 0.05
	done
	native=$(sed -n 's/^synclogd ready on \([^ ]*\).*/\1/p' "$dir/broker.out")
	kafka=$(sed -n 's/^synclogd ready on .* kafka //p' "$dir/broker.out")
	if [ -z "$native" ]; then
		echo "${0##*/}: synclogd did not start: $(cat "$dir/broker.err")" >&2
		exit 1
	fi
}
