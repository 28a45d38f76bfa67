#!/usr/bin/env bash
# Retention never removes the active segment, and with retain.for.groups never what a group has not consumed:
# topics with retention.ms 1 and 64 KiB segments, retention passes every 200 ms. The sealed segments of a plain
# topic go but its active segment stays readable; a topic of one segment keeps all of it; on a topic with
# --retain-for-groups the segments from a group's committed offset on stay (and group describe says the lag is at
# risk) until the group commits further. About 6 s.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
S="$SYNCLOG"
start_broker "$TMP/data" --retention-check-ms 200 --segment-bytes 65536
field() { "$S" --json topic describe "$1" | python3 -c "import json,sys; print(json.loads(sys.stdin.readline())['$2'])"; }
# field_gt TOPIC FIELD N: the field is above N now.
field_gt() { test "$(field "$1" "$2")" -gt "$3"; }
wait_for() { # SECONDS COMMAND...: until the command succeeds
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.2
	done
}
# 3,000 records of ~100 bytes in ten produce calls: each call's batch fits a 64 KiB segment.
produce_records() {
	for c in $(seq 0 9); do
		seq $((c * 300 + 1)) $((c * 300 + 300)) |
			awk '{printf "k%d\tvalue-%d-padding-padding-padding-padding-padding-padding-padding\n", $1 % 50, $1}' |
			"$S" produce "$1" >/dev/null || return 1
	done
}

"$S" topic create logs --partitions 1 --retention-ms 1 >/dev/null || fail "create logs"
"$S" topic create small --partitions 1 --retention-ms 1 >/dev/null || fail "create small"
"$S" topic create held --partitions 1 --retention-ms 1 --retain-for-groups >/dev/null || fail "create held"
# The group commits before anything is produced: from then on retention keeps what it has not consumed.
"$S" offsets reset --group audit --topic held --to-offset 0 --execute >/dev/null || fail "commit held at 0"
produce_records logs || fail "produce logs"
produce_records held || fail "produce held"
printf 'a\t1\nb\t2\n' | "$S" produce small >/dev/null || fail "produce small"
"$S" offsets reset --group audit --topic held --to-offset 100 --execute >/dev/null || fail "commit held at 100"

wait_for 20 field_gt logs earliest_offset 0 || fail "retention removed no sealed segment of logs"
sleep 1 # several more passes
[ "$(field logs next_offset)" = 3000 ] || fail "logs: next offset moved"
[ "$(field logs segments)" -ge 1 ] || fail "logs: no segment left"
last=$("$S" consume logs --from earliest | tail -n 1 | cut -f2)
[ "$last" = 2999 ] || fail "the active segment's records are gone: last offset read '$last'"
[ "$("$S" consume small --from earliest | wc -l)" = 2 ] || fail "a topic of one (active) segment lost records"

[ "$(field held earliest_offset)" -le 100 ] || fail "retention removed records the group had not consumed"
"$S" group describe audit | grep -q "^WARNING held/0 at risk: retention" || fail "no retention warning: $("$S" group describe audit)"
"$S" offsets reset --group audit --topic held --to-offset 2500 --execute >/dev/null || fail "commit held at 2500"
wait_for 20 field_gt held earliest_offset 100 || fail "retention kept the segments after the group consumed them: $("$S" topic describe held; "$S" group describe audit; tail -5 "$TMP/broker.err")"
[ "$(field held earliest_offset)" -le 2500 ] || fail "retention passed the group's new commit"
stop_broker
echo ok
