#!/usr/bin/env bash
# The applier benchmark: `synclog apply` into a fresh SQLite target from a backlog of 2 million change events over
# 200,000 keys, in rounds; records/s (median, min-max) and, from it, the largest live rate whose 30-minute outage the
# target recovers from in 5 minutes. Writes bench/results/apply.json and prints a table.
#
# Usage: bench/apply.sh [BUILD_DIR]          (default build/release)
#   APPLY_BENCH_QUICK=1    (or BENCH_QUICK=1, as `make bench-quick` sets) 200,000 records over 20,000 keys,
#                          2 rounds: tests this script in seconds; figures go to BUILD_DIR/apply-quick.json
#   APPLY_BENCH_ROUNDS=N   rounds (default 3: a median with a spread)
#
# Recovery: after an outage of D seconds the backlog is L*D records for a live rate L, and while the target drains
# it at X records/s the source keeps writing at L, so it catches up in L*D / (X - L) seconds. Catching up within R
# seconds needs L <= X * R / (D + R): with D = 1800 and R = 300, L <= X / 7.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_paths "${1:-}" synclogd synclog
quick=${APPLY_BENCH_QUICK:-${BENCH_QUICK:-0}}
if [ "$quick" = 1 ]; then
	records=200000
	keys=20000
	rounds=${APPLY_BENCH_ROUNDS:-2}
	out=$build/apply-quick.json
else
	records=2000000
	keys=200000
	rounds=${APPLY_BENCH_ROUNDS:-3}
	out=$root/bench/results/apply.json
fi
partitions=4
outage_s=1800
recovery_s=300
target_records_per_s=200000

data=$root/build/bench-apply
rm -rf "$data"
mkdir -p "$data" "$(dirname "$out")"
broker_pid=
cleanup() {
	broker_stop
	rm -rf "$data"
}
trap cleanup EXIT

bench_synclogd "$data"
SYNCLOG_BROKER=$native
export SYNCLOG_BROKER

# The backlog: key i % keys at version i / keys + 1, so every key gets records/keys versions in order (each one
# applies: the rate measured is the rate of real writes), values of ~90 bytes of JSON like an entity snapshot.
echo "apply.sh: producing $records records over $keys keys into $partitions partitions"
"$build/bin/synclog" topic create orders --partitions $partitions >/dev/null
awk -v n=$records -v k=$keys 'BEGIN {
	for (i = 0; i < n; i++)
		printf "{\"key\":\"customer-%07d\",\"version\":%d,\"value\":{\"id\":%d,\"status\":\"active\",\"plan\":\"pro\",\"seq\":%d}}\n",
		       i % k, int(i / k) + 1, i % k, i
}' | "$build/bin/synclog" produce orders --input json --acks written >"$data/produced"
[ "$(cat "$data/produced")" = "produced $records records" ] || {
	echo "apply.sh: produce said: $(cat "$data/produced")" >&2
	exit 1
}

python3 - "$build/bin/synclog" "$data" "$out" "$rounds" "$records" "$keys" "$partitions" "$outage_s" "$recovery_s" \
	"$target_records_per_s" <<'PY'
import json, os, platform, resource, statistics, subprocess, sys, time

synclog, data, out, rounds, records, keys, partitions, outage_s, recovery_s, target = sys.argv[1:]
rounds, records, keys, partitions = int(rounds), int(records), int(keys), int(partitions)
outage_s, recovery_s, target = int(outage_s), int(recovery_s), int(target)


def load1():
    return float(open("/proc/loadavg").read().split()[0])


runs, loads = [], []
for r in range(rounds):
    db = os.path.join(data, "target-%d.db" % r)
    subprocess.run(["sync"], check=True)
    loads.append(load1())
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run([synclog, "apply", "orders", "--group", "bench-%d" % r, "--target", "sqlite:" + db],
                       capture_output=True, text=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    want = "applied %d stale 0 duplicate 0 deleted 0 dead_lettered 0" % records
    if p.returncode != 0 or p.stdout.strip() != want:
        sys.exit("apply.sh: round %d: exit %d, said %r %r" % (r + 1, p.returncode, p.stdout, p.stderr))
    runs.append({
        "round": r + 1,
        "seconds": round(wall, 3),
        "records_per_s": round(records / wall),
        "cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 3),
        "database_bytes": os.path.getsize(db),
        "loadavg_1m_at_start": loads[-1],
    })
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    print("round %d: %.2f s, %d records/s, cpu %.2f s" % (r + 1, wall, records / wall, runs[-1]["cpu_s"]),
          file=sys.stderr)


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "rounds": len(values)}


rate = summary([x["records_per_s"] for x in runs])
live = round(rate["median"] * recovery_s / (outage_s + recovery_s))
result = {
    "benchmark": "apply",
    "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "host": {"kernel": platform.release(), "machine": platform.machine(), "cpus": os.cpu_count(),
             "loadavg_1m_max": max(loads)},
    "workload": {
        "records": records, "keys": keys, "partitions": partitions, "versions_per_key": records // keys,
        "value_bytes_approx": 90, "order": "every key's versions in increasing order: every record is applied",
        "target": "SQLite, WAL, synchronous=NORMAL, one transaction per fetch (up to 1 MiB per partition)",
        "timed": "the whole `synclog apply` process, from start to the end of the log",
    },
    "records_per_s": rate,
    "cpu_s": summary([x["cpu_s"] for x in runs]),
    "runs": runs,
    "recovery": {
        "outage_s": outage_s, "recovery_s": recovery_s,
        "rule": "live rate L whose outage backlog L*outage drains at (X - L) within recovery: L <= X * R / (D + R)",
        "max_live_records_per_s": live,
    },
    "target_records_per_s": target,
    "target_met": rate["median"] >= target,
}
with open(out, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
print("%-34s %12s" % ("apply into SQLite", "records/s"))
print("%-34s %12d  (min %d, max %d, %d rounds)" % ("median", rate["median"], rate["min"], rate["max"], rounds))
print("%-34s %12d  (30 min outage recovered in 5 min)" % ("largest live rate", live))
print("%-34s %12s" % ("target %d records/s" % target, "met" if result["target_met"] else "MISSED"))
print("wrote %s" % out)
PY
