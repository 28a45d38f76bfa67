#!/usr/bin/env bash
# synclog copy between synclogd and librdkafka's mock Kafka cluster, both ways: every record identical (key, value,
# version, op, origin, timestamp, and headers other clients added, which the digests cover), in its partition and
# order; a rerun copies nothing; then a copy killed with SIGKILL mid-run and run again: no record twice in the
# destination, the digests of both sides equal.
# Usage: tests/integration/test_kafka_copy.sh BUILD_DIR
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
command -v kcat >/dev/null || fail "kcat is missing (tools/install-deps.sh test)"

start_broker "$TMP/data" --kafka-listen 127.0.0.1:0
start_mock
N() { "$SYNCLOG" "$@"; }
K() { "$SYNCLOG" --broker "$MOCK_BROKER" "$@"; }

N topic create orders --partitions 4 --retention-ms 3d >/dev/null
python3 "$KCHECK" events 5000 400 3 | N produce orders --input json >/dev/null
# Records with headers of another client (kcat through synclogd's Kafka listener), keys and a null-valued one.
for i in 1 2 3; do
	printf 'h%d\tvalue %d\n' $i $i
done | kcat -P -b "$KAFKA_BROKER" -t orders -K '\t' -H trace=abc -H empty= -z none
printf 'tomb\t\n' | kcat -P -b "$KAFKA_BROKER" -t orders -K '\t' -Z
N --json consume orders >"$TMP/source.json"
total=$(python3 "$KCHECK" count "$TMP/source.json")
[ "$total" -eq 5004 ] || fail "$total records in the source"

# ---- synclogd -> Kafka -> synclogd ----
mock_cmd topic orders 4
"$SYNCLOG" copy --from "$SYNCLOG_BROKER" --to "$MOCK_BROKER" orders >"$TMP/c1.out" 2>"$TMP/c1.err" ||
	fail "copy to Kafka: $(cat "$TMP/c1.err") $(cat "$TMP/c1.out")"
tail -1 "$TMP/c1.out" | grep -q "^copied 5004 records (0 found after a crash) of orders in .*: the destination matches$" ||
	fail "copy to Kafka printed: $(cat "$TMP/c1.out")"
[ "$(grep -c ', ok$' "$TMP/c1.out")" -eq 4 ] || fail "copy to Kafka: $(cat "$TMP/c1.out")"
K --json consume orders >"$TMP/kafka.json"
python3 "$KCHECK" same-records "$TMP/source.json" "$TMP/kafka.json" || fail "the Kafka copy differs"
# Run again: nothing left to copy, the same digests.
"$SYNCLOG" copy --from "$SYNCLOG_BROKER" --to "$MOCK_BROKER" orders >"$TMP/c2.out" 2>"$TMP/c2.err" ||
	fail "copy again: $(cat "$TMP/c2.err")"
tail -1 "$TMP/c2.out" | grep -q "^copied 0 records" || fail "copy again: $(cat "$TMP/c2.out")"
diff <(head -4 "$TMP/c1.out") <(head -4 "$TMP/c2.out") >/dev/null || fail "the digests changed on a rerun"
# And back, into a topic the copy creates like the source.
"$SYNCLOG" --json copy --from "$MOCK_BROKER" --to "$SYNCLOG_BROKER" orders --to-topic back >"$TMP/c3.out" \
	2>"$TMP/c3.err" || fail "copy back: $(cat "$TMP/c3.err")"
python3 - "$TMP/c3.out" "$TMP/c1.out" <<'PY' || fail "copy back: $(cat "$TMP/c3.out")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
parts, summary = rows[:-1], rows[-1]
assert summary["match"] and summary["records"] == 5004 and summary["copied"] == 5004, summary
there = {int(l.split()[1].rstrip(":")): l.split()[5].rstrip(",") for l in open(sys.argv[2]) if l.startswith("partition")}
assert all(p["match"] and there[p["partition"]] == p["source_digest"] for p in parts), (parts, there)
PY
N --json consume back >"$TMP/back.json"
python3 "$KCHECK" same-records "$TMP/source.json" "$TMP/back.json" || fail "the round trip differs"
# The mock does not describe its topics' settings: the topic made from it keeps records forever.
N --json topic list | grep '"topic":"back"' | grep -q '"partitions":4,"retention_ms":-1' ||
	fail "the created topic: $(N --json topic list)"
kcat -C -b "$KAFKA_BROKER" -t back -e -f '%k %h\n' >"$TMP/back.headers" 2>/dev/null || fail "kcat -C back"
grep -q '^h2 trace=abc,empty=$' "$TMP/back.headers" || fail "headers lost: $(grep '^h' "$TMP/back.headers")"

# ---- kill -9 mid-copy, run again ----
N topic create big --partitions 4 >/dev/null
python3 "$KCHECK" events 60000 5000 5 | N produce big --input json >/dev/null
mock_cmd topic big 4
"$SYNCLOG" copy --from "$SYNCLOG_BROKER" --to "$MOCK_BROKER" big --rate 10000 >/dev/null 2>"$TMP/k1.err" &
COPY=$!
in_target() { K --json topic describe big | python3 -c 'import json,sys; print(sum(json.loads(l)["next_offset"] for l in sys.stdin))'; }
for _ in $(seq 1 600); do
	[ "$(in_target)" -ge 15000 ] && break
	kill -0 $COPY 2>/dev/null || fail "the copy ended before it could be killed: $(cat "$TMP/k1.err")"
	sleep 0.05
done
kill -KILL $COPY
wait $COPY 2>/dev/null || true
before=$(in_target)
[ "$before" -gt 0 ] && [ "$before" -lt 60000 ] || fail "$before records in the destination when the copy was killed"
"$SYNCLOG" copy --from "$SYNCLOG_BROKER" --to "$MOCK_BROKER" big >"$TMP/k2.out" 2>"$TMP/k2.err" ||
	fail "the copy run again: $(cat "$TMP/k2.err") $(cat "$TMP/k2.out")"
tail -1 "$TMP/k2.out" | grep -q "the destination matches$" || fail "after kill -9: $(cat "$TMP/k2.out")"
[ "$(in_target)" -eq 60000 ] || fail "$(in_target) records in the destination after kill -9 and a rerun, not 60000"
N --json consume big >"$TMP/big.src.json"
K --json consume big >"$TMP/big.dst.json"
python3 "$KCHECK" same-records "$TMP/big.src.json" "$TMP/big.dst.json" || fail "the copy after kill -9 differs"
stop_mock
stop_broker
echo "ok (killed with $before records in the destination; $(tail -1 "$TMP/k2.out"))"
