#!/usr/bin/env bash
# Issue 14, `synclog status`: one screen (broker, topics, groups with state and applier counters, dead letters,
# runs), one JSON object with --json, no colour off a terminal or with NO_COLOR, and --watch redraws until
# interrupted, and the runs `synclog reconcile` reports. Also `group alter` sets a group's health settings, shown by
# describe.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"

start_broker "$TMP/data"
S=$SYNCLOG
"$S" topic create orders --partitions 2 >/dev/null
printf 'a\t{"n": 1}\nb\tnot JSON\n' | "$S" produce orders >/dev/null
"$S" apply orders --group ledger --target "sqlite:$TMP/t.db" --reject-retries 0 >/dev/null
"$S" --json status >"$TMP/status.json"
python3 - "$TMP/status.json" "$TMP/data" <<'PY' || fail "status --json: $(cat "$TMP/status.json")"
import json, os, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, lines
s = json.loads(lines[0])
b = s["broker"]
assert b["version"] and b["uptime_ms"] >= 0 and b["data_bytes"] > 0 and 0 < b["disk_free_bytes"] <= b["disk_total_bytes"], b
topics = {t["name"]: t for t in s["topics"]}
assert topics["orders"]["partitions"] == 2 and topics["orders"]["records"] == 2, topics
groups = {g["group"]: g for g in s["groups"]}
g = groups["ledger"]
assert g["state"] in ("ok", "idle") and g["lag"] == 0, g
assert g["applier"]["applied"] == 1 and g["applier"]["dead_lettered"] == 1, g
assert g["applier"]["target"].endswith("t.db"), g
assert s["dead_letters"] == [{"topic": "orders.dlq", "records": 1}], s["dead_letters"]
assert s["runs"] == [], s["runs"]
PY
"$S" status >"$TMP/status.txt"
for want in "^synclogd " "^TOPICS" "^orders " "^GROUPS" "^ledger .*applied 1 stale 0 duplicate 0 deleted 0 dead_lettered 1" \
	"^DEAD LETTERS" "^orders.dlq +1 letters" "^RUNS"; do
	grep -Eq "$want" "$TMP/status.txt" || fail "status lacks '$want': $(cat "$TMP/status.txt")"
done
! grep -q $'\033' "$TMP/status.txt" || fail "colour codes off a terminal"
# --watch redraws (screens separated off a terminal) until SIGINT, then exits 0.
"$S" status --watch >"$TMP/watch.txt" 2>&1 &
pid=$!
for _ in $(seq 1 100); do [ "$(grep -c '^TOPICS' "$TMP/watch.txt")" -ge 2 ] && break; sleep 0.1; done
kill -INT $pid
wait $pid || fail "status --watch exited $? on SIGINT"
[ "$(grep -c '^TOPICS' "$TMP/watch.txt")" -ge 2 ] || fail "--watch did not redraw: $(cat "$TMP/watch.txt")"

"$S" group alter ledger --stall-after 5m --window 20 >/dev/null
"$S" group describe ledger | grep -q "stall-after 300000 ms, window 20" || fail "group alter not shown: $("$S" group describe ledger)"
stop_broker
start_broker "$TMP/data"
"$S" group describe ledger | grep -q "stall-after 300000 ms, window 20" || fail "group alter did not survive a restart"
"$S" group alter ledger >/dev/null
"$S" group describe ledger | grep -q "stall-after 60000 ms, window 10" || fail "group alter back to the broker's"

# A reconcile run shows under RUNS; with the broker gone, the run still counts and its report is a warning only.
printf '{"key":"a","version":0,"n":1}\n' >"$TMP/src.jsonl"
"$S" reconcile --source "jsonl:$TMP/src.jsonl" --target "sqlite:$TMP/t.db" >/dev/null 2>"$TMP/rec.err" ||
	fail "reconcile: $(cat "$TMP/rec.err")"
[ ! -s "$TMP/rec.err" ] || fail "reconcile complained: $(cat "$TMP/rec.err")"
"$S" status | grep -Eq "^reconcile +orders +ok .* ago: compared 1 missing 0 extra 0 version 0 value 0" ||
	fail "status lacks the reconcile run: $("$S" status)"
stop_broker
rc=0
"$S" reconcile --source "jsonl:$TMP/src.jsonl" --target "sqlite:$TMP/t.db" >/dev/null 2>"$TMP/rec.err" || rc=$?
[ "$rc" -eq 0 ] || fail "reconcile with no broker exited $rc: $(cat "$TMP/rec.err")"
grep -q "^synclog reconcile: warning: the run was not reported to the broker" "$TMP/rec.err" ||
	fail "no warning for the unreported run: $(cat "$TMP/rec.err")"
echo ok
