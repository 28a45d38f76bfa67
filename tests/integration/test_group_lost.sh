#!/usr/bin/env bash
# Issue 14, `lost`: retention removed records before a group consumed them. A new target that starts after its first
# records expired used to start silently at the earliest record: now `consume --group` and `apply` say how many
# records were lost and exit 1 (reading nothing), unless --allow-gap. The broker shows such a group as `lost`, also
# one whose commit retention passed while nothing consumed, until an operator resets its offsets or a backfill of
# the topic acknowledges every row.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apply_lib.sh"

start_broker "$TMP/data" --segment-bytes 1048576 --retention-check-ms 200 --stall-after 1s
S=$SYNCLOG
"$S" topic create r --partitions 1 --retention-bytes 1500000 >/dev/null
produce() { seq "$1" "$2" | awk '{printf "k%d\t{\"pad\":\"%0100d\"}\n", $1, $1}' | "$S" produce r >/dev/null; }
earliest() { "$S" --json topic describe r | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["earliest_offset"])'; }
state_of() { "$S" --json group describe "$1" | python3 -c 'import json,sys; r=json.loads(sys.stdin.readline()); print(r["state"], r["records_lost"])'; }
wait_state() { # GROUP STATE
	for _ in $(seq 1 100); do [ "$(state_of "$1" | cut -d' ' -f1)" = "$2" ] && return 0; sleep 0.1; done
	fail "group $1 is $(state_of "$1"), not $2"
}

# Group "old" commits early, then falls behind retention without any consumer running.
produce 1 100
"$S" offsets reset --group old --topic r --to-offset 50 --execute >/dev/null
produce 101 20000
# Retention may take more than one pass (a check can land while the produce is still writing): wait until the
# earliest offset has stayed the same over five checks (200 ms apart) after moving past 50.
prev=-1 same=0
for _ in $(seq 1 300); do
	e=$(earliest)
	if [ "$e" -gt 50 ] && [ "$e" -eq "$prev" ]; then same=$((same + 1)); else same=0; fi
	prev=$e
	[ "$same" -ge 5 ] && break
	sleep 0.2
done
start=$(earliest)
[ "$start" -gt 50 ] || fail "retention removed nothing (earliest offset $start)"
wait_state old lost
[ "$(state_of old | cut -d' ' -f2)" -eq $((start - 50)) ] || fail "old lost $(state_of old), expected $((start - 50))"

# A new consumer group: refused with the count, nothing printed, nothing committed.
rc=0
"$S" consume r --group fresh >"$TMP/c.out" 2>"$TMP/c.err" || rc=$?
[ "$rc" -eq 1 ] || fail "consume --group over a gap exited $rc: $(cat "$TMP/c.err")"
grep -q "^synclog consume: $start records of topic 'r' were removed by retention before group fresh read them" "$TMP/c.err" ||
	fail "consume did not say how many records were lost: $(cat "$TMP/c.err")"
[ ! -s "$TMP/c.out" ] || fail "consume printed records past the gap"
"$S" consume r --group fresh --allow-gap >"$TMP/c.out" 2>"$TMP/c.err" || fail "--allow-gap: $(cat "$TMP/c.err")"
[ "$(wc -l <"$TMP/c.out")" -eq $((20000 - start)) ] || fail "--allow-gap printed $(wc -l <"$TMP/c.out") records"
wait_state fresh lost

# A new applier target: the same, and the target stays empty.
rc=0
"$S" apply r --group tgt --target "sqlite:$TMP/t.db" >"$TMP/a.out" 2>"$TMP/a.err" || rc=$?
[ "$rc" -eq 1 ] || fail "apply over a gap exited $rc: $(cat "$TMP/a.err")"
grep -q "$start records of topic 'r' were removed by retention before target sqlite:.*t.db (group tgt) applied them" "$TMP/a.err" ||
	fail "apply did not say how many records were lost: $(cat "$TMP/a.err")"
[ "$(sql "$TMP/t.db" "SELECT count(*) FROM entities")" -eq 0 ] || fail "apply wrote past the gap"
"$S" apply r --group tgt --target "sqlite:$TMP/t.db" --allow-gap >"$TMP/a.out" 2>"$TMP/a.err" || fail "apply --allow-gap: $(cat "$TMP/a.err")"
[ "$(sql "$TMP/t.db" "SELECT count(*) FROM entities")" -eq $((20000 - start)) ] || fail "apply --allow-gap applied the wrong count"
wait_state tgt lost

# An operator's reset clears it.
"$S" offsets reset --group old --topic r --to-earliest --execute >/dev/null
wait_state old stopped

# So does a backfill of the topic, reported by `synclog backfill` when it ends; one that skipped a bad row does not.
printf '{"key":"b1","version":1,"n":1}\n{"key":"b2","n":2}\n' >"$TMP/bad.jsonl"
rc=0
"$S" backfill r --source "jsonl:$TMP/bad.jsonl" >/dev/null 2>"$TMP/b.err" || rc=$?
[ "$rc" -eq 1 ] || fail "a backfill with a bad row exited $rc: $(cat "$TMP/b.err")"
! grep -q "not reported" "$TMP/b.err" || fail "the failed backfill was not reported: $(cat "$TMP/b.err")"
sleep 0.5
[ "$(state_of fresh | cut -d' ' -f1)" = lost ] || fail "a failed backfill cleared lost: fresh is $(state_of fresh)"
printf '{"key":"b3","version":1,"n":3}\n' >"$TMP/good.jsonl"
"$S" backfill r --source "jsonl:$TMP/good.jsonl" >/dev/null 2>"$TMP/b.err" || fail "backfill: $(cat "$TMP/b.err")"
! grep -q "not reported" "$TMP/b.err" || fail "the backfill was not reported: $(cat "$TMP/b.err")"
for g in fresh tgt; do
	for _ in $(seq 1 100); do [ "$(state_of $g | cut -d' ' -f1)" != lost ] && break; sleep 0.1; done
	set -- $(state_of $g)
	[ "$1" != lost ] && [ "$2" -eq 0 ] || fail "the backfill left $g $1 with $2 records lost"
done
"$S" --json status | python3 -c '
import json, sys
runs = [r for r in json.loads(sys.stdin.readline())["runs"] if r["kind"] == "backfill"]
assert len(runs) == 1 and runs[0]["topic"] == "r" and runs[0]["ok"] and runs[0]["rows"] == 1, runs
assert runs[0]["target"].startswith("jsonl:") and runs[0]["summary"].startswith("backfilled 1 rows"), runs
' || fail "status does not show the backfill run"
stop_broker
echo "ok: $start records lost before three groups read them: reported, refused without --allow-gap, cleared by a reset or a backfill"
