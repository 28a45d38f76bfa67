#!/usr/bin/env bash
# The sync tools on librdkafka's mock Kafka cluster (3 brokers, an implementation of the Kafka broker independent
# of ours): the suite of kafka_suite.sh (produce, consume, groups, apply into SQLite, offsets reset), then faults
# while an applier follows the topic: partitions' leaders move between brokers and a broker goes down and comes
# back while records are produced; the applier carries on, the producer stores each record once, and the target
# ends identical to one applied afterwards without faults.
# Usage: tests/integration/test_kafka_tools_mock.sh BUILD_DIR
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"

start_mock
KB=$MOCK_BROKER
topic_make() { mock_cmd topic "$1" "$2"; }
# The mock refuses every OffsetCommit without a member to a group that once had one (its handler looks the member
# up and answers UNKNOWN_MEMBER_ID, where Kafka accepts an empty group's): the reset of the applier's group, a
# member while it ran, is checked against synclogd's listener only.
RESET_APPLIER_GROUP=0
# Nor does it answer DescribeGroups or ListGroups: members are unknown to group describe, and status lists no group.
MEMBERS_KNOWN=0
. "$(dirname "$0")/kafka_suite.sh"

# ---- faults while an applier follows ----
mock_cmd topic moving 4 3
mock_cmd topic moving.dlq 1 3
python3 "$KCHECK" events 20000 2000 11 >"$TMP/moving.jsonl"
"$SYNCLOG" --broker "$KB" apply moving --group follower --target "sqlite:$TMP/follow.db" --follow >"$TMP/follow.out" 2>"$TMP/follow.err" &
APPLIER=$!
chunk() { # produce lines $1..$2 of the events
	sed -n "$1,$2p" "$TMP/moving.jsonl" | S produce moving --input json >>"$TMP/produced.out" 2>>"$TMP/produced.err" ||
		fail "produce $1..$2: $(cat "$TMP/produced.err")"
}
chunk 1 5000
mock_cmd leader moving 0 2
mock_cmd leader moving 1 3
chunk 5001 10000
# Broker 1 goes down with the partitions it leads; the producer and the applier wait for it.
mock_cmd down 1
sed -n '10001,15000p' "$TMP/moving.jsonl" | "$SYNCLOG" --broker "$KB" produce moving --input json >>"$TMP/produced.out" 2>>"$TMP/produced.err" &
PRODUCER=$!
sleep 2
mock_cmd up 1
wait $PRODUCER || fail "produce while a broker was down: $(cat "$TMP/produced.err")"
mock_cmd leader moving 2 1
mock_cmd leader moving 3 2
chunk 15001 20000
[ "$(grep -c '^produced 5000 records$' "$TMP/produced.out")" -eq 4 ] || fail "produced: $(cat "$TMP/produced.out")"
kill -0 $APPLIER 2>/dev/null || fail "the applier stopped: $(cat "$TMP/follow.err")"
# Caught up once the applier's commits on the cluster reach the log end of every partition.
for _ in $(seq 1 600); do
	S --json group describe follower >"$TMP/follow.desc" 2>/dev/null || true
	python3 - "$TMP/follow.desc" <<'PY' && break
import json, sys
ps = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
sys.exit(0 if len(ps) == 4 and sum(p["next_offset"] for p in ps) == 20000 and all(p["lag"] == 0 for p in ps) else 1)
PY
	kill -0 $APPLIER 2>/dev/null || fail "the applier stopped: $(cat "$TMP/follow.err")"
	sleep 0.1
done
kill -TERM $APPLIER
wait $APPLIER || fail "the applier exited $? on SIGTERM: $(cat "$TMP/follow.err")"
S --json consume moving >"$TMP/moving.json" 2>/dev/null || fail "consume moving"
[ "$(python3 "$KCHECK" count "$TMP/moving.json")" -eq 20000 ] ||
	fail "the topic holds $(python3 "$KCHECK" count "$TMP/moving.json") records, not 20000: a retry was stored twice or lost"
out=$(S apply moving --group reference --target "sqlite:$TMP/reference.db" 2>"$TMP/reference.err") ||
	fail "reference apply: $(cat "$TMP/reference.err")"
python3 "$KCHECK" expected "$TMP/moving.jsonl" "$TMP/reference.db" || fail "the reference target is wrong"
python3 "$KCHECK" same-db "$TMP/follow.db" "$TMP/reference.db" || fail "the target applied through the faults differs"
stop_mock
echo "ok"
