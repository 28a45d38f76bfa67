#!/usr/bin/env bash
# A compacted topic end to end: records with versions in and out of order, duplicates, deletes and unversioned
# keys over three partitions; `topic compact --wait` shrinks every partition; a replay from earliest reaches the
# state of the whole input (compact_state.py applies the applier's rules to both); a consumer that follows the
# topic while producers append and the cleaner swaps segments sees offsets strictly increasing and reaches the same
# state; settings set at create and by `topic alter` show in describe and survive a restart; with
# delete.retention.ms 0 and no group, deleted keys are gone after a clean; bad settings and compacting a topic
# that is not compacted exit 1. Sizes: 3 x 4,000 records over 300 keys; about 10 s.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
H=$(dirname "$0")
S="$SYNCLOG"
state() { python3 "$H/compact_state.py" "$@"; }
describe_field() { # TOPIC PARTITION FIELD
	"$S" --json topic describe "$1" | python3 -c "import json,sys
for l in sys.stdin:
    d = json.loads(l)
    if d['partition'] == $2: print(d['$3'])"
}

start_broker "$TMP/data" --cleaner-check-ms 100 --min-cleanable-ratio 0.01 --segment-bytes 65536
"$S" topic create users --partitions 3 --compact --retention-ms 3600000 >/dev/null || fail "create users"
[ "$("$S" --json topic list | python3 -c 'import json,sys
for l in sys.stdin:
    t = json.loads(l)
    if t["topic"] == "users": print(t["compact"], t["delete_retention_ms"], t["retain_for_groups"])')" = "True 86400000 False" ] ||
	fail "topic list does not show the compact topic's settings"

python3 "$H/compact_events.py" 11 4000 300 0 >"$TMP/in1.json"
"$S" produce users --input json <"$TMP/in1.json" >/dev/null || fail "produce round 1"

# A consumer follows from earliest while producers append and the cleaner cleans and swaps.
"$S" --json consume users --from earliest --follow >"$TMP/follow.json" 2>"$TMP/follow.err" &
follower=$!
for r in 1 2 3; do
	python3 "$H/compact_events.py" $((20 + r)) 4000 300 "$r" >"$TMP/in_r$r.json"
	"$S" produce users --input json <"$TMP/in_r$r.json" >/dev/null || fail "produce round $((r + 1))"
	"$S" topic compact users >/dev/null || fail "compact (no wait) round $r"
done
"$S" --json topic compact users --wait >"$TMP/compact.json" || fail "compact --wait: $(cat "$TMP/compact.json")"
python3 - "$TMP/compact.json" <<'PY' || fail "compact --wait did not clean every partition: $(cat "$TMP/compact.json")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 3, rows
for r in rows:
    assert "error" not in r and 0 < r["bytes_after"] <= r["bytes_before"], r
PY
cat "$TMP/in1.json" "$TMP"/in_r1.json "$TMP"/in_r2.json "$TMP"/in_r3.json >"$TMP/all.json"
state <"$TMP/all.json" >"$TMP/want"

# The follower: stop it, then read on from where it was, as a consumer resuming would.
kill -TERM "$follower"
wait "$follower" || true
for p in 0 1 2; do
	from=$(python3 -c "import json,sys
o=[json.loads(l)['offset'] for l in open(sys.argv[1]) if json.loads(l)['partition']==$p]
print(max(o)+1 if o else 'earliest')" "$TMP/follow.json")
	"$S" --json consume users --partition "$p" --from "$from" >>"$TMP/follow.json"
done
state --check-offsets <"$TMP/follow.json" >"$TMP/got_follow" || fail "the follower saw an offset twice or out of order"
diff -u "$TMP/want" "$TMP/got_follow" >/dev/null || fail "the follower's replay differs from the input's state"

# A fresh replay of the compacted topic.
"$S" --json consume users --from earliest >"$TMP/replay.json"
state --check-offsets <"$TMP/replay.json" >"$TMP/got" || fail "replay offsets not increasing"
diff -u "$TMP/want" "$TMP/got" || fail "the compacted topic replays to another state than its input"
[ "$(wc -l <"$TMP/replay.json")" -lt "$(wc -l <"$TMP/all.json")" ] || fail "nothing was compacted away"
[ "$(describe_field users 0 dirty_ratio)" = "0.0" ] || fail "dirty ratio after compact --wait is not 0"

# Settings: alter, then restart.
"$S" topic alter users --set delete.retention.ms=5000 --set retention.bytes=100000000 --set retain.for.groups=true \
	--set segment.bytes=2097152 >/dev/null || fail "alter"
"$S" topic alter users --set bogus=1 2>"$TMP/err" && fail "alter with an unknown key exited 0"
grep -q "unknown topic setting 'bogus'" "$TMP/err" || fail "unknown key message: $(cat "$TMP/err")"
"$S" topic alter users --set retention.ms=abc 2>/dev/null && fail "alter with a bad value exited 0"
stop_broker
start_broker "$TMP/data" --cleaner-check-ms 100
"$S" --json topic list | python3 -c 'import json,sys
t = {r["topic"]: r for r in map(json.loads, sys.stdin)}["users"]
want = {"partitions": 3, "retention_ms": 3600000, "retention_bytes": 100000000, "compact": True,
        "delete_retention_ms": 5000, "retain_for_groups": True, "segment_bytes": 2097152}
assert all(t[k] == v for k, v in want.items()), t' || fail "settings did not survive the restart: $("$S" --json topic list)"
"$S" --json consume users --from earliest | state >"$TMP/got2"
diff -q "$TMP/want" "$TMP/got2" >/dev/null || fail "state changed across the restart"

# Tombstones that expire at once, with no group: deleted keys are absent after a clean.
"$S" topic create events --partitions 1 --compact --delete-retention-ms 0 >/dev/null || fail "create events"
python3 "$H/compact_events.py" 5 3000 100 0 >"$TMP/ev.json"
"$S" produce events --input json <"$TMP/ev.json" >/dev/null || fail "produce events"
"$S" topic compact events --wait >/dev/null || fail "compact events"
state --absent-deleted <"$TMP/ev.json" >"$TMP/want_ev"
"$S" --json consume events --from earliest | state >"$TMP/got_ev"
diff -u "$TMP/want_ev" "$TMP/got_ev" || fail "deleted keys are still replayed after their tombstones expired"

"$S" topic create plain --partitions 1 >/dev/null
"$S" topic compact plain 2>"$TMP/err" && fail "compacting a topic that is not compacted exited 0"
grep -q "not compacted" "$TMP/err" || fail "message: $(cat "$TMP/err")"
stop_broker
echo ok
