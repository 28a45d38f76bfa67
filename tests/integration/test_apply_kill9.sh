#!/usr/bin/env bash
# Acceptance 5: kill -9 the applier at random moments, 20 rounds, while a backlog is applied and a producer keeps
# writing; then let it finish. The target equals the source's final state, and no event was applied twice: the
# target's own counts (kept in the same transactions as the data) add up to exactly the records in the log, with
# no duplicate and no stale one (the source's versions only go up), and the store finds itself intact (SQLite's
# integrity_check, PostgreSQL's amcheck).
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apply_lib.sh"

ROUNDS=20
SEED=${SL_TEST_SEED:-$RANDOM}
echo "seed $SEED (SL_TEST_SEED=$SEED replays the kill times)"
RANDOM=$SEED
start_broker "$TMP/data"
S=$SYNCLOG
DB=$TMP/t.db
"$S" topic create orders --partitions 4 >/dev/null
python3 tests/integration/apply_events.py --keys 5000 --count 300000 --delete-every 30 --seed "$SEED" \
	--state "$TMP/backlog.json" >"$TMP/backlog.jsonl"
"$S" produce orders --input json --acks written <"$TMP/backlog.jsonl" >/dev/null
# The producer writes until the rounds are over (at most a minute), so that every kill lands while it writes,
# however long a round takes on a busy machine.
python3 tests/integration/apply_events.py --start "$TMP/backlog.json" --keys 5000 --rate 3000 --seconds 60 \
	--until "$TMP/rounds-done" --delete-every 30 --seed $((SEED + 1)) --state "$TMP/state.json" |
	"$S" produce orders --input json --acks written >"$TMP/produced" &
PRODUCER=$!

killed_mid_work=0
progressed=0
for round in $(seq 1 $ROUNDS); do
	before=$(target_exists "$DB" && applied_through "$DB" || echo 0)
	"$S" apply orders --group dw $(target "$DB") --follow >/dev/null 2>>"$TMP/apply.err" &
	pid=$!
	sleep "0.$((RANDOM % 6 + 1))$((RANDOM % 10))"
	kill -KILL $pid
	wait $pid 2>/dev/null || true
	after=$(applied_through "$DB")
	[ "$after" -ge "$before" ] || fail "round $round: the stored offsets went back from $before to $after"
	[ "$(log_end orders)" -gt "$after" ] && killed_mid_work=$((killed_mid_work + 1))
	[ "$after" -gt "$before" ] && progressed=$((progressed + 1))
done
touch "$TMP/rounds-done"
echo "$ROUNDS kills: $killed_mid_work with records left to apply, $progressed after some progress"
[ "$killed_mid_work" -ge $((ROUNDS / 2)) ] || fail "too few kills landed while there was work"
wait $PRODUCER || fail "the producer failed: $(cat "$TMP/produced")"
total=$(log_end orders)
"$S" apply orders --group dw $(target "$DB") >"$TMP/last"
target_equals_source "$DB" "$TMP/state.json"
[ "$(sql "$DB" "SELECT sum(applied + deleted), sum(duplicate), sum(stale), sum(dead_lettered), sum(next_offset) FROM synclog_offsets")" = "$total|0|0|0|$total" ] ||
	fail "stored counts over $total records: $(sql "$DB" "SELECT * FROM synclog_offsets")"
[ "$(sql "$DB" "SELECT count(*) FROM stale_events")" -eq 0 ] || fail "stale events logged"
target_intact "$DB" || fail "the target's own check found damage"
stop_broker
