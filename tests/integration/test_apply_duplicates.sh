#!/usr/bin/env bash
# Acceptance 3: the same events delivered twice. A producer that sends its whole stream again (events carry an
# idempotency key) and one that resends a key's last version (no key) leave the target unchanged, and every second
# copy is counted as a duplicate, in the final line and in the target's stored counts.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apply_lib.sh"

start_broker "$TMP/data"
S=$SYNCLOG
"$S" topic create status --partitions 4 >/dev/null
python3 tests/integration/apply_events.py --keys 300 --count 3000 --ik --delete-every 40 --state "$TMP/state.json" \
	>"$TMP/events.jsonl"
"$S" produce status --input json <"$TMP/events.jsonl" >/dev/null
"$S" apply status --group crm $(target "$TMP/t.db") >"$TMP/first"
read -r _ applied _ stale _ dup _ deleted _ dead <"$TMP/first"
[ $((applied + deleted)) -eq 3000 ] && [ "$stale$dup$dead" = 000 ] || fail "first run: $(cat "$TMP/first")"
target_equals_source "$TMP/t.db" "$TMP/state.json"
sql "$TMP/t.db" "SELECT * FROM entities ORDER BY key" | cut -d'|' -f1-4 >"$TMP/before"

# The whole stream again: every event is recognised by its idempotency key.
"$S" produce status --input json <"$TMP/events.jsonl" >/dev/null
"$S" apply status --group crm $(target "$TMP/t.db") >"$TMP/second"
[ "$(cat "$TMP/second")" = "applied 0 stale 0 duplicate 3000 deleted 0 dead_lettered 0" ] ||
	fail "second run: $(cat "$TMP/second")"
sql "$TMP/t.db" "SELECT * FROM entities ORDER BY key" | cut -d'|' -f1-4 >"$TMP/after"
cmp -s "$TMP/before" "$TMP/after" || fail "the duplicates changed the target"
[ "$(sql "$TMP/t.db" "SELECT count(*) FROM stale_events")" -eq 0 ] || fail "duplicates were logged as stale"

# Without idempotency keys: each key's last version sent again is the same event (equal version).
python3 - "$TMP/state.json" >"$TMP/resend.jsonl" <<'PY'
import json, sys
for key, s in sorted(json.load(open(sys.argv[1]))["keys"].items()):
    ev = {"key": key, "version": s["version"]}
    if s["deleted"]:
        ev["op"] = "delete"
    else:
        ev["value"] = s["value"]
    print(json.dumps(ev))
PY
keys=$(wc -l <"$TMP/resend.jsonl")
"$S" produce status --input json <"$TMP/resend.jsonl" >/dev/null
"$S" --json apply status --group crm $(target "$TMP/t.db") >"$TMP/third"
python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); assert r == {"applied": 0, "stale": 0, "duplicate": int(sys.argv[2]), "deleted": 0, "dead_lettered": 0}, r' \
	"$TMP/third" "$keys" || fail "third run: $(cat "$TMP/third")"
sql "$TMP/t.db" "SELECT * FROM entities ORDER BY key" | cut -d'|' -f1-4 >"$TMP/after"
cmp -s "$TMP/before" "$TMP/after" || fail "the resent versions changed the target"
[ "$(sql "$TMP/t.db" "SELECT sum(duplicate) FROM synclog_offsets")" -eq $((3000 + keys)) ] || fail "stored duplicate count"
stop_broker
