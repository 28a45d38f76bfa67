#!/usr/bin/env bash
# The PostgreSQL reconcile benchmark (issue 17): `synclog reconcile` of 5 million identical rows between a
# PostgreSQL source table and a PostgreSQL target (the applier's entity table), each server summing its own ranges,
# against the floor of a bare scan of both in the same run: every row of each side read to the client in key order
# (psql's COPY (SELECT key, version, value ... ORDER BY key) TO STDOUT, the fastest way to read rows out). Target:
# reconcile <= 1.5x the floor. Also: the same comparison read row by row in this process (the source a view, which
# cannot summarise: the path of any other pair of kinds), and 0.01% of the target's values changed.
# Both sides live in one server the script starts for itself (initdb in a temp dir, a Unix socket only, default
# durability), with a warm cache. Writes bench/results/pg_reconcile.json and prints a table.
#
# Usage: bench/pg_reconcile.sh [BUILD_DIR]      (default build/release)
#   PG_RECONCILE_BENCH_QUICK=1 (or BENCH_QUICK=1) 200,000 rows, 2 rounds: tests this script; figures go to
#                          BUILD_DIR/pg-reconcile-quick.json
#   PG_RECONCILE_BENCH_ROUNDS=N rounds of scans and reconcile (default 3)
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_paths "${1:-}" synclogd synclog
quick=${PG_RECONCILE_BENCH_QUICK:-${BENCH_QUICK:-0}}
if [ "$quick" = 1 ]; then
	rows=200000
	rounds=${PG_RECONCILE_BENCH_ROUNDS:-2}
	out=$build/pg-reconcile-quick.json
else
	rows=5000000
	rounds=${PG_RECONCILE_BENCH_ROUNDS:-3}
	out=$root/bench/results/pg_reconcile.json
fi

data=$(mktemp -d /tmp/synclog-bench-pgr.XXXXXX)
chmod 711 "$data"
broker_pid=
TMP=$data
. "$root/tests/integration/pg_lib.sh"
cleanup() {
	broker_stop
	pg_stop
	rm -rf "$data"
}
trap cleanup EXIT

# A broker only for `synclog apply` to make the target's tables (from an empty topic).
bench_synclogd "$data"
SYNCLOG_BROKER=$native
export SYNCLOG_BROKER
PG_DURABLE=1 pg_start "$data/pg" || exit 1
"$build/bin/synclog" topic create customers --partitions 4 >/dev/null
"$build/bin/synclog" apply customers --group bench --target "$PG_URI" --schema tgt >/dev/null

echo "pg_reconcile.sh: loading $rows rows into the source and the target"
psql "$PG_CONNINFO" -X -q -v ON_ERROR_STOP=1 <<SQL
SET client_min_messages = warning;
CREATE SCHEMA src;
CREATE TABLE src.customers (key text COLLATE "C" PRIMARY KEY, version bigint NOT NULL, name text, email text,
	plan text, score integer);
INSERT INTO src.customers SELECT 'customer-' || lpad(g::text, 8, '0'), 1 + g % 7, 'name ' || g,
	'user' || g || '@example.com', (ARRAY['free', 'pro', 'team'])[1 + g % 3], g % 1000
	FROM generate_series(0, $rows - 1) g;
CREATE VIEW src.customers_view AS SELECT * FROM src.customers;
INSERT INTO tgt.entities (key, version, value, deleted, origin, topic, "partition", "offset", applied_at_ms)
	SELECT key, version, to_jsonb(c) - 'key' - 'version', false, 'backfill', 'customers', 0, 0, 0
	FROM src.customers c;
VACUUM ANALYZE src.customers;
VACUUM ANALYZE tgt.entities;
CHECKPOINT;
SQL

python3 - "$build/bin" "$PG_URI" "$PG_CONNINFO" "$out" "$rounds" "$rows" "$quick" <<'PY'
import json, os, platform, statistics, subprocess, sys, time

bindir, uri, conninfo, out, rounds, rows, quick = sys.argv[1:]
rounds, rows, quick = int(rounds), int(rows), quick == "1"
source = uri + "&table=src.customers"


def psql(sql, stdout=subprocess.PIPE):
    p = subprocess.run(["psql", conninfo, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       check=True, stdout=stdout, stderr=subprocess.PIPE, text=True)
    return p.stdout.strip() if stdout == subprocess.PIPE else None


def load1():
    return float(open("/proc/loadavg").read().split()[0])


def scan(table, value):
    # Every row to the client, in key order: the bare read reconcile is measured against.
    with open(os.devnull, "w") as null:
        t0 = time.monotonic()
        psql("COPY (SELECT key, version, %s FROM %s ORDER BY key COLLATE \"C\") TO STDOUT" % (value, table),
             stdout=null)
        return time.monotonic() - t0


def reconcile(src, want):
    t0 = time.monotonic()
    p = subprocess.run([os.path.join(bindir, "synclog"), "--json", "reconcile", "--source", src, "--target", uri,
                        "--schema", "tgt", "--threshold", "1"], capture_output=True, text=True)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit("pg_reconcile.sh: reconcile: exit %d: %s" % (p.returncode, p.stderr))
    r = json.loads(p.stdout)
    got = (r["compared"], r["missing"] + r["extra"] + r["version"] + r["value"])
    if got != want:
        sys.exit("pg_reconcile.sh: reconcile found %r, expected %r: %s" % (got, want, p.stdout))
    return wall, r


def summary(values):
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "rounds": len(values)}


# The value as the source makes it (source_pg.c: jsonb_build_object of the other columns by name).
source_value = "jsonb_build_object('email', email, 'name', name, 'plan', plan, 'score', score)::text"
scan("src.customers c", source_value)  # the cache warm for everyone
scan("tgt.entities", "value::text")
runs = []
for r in range(1, rounds + 1):
    load = load1()
    s = scan("src.customers c", source_value)
    t = scan("tgt.entities", "value::text")
    wall, res = reconcile(source, (rows, 0))
    runs.append({"round": r, "scan_source_s": round(s, 3), "scan_target_s": round(t, 3),
                 "floor_s": round(s + t, 3), "reconcile_s": round(wall, 3), "ratio": round(wall / (s + t), 3),
                 "ranges": res["ranges"], "ranges_differing": res["ranges_differing"],
                 "loadavg_1m_at_start": load})
    print("round %d: scan of both %.2f s (%.2f + %.2f), reconcile %.2f s: %.2fx" % (r, s + t, s, t, wall,
                                                                                    wall / (s + t)),
          file=sys.stderr)

# Row by row in this process: a source that cannot summarise (a view), the way of any other pair of kinds.
walked, _ = reconcile(uri + "&table=src.customers_view", (rows, 0))
print("read row by row (a view as the source): %.2f s" % walked, file=sys.stderr)

# 0.01% of the target's values changed, spread over the key space.
drift = max(1, rows // 10000)
psql("UPDATE tgt.entities SET value = '{\"name\": \"drifted\"}' WHERE key IN (SELECT 'customer-' || "
     "lpad((g * %d)::text, 8, '0') FROM generate_series(0, %d) g)" % (rows // drift, drift - 1))
drifted, dres = reconcile(source, (rows, drift))
print("0.01%% drift (%d values): %.2f s, %d ranges read" % (drift, drifted, dres["ranges_differing"]),
      file=sys.stderr)

floor = summary([x["floor_s"] for x in runs])
rec = summary([x["reconcile_s"] for x in runs])
ratio = rec["median"] / floor["median"]
result = {
    "benchmark": "pg_reconcile",
    "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "host": {"kernel": platform.release(), "machine": platform.machine(), "cpus": os.cpu_count(),
             "postgresql": psql("SHOW server_version"),
             "loadavg_1m_max": max(x["loadavg_1m_at_start"] for x in runs)},
    "workload": {
        "rows": rows, "range_rows": 1000,
        "source": "src.customers (key text COLLATE \"C\" PRIMARY KEY, version bigint NOT NULL, 4 more columns), "
                  "the value the JSON object of the other columns (about 100 bytes)",
        "target": "tgt.entities, made by `synclog apply`, holding the same rows (value jsonb)",
        "server": "one PostgreSQL server of the benchmark's own for both sides, Unix socket, warm cache",
        "timed": "the whole `synclog reconcile` process; the floor: psql COPY (SELECT key, version, value ORDER BY "
                 "key) TO STDOUT of each side, one after the other",
    },
    "floor_s": floor,
    "reconcile_s": rec,
    "ratio_reconcile_to_floor": round(ratio, 3),
    "target_ratio": 1.5,
    "target_met": ratio <= 1.5,
    "row_by_row_s": round(walked, 3),
    "row_by_row_ratio_to_floor": round(walked / floor["median"], 3),
    "drift": {"values_changed": drift, "seconds": round(drifted, 3), "ranges_read": dres["ranges_differing"],
              "ratio_to_floor": round(drifted / floor["median"], 3)},
    "runs": runs,
}
with open(out, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
print("%-52s %10s" % ("PostgreSQL to PostgreSQL, %d rows" % rows, "seconds"))
print("%-52s %10.2f  (min %.2f, max %.2f, %d rounds)" % ("bare scan of both sides (floor), median", floor["median"],
                                                         floor["min"], floor["max"], rounds))
print("%-52s %10.2f  (min %.2f, max %.2f)" % ("synclog reconcile, servers summing, median", rec["median"],
                                              rec["min"], rec["max"]))
print("%-52s %10.2f  (target <= 1.5: %s)" % ("reconcile / floor", ratio, "met" if ratio <= 1.5 else "MISSED"))
print("%-52s %10.2f  (%.2fx the floor)" % ("reconcile read row by row (a view as source)", walked,
                                           walked / floor["median"]))
print("%-52s %10.2f  (%d values, %d ranges read)" % ("reconcile with 0.01% drift", drifted, drift,
                                                     dres["ranges_differing"]))
print("wrote %s" % out)
PY
