#!/usr/bin/env bash
# Acceptance 2 of issue 13: a backfill of an old snapshot (every row at version 1) races live updates of the same
# keys at version 2, with an applier following both. At the end the target holds the newer version of every key,
# and each backfill record that reached the log after its key's live update is in stale_events (stored 2, incoming
# 1, at its partition and offset), and no other. 100,000 rows, 20,000 live updates.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apply_lib.sh"
. "$(dirname "$0")/backfill_lib.sh"

ROWS=100000
LIVE=20000
start_broker "$TMP/data"
S=$SYNCLOG
"$S" topic create customers --partitions 3 >/dev/null
make_source "$TMP/src.db" customers $ROWS 1

"$S" apply customers --group target --target "sqlite:$TMP/t.db" --follow >"$TMP/apply.out" 2>"$TMP/apply.err" &
APPLY_PID=$!
"$S" backfill customers --source "sqlite:$TMP/src.db:customers" --rate 50000 >"$TMP/bf.out" 2>"$TMP/bf.err" &
BF_PID=$!
# Live updates of random keys at version 2, spread over the backfill's 2 s.
python3 - $ROWS $LIVE >"$TMP/live.jsonl" <<'PY'
import json, random, sys
rows, live = int(sys.argv[1]), int(sys.argv[2])
for k in random.Random(7).sample(range(rows), live):
    print(json.dumps({"key": "k%07d" % k, "version": 2, "value": {"live": True, "k": k}}))
PY
sleep 0.2
python3 - "$TMP/live.jsonl" <<'PY' | "$S" produce customers --input json >"$TMP/live.out" 2>"$TMP/live.err"
import sys, time
lines = open(sys.argv[1]).read().splitlines()
for i in range(0, len(lines), 500):
    sys.stdout.write("\n".join(lines[i:i + 500]) + "\n")
    sys.stdout.flush()
    time.sleep(0.04)
PY
grep -q "^produced $LIVE records$" "$TMP/live.out" || fail "live produce: $(cat "$TMP/live.out" "$TMP/live.err")"
wait "$BF_PID" || fail "backfill: $(cat "$TMP/bf.err")"
grep -q "^backfilled $ROWS rows, acknowledged $ROWS, skipped 0" "$TMP/bf.out" || fail "backfill: $(cat "$TMP/bf.out")"
# Let the follower catch up, then stop it and apply what is left.
for _ in $(seq 1 300); do
	[ "$(applied_through "$TMP/t.db")" -ge $((ROWS + LIVE)) ] && break
	sleep 0.1
done
kill -TERM "$APPLY_PID"
wait "$APPLY_PID" || fail "apply --follow: $(tail -3 "$TMP/apply.err")"
"$S" apply customers --group target --target "sqlite:$TMP/t.db" >/dev/null 2>"$TMP/apply.err" ||
	fail "apply: $(cat "$TMP/apply.err")"

"$S" --json consume customers >"$TMP/log.jsonl"
python3 - "$TMP/log.jsonl" "$TMP/t.db" $ROWS <<'PY' || fail "target or stale_events differ from the log"
import json, sqlite3, sys
log = [json.loads(l) for l in open(sys.argv[1])]
rows = int(sys.argv[3])
live = {r["key"]: r for r in log if r["origin"] == "live"}
back = {r["key"]: r for r in log if r["origin"] == "backfill"}
assert len(back) == rows, len(back)
db = sqlite3.connect(sys.argv[2])
got = {k: (v, val, o) for k, v, val, o in db.execute("SELECT key, version, value, origin FROM entities")}
assert len(got) == rows, len(got)
for k, b in back.items():
    v, val, origin = got[k]
    if k in live:
        assert v == 2 and origin == "live" and json.loads(val) == live[k]["value"], (k, got[k])
    else:
        assert v == 1 and origin == "backfill" and json.loads(val) == b["value"], (k, got[k])
# A backfill record after its key's live update (same partition, higher offset) is stale; one before is not.
want = sorted((k, 2, 1, "customers", b["partition"], b["offset"]) for k, b in back.items()
              if k in live and b["offset"] > live[k]["offset"])
stale = sorted(db.execute('SELECT key, stored_version, incoming_version, topic, "partition", "offset" FROM stale_events'))
assert stale == want, (len(stale), len(want), stale[:3], want[:3])
late = len(want)
early = sum(1 for k in live if back[k]["offset"] < live[k]["offset"])
print("live updates before their backfill record (stale backfill):", late, "after it:", early)
assert late > 0 and early > 0, "the backfill and the live updates did not overlap"
PY
stop_broker
