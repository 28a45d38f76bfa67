#!/usr/bin/env bash
# Rebalance: three `synclog consume --group` processes share a topic of 12 partitions; one is killed with -9 while
# records flow, and after its session timeout (2 s here) its partitions move to the two others, which read them from
# the last commit: every record is printed at least once overall (at-least-once), none is skipped.
set -euo pipefail
BUILD=${1:-build/release}
. tests/integration/lib.sh

CONSUMER_PIDS=()
cleanup_consumers() {
	for pid in "${CONSUMER_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}
trap 'cleanup_consumers; stop_broker_hard; rm -rf "$TMP"' EXIT

# wait_for SECONDS CMD...: run CMD every 0.1 s until it succeeds; fail after SECONDS.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

produce_range() { # FROM TO
	seq "$1" "$2" | awk '{print "k" $1 "\tv" $1}' | "$SYNCLOG" produce t >/dev/null
}

# Values printed by all consumers so far, one per line, sorted and unique.
seen() {
	cat "$TMP"/c*.out | cut -f4 | sort -u
}
seen_count_at_least() {
	[ "$(seen | wc -l)" -ge "$1" ]
}
members_are() {
	[ "$("$SYNCLOG" --json group list | grep -c "\"group\":\"g\",\"members\":$1,")" -eq 1 ]
}

# Every partition assigned to a live member, and nothing left to consume (committed up to the log end).
caught_up() {
	"$SYNCLOG" --json group describe g >"$TMP/describe.json"
	[ "$(grep -c '"member":null' "$TMP/describe.json")" -eq 0 ] &&
		[ "$(grep -c '"lag":0,' "$TMP/describe.json")" -eq 12 ]
}

start_broker "$TMP/data"
"$SYNCLOG" topic create t --partitions 12 >/dev/null
for i in 1 2 3; do
	"$SYNCLOG" consume t --group g --follow --session-timeout-ms 2000 --commit-interval-ms 200 \
		>"$TMP/c$i.out" 2>"$TMP/c$i.err" &
	CONSUMER_PIDS+=($!)
done
wait_for 20 members_are 3 || fail "three members did not join: $("$SYNCLOG" group list)"
# The broker moves partitions the moment a member joins and the others learn it at their next heartbeat (every
# 666 ms for a 2 s session): records that arrive meanwhile may be read by two members. This test is about a member
# dying, so the group settles first.
wait_for 10 caught_up || fail "the group did not settle: $("$SYNCLOG" group describe g)"
sleep 1
produce_range 1 3000
wait_for 20 seen_count_at_least 3000 || fail "the first 3000 records were not all consumed: $(seen | wc -l)"
wait_for 10 caught_up || fail "the first 3000 records were not committed: $("$SYNCLOG" group describe g)"
# Each member holds 4 of the 12 partitions.
owners=$(grep -o '"member":"[^"]*"' "$TMP/describe.json" | sort | uniq -c | awk '{print $1}' | sort -u)
[ "$owners" = "4" ] || fail "partitions are not dealt 4 per member: $(cat "$TMP/describe.json")"

victim=${CONSUMER_PIDS[1]}
victim_parts=$(grep "\"member\":\"synclog-consume-$victim-" "$TMP/describe.json" |
	sed 's/.*"partition":\([0-9]*\),.*/\1/' | tr '\n' ' ')
[ "$(echo $victim_parts | wc -w)" -eq 4 ] || fail "cannot tell the partitions of process $victim: $victim_parts"
# Kill it while records flow: what it read after its last commit is read again by the others.
(for from in $(seq 3001 100 4401); do
	produce_range "$from" $((from + 99))
	sleep 0.05
done) &
producer=$!
sleep 0.4
kill -KILL "$victim"
wait "$victim" 2>/dev/null || true
killed_at=$SECONDS
wait "$producer"
produce_range 4501 6000

wait_for 20 members_are 2 || fail "the killed member was not removed after its session timeout"
wait_for 30 seen_count_at_least 6000 || fail "records were skipped: $(seen | wc -l) of 6000 seen"
expected=$(seq 1 6000 | sed 's/^/v/' | sort -u)
[ "$(seen)" = "$expected" ] || fail "the printed values are not exactly v1..v6000"
# The killed member's partitions were read by the others after it died.
for p in $victim_parts; do
	awk -F'\t' -v p="$p" '$1 == p && substr($4, 2) + 0 > 4500 { found = 1 } END { exit !found }' \
		"$TMP/c1.out" "$TMP/c3.out" || fail "partition $p of the killed member was not taken over"
done
wait_for 10 caught_up || fail "the survivors did not catch up: $(cat "$TMP/describe.json")"
! grep -q "\"member\":\"synclog-consume-$victim-" "$TMP/describe.json" ||
	fail "a partition is still assigned to the dead member"

for pid in "${CONSUMER_PIDS[0]}" "${CONSUMER_PIDS[2]}"; do
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	[ "$rc" -eq 0 ] || fail "a consumer exited $rc on SIGTERM: $(cat "$TMP"/c*.err)"
done
CONSUMER_PIDS=()
wait_for 5 members_are 0 || fail "members did not leave on SIGTERM"
dups=$(($(cat "$TMP"/c*.out | wc -l) - 6000))
stop_broker
echo "ok: 6000 records over 12 partitions; the killed member's partitions ($victim_parts) were taken over" \
	"within $((SECONDS - killed_at)) s of kill -9; $dups records printed twice"
