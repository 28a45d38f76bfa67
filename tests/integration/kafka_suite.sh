# The sync tools' suite on a Kafka cluster (sourced): the same steps against librdkafka's mock cluster
# (test_kafka_tools_mock.sh) and synclogd's own Kafka listener (test_kafka_tools_listener.sh), so that each
# implementation of the Kafka protocol checks the other and both check the client library's Kafka transport.
# Needs KB (the kafka:// broker) and topic_make NAME PARTITIONS from the caller.
#
#   1. produce 3000 change events; every keyed record is where murmur2 (Kafka's Java partitioner) puts it
#   2. consume them all without a group, then as group g1 in two runs: every record exactly once, lag 0
#   3. apply into SQLite: the newest version of every key, nothing stale or duplicate; the applier's offsets
#      reach the cluster's group (committed == log end)
#   4. offsets reset through the Admin API: of a group the operator set, and (unless RESET_APPLIER_GROUP=0) of the
#      applier's group after the applier left; refused while a group has a live member, and --force refused with
#      the reason on Kafka

S() { "$SYNCLOG" --broker "$KB" "$@"; }

topic_make orders 4
topic_make orders.dlq 1
python3 "$KCHECK" events 3000 300 7 >"$TMP/events.jsonl"

# ---- 1. produce, placement ----
out=$(S produce orders --input json <"$TMP/events.jsonl" 2>"$TMP/produce.err") ||
	fail "produce: $(cat "$TMP/produce.err")"
[ "$out" = "produced 3000 records" ] || fail "produce printed '$out'"
S --json consume orders >"$TMP/all.json" 2>"$TMP/consume.err" || fail "consume: $(cat "$TMP/consume.err")"
[ "$(python3 "$KCHECK" count "$TMP/all.json")" -eq 3000 ] || fail "consume read $(python3 "$KCHECK" count "$TMP/all.json") records"
python3 "$KCHECK" placement 4 "$TMP/all.json" || fail "placement differs from murmur2"

# ---- 2. a consumer group in two runs ----
S --json consume orders --group g1 --max 1000 >"$TMP/g1a.json" 2>"$TMP/g1a.err" || fail "group run 1: $(cat "$TMP/g1a.err")"
S --json consume orders --group g1 >"$TMP/g1b.json" 2>"$TMP/g1b.err" || fail "group run 2: $(cat "$TMP/g1b.err")"
cat "$TMP/g1a.json" "$TMP/g1b.json" >"$TMP/g1.json"
python3 - "$TMP/g1.json" "$TMP/all.json" <<'PY' || fail "group g1 did not read every record once"
import json, sys
got = [json.loads(l) for l in open(sys.argv[1])]
want = [json.loads(l) for l in open(sys.argv[2])]
keys = lambda rs: sorted((r["partition"], r["offset"]) for r in rs)
if len(got) != 3000 or keys(got) != keys(want):
    sys.exit("%d records read by the group, %d distinct" % (len(got), len(set(keys(got)))))
PY
S --json group describe g1 >"$TMP/g1.desc" 2>"$TMP/g1.desc.err" || fail "group describe g1: $(cat "$TMP/g1.desc.err")"
python3 - "$TMP/g1.desc" <<'PY' || fail "group g1 is not caught up: $(cat "$TMP/g1.desc")"
import json, sys
ps = [json.loads(l) for l in open(sys.argv[1])]
assert len(ps) == 4 and all(p["lag"] == 0 and p["committed"] == p["next_offset"] for p in ps)
PY

# ---- 3. apply into SQLite ----
out=$(S apply orders --group crm --target "sqlite:$TMP/crm.db" 2>"$TMP/apply.err") || fail "apply: $(cat "$TMP/apply.err")"
case "$out" in "applied "*" stale 0 duplicate 0 deleted "*" dead_lettered 0") ;; *) fail "apply printed '$out'" ;; esac
python3 "$KCHECK" expected "$TMP/events.jsonl" "$TMP/crm.db" || fail "the target is not the newest version of each key"
S --json group describe crm >"$TMP/crm.desc" 2>"$TMP/crm.desc.err" || fail "group describe crm: $(cat "$TMP/crm.desc.err")"
python3 - "$TMP/crm.desc" <<'PY' || fail "the applier's offsets did not reach the cluster's group: $(cat "$TMP/crm.desc")"
import json, sys
ps = [json.loads(l) for l in open(sys.argv[1])]
assert len(ps) == 4 and all(p["committed"] == p["next_offset"] for p in ps if p["next_offset"] > 0)
PY
# Applied again, the target's own offsets say everything is there: nothing is applied twice.
out=$(S apply orders --group crm --target "sqlite:$TMP/crm.db" 2>"$TMP/apply2.err") || fail "apply again: $(cat "$TMP/apply2.err")"
[ "$out" = "applied 0 stale 0 duplicate 0 deleted 0 dead_lettered 0" ] || fail "apply again printed '$out'"

# ---- 4. offsets reset ----
# A group that only the operator's resets have set: to the log end, then back to the start.
S offsets reset --group ops --topic orders --to-latest --execute >"$TMP/reset.out" 2>"$TMP/reset.err" ||
	fail "offsets reset --to-latest: $(cat "$TMP/reset.err")"
S --json group describe ops >"$TMP/ops.desc" 2>/dev/null || fail "group describe ops after the reset"
python3 - "$TMP/ops.desc" <<'PY' || fail "the reset to the end did not reach the group: $(cat "$TMP/ops.desc")"
import json, sys
ps = [json.loads(l) for l in open(sys.argv[1])]
assert len(ps) == 4 and all(p["committed"] == p["next_offset"] and p["lag"] == 0 for p in ps)
PY
reset_check() { # GROUP: reset to the earliest; every partition's commit becomes 0
	S offsets reset --group "$1" --topic orders --to-earliest --execute >"$TMP/reset.out" 2>"$TMP/reset.err" ||
		fail "offsets reset of $1: $(cat "$TMP/reset.err")"
	S --json group describe "$1" >"$TMP/$1.desc2" 2>/dev/null || fail "group describe $1 after the reset"
	python3 - "$TMP/$1.desc2" <<'PY' || fail "the reset of $1 did not reach the group: $(cat "$TMP/$1.desc2")"
import json, sys
ps = [json.loads(l) for l in open(sys.argv[1])]
assert len(ps) == 4 and all(p["committed"] == 0 for p in ps)
PY
}
reset_check ops
# The applier's group, now that the applier has left it.
[ "${RESET_APPLIER_GROUP:-1}" = 0 ] || reset_check crm
# A live member: the reset is refused, and --force cannot get past that on Kafka.
"$SYNCLOG" --broker "$KB" consume orders --group g2 --follow >"$TMP/g2.out" 2>"$TMP/g2.err" &
G2=$!
for _ in $(seq 1 400); do
	[ "$(wc -l <"$TMP/g2.out")" -ge 3000 ] && break
	kill -0 $G2 2>/dev/null || fail "the follower exited: $(cat "$TMP/g2.err")"
	sleep 0.05
done
[ "$(wc -l <"$TMP/g2.out")" -ge 3000 ] || fail "the follower read $(wc -l <"$TMP/g2.out") records"
rc=0
S offsets reset --group g2 --topic orders --to-earliest --execute >/dev/null 2>"$TMP/refused.err" || rc=$?
[ $rc -eq 1 ] || fail "offsets reset of a group with a live member exited $rc"
grep -q "live member" "$TMP/refused.err" || fail "refusal: $(cat "$TMP/refused.err")"
rc=0
S offsets reset --group g2 --topic orders --to-earliest --execute --force >/dev/null 2>"$TMP/forced.err" || rc=$?
[ $rc -eq 1 ] || fail "a forced reset on Kafka exited $rc"
grep -q "forced or not" "$TMP/forced.err" || fail "forced refusal: $(cat "$TMP/forced.err")"
kill -TERM $G2
wait $G2 || fail "the follower exited $? on SIGTERM: $(cat "$TMP/g2.err")"

# ---- 5. backfill, apply, drift, reconcile --repair ----
python3 - "$TMP/src.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("CREATE TABLE customers (key TEXT PRIMARY KEY, version INTEGER NOT NULL, name TEXT)")
db.executemany("INSERT INTO customers VALUES (?, ?, ?)", (("c%05d" % i, 3, "name %d" % i) for i in range(5000)))
db.commit()
PY
topic_make customers 4
topic_make customers.dlq 1
out=$(S backfill customers --source "sqlite:$TMP/src.db:customers" --checkpoint "$TMP/bf.ckpt" 2>"$TMP/bf.err") ||
	fail "backfill: $(cat "$TMP/bf.err")"
case "$out" in "backfilled 5000 rows, acknowledged 5000, skipped 0, checksum "*) ;; *) fail "backfill printed '$out'" ;; esac
S apply customers --group cust --target "sqlite:$TMP/cust.db" >/dev/null 2>"$TMP/capply.err" ||
	fail "apply of the backfill: $(cat "$TMP/capply.err")"
out=$(S reconcile --source "sqlite:$TMP/src.db:customers" --target "sqlite:$TMP/cust.db" 2>"$TMP/rec0.err") ||
	fail "reconcile: $out $(cat "$TMP/rec0.err")"
[ "$out" = "compared 5000 missing 0 extra 0 version 0 value 0 diff_ratio 0.00000000" ] || fail "in sync: $out"
# Run reports are synclogd's: on a Kafka cluster the run says once that it was not recorded, and why.
grep -q "not recorded: run reports are kept by synclogd" "$TMP/rec0.err" || fail "reconcile's notice: $(cat "$TMP/rec0.err")"
# Drift in the target; the repair goes through the cluster as origin=repair records.
sqlite3 "$TMP/cust.db" "UPDATE entities SET value = '{\"name\":\"drifted\"}' WHERE key IN ('c00010','c00020');
	DELETE FROM entities WHERE key = 'c00030'"
rc=0
S reconcile --source "sqlite:$TMP/src.db:customers" --target "sqlite:$TMP/cust.db" --threshold 0.0001 \
	--repair customers >"$TMP/rec.out" 2>"$TMP/rec.err" || rc=$?
[ $rc -eq 1 ] && grep -q "^compared 5000 missing 1 extra 0 version 0 value 2 " "$TMP/rec.out" ||
	fail "reconcile --repair: exit $rc, $(cat "$TMP/rec.out" "$TMP/rec.err")"
S apply customers --group cust --target "sqlite:$TMP/cust.db" >/dev/null 2>"$TMP/capply2.err" ||
	fail "apply of the repairs: $(cat "$TMP/capply2.err")"
out=$(S reconcile --source "sqlite:$TMP/src.db:customers" --target "sqlite:$TMP/cust.db" 2>/dev/null) || fail "after repair: $out"
[ "$out" = "compared 5000 missing 0 extra 0 version 0 value 0 diff_ratio 0.00000000" ] || fail "after repair: $out"
[ "$(S --json consume customers | grep -c '"origin":"repair"')" -eq 3 ] || fail "not 3 repair records in the topic"
