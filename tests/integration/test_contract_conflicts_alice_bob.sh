#!/usr/bin/env bash
# The seed's test of a conflict section, one target per policy: Alice changes cust-1's email in service-a (the
# source of truth) at 10:00:00, Bob in service-b at 10:00:01, both from version 1, and the events cross in flight:
# Bob's reaches the log first. The outcome of each policy, set by the topic's contract or by apply --conflicts:
#   version               Bob's stays (first in the log), Alice's is kept in conflicts as logged
#   source-of-truth       Bob's is rejected, Alice's applies
#   lww, skew 500ms       Bob's stays (later by more than the skew), Alice's is stale
#   lww, skew 2s          Alice's applies (within the skew the source of truth wins), logged
#   reject                Bob's stays, Alice's waits in the queue; `conflicts resolve --keep source` applies it
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apply_lib.sh"

start_broker "$TMP/data"
S=$SYNCLOG
"$S" topic create customers --partitions 1 >/dev/null
cat >"$TMP/events.jsonl" <<'JSON'
{"key":"cust-1","version":1,"value":{"email":"ann@old.example","name":"Ann"},"origin_system":"service-a","changed_at_ms":1714554000000}
{"key":"cust-1","version":2,"value":{"email":"bob@b.example","name":"Ann"},"origin_system":"service-b","changed_at_ms":1714557601000}
{"key":"cust-1","version":2,"value":{"email":"alice@a.example","name":"Ann"},"origin_system":"service-a","changed_at_ms":1714557600000}
JSON
"$S" produce customers --input json <"$TMP/events.jsonl" >/dev/null

email() {
	sql "$1" "SELECT json_extract(value, '\$.email') FROM entities WHERE key = 'cust-1'"
}

# version: no contract, the default.
"$S" apply customers --group t-version --target "sqlite:$TMP/version.db" >"$TMP/out" 2>"$TMP/err"
[ "$(email "$TMP/version.db")" = bob@b.example ] || fail "version: $(email "$TMP/version.db")"
[ "$(sql "$TMP/version.db" "SELECT policy || ' ' || status || ' ' || origin_system FROM conflicts")" = \
	"version logged service-a" ] || fail "version: conflicts $(sql "$TMP/version.db" "SELECT * FROM conflicts")"
grep -q "not applied by the version conflict policy" "$TMP/err" || fail "version: stderr $(cat "$TMP/err")"

# source-of-truth, from the topic's contract.
cat >"$TMP/contract.yaml" <<'YAML'
source_of_truth:
  system: service-a
conflicts: source-of-truth
YAML
"$S" contract set customers "$TMP/contract.yaml" >/dev/null
"$S" apply customers --group t-sot --target "sqlite:$TMP/sot.db" >"$TMP/out" 2>"$TMP/err"
grep -q "contract version 1 of topic customers: conflicts source-of-truth" "$TMP/err" || fail "no contract note"
[ "$(email "$TMP/sot.db")" = alice@a.example ] || fail "source-of-truth: $(email "$TMP/sot.db")"
[ "$(sql "$TMP/sot.db" "SELECT status || ' ' || origin_system FROM conflicts")" = "rejected service-b" ] ||
	fail "source-of-truth: conflicts $(sql "$TMP/sot.db" "SELECT * FROM conflicts")"
"$S" conflicts list --target "sqlite:$TMP/sot.db" | grep -q 'rejected.*service-b' || fail "rejected not listed"

# lww: the flag wins over the contract's policy; the contract still names the source of truth.
"$S" apply customers --group t-lww --target "sqlite:$TMP/lww500.db" --conflicts lww --max-clock-skew 500ms >/dev/null 2>&1
[ "$(email "$TMP/lww500.db")" = bob@b.example ] || fail "lww 500ms: $(email "$TMP/lww500.db")"
[ "$(sql "$TMP/lww500.db" "SELECT count(*) FROM stale_events WHERE \"offset\" = 2")" = 1 ] || fail "lww 500ms: not stale"
"$S" apply customers --group t-lww --target "sqlite:$TMP/lww2s.db" --conflicts lww --max-clock-skew 2s >/dev/null 2>&1
[ "$(email "$TMP/lww2s.db")" = alice@a.example ] || fail "lww 2s: $(email "$TMP/lww2s.db")"
sql "$TMP/lww2s.db" "SELECT reason FROM conflicts WHERE policy = 'lww'" | grep -q "source of truth wins" ||
	fail "lww 2s: not logged"

# reject, from a new contract version: the queue, and an operator's decision.
printf 'source_of_truth: {system: service-a}\nconflicts: reject\n' >"$TMP/reject.yaml"
"$S" contract set customers "$TMP/reject.yaml" >/dev/null
"$S" apply customers --group t-reject --target "sqlite:$TMP/reject.db" >/dev/null 2>"$TMP/err"
grep -q "wait for a decision" "$TMP/err" || fail "reject: stderr $(cat "$TMP/err")"
[ "$(email "$TMP/reject.db")" = bob@b.example ] || fail "reject: $(email "$TMP/reject.db")"
"$S" --json conflicts list --target "sqlite:$TMP/reject.db" >"$TMP/queue"
id=$(python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 1 and rows[0]["status"] == "open" and rows[0]["incoming_value"]["email"] == "alice@a.example", rows
print(rows[0]["id"])' "$TMP/queue")
[ "$("$S" conflicts resolve "$id" --target "sqlite:$TMP/reject.db" --keep source)" = \
	"resolved conflict $id: kept the source" ] || fail "resolve"
[ "$(email "$TMP/reject.db")" = alice@a.example ] || fail "reject after resolve: $(email "$TMP/reject.db")"
if "$S" conflicts resolve "$id" --target "sqlite:$TMP/reject.db" --keep target 2>"$TMP/err"; then
	fail "a resolved conflict was resolved again"
fi
grep -q "is resolved" "$TMP/err" || fail "second resolve: $(cat "$TMP/err")"
[ -z "$("$S" --json conflicts list --target "sqlite:$TMP/reject.db")" ] || fail "the queue is not empty"
"$S" conflicts list --target "sqlite:$TMP/reject.db" --status resolved | grep -q "kept the source" ||
	fail "resolution not listed"

# KEY=VALUE on another target of the same log.
"$S" apply customers --group t-reject2 --target "sqlite:$TMP/reject2.db" >/dev/null 2>&1
id=$(sql "$TMP/reject2.db" "SELECT rowid FROM conflicts WHERE status = 'open'")
"$S" conflicts resolve "$id" --target "sqlite:$TMP/reject2.db" --keep email=carol@merged.example >/dev/null
[ "$(email "$TMP/reject2.db")" = carol@merged.example ] || fail "KEY=VALUE: $(email "$TMP/reject2.db")"
[ "$(sql "$TMP/reject2.db" "SELECT json_extract(value, '\$.name') || ' ' || version FROM entities")" = "Ann 2" ] ||
	fail "KEY=VALUE changed more than the field"
stop_broker
