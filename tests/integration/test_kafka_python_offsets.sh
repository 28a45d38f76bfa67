#!/usr/bin/env bash
# kafka-python's offset lookups against the Kafka listener: beginning_offsets and end_offsets agree with `synclog
# topic describe`; offsets_for_times finds, in each partition, the first record at or after a time (records carry
# CreateTime timestamps one millisecond apart), and nothing for a time after every record; seek reads from the
# offset asked, and seek_to_end stands at the end.
# Usage: tests/integration/test_kafka_python_offsets.sh BUILD_DIR (binaries in BUILD_DIR/bin).
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/kafka_python_lib.sh"

start_broker "$TMP/data" --kafka-listen 127.0.0.1:0
kpy_topic timed 3 none 300 "$TMP/sent"
# The time of the 151st record of 300: about half of each partition is at or after it.
t_ms=$("$KPY_PYTHON" -c '
import json, sys
print(sorted(json.loads(l)["timestamp_ms"] for l in open(sys.argv[1]))[150])' "$TMP/sent")
kpy offsets "$KAFKA_BROKER" timed "$t_ms" >"$TMP/offsets.json" 2>"$TMP/err" || fail "offsets: $(tail -5 "$TMP/err")"
"$SYNCLOG" --json topic describe timed >"$TMP/describe.json"
"$KPY_PYTHON" - "$TMP/sent" "$TMP/offsets.json" "$TMP/describe.json" "$t_ms" <<'PY' ||
import json, sys
sent = [json.loads(l) for l in open(sys.argv[1])]
o = json.load(open(sys.argv[2]))
describe = {str(d["partition"]): d for d in map(json.loads, open(sys.argv[3]))}
t = int(sys.argv[4])
for p, d in describe.items():
    assert o["beginning"][p] == d["earliest_offset"] == 0, (p, o["beginning"], d)
    assert o["end"][p] == d["next_offset"], (p, o["end"], d)
    rows = sorted((r for r in sent if str(r["partition"]) == p), key=lambda r: r["offset"])
    first = next((r for r in rows if r["timestamp_ms"] >= t), None)
    want = None if first is None else [first["offset"], first["timestamp_ms"]]
    assert o["times"][p] == want, (p, o["times"][p], want)
    assert o["future"][p] is None, o["future"]
p = str(o["seek_partition"])
assert o["seek_first"] == 2, o
assert o["seek_to_end"] == o["end"][p], o
PY
	fail "offsets: $(cat "$TMP/offsets.json")"
stop_broker
! grep -q 'kafka.*closing' "$TMP/broker.err" || fail "the broker closed a connection: $(grep kafka "$TMP/broker.err")"
echo ok
