#!/usr/bin/env bash
# kafka-python's group consumer against the Kafka listener: join, sync, heartbeat and commit; a restart resumes
# from the committed offsets (no record twice, none lost); `synclog group describe` shows the group's commits and
# lag 0; two consumers in one group split the partitions, and when one leaves the other takes its partitions and
# reads on from its commits (400 records in all: 200, then 100 split between two members, then 100 after the leave).
# Usage: tests/integration/test_kafka_python_group.sh BUILD_DIR (binaries in BUILD_DIR/bin).
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/kafka_python_lib.sh"

start_broker "$TMP/data" --kafka-listen 127.0.0.1:0
kpy_topic events 4 none 200 "$TMP/sent"

# ---- a consumer reads 80 and commits; a restarted one reads the other 120 ----
kpy group-run "$KAFKA_BROKER" events connect 80 >"$TMP/run1" 2>"$TMP/err" || fail "first run: $(tail -5 "$TMP/err")"
"$SYNCLOG" --json group describe connect >"$TMP/gd1.json"
"$KPY_PYTHON" -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert sum(max(r["committed"], 0) for r in rows) == 80, rows
' "$TMP/gd1.json" || fail "group describe after 80 records: $(cat "$TMP/gd1.json")"
kpy group-run "$KAFKA_BROKER" events connect 120 >"$TMP/run2" 2>"$TMP/err" || fail "restart: $(tail -5 "$TMP/err")"
"$KPY_PYTHON" - "$TMP/sent" "$TMP/run1" "$TMP/run2" <<'PY' || fail "the restart did not resume from the commits"
import json, sys
load = lambda f: [(r["partition"], r["offset"]) for r in map(json.loads, open(f)) if r]
sent, run1, run2 = map(load, sys.argv[1:4])
assert len(run1) == 80 and len(run2) == 120, (len(run1), len(run2))
assert not set(run1) & set(run2), "read twice: %s" % sorted(set(run1) & set(run2))[:5]
assert set(run1) | set(run2) == set(sent), "missed: %s" % sorted(set(sent) - set(run1) - set(run2))[:5]
PY
"$SYNCLOG" --json group describe connect >"$TMP/gd2.json"
"$KPY_PYTHON" -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert [r["partition"] for r in rows] == [0, 1, 2, 3], rows
assert all(r["lag"] == 0 and r["committed"] == r["next_offset"] for r in rows), rows
' "$TMP/gd2.json" || fail "group describe after the restart: $(cat "$TMP/gd2.json")"
"$SYNCLOG" group list | grep -q '^connect ' || fail "group list does not show connect: $("$SYNCLOG" group list)"

# ---- two consumers split the partitions; one leaves, the other takes over ----
kpy group-split "$KAFKA_BROKER" events split >"$TMP/split" 2>"$TMP/err" || fail "split: $(tail -5 "$TMP/err")"
"$SYNCLOG" --json group describe split >"$TMP/gd3.json"
"$KPY_PYTHON" -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert all(r["lag"] == 0 for r in rows) and sum(r["committed"] for r in rows) == 400, rows
' "$TMP/gd3.json" || fail "group describe of split: $(cat "$TMP/gd3.json")"
stop_broker
! grep -q 'kafka.*closing' "$TMP/broker.err" || fail "the broker closed a connection: $(grep kafka "$TMP/broker.err")"
echo ok
