#!/usr/bin/env bash
# Groups are independent: a fast group following the topic from the start and a slow group that reads in small
# chunks (a new process each time, resuming from its commits) from a point in time both see every record of their
# range exactly once, while records keep arriving; the slow group's lag does not hold the fast one back.
set -euo pipefail
BUILD=${1:-build/release}
. tests/integration/lib.sh
S=$SYNCLOG
FAST_PID=
trap '[ -z "$FAST_PID" ] || kill -KILL "$FAST_PID" 2>/dev/null; stop_broker_hard; rm -rf "$TMP"' EXIT

produce_range() { # FROM TO
	seq "$1" "$2" | awk '{print "k" $1 "\tv" $1}' | "$S" produce t >/dev/null
}
lag_of() { # GROUP: total lag
	"$S" --json group describe "$1" | sed 's/.*"lag":\([0-9]*\),.*/\1/' | awk '{ s += $1 } END { print s + 0 }'
}

start_broker "$TMP/data"
"$S" topic create t --partitions 4 >/dev/null
produce_range 1 2000
sleep 0.1
since=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
sleep 0.1

"$S" consume t --group fast --follow --commit-interval-ms 100 >"$TMP/fast.out" 2>"$TMP/fast.err" &
FAST_PID=$!
# Records keep arriving while both groups read: 2001..4000 in 20 chunks.
(for from in $(seq 2001 100 3901); do
	produce_range "$from" $((from + 99))
	sleep 0.05
done) &
producer=$!
# The slow group: 100 records per process, from $since for partitions it has not committed yet.
slow_lag_seen=0
runs=1
for _ in $(seq 1 60); do
	runs=$((runs + 1))
	"$S" consume t --group slow --from "@$since" --max 100 >>"$TMP/slow.out" 2>>"$TMP/slow.err"
	if [ "$(lag_of fast)" -eq 0 ] && [ "$(lag_of slow)" -gt 0 ]; then
		slow_lag_seen=1
	fi
	[ "$(wc -l <"$TMP/slow.out")" -lt 2000 ] || break
	sleep 0.1
done
wait "$producer"
"$S" consume t --group slow >>"$TMP/slow.out" 2>>"$TMP/slow.err"

caught_up() { [ "$(wc -l <"$TMP/fast.out")" -ge 4000 ]; }
for _ in $(seq 1 100); do
	caught_up && break
	sleep 0.1
done
kill -TERM "$FAST_PID"
wait "$FAST_PID" || fail "the fast consumer exited $? on SIGTERM: $(cat "$TMP/fast.err")"
FAST_PID=

values() { cut -f4 "$1" | sort; }
[ "$(values "$TMP/fast.out")" = "$(seq 1 4000 | sed 's/^/v/' | sort)" ] ||
	fail "the fast group did not see v1..v4000 exactly once: $(wc -l <"$TMP/fast.out") lines," \
		"$(values "$TMP/fast.out" | uniq -d | wc -l) repeated"
[ "$(values "$TMP/slow.out")" = "$(seq 2001 4000 | sed 's/^/v/' | sort)" ] ||
	fail "the slow group did not see v2001..v4000 exactly once: $(wc -l <"$TMP/slow.out") lines," \
		"$(values "$TMP/slow.out" | uniq -d | wc -l) repeated, first $(head -1 "$TMP/slow.out")"
[ "$(lag_of fast)" -eq 0 ] && [ "$(lag_of slow)" -eq 0 ] || fail "a group did not commit the log end"
[ "$slow_lag_seen" -eq 1 ] || fail "never saw the fast group caught up while the slow one lagged"
stop_broker
echo "ok: the fast group saw 4000 records once, the slow group the 2000 after its start once over $runs processes"
