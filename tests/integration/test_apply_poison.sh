#!/usr/bin/env bash
# Acceptance 6: records the target rejects (a value that is not JSON, an empty key) land in TOPIC.dlq, created by
# the applier, each as one JSON envelope with the error and the original topic, partition and offset; the records
# after them are applied and the applier exits 0. With --values text the same value is accepted.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apply_lib.sh"

start_broker "$TMP/data"
S=$SYNCLOG
DB=$TMP/t.db
"$S" topic create billing --partitions 1 >/dev/null
echo '{"key": "inv-1", "version": 1, "value": {"total": 10}}' | "$S" produce billing --input json >/dev/null
printf 'inv-2\tthis is not JSON\n' | "$S" produce billing >/dev/null
printf '\t{"total": 0}\n' | "$S" produce billing >/dev/null
printf '%s\n' '{"key": "inv-3", "version": 1, "value": {"total": 30}}' \
	'{"key": "inv-1", "version": 2, "value": {"total": 11}}' | "$S" produce billing --input json >/dev/null

"$S" apply billing --group ledger $(target "$DB") >"$TMP/out" 2>"$TMP/err" || fail "apply: $(cat "$TMP/err")"
[ "$(cat "$TMP/out")" = "applied 3 stale 0 duplicate 0 deleted 0 dead_lettered 2" ] || fail "counters: $(cat "$TMP/out")"
[ "$(sql "$DB" "SELECT key, version, value FROM entities ORDER BY key")" = "$(printf '%s\n' 'inv-1|2|{"total":11}' \
	'inv-3|1|{"total":30}')" ] || fail "entities: $(sql "$DB" "SELECT * FROM entities")"
"$S" topic list | grep -q '^billing.dlq ' || fail "no dead-letter topic: $("$S" topic list)"
"$S" --json consume billing.dlq >"$TMP/dlq.jsonl"
python3 - "$TMP/dlq.jsonl" <<'PY' || fail "dead letters: $(cat "$TMP/dlq.jsonl")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 2, rows
bad_value, no_key = (r["value"] for r in rows)
assert rows[0]["key"] == "inv-2", rows[0]
assert bad_value["topic"] == "billing" and bad_value["partition"] == 0 and bad_value["offset"] == 1, bad_value
assert bad_value["value"] == "this is not JSON" and bad_value["key"] == "inv-2", bad_value
assert "not JSON" in bad_value["error"] and "4 times" in bad_value["error"], bad_value["error"]
assert bad_value["version"] is None and bad_value["op"] == "upsert" and bad_value["origin"] == "live", bad_value
assert isinstance(bad_value["dead_lettered_at_ms"], int) and isinstance(bad_value["timestamp_ms"], int)
assert no_key["offset"] == 2 and no_key["value"] == {"total": 0} and "no key" in no_key["error"], no_key
PY
# The dead letters' offsets are committed: a second run sends nothing again.
"$S" apply billing --group ledger $(target "$DB") >"$TMP/out"
[ "$(cat "$TMP/out")" = "applied 0 stale 0 duplicate 0 deleted 0 dead_lettered 0" ] || fail "second run: $(cat "$TMP/out")"
[ "$("$S" consume billing.dlq | wc -l)" -eq 2 ] || fail "dead letters sent twice"

# A target that stores text takes the value; the key-less record is still refused.
"$S" apply billing --group text-target $(target "$TMP/text.db") --values text >"$TMP/out"
[ "$(cat "$TMP/out")" = "applied 4 stale 0 duplicate 0 deleted 0 dead_lettered 1" ] || fail "text target: $(cat "$TMP/out")"
[ "$(sql "$TMP/text.db" "SELECT value FROM entities WHERE key = 'inv-2'")" = "this is not JSON" ] || fail "text value"
stop_broker
