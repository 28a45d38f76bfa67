#!/usr/bin/env bash
# The sync tools on a Kafka cluster (issue 20): the applier through the client library's librdkafka transport
# against its native transport, and `synclog copy` in MB/s. Writes bench/results/clusters.json and prints a table.
#
# One synclogd with both listeners over loopback holds one backlog of change events (the applier benchmark's
# shape: key i % keys at version i / keys + 1, ~90-byte JSON values, 4 partitions). The same `synclog apply`
# binary replays it into a fresh SQLite target, through the native protocol (--broker HOST:PORT) and through the
# Kafka listener with librdkafka (--broker kafka://HOST:PORT): the same records, the same broker, the same target.
# Rounds alternate which transport goes first. Per run: records/s of the whole process, its CPU seconds (utime +
# stime, from getrusage of the child) and the broker's (from /proc, before and after), as microseconds per record.
# The ratio is Kafka's median records/s over the native one's (target: at least 0.7).
#
# copy: the backlog from synclogd's native listener to its Kafka listener (a new topic: the destination a
# migration writes) and back; MB/s of key, value and header bytes over the copy phase (what `synclog copy --json`
# reports as bytes and seconds), and the whole command's wall time including the read back.
#
# Usage: bench/clusters.sh [BUILD_DIR]          (default build/release; `make bench` runs it)
#   CLUSTERS_BENCH_QUICK=1 (or BENCH_QUICK=1)   200,000 records over 20,000 keys, 2 rounds; figures to
#                                                BUILD_DIR/clusters-quick.json
#   CLUSTERS_BENCH_ROUNDS=N                      rounds per transport (default 3)
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_paths "${1:-}" synclogd synclog
quick=${CLUSTERS_BENCH_QUICK:-${BENCH_QUICK:-0}}
if [ "$quick" = 1 ]; then
	records=200000 keys=20000 rounds=${CLUSTERS_BENCH_ROUNDS:-2} out=$build/clusters-quick.json
else
	records=2000000 keys=200000 rounds=${CLUSTERS_BENCH_ROUNDS:-3} out=$root/bench/results/clusters.json
fi

data=$root/build/bench-clusters
rm -rf "$data"
mkdir -p "$data" "$(dirname "$out")"
broker_pid=
cleanup() {
	broker_stop
	rm -rf "$data"
}
trap cleanup EXIT

bench_synclogd "$data" --kafka-listen 127.0.0.1:0
kafka=kafka://$kafka

echo "clusters.sh: producing $records records over $keys keys into 4 partitions"
"$build/bin/synclog" --broker "$native" topic create orders --partitions 4 >/dev/null
awk -v n=$records -v k=$keys 'BEGIN {
	for (i = 0; i < n; i++)
		printf "{\"key\":\"customer-%07d\",\"version\":%d,\"value\":{\"id\":%d,\"status\":\"active\",\"plan\":\"pro\",\"seq\":%d}}\n",
		       i % k, int(i / k) + 1, i % k, i
}' | "$build/bin/synclog" --broker "$native" produce orders --input json --acks written >"$data/produced"
[ "$(cat "$data/produced")" = "produced $records records" ] || {
	echo "clusters.sh: produce said: $(cat "$data/produced")" >&2
	exit 1
}

python3 - "$build/bin/synclog" "$data" "$out" "$rounds" "$records" "$keys" "$native" "$kafka" "$broker_pid" <<'PY'
import json, os, platform, resource, statistics, subprocess, sys, time

synclog, data, out, rounds, records, keys, native, kafka, broker_pid = sys.argv[1:]
rounds, records, keys = int(rounds), int(records), int(keys)
tick = os.sysconf("SC_CLK_TCK")


def load1():
    return float(open("/proc/loadavg").read().split()[0])


def broker_cpu():
    fields = open("/proc/%s/stat" % broker_pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick  # utime, stime


def timed(args):
    subprocess.run(["sync"], check=True)
    load = load1()
    before, b0 = resource.getrusage(resource.RUSAGE_CHILDREN), broker_cpu()
    t0 = time.monotonic()
    p = subprocess.run(args, capture_output=True, text=True)
    wall = time.monotonic() - t0
    after, b1 = resource.getrusage(resource.RUSAGE_CHILDREN), broker_cpu()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return p, wall, cpu, b1 - b0, load


runs = {"native": [], "kafka": []}
for r in range(rounds):
    order = ["native", "kafka"] if r % 2 == 0 else ["kafka", "native"]
    for transport in order:
        db = os.path.join(data, "%s-%d.db" % (transport, r))
        broker = native if transport == "native" else kafka
        p, wall, cpu, bcpu, load = timed([synclog, "--broker", broker, "apply", "orders", "--group",
                                          "bench-%s-%d" % (transport, r), "--target", "sqlite:" + db])
        want = "applied %d stale 0 duplicate 0 deleted 0 dead_lettered 0" % records
        if p.returncode != 0 or p.stdout.strip() != want:
            sys.exit("clusters.sh: %s round %d: exit %d, said %r %r" % (transport, r + 1, p.returncode, p.stdout,
                                                                        p.stderr))
        runs[transport].append({"round": r + 1, "seconds": round(wall, 3), "records_per_s": round(records / wall),
                                "client_cpu_us_per_record": round(cpu / records * 1e6, 3),
                                "broker_cpu_us_per_record": round(bcpu / records * 1e6, 3),
                                "loadavg_1m_at_start": load})
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.remove(db + suffix)
        x = runs[transport][-1]
        print("apply %-6s round %d: %.2f s, %d records/s, client %.2f us/record, broker %.2f us/record"
              % (transport, r + 1, wall, x["records_per_s"], x["client_cpu_us_per_record"],
                 x["broker_cpu_us_per_record"]), file=sys.stderr)


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "rounds": len(values)}


apply = {t: {"records_per_s": summary([x["records_per_s"] for x in runs[t]]),
             "client_cpu_us_per_record": summary([x["client_cpu_us_per_record"] for x in runs[t]]),
             "broker_cpu_us_per_record": summary([x["broker_cpu_us_per_record"] for x in runs[t]]),
             "runs": runs[t]} for t in runs}
ratio = apply["kafka"]["records_per_s"]["median"] / apply["native"]["records_per_s"]["median"]

copies = []
for name, src, dst, topic, to in (("native to Kafka", native, kafka, "orders", "copied"),
                                  ("Kafka to native", kafka, native, "copied", "back")):
    p, wall, cpu, bcpu, load = timed([synclog, "--json", "copy", "--from", src, "--to", dst, topic, "--to-topic",
                                      to])
    if p.returncode != 0:
        sys.exit("clusters.sh: copy %s: exit %d %r" % (name, p.returncode, p.stderr))
    s = json.loads(p.stdout.strip().splitlines()[-1])
    if not s["match"] or s["records"] != records:
        sys.exit("clusters.sh: copy %s: %r" % (name, s))
    copies.append({"direction": name, "records": s["records"], "bytes": s["bytes"], "copy_seconds": s["seconds"],
                   "mb_per_s": round(s["bytes"] / s["seconds"] / 1e6, 1), "wall_seconds_with_read_back":
                   round(wall, 3), "client_cpu_s": round(cpu, 3), "broker_cpu_s": round(bcpu, 3),
                   "loadavg_1m_at_start": load})
    print("copy %s: %d records, %.1f MB/s (%.2f s; %.2f s with the read back)" % (name, records,
          copies[-1]["mb_per_s"], s["seconds"], wall), file=sys.stderr)

result = {
    "benchmark": "clusters",
    "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "host": {"kernel": platform.release(), "machine": platform.machine(), "cpus": os.cpu_count(),
             "loadavg_1m_max": max(x["loadavg_1m_at_start"] for t in runs for x in runs[t])},
    "workload": {"records": records, "keys": keys, "partitions": 4, "value_bytes_approx": 90,
                 "broker": "one synclogd, native and Kafka listeners on loopback",
                 "target": "SQLite (the applier's), a fresh database per run"},
    "apply": apply,
    "apply_ratio_kafka_to_native": round(ratio, 3),
    "apply_ratio_target": 0.7,
    "apply_ratio_met": ratio >= 0.7,
    "copy": copies,
}
with open(out, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
print("%-40s %12s %12s %12s" % ("apply into SQLite", "records/s", "client us/r", "broker us/r"))
for t in ("native", "kafka"):
    a = apply[t]
    print("%-40s %12d %12.2f %12.2f" % (t + (" (librdkafka)" if t == "kafka" else " (synclog protocol)"),
          a["records_per_s"]["median"], a["client_cpu_us_per_record"]["median"],
          a["broker_cpu_us_per_record"]["median"]))
print("%-40s %12.2f  (target 0.7: %s)" % ("ratio kafka / native", ratio, "met" if ratio >= 0.7 else "MISSED"))
for c in copies:
    print("%-40s %12.1f MB/s" % ("copy " + c["direction"], c["mb_per_s"]))
print("wrote %s" % out)
PY
