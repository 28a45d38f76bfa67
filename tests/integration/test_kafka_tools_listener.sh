#!/usr/bin/env bash
# The sync tools on synclogd's own Kafka listener (synclogd --kafka-listen) through the client library's Kafka
# transport: the suite of kafka_suite.sh (produce, consume, groups, apply into SQLite, offsets reset), the same
# steps as against librdkafka's mock cluster (test_kafka_tools_mock.sh), so each side checks the other; then the
# topic commands through the Admin API, and what the native protocol reads back of records the Kafka transport
# wrote.
# Usage: tests/integration/test_kafka_tools_listener.sh BUILD_DIR
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"

# Segments of 1 MiB and a retention check every 200 ms: the `lost` state below needs retention to act.
start_broker "$TMP/data" --kafka-listen 127.0.0.1:0 --segment-bytes 1048576 --retention-check-ms 200
KB="kafka://$KAFKA_BROKER"
topic_make() { "$SYNCLOG" --broker "$KB" topic create "$1" --partitions "$2" >/dev/null || fail "topic create $1"; }
. "$(dirname "$0")/kafka_suite.sh"

# lost, judged client-side: retention passes a group's commit while nothing consumes.
"$SYNCLOG" topic create r --partitions 1 --retention-bytes 1500000 >/dev/null
produce_r() { seq "$1" "$2" | awk '{printf "k%d\t{\"pad\":\"%0100d\"}\n", $1, $1}' | "$SYNCLOG" produce r >/dev/null; }
earliest_r() { "$SYNCLOG" --json topic describe r | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["earliest_offset"])'; }
produce_r 1 100
S offsets reset --group old --topic r --to-offset 50 --execute >/dev/null || fail "commit of old at 50"
produce_r 101 20000
# Until retention is done: the log start past 50 and the same twice, 0.5 s apart.
prev=-1
for _ in $(seq 1 60); do
	start=$(earliest_r)
	[ "$start" -gt 50 ] && [ "$start" = "$prev" ] && break
	prev=$start
	sleep 0.5
done
[ "$start" -gt 50 ] || fail "retention removed nothing (earliest offset $start)"
S --json group describe old >"$TMP/old.json" || fail "group describe old"
python3 - "$TMP/old.json" "$start" <<'PY' || fail "old is not lost through Kafka: $(cat "$TMP/old.json")"
import json, sys
p = json.loads(open(sys.argv[1]).readline())
assert p["state"] == "lost" and p["records_lost"] == int(sys.argv[2]) - 50 and p["committed"] == 50, p
PY

# synclogd judges its own health states: --stall-after is refused there, pointing at group alter.
rc=0
"$SYNCLOG" status --stall-after 1s >/dev/null 2>"$TMP/native.err" || rc=$?
[ $rc -eq 2 ] && grep -q "group alter GROUP --stall-after" "$TMP/native.err" ||
	fail "--stall-after on synclogd: exit $rc, $(cat "$TMP/native.err")"

# ---- topics through the Admin API ----
out=$(S topic create audit --partitions 2 --retention-ms 2h --compact)
[ "$out" = "created topic audit with 2 partitions" ] || fail "topic create printed '$out'"
rc=0
S topic create audit --partitions 2 2>"$TMP/exists.err" || rc=$?
[ $rc -eq 1 ] && grep -q TOPIC_EXISTS "$TMP/exists.err" || fail "a second create: exit $rc, $(cat "$TMP/exists.err")"
S topic create audit --partitions 2 --if-not-exists | grep -q "^topic audit exists with 2 partitions$" ||
	fail "--if-not-exists on Kafka"
S --json topic list >"$TMP/list.json"
python3 - "$TMP/list.json" <<'PY' || fail "topic list through Kafka: $(cat "$TMP/list.json")"
import json, sys
ts = {t["topic"]: t for t in map(json.loads, open(sys.argv[1]))}
a = ts["audit"]
assert a["partitions"] == 2 and a["retention_ms"] == 7200000 and a["compact"] and "settings_unknown" not in a, a
assert ts["orders"]["partitions"] == 4 and ts["orders"]["retention_ms"] == -1
PY
S --json topic describe orders >"$TMP/describe.json"
"$SYNCLOG" --json topic describe orders >"$TMP/describe.native.json"
python3 - "$TMP/describe.json" "$TMP/describe.native.json" <<'PY' || fail "topic describe through Kafka and natively differ"
import json, sys
k = [json.loads(l) for l in open(sys.argv[1])]
n = [json.loads(l) for l in open(sys.argv[2])]
assert [(p["partition"], p["earliest_offset"], p["next_offset"]) for p in k] == \
       [(p["partition"], p["earliest_offset"], p["next_offset"]) for p in n]
assert all(p["bytes"] is None and p["segments"] is None for p in k)
PY
rc=0
S topic alter audit --set retention.ms=1000 2>"$TMP/alter.err" || rc=$?
[ $rc -eq 1 ] && grep -q "not available on a Kafka cluster" "$TMP/alter.err" || fail "topic alter on Kafka: $rc"
S topic delete audit | grep -q "^deleted topic audit$" || fail "topic delete through Kafka"
# A copy to a Kafka cluster that can create topics: the destination gets the source's partitions and settings.
N_TOPIC_ARGS="--partitions 3 --retention-ms 3d"
"$SYNCLOG" topic create settled $N_TOPIC_ARGS >/dev/null
printf 'a\t1\nb\t2\n' | "$SYNCLOG" produce settled >/dev/null
"$SYNCLOG" copy --from "$SYNCLOG_BROKER" --to "$KB" settled --to-topic settled.copy >"$TMP/copy.out" 2>"$TMP/copy.err" ||
	fail "copy through the listener: $(cat "$TMP/copy.err")"
S --json topic list | grep '"topic":"settled.copy"' | grep -q '"partitions":3,"retention_ms":259200000' ||
	fail "the copy's topic: $(S --json topic list | grep settled)"
# Group listing through ListGroups.
S group list | grep -q "^crm " || fail "group list through Kafka: $(S group list)"
# Two members of one group through librdkafka's group protocol: the second one's join moves half the partitions
# to it; every record is read (at least once, the group's promise), by the member that owns its partition then.
S topic create shared --partitions 4 >/dev/null
python3 "$KCHECK" events 4000 400 21 | S produce shared --input json >/dev/null
"$SYNCLOG" --broker "$KB" --json consume shared --group pair --follow >"$TMP/m1.json" 2>"$TMP/m1.err" &
M1=$!
for _ in $(seq 1 400); do [ "$(wc -l <"$TMP/m1.json")" -ge 4000 ] && break; sleep 0.05; done
"$SYNCLOG" --broker "$KB" --json consume shared --group pair --follow >"$TMP/m2.json" 2>"$TMP/m2.err" &
M2=$!
for _ in $(seq 1 400); do
	S --json group describe pair 2>/dev/null | grep -c '"member":"' | grep -qx 4 &&
		[ "$(S --json group describe pair | python3 -c 'import json,sys; print(len({json.loads(l)["member"] for l in sys.stdin}))')" -eq 2 ] && break
	sleep 0.05
done
python3 "$KCHECK" events 4000 400 22 | S produce shared --input json >/dev/null
for _ in $(seq 1 400); do
	[ "$(cat "$TMP/m1.json" "$TMP/m2.json" | python3 -c 'import json,sys; print(len({(json.loads(l)["partition"], json.loads(l)["offset"]) for l in sys.stdin}))')" -ge 8000 ] && break
	sleep 0.05
done
kill -TERM $M1 $M2
wait $M1 || fail "member 1 exited $?: $(cat "$TMP/m1.err")"
wait $M2 || fail "member 2 exited $?: $(cat "$TMP/m2.err")"
python3 - "$TMP/m1.json" "$TMP/m2.json" <<'PY' || fail "two members of a group"
import json, sys
m1 = [json.loads(l) for l in open(sys.argv[1])]
m2 = [json.loads(l) for l in open(sys.argv[2])]
ids = {(r["partition"], r["offset"]) for r in m1 + m2}
assert len(ids) == 8000, "%d distinct records read of 8000" % len(ids)
assert m2 and {r["partition"] for r in m2} < {0, 1, 2, 3}, "the second member read %d records" % len(m2)
PY
# What the Kafka transport wrote, read natively: the same records.
"$SYNCLOG" --json consume orders >"$TMP/native.json"
python3 "$KCHECK" same-records "$TMP/all.json" "$TMP/native.json" || fail "native and Kafka reads differ"
stop_broker
echo "ok"
