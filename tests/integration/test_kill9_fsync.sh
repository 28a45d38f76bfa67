#!/usr/bin/env bash
# kill -9 of the broker during an --acks fsync produce loses none of the records the CLI reported as
# acknowledged: on a one-partition topic those are the first N input lines, and after a restart the log
# starts with exactly them.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"

start_broker "$TMP/data"
"$SYNCLOG" topic create ledger --partitions 1 >/dev/null || fail "topic create"
for round in 1 2 3; do
	seq 1 300000 | awk -v r=$round '{print "r" r "-" $1 "\t" $1}' >"$TMP/input"
	# Fed at a bounded rate so the produce is still running when the broker is killed.
	before=$("$SYNCLOG" --json topic describe ledger | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["next_offset"])')
	python3 -c '
import sys, time
lines = open(sys.argv[1]).readlines()
for i in range(0, len(lines), 1000):
    sys.stdout.write("".join(lines[i:i + 1000]))
    sys.stdout.flush()
    time.sleep(0.005)
' "$TMP/input" 2>/dev/null | "$SYNCLOG" produce ledger --acks fsync >"$TMP/produced" 2>"$TMP/produce.err" &
	producer=$!
	sleep 0.$((3 + RANDOM % 5))
	kill -KILL "$BROKER_PID"
	wait "$BROKER_PID" 2>/dev/null || true
	BROKER_PID=
	wait "$producer" && fail "produce exited 0 although the broker was killed"
	acked=$(sed -n 's/^produced \([0-9]*\) records$/\1/p' "$TMP/produced")
	[ -n "$acked" ] || fail "produce did not print its count: $(cat "$TMP/produced" "$TMP/produce.err")"
	start_broker "$TMP/data"
	"$SYNCLOG" consume ledger --from "$before" --max "$acked" | cut -f3,4 >"$TMP/consumed"
	head -n "$acked" "$TMP/input" | cmp -s - "$TMP/consumed" ||
		fail "round $round: the $acked acknowledged records are not all in the log after kill -9"
	echo "round $round: $acked acknowledged records survived kill -9"
done
stop_broker
echo ok
