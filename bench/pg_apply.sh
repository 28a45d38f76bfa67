#!/usr/bin/env bash
# The PostgreSQL applier benchmark (issue 17): `synclog apply` of a backlog of 2 million change events over 200,000
# keys into a PostgreSQL server of its own (fsync and synchronous_commit on, as a user runs it), next to its floor in
# the same run: bench/pg/floor.c sending the same final upserts in the same batch sizes (records per transaction
# of the applier, from pg_stat_database) with no log, decoding or bookkeeping. Target: the applier at 0.6 of the
# floor or better. Also: COPY of the final rows into an empty table (the fastest way in), and the other ways to
# write a batch (text COPY, unnest arrays, a pipeline of single-row INSERTs) at the same batch size.
# Writes bench/results/pg_apply.json and prints a table.
#
# Usage: bench/pg_apply.sh [BUILD_DIR]          (default build/release)
#   PG_APPLY_BENCH_QUICK=1 (or BENCH_QUICK=1) 200,000 records over 20,000 keys, 2 rounds: tests this script;
#                          figures go to BUILD_DIR/pg-apply-quick.json
#   PG_APPLY_BENCH_ROUNDS=N rounds of applier and floor (default 3), interleaved, the first to run alternating
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_paths "${1:-}" synclogd synclog pg-apply-floor
quick=${PG_APPLY_BENCH_QUICK:-${BENCH_QUICK:-0}}
if [ "$quick" = 1 ]; then
	records=200000
	keys=20000
	rounds=${PG_APPLY_BENCH_ROUNDS:-2}
	out=$build/pg-apply-quick.json
else
	records=2000000
	keys=200000
	rounds=${PG_APPLY_BENCH_ROUNDS:-3}
	out=$root/bench/results/pg_apply.json
fi
partitions=4

data=$(mktemp -d /tmp/synclog-bench-pg.XXXXXX)
chmod 711 "$data"
broker_pid=
stop_broker_hard() { :; }
TMP=$data
. "$root/tests/integration/pg_lib.sh"
cleanup() {
	broker_stop
	pg_stop
	rm -rf "$data"
}
trap cleanup EXIT

bench_synclogd "$data"
SYNCLOG_BROKER=$native
export SYNCLOG_BROKER
PG_DURABLE=1 pg_start "$data/pg" || exit 1

# The backlog of bench/apply.sh: key i % keys at version i / keys + 1 (every record applies), ~90-byte JSON values.
echo "pg_apply.sh: producing $records records over $keys keys into $partitions partitions"
"$build/bin/synclog" topic create orders --partitions $partitions >/dev/null
awk -v n=$records -v k=$keys 'BEGIN {
	for (i = 0; i < n; i++)
		printf "{\"key\":\"customer-%07d\",\"version\":%d,\"value\":{\"id\":%d,\"status\":\"active\",\"plan\":\"pro\",\"seq\":%d}}\n",
		       i % k, int(i / k) + 1, i % k, i
}' | "$build/bin/synclog" produce orders --input json --acks written >"$data/produced"
[ "$(cat "$data/produced")" = "produced $records records" ] || {
	echo "pg_apply.sh: produce said: $(cat "$data/produced")" >&2
	exit 1
}

python3 - "$build/bin" "$PG_URI" "$PG_CONNINFO" "$out" "$rounds" "$records" "$keys" "$partitions" "$quick" <<'PY'
import json, os, platform, resource, statistics, subprocess, sys, time

bindir, uri, conninfo, out, rounds, records, keys, partitions, quick = sys.argv[1:]
rounds, records, keys, partitions, quick = int(rounds), int(records), int(keys), int(partitions), quick == "1"


def psql(sql):
    return subprocess.run(["psql", conninfo, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


def transactions():
    return int(psql("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"))


def load1():
    return float(open("/proc/loadavg").read().split()[0])


def settle():
    # Every run starts from the same place: nothing dirty to write back, nothing left to vacuum in its tables.
    psql("CHECKPOINT")
    subprocess.run(["sync"], check=True)


def run_apply(r):
    schema = "apply_%d" % r
    settle()
    load = load1()
    before, xact0 = resource.getrusage(resource.RUSAGE_CHILDREN), transactions()
    t0 = time.monotonic()
    p = subprocess.run([os.path.join(bindir, "synclog"), "apply", "orders", "--group", "bench-%d" % r,
                        "--target", uri, "--schema", schema], capture_output=True, text=True)
    wall = time.monotonic() - t0
    after, xact1 = resource.getrusage(resource.RUSAGE_CHILDREN), transactions()
    want = "applied %d stale 0 duplicate 0 deleted 0 dead_lettered 0" % records
    if p.returncode != 0 or p.stdout.strip() != want:
        sys.exit("pg_apply.sh: apply round %d: exit %d, said %r %r" % (r, p.returncode, p.stdout, p.stderr))
    rows = int(psql("SELECT count(*) FROM %s.entities" % schema))
    if rows != min(records, keys):
        sys.exit("pg_apply.sh: apply round %d left %d rows" % (r, rows))
    psql("DROP SCHEMA %s CASCADE" % schema)
    # The applier's transactions, less the few statements it runs outside them (opening, reading offsets).
    txns = max(1, xact1 - xact0 - 4)
    return {"round": r, "seconds": round(wall, 3), "records_per_s": round(records / wall),
            "cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 3),
            "transactions": txns, "records_per_transaction": round(records / txns),
            "loadavg_1m_at_start": load}


def run_floor(r, method, batch):
    schema = "floor_%d" % r
    settle()
    load = load1()
    p = subprocess.run([os.path.join(bindir, "pg-apply-floor"), "--conninfo", conninfo, "--records", str(records),
                        "--keys", str(keys), "--batch", str(batch), "--method", method, "--schema", schema],
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("pg_apply.sh: floor %s round %d: %s" % (method, r, p.stderr))
    res = json.loads(p.stdout)
    psql("DROP SCHEMA %s CASCADE" % schema)
    res.update({"round": r, "loadavg_1m_at_start": load})
    return res


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "rounds": len(values)}


applies, floors = [], []
batch = None
for r in range(1, rounds + 1):
    # The applier's batch size is only known once it ran: it runs first in round 1, then first every other round.
    order = ["apply", "floor"] if r % 2 == 1 or batch is None else ["floor", "apply"]
    for what in order:
        if what == "apply":
            applies.append(run_apply(r))
            x = applies[-1]
            if batch is None:
                batch = x["records_per_transaction"]
            print("round %d: apply %.2f s, %d records/s, %d transactions of %d records, cpu %.2f s"
                  % (r, x["seconds"], x["records_per_s"], x["transactions"], x["records_per_transaction"],
                     x["cpu_s"]), file=sys.stderr)
        else:
            floors.append(run_floor(r, "copy-binary", batch))
            print("round %d: floor %.2f s, %d records/s" % (r, floors[-1]["seconds"], floors[-1]["records_per_s"]),
                  file=sys.stderr)

methods = {}
for method in ["copy", "unnest", "pipeline"]:
    methods[method] = run_floor(0, method, batch)
    print("method %s: %d records/s" % (method, methods[method]["records_per_s"]), file=sys.stderr)
final = run_floor(0, "copy-final", batch)
print("COPY of the final rows: %d rows/s" % final["records_per_s"], file=sys.stderr)

apply_rate = summary([x["records_per_s"] for x in applies])
floor_rate = summary([x["records_per_s"] for x in floors])
ratio = apply_rate["median"] / floor_rate["median"]
result = {
    "benchmark": "pg_apply",
    "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "host": {"kernel": platform.release(), "machine": platform.machine(), "cpus": os.cpu_count(),
             "postgresql": psql("SHOW server_version"), "synchronous_commit": psql("SHOW synchronous_commit"),
             "fsync": psql("SHOW fsync"), "loadavg_1m_max": max(x["loadavg_1m_at_start"] for x in applies + floors)},
    "workload": {
        "records": records, "keys": keys, "partitions": partitions, "versions_per_key": records // keys,
        "value_bytes_approx": 90, "order": "every key's versions in increasing order: every record is applied",
        "target": "PostgreSQL on a Unix socket, a server of the benchmark's own, default settings",
        "timed": "the whole `synclog apply` process, from start to the end of the log",
        "floor": "bench/pg/floor.c --method copy-binary: the same final upserts in transactions of the applier's "
                 "average size, no log, no decoding, no bookkeeping",
    },
    "records_per_transaction": batch,
    "apply_records_per_s": apply_rate,
    "floor_records_per_s": floor_rate,
    "ratio_apply_to_floor": round(ratio, 3),
    "target_ratio": 0.6,
    "target_met": ratio >= 0.6,
    "methods_records_per_s": dict({"copy-binary (floor median)": floor_rate["median"]},
                                  **{m: v["records_per_s"] for m, v in methods.items()}),
    "copy_final_rows_per_s": final["records_per_s"],
    "copy_final_seconds": final["seconds"],
    "apply_runs": applies,
    "floor_runs": floors,
}
with open(out, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
print("%-44s %12s" % ("PostgreSQL, synchronous_commit on", "records/s"))
print("%-44s %12d  (min %d, max %d, %d rounds)" % ("synclog apply, median", apply_rate["median"], apply_rate["min"],
                                                     apply_rate["max"], rounds))
print("%-44s %12d  (min %d, max %d; transactions of %d)" % ("floor (same upserts, same batches), median",
                                                            floor_rate["median"], floor_rate["min"],
                                                            floor_rate["max"], batch))
print("%-44s %12.2f  (target 0.6: %s)" % ("apply / floor", ratio, "met" if ratio >= 0.6 else "MISSED"))
for m, v in methods.items():
    print("%-44s %12d" % ("floor by %s" % m, v["records_per_s"]))
print("%-44s %12d  (%d rows in %.2f s)" % ("COPY of the final rows into an empty table", final["records_per_s"],
                                           final["records"], final["seconds"]))
print("wrote %s" % out)
PY
