#!/usr/bin/env bash
# Records cross the two front ends intact with kafka-python: a KafkaProducer (acks=all, keys, headers v and origin,
# CreateTime timestamps, compression none, zstd, gzip, lz4 and snappy) is read back by kafka-python and by `synclog
# consume` (version and origin from the headers, same timestamps, same offsets); records of `synclog produce` are
# read by kafka-python with their headers (v, op, origin, ik), a null value for a delete, and their timestamps.
# gzip, lz4 and snappy batches were refused (UNSUPPORTED_COMPRESSION_TYPE) until the listener made them plain
# (broker/kafka/inflate.c).
# Usage: tests/integration/test_kafka_python_records.sh BUILD_DIR (binaries in BUILD_DIR/bin).
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/kafka_python_lib.sh"

start_broker "$TMP/data" --kafka-listen 127.0.0.1:0

# ---- kafka-python produces, kafka-python and synclog read ----
for codec in none zstd gzip lz4 snappy; do
	kpy_topic "k_$codec" 3 "$codec" 300 "$TMP/sent.$codec"
	kpy read "$KAFKA_BROKER" "k_$codec" >"$TMP/kread.$codec" 2>"$TMP/err" ||
		fail "kafka-python read ($codec): $(tail -5 "$TMP/err")"
	"$SYNCLOG" --json consume "k_$codec" --from earliest >"$TMP/native.$codec"
	"$KPY_PYTHON" - "$TMP/sent.$codec" "$TMP/kread.$codec" "$TMP/native.$codec" <<'PY' ||
import json, sys
load = lambda f: [json.loads(l) for l in open(f) if l.strip()]
sent, kread, native = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[3])
at = lambda rows: {(r["partition"], r["offset"]): r for r in rows}
assert len(sent) == 300 and len(at(sent)) == 300, "acknowledged %d distinct offsets" % len(at(sent))
assert at(kread) == at(sent), "kafka-python read differs: %s" % next(
    (a, at(kread).get(a)) for a in at(sent) if at(kread).get(a) != at(sent)[a])
for r in native:
    s = at(sent)[(r["partition"], r["offset"])]
    v = dict(s["headers"])
    want = (s["key"], json.loads(s["value"]), int(v["v"]), "backfill", "upsert", s["timestamp_ms"])
    got = (r["key"], r["value"], r["version"], r["origin"], r["op"], r["timestamp_ms"])
    assert got == want, "synclog consume read %s, kafka-python sent %s" % (got, want)
assert len(native) == 300, "synclog consume read %d records" % len(native)
# Per key, the offsets of a partition follow the order of sending.
for p in {r["partition"] for r in sent}:
    rows = sorted((r for r in sent if r["partition"] == p), key=lambda r: r["offset"])
    assert [int(dict(r["headers"])["v"]) for r in rows] == sorted(int(dict(r["headers"])["v"]) for r in rows)
PY
		fail "records produced by kafka-python with $codec"
done

# ---- synclog produces, kafka-python reads ----
"$SYNCLOG" topic create native --partitions 1 >/dev/null
printf '%s\n' '{"key":"a","version":3,"value":{"x":1},"idempotency_key":"ik-1"}' \
	'{"key":"a","version":4,"op":"delete"}' '{"key":"b","version":1,"value":"text"}' |
	"$SYNCLOG" produce native --input json --origin repair >/dev/null
"$SYNCLOG" --json consume native --from earliest >"$TMP/native.json"
kpy read "$KAFKA_BROKER" native >"$TMP/kread.json" 2>"$TMP/err" ||
	fail "kafka-python read native: $(tail -5 "$TMP/err")"
"$KPY_PYTHON" - "$TMP/native.json" "$TMP/kread.json" <<'PY' || fail "records of synclog produce read by kafka-python"
import json, sys
native = [json.loads(l) for l in open(sys.argv[1])]
kread = [json.loads(l) for l in open(sys.argv[2])]
want = [
    ("a", '{"x":1}', [["v", "3"], ["origin", "repair"], ["ik", "ik-1"]]),
    ("a", None, [["v", "4"], ["op", "delete"], ["origin", "repair"]]),
    ("b", '"text"', [["v", "1"], ["origin", "repair"]]),
]
got = [(r["key"], r["value"], r["headers"]) for r in kread]
assert got == want, got
assert [r["offset"] for r in kread] == [0, 1, 2], kread
assert [r["timestamp_ms"] for r in kread] == [r["timestamp_ms"] for r in native], (kread, native)
PY
stop_broker
! grep -q 'kafka.*closing' "$TMP/broker.err" || fail "the broker closed a connection: $(grep kafka "$TMP/broker.err")"
echo ok
