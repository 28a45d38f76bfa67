#!/usr/bin/env bash
# The Kafka listener's benchmark (issue 16). Writes bench/results/kafka.json and prints a table. One broker with
# both listeners over loopback, one client process at a time:
#   produce  librdkafka (bin/kafka-bench: acks=1, linger 5 ms, murmur2_random, no compression, its defaults
#            otherwise) into the Kafka listener against our client library (bin/synclog-bench: acks written, its
#            defaults) into the native listener: the same records (16-byte distinct keys, 100-byte or 1 KiB values),
#            the same 8 partitions, the same acknowledgement (written: in the page cache). Per run: records/s,
#            the broker's CPU seconds per GB of key and value bytes (utime + stime of synclogd from /proc, read
#            before and after the run), and the client's own CPU seconds (librdkafka's cost is not the broker's).
#            Rounds alternate which client goes first; medians over ROUNDS. With 100-byte values a third client
#            runs in each round: our client with 16 KiB batches (native-16k), the request shape librdkafka sends at
#            its pace, so the broker's cost of the Kafka front end is told apart from that of smaller requests. Each
#            run also notes the requests the broker answered (synclog_requests_total, per GB), the host's steal
#            ticks (/proc/stat) and the load average.
#   replay   10 million 100-byte records (written once by synclog-bench) read from the beginning to the end by a
#            librdkafka consumer (assigned partitions, no group) through the Kafka listener against our fetcher
#            (synclog-bench replay) through the native listener; records/s and broker CPU per GB, three runs each.
#            The backlog was just written, so it is in the page cache.
#
# Usage: bench/kafka.sh [BUILD_DIR]      (default build/release; `make bench` runs it)
#   KAFKA_BENCH_QUICK=1   a tenth of the records and one round; figures to BUILD_DIR/kafka-quick.json
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_paths "${1:-}" synclogd synclog synclog-bench kafka-bench
quick=${KAFKA_BENCH_QUICK:-0}
if [ "$quick" = 1 ]; then
	small=300000 large=50000 replay=1000000 rounds=1 out=$build/kafka-quick.json
else
	small=3000000 large=500000 replay=10000000 rounds=3 out=$root/bench/results/kafka.json
fi
key_bytes=16
partitions=8

data=$root/build/bench-data-kafka
broker_pid=
cleanup() {
	broker_kill
	rm -rf "$data"
}
trap cleanup EXIT
rm -rf "$data"
mkdir -p "$data" "$(dirname "$out")"
# The metrics listener (for the request counts) on a port free a moment ago: the ready line names only the other two.
metrics=127.0.0.1:$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
bench_synclogd "$data" --kafka-listen 127.0.0.1:0 --metrics "$metrics"
clk=$(getconf CLK_TCK)
broker_cpu() { awk -v clk="$clk" '{ printf "%.2f\n", ($14 + $15) / clk }' "/proc/$broker_pid/stat"; }
steal_ticks() { awk '/^cpu / { print $9 }' /proc/stat; }
# Requests the broker answered so far (a Kafka request counts once per topic it names); -1 without metrics.
broker_requests() {
	if [ -z "$metrics" ]; then
		echo -1
		return
	fi
	curl -sf "http://$metrics/metrics" | awk '/^synclog_requests_total/ { s += $2 } END { printf "%.0f\n", s }'
}

runs=$data/runs.jsonl
# run PATH SIZE RECORDS CMD...: time one client run, record it with the broker's CPU over it.
run() {
	local path=$1 size=$2 records=$3
	shift 3
	local c0 c1 q0 q1 s0 s1 result
	sync
	q0=$(broker_requests)
	s0=$(steal_ticks)
	c0=$(broker_cpu)
	result=$("$@")
	c1=$(broker_cpu)
	s1=$(steal_ticks)
	q1=$(broker_requests)
	python3 -c '
import json, sys
r = json.loads(sys.argv[1])
q0, q1 = int(sys.argv[8]), int(sys.argv[9])
r.update(path=sys.argv[2], record_bytes=int(sys.argv[3]), expected=int(sys.argv[4]),
         broker_cpu_s=float(sys.argv[6]) - float(sys.argv[5]), key_bytes=int(sys.argv[7]),
         broker_requests=q1 - q0 if q0 >= 0 and q1 >= 0 else None, steal_ticks=int(sys.argv[11]) - int(sys.argv[10]),
         load=float(open("/proc/loadavg").read().split()[0]))
print(json.dumps(r))' "$result" "$path" "$size" "$records" "$c0" "$c1" "$key_bytes" "$q0" "$q1" "$s0" "$s1" >>"$runs"
}

for size in 100 1024; do
	records=$small
	[ "$size" = 1024 ] && records=$large
	"$build/bin/synclog" --broker "$native" topic create "native-$size" --partitions $partitions >/dev/null
	"$build/bin/synclog" --broker "$native" topic create "kafka-$size" --partitions $partitions >/dev/null
	for round in $(seq 1 "$rounds"); do
		echo "kafka.sh: produce, $size-byte values, round $round of $rounds" >&2
		native_run() {
			run native "$size" "$records" "$build/bin/synclog-bench" produce --broker "$native" \
				--topic "native-$size" --partitions $partitions --record-bytes "$size" \
				--key-bytes $key_bytes --count "$records" --acks written
		}
		kafka_run() {
			run kafka "$size" "$records" "$build/bin/kafka-bench" produce "$kafka" "kafka-$size" "$records" \
				"$size" $key_bytes 1
		}
		native_16k_run() {
			[ "$size" = 100 ] || return 0
			"$build/bin/synclog" --broker "$native" topic create "native16k-$size-$round" \
				--partitions $partitions >/dev/null
			run native-16k "$size" "$records" "$build/bin/synclog-bench" produce --broker "$native" \
				--topic "native16k-$size-$round" --partitions $partitions --record-bytes "$size" \
				--key-bytes $key_bytes --count "$records" --acks written --batch-bytes 16384
		}
		if [ $((round % 2)) = 1 ]; then
			native_run
			kafka_run
			native_16k_run
		else
			native_16k_run
			kafka_run
			native_run
		fi
	done
done

echo "kafka.sh: writing a backlog of $replay records for the replays" >&2
"$build/bin/synclog" --broker "$native" topic create backlog --partitions $partitions >/dev/null
"$build/bin/synclog-bench" produce --broker "$native" --topic backlog --partitions $partitions --record-bytes 100 \
	--key-bytes $key_bytes --count "$replay" --acks written >/dev/null
for round in $(seq 1 3); do
	echo "kafka.sh: replay round $round of 3" >&2
	run native-replay 100 "$replay" "$build/bin/synclog-bench" replay --broker "$native" --topic backlog \
		--partitions $partitions --count "$replay"
	run kafka-replay 100 "$replay" "$build/bin/kafka-bench" consume "$kafka" backlog "$replay"
done
kill -TERM "$broker_pid"
wait "$broker_pid" || {
	echo "kafka.sh: the broker exited $? on SIGTERM" >&2
	exit 1
}
broker_pid=

python3 - "$runs" "$out" "$quick" <<'PY'
import json, platform, statistics, sys, time

runs = [json.loads(l) for l in open(sys.argv[1])]
out, quick = sys.argv[2], sys.argv[3] == "1"


def med(vals):
    return statistics.median(vals) if vals else None


summary = {}
for r in runs:
    if r["records"] != r["expected"] or r.get("failed", 0):
        sys.exit("kafka.sh: a %s run handled %d of %d records" % (r["path"], r["records"], r["expected"]))
    gb = r["records"] * (r["record_bytes"] + r["key_bytes"]) / 1e9
    r["broker_cpu_s_per_gb"] = r["broker_cpu_s"] / gb
    cpu = r.get("client_cpu_s", r.get("cpu_s"))
    r["client_cpu_s_per_gb"] = cpu / gb if cpu is not None else None
    r["broker_requests_per_gb"] = r["broker_requests"] / gb if r.get("broker_requests") is not None else None
    key = "%s/%d" % (r["path"], r["record_bytes"])
    summary.setdefault(key, []).append(r)

table = {}
for key, rs in summary.items():
    table[key] = {
        "runs": len(rs),
        "records_per_s": med([r["records_per_s"] for r in rs]),
        "broker_cpu_s_per_gb": med([r["broker_cpu_s_per_gb"] for r in rs]),
        "client_cpu_s_per_gb": med([r["client_cpu_s_per_gb"] for r in rs if r["client_cpu_s_per_gb"] is not None]),
        "broker_requests_per_gb": med([r["broker_requests_per_gb"] for r in rs
                                       if r.get("broker_requests_per_gb") is not None]),
        "steal_ticks": [r.get("steal_ticks") for r in rs],
        "load": [r.get("load") for r in rs],
    }
ratios = {}
for size in (100, 1024):
    n, k = table.get("native/%d" % size), table.get("kafka/%d" % size)
    if n and k:
        ratios["produce_%d_broker_cpu_per_gb_kafka_over_native" % size] = k["broker_cpu_s_per_gb"] / n["broker_cpu_s_per_gb"]
n, k = table.get("native-16k/100"), table.get("kafka/100")
if n and k:
    ratios["produce_100_broker_cpu_per_gb_kafka_over_native_16k"] = k["broker_cpu_s_per_gb"] / n["broker_cpu_s_per_gb"]
n, k = table.get("native-replay/100"), table.get("kafka-replay/100")
if n and k:
    ratios["replay_records_per_s_kafka_over_native"] = k["records_per_s"] / n["records_per_s"]
    ratios["replay_broker_cpu_per_gb_kafka_over_native"] = k["broker_cpu_s_per_gb"] / n["broker_cpu_s_per_gb"]
json.dump({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "quick": quick,
           "machine": {"cpus": __import__("os").cpu_count(), "kernel": platform.release()},
           "summary": table, "ratios": ratios, "runs": runs}, open(out, "w"), indent=1)
print("%-20s %5s %14s %16s %16s %14s" % ("path/value bytes", "runs", "records/s", "broker CPU s/GB", "client CPU s/GB",
                                         "requests/GB"))
for key in sorted(table):
    t = table[key]
    print("%-20s %5d %14.0f %16.2f %16.2f %14.0f" % (key, t["runs"], t["records_per_s"], t["broker_cpu_s_per_gb"],
                                                     t["client_cpu_s_per_gb"] or 0, t["broker_requests_per_gb"] or 0))
for k, v in ratios.items():
    print("%s: %.2f" % (k, v))
print("written to %s" % out)
PY
