#!/usr/bin/env bash
# Issue 17's source acceptance: a PostgreSQL table (a source of truth, key COLLATE "C") of 100,000 rows is backfilled
# from PostgreSQL (a server-side cursor, the server restarted under it) and applied into a PostgreSQL target while
# a live producer updates 1% of it. `synclog reconcile` between the two, each server summing its own ranges, reports nothing; then drift is
# injected (values changed, rows removed and marked deleted, rows added in the target, live events withheld from
# the log) and reconcile finds exactly the injected keys, counted by kind, with an ALERT; --repair and an apply heal
# them, and the next run reports 0. The same comparison without server summaries (a view: no index, no unique key)
# and against a SQLite target fed by the same topic (two orders of keys that must agree byte for byte) finds the
# same. Every run is kept in the target's schema, reconcile_runs.
set -euo pipefail
BUILD=${1:-build/release}
SL_APPLY_TARGET=postgresql
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apply_lib.sh"
. "$(dirname "$0")/backfill_lib.sh"

ROWS=100000
start_broker "$TMP/data"
S=$SYNCLOG
"$S" topic create customers --partitions 4 >/dev/null
pg_sql public "CREATE SCHEMA crm; CREATE TABLE crm.customers (key text COLLATE \"C\" PRIMARY KEY,
	version bigint NOT NULL, name text, score integer);
	INSERT INTO crm.customers SELECT 'k' || lpad(g::text, 7, '0'), 1, 'name ' || g, g % 1000
	FROM generate_series(0, $((ROWS - 1))) g;
	CREATE VIEW crm.customers_v AS SELECT * FROM crm.customers;" >/dev/null
SRC="$PG_URI&table=crm.customers"
TGT="$PG_URI"
T="$TMP/tgt.db" # the target's schema: tgt
json_field() {
	python3 -c 'import json, sys; r = json.loads(open(sys.argv[1]).read()); print(" ".join(str(r[k]) for k in sys.argv[2:]))' "$TMP/out" "$@"
}

# ---- usage and errors ----
expect_exit 1 "$S" reconcile --source "$PG_URI&table=crm.nosuch" --target "$TGT" --schema tgt
grep -q "no table or view 'crm.nosuch'" "$TMP/err" || fail "missing source table: $(cat "$TMP/err")"
expect_exit 1 "$S" reconcile --source "$SRC" --target "$TGT" --schema tgt
grep -q "no table tgt.entities" "$TMP/err" || fail "missing target: $(cat "$TMP/err")"
expect_exit 2 "$S" reconcile --source "$SRC" --target "sqlite:$TMP/x.db" --schema tgt

# ---- backfill from PostgreSQL and apply into PostgreSQL, while live updates of 1% go on (the source first) ----
"$S" apply customers --group target $(target "$T") --follow >"$TMP/apply.out" 2>"$TMP/apply.err" &
APPLY_PID=$!
"$S" backfill customers --source "$SRC" --rate 20000 --checkpoint "$TMP/bf.ck" >"$TMP/bf.out" 2>"$TMP/bf.err" &
BF_PID=$!
for i in $(seq 0 9); do
	pg_sql crm "UPDATE customers SET version = 2, name = 'live ' || key WHERE key LIKE '%${i}00'
		RETURNING json_build_object('key', key, 'version', 2, 'value',
		json_build_object('name', name, 'score', score))" >>"$TMP/live.jsonl"
	sleep 0.1
done
"$S" produce customers --input json <"$TMP/live.jsonl" >"$TMP/live.out" 2>"$TMP/live.err"
LIVE=$(wc -l <"$TMP/live.jsonl")
[ "$LIVE" -eq $((ROWS / 100)) ] || fail "live updates: $LIVE"
# The server restarts under the backfill's cursor (and the applier): the scan goes on after its last key.
kill -0 "$BF_PID" 2>/dev/null || fail "the backfill ended before the restart: make it slower"
pg_restart_fast || fail "pg_ctl restart -m fast"
wait "$BF_PID" || fail "backfill: $(cat "$TMP/bf.err")"
grep -q "^backfilled $ROWS rows, acknowledged $ROWS, skipped 0" "$TMP/bf.out" || fail "backfill: $(cat "$TMP/bf.out")"
[ "$(origin_counts customers)" = "$ROWS $ROWS" ] || fail "backfill records: $(origin_counts customers)"
for _ in $(seq 1 600); do
	[ "$(applied_through "$T")" -ge $((ROWS + LIVE)) ] && break
	sleep 0.1
done
kill -TERM "$APPLY_PID"
wait "$APPLY_PID" || fail "apply --follow: $(tail -3 "$TMP/apply.err")"
expect_exit 0 "$S" apply customers --group target $(target "$T")
# The same topic into SQLite, for the comparison across stores.
expect_exit 0 "$S" apply customers --group lite --target "sqlite:$TMP/lite.db"

# In sync: nothing to report, and no range was read row by row (the servers' sums agreed).
expect_exit 0 "$S" --json reconcile --source "$SRC" --target "$TGT" --schema tgt
[ "$(json_field compared missing extra version value ranges ranges_differing)" = "$ROWS 0 0 0 0 101 0" ] ||
	fail "in sync: $(cat "$TMP/out")"
expect_exit 0 "$S" reconcile --source "$PG_URI&table=crm.customers_v" --target "$TGT" --schema tgt
[ "$(cat "$TMP/out")" = "compared $ROWS missing 0 extra 0 version 0 value 0 diff_ratio 0.00000000" ] ||
	fail "in sync, a view: $(cat "$TMP/out")"
expect_exit 0 "$S" reconcile --source "$SRC" --target "sqlite:$TMP/lite.db"
[ "$(cat "$TMP/out")" = "compared $ROWS missing 0 extra 0 version 0 value 0 diff_ratio 0.00000000" ] ||
	fail "in sync, SQLite target: $(cat "$TMP/out")"

# ---- drift: 7 values, 5 removed + 3 marked deleted, 6 added, 8 withheld live events ----
python3 - "$TMP/injected.json" <<'PY'
import json, sys
inj = {"value": ["k%07d" % i for i in range(1000, 1007)],
       "missing": ["k%07d" % i for i in range(50000, 50008)],
       "extra": ["x%05d" % i for i in range(6)],
       "version": ["k%07d" % i for i in range(90000, 90008)]}
json.dump(inj, open(sys.argv[1], "w"))
PY
keys() {
	python3 -c 'import json, sys; print(",".join("'\''%s'\''" % k for k in json.load(open(sys.argv[1]))[sys.argv[2]][int(sys.argv[3]):int(sys.argv[4])]))' "$TMP/injected.json" "$@"
}
sql "$T" "UPDATE entities SET value = '{\"name\":\"changed by hand\"}' WHERE key IN ($(keys value 0 7));
	DELETE FROM entities WHERE key IN ($(keys missing 0 5));
	UPDATE entities SET deleted = true, deleted_at_ms = 1 WHERE key IN ($(keys missing 5 8));
	INSERT INTO entities (key, version, value, deleted, origin, topic, \"partition\", \"offset\", applied_at_ms)
	SELECT k, 4, '{\"name\":\"only here\"}', false, 'live', 'customers', 0, 0, 0
	FROM unnest(ARRAY[$(keys extra 0 6)]) k" >/dev/null
pg_sql crm "UPDATE customers SET version = 3, name = 'withheld' WHERE key IN ($(keys version 0 8))" >/dev/null

expect_exit 1 "$S" --json reconcile --source "$SRC" --target "$TGT" --schema tgt --report "$TMP/report.jsonl" \
	--repair customers
[ "$(json_field compared missing extra version value repaired)" = "100006 8 6 8 7 29" ] ||
	fail "drift: $(cat "$TMP/out")"
# Only the ranges holding a difference were read (at most one each), out of 101.
[ "$(json_field ranges_differing)" -le 29 ] || fail "drift: too many ranges read: $(cat "$TMP/out")"
grep -q '^ALERT reconcile' "$TMP/err" || fail "no ALERT line: $(cat "$TMP/err")"
python3 - "$TMP/report.jsonl" "$TMP/injected.json" <<'PY' || fail "the report is not the injected drift: $(head -c 3000 "$TMP/report.jsonl")"
import json, sys
report = [json.loads(l) for l in open(sys.argv[1])]
inj = json.load(open(sys.argv[2]))
got = {}
for r in report:
    got.setdefault(r["kind"], []).append(r["key"])
    assert r["action"] == "repair" and r["repaired"] is True, r
assert {k: sorted(v) for k, v in got.items()} == {k: sorted(v) for k, v in inj.items()}, got
by_key = {r["key"]: r for r in report}
assert by_key["k0090001"]["source_version"] == 3 and by_key["k0090001"]["target_version"] == 1
assert by_key["x00000"]["source_version"] is None and by_key["x00000"]["target_version"] == 4
assert by_key["k0050005"]["target_deleted"] is True and by_key["k0050000"]["target_version"] is None
PY
# Without the servers' sums (a view), the same drift.
expect_exit 1 "$S" reconcile --source "$PG_URI&table=crm.customers_v" --target "$TGT" --schema tgt
[ "$(head -1 "$TMP/out")" = "compared 100006 missing 8 extra 6 version 8 value 7 diff_ratio 0.00028998" ] ||
	fail "drift, a view: $(cat "$TMP/out")"

expect_exit 0 "$S" apply customers --group target $(target "$T")
expect_exit 0 "$S" reconcile --source "$SRC" --target "$TGT" --schema tgt
[ "$(cat "$TMP/out")" = "compared $ROWS missing 0 extra 0 version 0 value 0 diff_ratio 0.00000000" ] ||
	fail "after repair: $(cat "$TMP/out")"
# The SQLite target got the repairs too (the same topic): the withheld versions are there now.
expect_exit 0 "$S" apply customers --group lite --target "sqlite:$TMP/lite.db"
expect_exit 0 "$S" reconcile --source "$SRC" --target "sqlite:$TMP/lite.db"
[ "$(cat "$TMP/out")" = "compared $ROWS missing 0 extra 0 version 0 value 0 diff_ratio 0.00000000" ] ||
	fail "after repair, SQLite target: $(cat "$TMP/out")"

# A sample compares a part of the ranges and says so.
expect_exit 0 "$S" --json reconcile --source "$SRC" --target "$TGT" --schema tgt --sample 0.25 --seed 5
python3 -c '
import json, sys
r = json.loads(open(sys.argv[1]).read())
assert 0 < r["ranges_compared"] < r["ranges"] and 0 < r["compared"] < 100000, r' "$TMP/out" ||
	fail "sample: $(cat "$TMP/out")"

# Every run against the PostgreSQL target is in its history.
[ "$(sql "$T" "SELECT count(*), sum(CAST(alert AS INTEGER)), max(repaired) FROM reconcile_runs")" = "6|2|29" ] ||
	fail "reconcile_runs: $(sql "$T" "SELECT * FROM reconcile_runs")"
stop_broker
