# The sync tools' suite on a Kafka cluster (sourced): the same steps against librdkafka's mock cluster
# (test_kafka_tools_mock.sh) and synclogd's own Kafka listener (test_kafka_tools_listener.sh), so that each
# implementation of the Kafka protocol checks the other and both check the client library's Kafka transport.
# Needs KB (the kafka:// broker) and topic_make NAME PARTITIONS from the caller.
#
#   1. produce 3000 change events; every keyed record is where murmur2 (Kafka's Java partitioner) puts it
#   2. consume them all without a group, then as group g1 in two runs: every record exactly once, lag 0
#   3. apply into SQLite: the newest version of every key, nothing stale or duplicate; the applier's offsets
#      reach the cluster's group (committed == log end)
#   6. health states judged client-side (idle, then records stamped 30 s old: lagging, stalled with a shorter
#      --stall-after, or stopped where the cluster says the group has no member), group list and status (records
#      from ListOffsets, what Kafka does not tell shown unknown), dead letters listed and redriven from TOPIC.dlq.
#      MEMBERS_KNOWN=0: the cluster does not describe groups (the mock), so it lists none and never says stopped.
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
# The applier's group, now that the applier has left it: the next apply adopts the reset (its mark in the
# commits, as synclogd's reset generation) and reads everything again without applying anything twice.
if [ "${RESET_APPLIER_GROUP:-1}" = 1 ]; then
	reset_check crm
	out=$(S apply orders --group crm --target "sqlite:$TMP/crm.db" 2>"$TMP/apply3.err") ||
		fail "apply after the reset: $(cat "$TMP/apply3.err")"
	grep -q "apply_reset_adopted" "$TMP/apply3.err" || fail "the reset was not adopted: $(cat "$TMP/apply3.err")"
	python3 - "$out" <<'PY' || fail "apply after the reset printed '$out'"
import sys
w = sys.argv[1].split()
n = dict(zip(w[0::2], map(int, w[1::2])))
assert n["applied"] == 0 and n["stale"] + n["duplicate"] == 3000 and n["dead_lettered"] == 0, n
PY
	# Adopted once: the next run starts where this one ended.
	out=$(S apply orders --group crm --target "sqlite:$TMP/crm.db" 2>/dev/null) || fail "apply after the adoption"
	[ "$out" = "applied 0 stale 0 duplicate 0 deleted 0 dead_lettered 0" ] || fail "the reset was adopted twice: '$out'"
fi
# A live member: the reset is refused, and --force cannot get past that on Kafka.
: >"$TMP/g2.out" # before the follower's shell opens it, so the wait below always reads a count
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

# ---- 6. health states, status, dead letters ----
KCLIENT="$BUILD/tests/kafka_client"
topic_make aged 2
S offsets reset --group aging --topic aged --to-latest --execute >/dev/null 2>"$TMP/aging.err" ||
	fail "commit of aging: $(cat "$TMP/aging.err")"
state_of() { # GROUP STALL_AFTER: the state of the group's describe, and every partition's
	S --json group describe "$1" --stall-after "$2" >"$TMP/state.json" 2>"$TMP/state.err" ||
		fail "group describe $1: $(cat "$TMP/state.json" "$TMP/state.err")"
	python3 -c 'import json,sys; print(" ".join(sorted({json.loads(l)["state"] for l in open(sys.argv[1])})))' "$TMP/state.json"
}
[ "$(state_of aging 60s)" = idle ] || fail "an empty topic's group is not idle: $(cat "$TMP/state.json")"
S group describe aging | head -1 | grep -q "state idle (stall-after 60000 ms, judged by this client)" ||
	fail "describe's header: $(S group describe aging | head -1)"
"$KCLIENT" produce "${KB#kafka://}" aged 40 8 --age-ms 30000 >/dev/null || fail "produce of old records"
if [ "${MEMBERS_KNOWN:-1}" = 1 ]; then
	# No member, records waiting: stopped, whatever their age.
	[ "$(state_of aging 1h)" = stopped ] || fail "not stopped: $(cat "$TMP/state.json")"
	[ "$(state_of aging 20s)" = stopped ] || fail "not stopped at 20s: $(cat "$TMP/state.json")"
	S --json group list --stall-after 20s >"$TMP/glist.json" 2>"$TMP/glist.err" || fail "group list: $(cat "$TMP/glist.err")"
	python3 - "$TMP/glist.json" <<'PY' || fail "group list's states: $(cat "$TMP/glist.json")"
import json, sys
gs = {g["group"]: g for g in map(json.loads, open(sys.argv[1]))}
a = gs["aging"]
assert a["state"] == "stopped" and a["lag"] == 40 and a["lag_ms"] >= 30000 and a["members"] == 0, a
assert gs["cust"]["state"] == "idle" and gs["cust"]["lag"] == 0, gs["cust"]
PY
	expect_groups=listed
else
	# Members unknown: judged by the age of the oldest waiting record (30 s) against stall-after.
	[ "$(state_of aging 1h)" = lagging ] || fail "not lagging under stall-after 1h: $(cat "$TMP/state.json")"
	[ "$(state_of aging 60s)" = lagging ] || fail "not lagging under stall-after 60s: $(cat "$TMP/state.json")"
	[ "$(state_of aging 20s)" = stalled ] || fail "not stalled under stall-after 20s: $(cat "$TMP/state.json")"
	python3 - "$TMP/state.json" <<'PY' || fail "stalled's since: $(cat "$TMP/state.json")"
import json, sys, time
for p in map(json.loads, open(sys.argv[1])):
    # since = the oldest waiting record's timestamp + 20 s, about 10 s ago; never in the future
    assert p["lag_ms"] >= 30000 and 0 < p["state_since_ms"] <= time.time() * 1000, p
PY
	expect_groups=unknown
fi
rc=0
S group alter aging --stall-after 5s >/dev/null 2>"$TMP/alter.err" || rc=$?
[ $rc -eq 1 ] && grep -q "keeps no health settings" "$TMP/alter.err" || fail "group alter on Kafka: exit $rc $(cat "$TMP/alter.err")"

# Dead letters: one record the target rejects, listed, shown and redriven from pay.dlq.
topic_make pay 1
topic_make pay.dlq 1
printf 'p-1\t{"total": 1}\np-2\tnot JSON\n' | S produce pay >/dev/null || fail "produce pay"
out=$(S apply pay --group ledger --target "sqlite:$TMP/ledger.db" --reject-retries 0 2>"$TMP/ledger.err") ||
	fail "apply pay: $(cat "$TMP/ledger.err")"
[ "$out" = "applied 1 stale 0 duplicate 0 deleted 0 dead_lettered 1" ] || fail "apply pay printed '$out'"
S --json dlq list pay --group ledger >"$TMP/letters.json" 2>"$TMP/letters.err" || fail "dlq list: $(cat "$TMP/letters.err")"
python3 - "$TMP/letters.json" <<'PY' || fail "dlq list on Kafka: $(cat "$TMP/letters.json")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 1 and rows[0]["offset"] == 1 and rows[0]["group"] == "ledger" and "not JSON" in rows[0]["error"], rows
PY
S dlq show pay --group ledger | grep -q '"value":"not JSON"' || fail "dlq show on Kafka"
out=$(S dlq redrive pay --group ledger --values text --execute 2>"$TMP/redrive.err") || fail "redrive: $(cat "$TMP/redrive.err")"
[ "$out" = "redriven 1 applied 1 stale 0 duplicate 0 deleted 0 still_rejected 0 skipped 0 gone 0" ] ||
	fail "redrive on Kafka printed '$out' $(cat "$TMP/redrive.err")"
[ "$(sqlite3 "$TMP/ledger.db" "SELECT value FROM entities WHERE key = 'p-2'")" = "not JSON" ] || fail "p-2 not redriven"

# status: topics with their records, groups as group list judges them (or unknown), letters, the unknowns.
S --json status --stall-after 20s >"$TMP/status.json" 2>"$TMP/status.err" || fail "status: $(cat "$TMP/status.err")"
python3 - "$TMP/status.json" "$expect_groups" <<'PY' || fail "status on Kafka: $(cat "$TMP/status.json")"
import json, sys
s = json.load(open(sys.argv[1]))
b = s["broker"]
assert b["kafka"] is True and b["brokers"] >= 1 and b["version"] is None and b["uptime_ms"] is None, b
ts = {t["name"]: t for t in s["topics"]}
assert ts["aged"]["records"] == 40 and ts["aged"]["partitions"] == 2 and ts["aged"]["bytes"] is None, ts["aged"]
assert ts["customers"]["records"] == 5003, ts["customers"]
assert {"topic": "pay.dlq", "records": 1} in s["dead_letters"], s["dead_letters"]
assert s["runs"] is None
if sys.argv[2] == "listed":
    gs = {g["group"]: g for g in s["groups"]}
    assert gs["aging"]["state"] == "stopped" and gs["aging"]["applier"] is None, gs["aging"]
else:
    assert s["groups"] is None and "ListGroups" in s["groups_unknown"], s
PY
S status >"$TMP/status.txt" 2>&1 || fail "status text: $(cat "$TMP/status.txt")"
grep -q "^Kafka cluster kafka://.*version, uptime, disk and connections unknown" "$TMP/status.txt" &&
	grep -q "^unknown: run reports are kept by synclogd" "$TMP/status.txt" &&
	grep -q "^pay.dlq  *1 letters" "$TMP/status.txt" || fail "status text on Kafka: $(cat "$TMP/status.txt")"
