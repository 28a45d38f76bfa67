#!/usr/bin/env bash
# kill -9 of the broker at random points of a compaction, 20 rounds: each round appends a new round of change
# events at --acks fsync, asks for a compaction (throttled, so that it runs for about a second), kills the broker
# 0 to 0.8 s later and restarts it. The partition must open, hold no cleaner leftovers (*.cleaned, cleaner.swap),
# and replay to the state of every acknowledged record (compact_state.py). Sizes: 2 partitions, 20 x 1,000
# records over 200 keys, --cleaner-bytes-per-s 200000; about 40 s on a loaded 2-core machine.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
H=$(dirname "$0")
S="$SYNCLOG"
ROUNDS=20
FLAGS=(--cleaner-check-ms 100 --min-cleanable-ratio 0.01 --segment-bytes 65536 --cleaner-bytes-per-s 200000)

start_broker "$TMP/data" "${FLAGS[@]}"
"$S" topic create users --partitions 2 --compact >/dev/null || fail "create"
: >"$TMP/acked.json"
mid=0
for round in $(seq 1 $ROUNDS); do
	python3 "$H/compact_events.py" "$round" 1000 200 "$round" >"$TMP/in.json"
	"$S" produce users --input json --acks fsync <"$TMP/in.json" >"$TMP/produced" || fail "round $round: produce"
	cat "$TMP/in.json" >>"$TMP/acked.json"
	"$S" topic compact users >/dev/null || fail "round $round: compact"
	sleep "$(python3 -c "import random; print(random.uniform(0, 0.8))")"
	kill -KILL "$BROKER_PID"
	wait "$BROKER_PID" 2>/dev/null || true
	BROKER_PID=
	# A kill between the manifest and the renames leaves work for the next open: count what it finds.
	if ls "$TMP/data/topics/users/"*/cleaner.swap >/dev/null 2>&1 || ls "$TMP/data/topics/users/"*/*.cleaned >/dev/null 2>&1; then
		mid=$((mid + 1))
	fi
	start_broker "$TMP/data" "${FLAGS[@]}"
	if ls "$TMP/data/topics/users/"*/cleaner.swap* "$TMP/data/topics/users/"*/*.cleaned >/dev/null 2>&1; then
		fail "round $round: cleaner leftovers after the restart: $(ls "$TMP/data/topics/users/"*)"
	fi
	"$S" topic describe users >"$TMP/describe" || fail "round $round: a partition did not open: $(cat "$TMP/describe")"
	"$S" --json consume users --from earliest >"$TMP/replay.json" || fail "round $round: consume"
	python3 "$H/compact_state.py" --check-offsets <"$TMP/replay.json" >"$TMP/got" || fail "round $round: offsets"
	python3 "$H/compact_state.py" <"$TMP/acked.json" >"$TMP/want"
	diff -q "$TMP/want" "$TMP/got" >/dev/null ||
		fail "round $round: the replay after kill -9 differs from the acknowledged records' state: $(diff "$TMP/want" "$TMP/got" | head -5)"
done
stop_broker
echo "ok: $ROUNDS rounds, $mid killed with a clean's files on disk"
