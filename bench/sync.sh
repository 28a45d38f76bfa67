#!/usr/bin/env bash
# The backfill and reconcile benchmark (issue 13), each figure against its floor measured in the same run:
#   1. `synclog backfill` of N rows (100-byte values) from a SQLite table, no rate limit, against `synclog produce` of
#      the same rows (same keys, versions and value bytes) from a JSON-lines file; both at acks fsync into a fresh
#      broker and a 4-partition topic. Target: backfill >= 0.8 of produce.
#   2. Live produce-to-apply latency at 20,000 records/s (sync-bench apply-latency: producer and applier in one
#      process, latency from the intended send time to the commit of the applying transaction), alone and while a
#      `synclog backfill --rate R` runs into the same topic, at R = 10,000 (half the live rate) and 50,000 (2.5
#      times it). Target: p99 with the backfill <= 1.5x alone.
#   3. `synclog reconcile` of N identical rows, against the floor of a bare full scan of both tables (SELECT key,
#      version, value read to the end, sync-bench scan), warm page cache; and of the same rows with 0.01% of the
#      target's values changed. Targets: <= 1.5x and <= 2x of the floor.
# Rounds alternate which side runs first; figures are medians. Writes bench/results/sync.json and prints a table.
#
# Usage: bench/sync.sh [BUILD_DIR]          (default build/release)
#   SYNC_BENCH_QUICK=1 (or BENCH_QUICK=1)   500,000 rows, 8 s of latency, 2 rounds: tests the script in about a
#                                           minute; figures go to BUILD_DIR/sync-quick.json
#   SYNC_BENCH_ROUNDS=N                     rounds (default 3)
#   SYNC_BENCH_PARTS=backfill,latency,reconcile   run only these parts (default all); the others' figures are kept
#                                           from the results file (the machine is shared: a part disturbed by
#                                           other work can be run again alone)
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_paths "${1:-}" synclogd synclog sync-bench
quick=${SYNC_BENCH_QUICK:-${BENCH_QUICK:-0}}
if [ "$quick" = 1 ]; then
	rows=500000
	latency_s=8
	rounds=${SYNC_BENCH_ROUNDS:-2}
	out=$build/sync-quick.json
else
	rows=5000000
	latency_s=20
	rounds=${SYNC_BENCH_ROUNDS:-3}
	out=$root/bench/results/sync.json
fi
data=$root/build/bench-sync
rm -rf "$data"
mkdir -p "$data" "$(dirname "$out")"
trap 'rm -rf "$data"' EXIT

python3 - "$build/bin" "$data" "$out" "$rows" "$latency_s" "$rounds" "${SYNC_BENCH_PARTS:-backfill,latency,reconcile}" <<'PY'
import json, os, platform, random, shutil, signal, sqlite3, statistics, subprocess, sys, time

bindir, data, out, rows, latency_s, rounds, parts = sys.argv[1:]
rows, latency_s, rounds, parts = int(rows), float(latency_s), int(rounds), set(parts.split(","))
synclogd, synclog, bench = (os.path.join(bindir, b) for b in ("synclogd", "synclog", "sync-bench"))
PAD = "x" * 75  # {"id":"NNNNNNN","pad":"..."} is 100 bytes


def log(*a):
    print("sync.sh:", *a, file=sys.stderr, flush=True)


def load1():
    return float(open("/proc/loadavg").read().split()[0])


def steal_ms():
    """CPU time the host took from this VM (all CPUs), ms: /proc/stat's 8th field, in USER_HZ ticks."""
    return int(open("/proc/stat").readline().split()[8]) * 1000 // os.sysconf("SC_CLK_TCK")


class Broker:
    def __init__(self, name):
        self.dir = os.path.join(data, name)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.out = open(self.dir + ".out", "w+")
        self.p = subprocess.Popen([synclogd, "--data-dir", self.dir, "--listen", "127.0.0.1:0", "--metrics", "off"],
                                  stdout=self.out, stderr=subprocess.DEVNULL)
        for _ in range(400):
            self.out.seek(0)
            line = self.out.read()
            if line.startswith("synclogd ready on "):
                self.addr = line.split()[3]
                return
            time.sleep(0.025)
        sys.exit("sync.sh: synclogd did not start")

    def cli(self, *args, **kw):
        return subprocess.run([synclog, "--broker", self.addr] + list(args), capture_output=True, text=True, **kw)

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        self.p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def timed(cmd, **kw):
    subprocess.run(["sync"], check=True)
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    return time.monotonic() - t0, p


# ---- the rows, as a SQLite table and as JSON lines ----
src = os.path.join(data, "src.db")
jsonl = os.path.join(data, "rows.jsonl")
log("making %d rows" % rows)
db = sqlite3.connect(src)
db.execute("PRAGMA journal_mode = WAL")
db.execute("CREATE TABLE rows (key TEXT PRIMARY KEY, version INTEGER NOT NULL, value TEXT) WITHOUT ROWID")
db.execute("WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < ?)"
           " INSERT INTO rows SELECT printf('k%%09d', i), i %% 97 + 1, printf('{\"id\":\"%%07d\",\"pad\":\"%s\"}', i %% 10000000)"
           " FROM c" % PAD, (rows - 1,))
db.commit()
assert len(db.execute("SELECT value FROM rows LIMIT 1").fetchone()[0]) == 100
if "backfill" in parts:
    with open(jsonl, "w") as f:
        for k, v, val in db.execute("SELECT key, version, value FROM rows"):
            f.write('{"key":"%s","version":%d,"value":%s}\n' % (k, v, val))
db.close()

# ---- 1. backfill against produce ----
results = json.load(open(out)) if parts != {"backfill", "latency", "reconcile"} and os.path.exists(out) else {}
results.update({"rows": rows, "rounds": rounds, "host": platform.node(), "cpus": os.cpu_count()})
if not isinstance(results.get("started_at"), dict):
    results["started_at"] = {"all": results["started_at"]} if "started_at" in results else {}
now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
runs = {"produce": [], "backfill": []}
for r in range(rounds if "backfill" in parts else 0):
    order = ["produce", "backfill"] if r % 2 == 0 else ["backfill", "produce"]
    for what in order:
        b = Broker("broker-%s-%d" % (what, r))
        b.cli("topic", "create", "t", "--partitions", "4", check=True)
        load = load1()
        if what == "produce":
            with open(jsonl) as stdin:
                secs, p = timed([synclog, "--broker", b.addr, "produce", "t", "--input", "json"], stdin=stdin)
            ok = p.stdout.strip() == "produced %d records" % rows
        else:
            secs, p = timed([synclog, "--broker", b.addr, "backfill", "t", "--source", "sqlite:%s:rows" % src,
                             "--value", "value", "--restart", "--checkpoint", os.path.join(data, "ckpt")])
            ok = p.stdout.startswith("backfilled %d rows, acknowledged %d, skipped 0" % (rows, rows))
        if p.returncode != 0 or not ok:
            sys.exit("sync.sh: %s: exit %d: %s %s" % (what, p.returncode, p.stdout, p.stderr[-500:]))
        runs[what].append({"round": r + 1, "seconds": round(secs, 3), "records_per_s": round(rows / secs),
                           "loadavg_1m_at_start": load})
        log("%s round %d: %.2f s, %d records/s" % (what, r + 1, secs, rows / secs))
        b.stop()
if "backfill" in parts:
    results["started_at"]["backfill"] = now
    med = {w: statistics.median(x["records_per_s"] for x in runs[w]) for w in runs}
    results["backfill_vs_produce"] = {"runs": runs, "produce_records_per_s": med["produce"],
                                      "backfill_records_per_s": med["backfill"],
                                      "ratio": round(med["backfill"] / med["produce"], 3), "target_ratio_min": 0.8}

# ---- 2. live produce-to-apply latency, alone and beside a paced backfill ----
BACKFILL_RATES = {"with_backfill_10000": 10000, "with_backfill_50000": 50000}
lat_runs = {"alone": [], "with_backfill_10000": [], "with_backfill_50000": []}
for r in range(rounds if "latency" in parts else 0):
    order = ["alone", "with_backfill_10000", "with_backfill_50000"]
    if r % 2 == 1:
        order.reverse()
    for what in order:
        b = Broker("broker-lat-%s-%d" % (what, r))
        b.cli("topic", "create", "live", "--partitions", "4", check=True)
        target = os.path.join(data, "lat-%s-%d.db" % (what, r))
        bf = None
        if what != "alone":
            bf = subprocess.Popen([synclog, "--broker", b.addr, "backfill", "live", "--source", "sqlite:%s:rows" % src,
                                   "--value", "value", "--rate", str(BACKFILL_RATES[what]), "--restart", "--checkpoint",
                                   os.path.join(data, "ckpt-lat")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(0.5)
        load, steal0 = load1(), steal_ms()
        p = subprocess.run([bench, "apply-latency", "--broker", b.addr, "--topic", "live", "--target", target,
                            "--rate", "20000", "--seconds", str(latency_s), "--warmup-s", "2"],
                           capture_output=True, text=True)
        backfilled = None
        if bf is not None:
            still = bf.poll() is None
            bf.send_signal(signal.SIGINT)
            bf.wait()
            if not still:
                sys.exit("sync.sh: the backfill ended before the latency run did: give it more rows")
        if p.returncode != 0:
            sys.exit("sync.sh: apply-latency %s: %s %s" % (what, p.stdout, p.stderr))
        res = json.loads(p.stdout)
        res.update({"round": r + 1, "loadavg_1m_at_start": load, "steal_ms": steal_ms() - steal0})
        lat_runs[what].append(res)
        log("latency %s round %d: p50 %.0f us p99 %.0f us (acks p99 %.0f us, store transactions p99 %.0f us, "
            "commits p99 %.0f us; load %.1f, steal %d ms)" % (what, r + 1, res["p50_us"], res["p99_us"], res["ack"]["p99_us"],
                                                 res["transaction"]["p99_us"], res["commit"]["p99_us"], load,
                                                 res["steal_ms"]))
        b.stop()
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(target + suffix):
                os.remove(target + suffix)
if "latency" in parts:
    results["started_at"]["latency"] = now
    p99 = {w: statistics.median(x["p99_us"] for x in lat_runs[w]) for w in lat_runs}
    results["live_latency"] = {"runs": lat_runs, "rate": 20000, "p99_us_alone": p99["alone"], "target_ratio_max": 1.5,
                               "with_backfill": [{"backfill_rate": BACKFILL_RATES[w], "p99_us": p99[w],
                                                  "ratio": round(p99[w] / p99["alone"], 3)}
                                                 for w in BACKFILL_RATES]}

# ---- 3. reconcile against a bare scan of both tables ----


def reconcile_part():
    b = Broker("broker-rec")
    b.cli("topic", "create", "rows", "--partitions", "4", check=True)
    tgt = os.path.join(data, "t.db")
    # The target as the applier makes it (its schema, claimed by topic rows), filled with the same rows.
    p = b.cli("apply", "rows", "--group", "g", "--target", "sqlite:" + tgt)
    if p.returncode != 0:
        sys.exit("sync.sh: apply: %s" % p.stderr)
    b.stop()
    db = sqlite3.connect(tgt)
    db.execute("ATTACH ? AS s", (src,))
    db.execute("INSERT INTO entities SELECT key, version, value, 0, NULL, 'backfill', 'rows', 0, 0, 0, NULL, NULL FROM s.rows")
    db.commit()
    db.close()
    drift_tgt = os.path.join(data, "t-drift.db")
    shutil.copy(tgt, drift_tgt)
    drift = max(1, rows // 10000)
    db = sqlite3.connect(drift_tgt)
    for i in random.Random(13).sample(range(rows), drift):
        db.execute("UPDATE entities SET value = '{\"drifted\":true}' WHERE key = ?", ("k%09d" % i,))
    db.commit()
    db.close()


    def scan(path, table):
        p = subprocess.run([bench, "scan", path, table], capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit("sync.sh: scan: %s" % p.stderr)
        r = json.loads(p.stdout)
        assert r["rows"] == rows, r
        return r["seconds"]


    def reconcile(target, want_value):
        t0 = time.monotonic()
        p = subprocess.run([synclog, "--json", "reconcile", "--source", "sqlite:%s:rows" % src, "--value", "value",
                            "--target", "sqlite:" + target, "--threshold", "1"], capture_output=True, text=True)
        secs = time.monotonic() - t0
        r = json.loads(p.stdout) if p.stdout else {}
        if p.returncode != 0 or r.get("value") != want_value or r.get("compared") != rows:
            sys.exit("sync.sh: reconcile %s: %s %s" % (target, p.stdout, p.stderr))
        return secs, r


    for path in (src, tgt, drift_tgt):  # warm the page cache once
        scan(path, "rows" if path == src else "entities")
    rec_runs = []
    for r in range(rounds):
        load = load1()
        row = {"round": r + 1, "loadavg_1m_at_start": load}
        steps = ["floor", "identical", "drift"]
        if r % 2 == 1:
            steps.reverse()
        for step in steps:
            if step == "floor":
                row["scan_source_s"] = scan(src, "rows")
                row["scan_target_s"] = scan(tgt, "entities")
                row["floor_s"] = round(row["scan_source_s"] + row["scan_target_s"], 4)
            elif step == "identical":
                secs, res = reconcile(tgt, 0)
                row["identical_s"] = round(secs, 4)
                row["identical_walked"] = res["ranges_differing"]
            else:
                secs, res = reconcile(drift_tgt, drift)
                row["drift_s"] = round(secs, 4)
                row["drift_ranges_differing"] = res["ranges_differing"]
                row["drift_ranges"] = res["ranges"]
        rec_runs.append(row)
        log("reconcile round %d: floor %.2f s, identical %.2f s, 0.01%% drift %.2f s" %
            (r + 1, row["floor_s"], row["identical_s"], row["drift_s"]))
    floor = statistics.median(x["floor_s"] for x in rec_runs)
    ident = statistics.median(x["identical_s"] for x in rec_runs)
    drifted = statistics.median(x["drift_s"] for x in rec_runs)
    results["reconcile"] = {"runs": rec_runs, "drifted_rows": drift, "floor_s": floor, "identical_s": ident,
                            "drift_s": drifted, "identical_ratio": round(ident / floor, 3),
                            "drift_ratio": round(drifted / floor, 3), "target_identical_ratio_max": 1.5,
                            "target_drift_ratio_max": 2.0}


if "reconcile" in parts:
    results["started_at"]["reconcile"] = now
    reconcile_part()
json.dump(results, open(out, "w"), indent=1)

print("| measurement | synclog | floor (same run) | ratio | target |")
print("|---|---|---|---|---|")
bv, ll, rc = results.get("backfill_vs_produce"), results.get("live_latency"), results.get("reconcile")
if bv:
    print("| backfill of %d rows, records/s | %d | produce: %d | %.2f | >= 0.8 |" %
          (rows, bv["backfill_records_per_s"], bv["produce_records_per_s"], bv["ratio"]))
for w in ll.get("with_backfill", []) if ll else []:
    print("| live p99 at 20,000/s, backfill at %d/s beside, us | %.0f | alone: %.0f | %.2f | <= 1.5 |" %
          (w["backfill_rate"], w["p99_us"], ll["p99_us_alone"], w["ratio"]))
if rc:
    print("| reconcile of %d identical rows, s | %.2f | scan of both: %.2f | %.2f | <= 1.5 |" %
          (rows, rc["identical_s"], rc["floor_s"], rc["identical_ratio"]))
    print("| reconcile with 0.01%% drift (%d rows), s | %.2f | scan of both: %.2f | %.2f | <= 2 |" %
          (rc["drifted_rows"], rc["drift_s"], rc["floor_s"], rc["drift_ratio"]))
print("sync.sh: wrote %s" % out)
PY
