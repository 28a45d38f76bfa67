#!/usr/bin/env bash
# Acceptance 1 of issue 13 (the seed's criterion 3, scaled): a source table of 200,000 rows is backfilled and applied
# while a live producer updates 1% of it. Then drift is injected: rows changed (same version, another value) and
# deleted (removed, or marked deleted) directly in the target, rows added to the target, and live events withheld
# from the applier (the source moves on, the log never hears of it). `synclog reconcile` finds exactly the injected
# keys, counted by kind, exits 1 with an ALERT line above the threshold, --repair and an apply heal them, and a second
# run reports 0 and exits 0. Drift below 0.01% exits 0 and still reports its rows. Every run is kept in
# reconcile_runs.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apply_lib.sh"
. "$(dirname "$0")/backfill_lib.sh"

ROWS=200000
start_broker "$TMP/data"
S=$SYNCLOG
"$S" topic create customers --partitions 4 >/dev/null
make_source "$TMP/src.db" customers $ROWS 1
SRC="sqlite:$TMP/src.db:customers"
TGT="sqlite:$TMP/t.db"

# ---- usage ----
expect_exit 0 "$S" reconcile --help
grep -q 'usage: synclog reconcile' "$TMP/out" || fail "reconcile --help"
expect_exit 2 "$S" reconcile --source "$SRC"
expect_exit 2 "$S" reconcile --source "$SRC" --target "$TGT" --sample 0
expect_exit 2 "$S" reconcile --source "$SRC" --target "$TGT" --every soon
expect_exit 1 "$S" reconcile --source "sqlite:$TMP/src.db:nosuch" --target "$TGT"
grep -q "no table 'nosuch'" "$TMP/err" || fail "missing source table: $(cat "$TMP/err")"
expect_exit 1 "$S" reconcile --source "$SRC" --target "sqlite:$TMP/none.db"
[ "$(wc -l <"$TMP/err")" -eq 1 ] || fail "missing target: $(cat "$TMP/err")"

# ---- backfill and apply, while live updates of 1% of the rows go on (the source changes first, as a source of
# truth's would) ----
"$S" apply customers --group target --target "$TGT" --follow >"$TMP/apply.out" 2>"$TMP/apply.err" &
APPLY_PID=$!
"$S" backfill customers --source "$SRC" --rate 100000 >"$TMP/bf.out" 2>"$TMP/bf.err" &
BF_PID=$!
python3 - "$TMP/src.db" $ROWS <<'PY' | "$S" produce customers --input json >"$TMP/live.out" 2>"$TMP/live.err"
import json, random, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=10)
keys = random.Random(11).sample(range(int(sys.argv[2])), int(sys.argv[2]) // 100)
for i, k in enumerate(keys):
    key, name = "k%07d" % k, "live %d" % k
    db.execute("UPDATE customers SET version = 2, name = ? WHERE key = ?", (name, key))
    print(json.dumps({"key": key, "version": 2, "value": {"name": name, "score": k % 1000}}))
    if i % 200 == 199:
        db.commit()
        sys.stdout.flush()
        time.sleep(0.05)
db.commit()
PY
grep -q "^produced 2000 records$" "$TMP/live.out" || fail "live produce: $(cat "$TMP/live.out" "$TMP/live.err")"
wait "$BF_PID" || fail "backfill: $(cat "$TMP/bf.err")"
for _ in $(seq 1 300); do
	[ "$(applied_through "$TMP/t.db")" -ge $((ROWS + 2000)) ] && break
	sleep 0.1
done
kill -TERM "$APPLY_PID"
wait "$APPLY_PID" || fail "apply --follow: $(tail -3 "$TMP/apply.err")"
expect_exit 0 "$S" apply customers --group target --target "$TGT"

# In sync: nothing to report.
expect_exit 0 "$S" reconcile --source "$SRC" --target "$TGT"
[ "$(cat "$TMP/out")" = "compared $ROWS missing 0 extra 0 version 0 value 0 diff_ratio 0.00000000" ] ||
	fail "in sync: $(cat "$TMP/out")"

# ---- drift: 7 values, 5 removed + 3 marked deleted, 6 added, 8 withheld live events ----
python3 - "$TMP/src.db" "$TMP/t.db" "$TMP/injected.json" <<'PY'
import json, sqlite3, sys
src, tgt = sqlite3.connect(sys.argv[1]), sqlite3.connect(sys.argv[2])
inj = {"value": ["k%07d" % i for i in range(1000, 1007)],
       "missing": ["k%07d" % i for i in range(50000, 50008)],
       "extra": ["x%05d" % i for i in range(6)],
       "version": ["k%07d" % i for i in range(150000, 150008)]}
for k in inj["value"]:
    tgt.execute("UPDATE entities SET value = '{\"name\":\"changed by hand\"}' WHERE key = ?", (k,))
for k in inj["missing"][:5]:
    tgt.execute("DELETE FROM entities WHERE key = ?", (k,))
for k in inj["missing"][5:]:
    tgt.execute("UPDATE entities SET deleted = 1, deleted_at_ms = 1 WHERE key = ?", (k,))
for k in inj["extra"]:
    tgt.execute("INSERT INTO entities VALUES (?, 4, '{\"name\":\"only here\"}', 0, NULL, 'live', 'customers', 0, 0, 0, NULL, NULL)",
                (k,))
for k in inj["version"]:
    src.execute("UPDATE customers SET version = 3, name = 'withheld' WHERE key = ?", (k,))
src.commit()
tgt.commit()
json.dump(inj, open(sys.argv[3], "w"))
PY
expect_exit 2 "$S" reconcile --source "$SRC" --target "$TGT" --repair orders
grep -q "fed by topic 'customers'" "$TMP/err" || fail "--repair into another topic: $(cat "$TMP/err")"
expect_exit 1 "$S" reconcile --source "$SRC" --target "$TGT" --report "$TMP/report.jsonl" --repair customers
[ "$(head -1 "$TMP/out")" = "compared 200006 missing 8 extra 6 version 8 value 7 diff_ratio 0.00014500" ] ||
	fail "drift: $(cat "$TMP/out")"
grep -q '^ALERT reconcile' "$TMP/err" || fail "no ALERT line: $(cat "$TMP/err")"
python3 - "$TMP/report.jsonl" "$TMP/injected.json" <<'PY' || fail "the report is not the injected drift"
import json, sys
report = [json.loads(l) for l in open(sys.argv[1])]
inj = json.load(open(sys.argv[2]))
got = {}
for r in report:
    got.setdefault(r["kind"], []).append(r["key"])
    assert r["action"] == "repair" and r["repaired"] is True, r
assert {k: sorted(v) for k, v in got.items()} == {k: sorted(v) for k, v in inj.items()}, got
by_key = {r["key"]: r for r in report}
assert by_key["k0150000"]["source_version"] == 3 and by_key["k0150000"]["target_version"] == 1
assert by_key["x00000"]["source_version"] is None and by_key["x00000"]["target_version"] == 4
assert by_key["k0050005"]["target_deleted"] is True and by_key["k0050000"]["target_version"] is None
PY
expect_exit 0 "$S" apply customers --group target --target "$TGT"
expect_exit 0 "$S" reconcile --source "$SRC" --target "$TGT"
[ "$(cat "$TMP/out")" = "compared 200000 missing 0 extra 0 version 0 value 0 diff_ratio 0.00000000" ] ||
	fail "after repair: $(cat "$TMP/out")"

# ---- drift below 0.01%: 5 values of 200,000 ----
sql "$TMP/t.db" "UPDATE entities SET value = '{\"name\":\"small drift\"}' WHERE key IN ('k0000001','k0070000','k0100000','k0130000','k0199999')" >/dev/null
expect_exit 0 "$S" --json reconcile --source "$SRC" --target "$TGT" --report "$TMP/report.jsonl"
python3 -c '
import json, sys
r = json.loads(open(sys.argv[1]).read())
assert (r["compared"], r["value"], r["alert"], r["missing"] + r["extra"] + r["version"]) == (200000, 5, False, 0), r
assert abs(r["diff_ratio"] - 2.5e-05) < 1e-12, r' "$TMP/out" || fail "small drift: $(cat "$TMP/out")"
[ "$(wc -l <"$TMP/report.jsonl")" -eq 5 ] || fail "small drift report: $(cat "$TMP/report.jsonl")"
grep -q ALERT "$TMP/err" && fail "an ALERT below the threshold: $(cat "$TMP/err")"
# Sampling compares a part of the ranges and says so.
expect_exit 0 "$S" --json reconcile --source "$SRC" --target "$TGT" --sample 0.25 --seed 5 --threshold 0.5
python3 -c '
import json, sys
r = json.loads(open(sys.argv[1]).read())
assert 0 < r["ranges_compared"] < r["ranges"] and r["compared"] < 200000, r' "$TMP/out" ||
	fail "sample: $(cat "$TMP/out")"

# Every run is in the target's history.
[ "$(sql "$TMP/t.db" "SELECT count(*), sum(alert), max(repaired) FROM reconcile_runs")" = "5|1|29" ] ||
	fail "reconcile_runs: $(sql "$TMP/t.db" "SELECT * FROM reconcile_runs")"

# --every: one long-lived process runs it again and again, each run kept, until SIGTERM (exit 0).
"$S" reconcile --source "$SRC" --target "$TGT" --every 100ms >"$TMP/every.out" 2>"$TMP/every.err" &
EVERY_PID=$!
for _ in $(seq 1 300); do
	[ "$(sql "$TMP/t.db" "SELECT count(*) FROM reconcile_runs")" -ge 7 ] && break
	sleep 0.1
done
kill -TERM "$EVERY_PID"
rc=0
wait "$EVERY_PID" || rc=$?
[ "$rc" -eq 0 ] || fail "reconcile --every: exit $rc on SIGTERM: $(cat "$TMP/every.err")"
[ "$(grep -c '^compared 200000 missing 0 extra 0 version 0 value 5' "$TMP/every.out")" -ge 2 ] ||
	fail "reconcile --every printed: $(cat "$TMP/every.out")"
stop_broker
