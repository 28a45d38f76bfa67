#!/usr/bin/env bash
# `synclog offsets reset`: every SPEC moves exactly the partitions in scope to the right offset, checked in the
# group's commits and by consuming with the group afterwards; the edge rules (a datetime after the last record goes to
# the log end, offsets and shifts outside the log clamp with a warning, a partition with no commit starts where the
# SPEC says, an unknown or deleted topic is an error), dry runs, --all-topics, --json, and --export/--from-file.
set -euo pipefail
BUILD=${1:-build/release}
. tests/integration/lib.sh
S=$SYNCLOG

produce_range() { # TOPIC FROM TO
	seq "$2" "$3" | awk '{print "k" $1 "\tv" $1}' | "$S" produce "$1" >/dev/null
}

# next_offsets TOPIC: the log end of each partition, space-separated in partition order.
next_offsets() {
	"$S" --json topic describe "$1" | sed 's/.*"partition":\([0-9]*\),.*"next_offset":\([0-9]*\),.*/\1 \2/' |
		sort -n | awk '{printf "%s%s", sep, $2; sep = " "}'
}

# committed GROUP TOPIC: the group's committed offset of each partition (-1: none), space-separated.
committed() {
	"$S" --json group describe "$1" | grep "\"topic\":\"$2\"" |
		sed 's/.*"partition":\([0-9]*\),"committed":\(-\{0,1\}[0-9]*\),.*/\1 \2/' |
		sort -n | awk '{printf "%s%s", sep, $2; sep = " "}'
}

# reset ARGS...: run offsets reset for group g (unless --group is given), keeping stdout, stderr and the exit code.
reset() {
	RC=0
	"$S" offsets reset "$@" >"$TMP/reset.out" 2>"$TMP/reset.err" || RC=$?
}

expect_committed() { # GROUP TOPIC "C0 C1 ..." WHAT
	local got
	got=$(committed "$1" "$2")
	[ "$got" = "$3" ] ||
		fail "$4: group $1 topic $2 committed '$got', expected '$3' (reset: $(cat "$TMP/reset.out" "$TMP/reset.err"))"
}

# expect_consumed GROUP TOPIC "E0 E1 ...": consuming with the group reads partition p from E_p exactly to its end.
expect_consumed() {
	local group=$1 topic=$2 p=0 e n count first
	local -a ends
	read -r -a ends <<<"$(next_offsets "$topic")"
	"$S" consume "$topic" --group "$group" >"$TMP/consumed" 2>"$TMP/consume.err" ||
		fail "consume --group $group failed: $(cat "$TMP/consume.err")"
	for e in $3; do
		n=${ends[$p]}
		count=$(awk -F'\t' -v p="$p" '$1 == p' "$TMP/consumed" | wc -l)
		first=$(awk -F'\t' -v p="$p" '$1 == p { print $2; exit }' "$TMP/consumed")
		[ "$count" -eq $((n - e)) ] ||
			fail "group $group topic $topic partition $p: read $count records, expected $((n - e)) ($e to $n)"
		[ "$count" -eq 0 ] || [ "$first" -eq "$e" ] ||
			fail "group $group topic $topic partition $p: read from $first, expected $e"
		p=$((p + 1))
	done
	[ "$(committed "$group" "$topic")" = "$(next_offsets "$topic")" ] || fail "consume --group did not commit the log end"
}

# The case protocol: put every partition of t at 10, reset, check the commits, then check by consuming.
baseline() {
	reset --group g --topic t --to-offset 10 --execute
	[ "$RC" -eq 0 ] || fail "baseline reset failed: $(cat "$TMP/reset.err")"
}
check() { # WHAT "C0 C1 C2 C3"
	[ "$RC" -eq 0 ] || fail "$1: exit $RC: $(cat "$TMP/reset.err")"
	expect_committed g t "$2" "$1"
	expect_consumed g t "$2"
}

start_broker "$TMP/data"
"$S" topic create t --partitions 4 >/dev/null
"$S" topic create u --partitions 2 >/dev/null
produce_range t 1 200
sleep 1.5
mid=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
sleep 1.5
produce_range t 201 400
# --by-duration: now minus the duration, then as --to-datetime. The second half was produced just now, the first
# 3 s ago; checked below, once the offsets of the second half are known.
reset --group g --topic t --by-duration PT2S --execute
produce_range u 1 50
end=$(next_offsets t)
read -r -a E <<<"$end"
# Offsets of the first record of the second half: the first at or after $mid.
half=$("$S" consume t --from "@$mid" | awk -F'\t' '!($1 in f) { f[$1] = $2 }
	END { for (p = 0; p < 4; p++) printf "%s%s", (p ? " " : ""), (p in f ? f[p] : "x") }')
read -r -a H <<<"$half"
for p in 0 1 2 3; do
	[ "${H[$p]}" != x ] && [ "${H[$p]}" -gt 20 ] || fail "partition $p got too few records for the test: $half / $end"
done
check "--by-duration PT2S" "$half"
"$S" consume u --group g >/dev/null
baseline
reset --group g --topic t --by-duration P1D --execute
check "--by-duration P1D" "0 0 0 0"

baseline
reset --group g --topic t:0,2 --to-earliest --execute
check "--to-earliest on t:0,2" "0 10 0 10"
[ "$(cat "$TMP/reset.out")" = "t 0 10 0
t 2 10 0" ] || fail "rows of --to-earliest: $(cat "$TMP/reset.out")"

baseline
reset --group g --topic t:1 --to-latest --execute
check "--to-latest on t:1" "10 ${E[1]} 10 10"

baseline
reset --group g --topic t --to-offset 5 --execute
check "--to-offset 5" "5 5 5 5"

baseline
reset --group g --topic t:3 --to-offset 100000 --execute
check "--to-offset past the end" "10 10 10 ${E[3]}"
grep -q "partition 3: offset 100000 is outside the log \[0, ${E[3]}\]: clamped to ${E[3]}" "$TMP/reset.err" ||
	fail "no clamping warning: $(cat "$TMP/reset.err")"

baseline
reset --group g --topic t --to-datetime "$mid" --execute
check "--to-datetime between the halves" "$half"

baseline
reset --group g --topic t --to-datetime 2999-01-01T00:00:00Z --execute
check "--to-datetime after the last record" "$end"

baseline
reset --group g --topic t:0 --shift-by -3 --topic t:1,2 --to-offset 0 --execute
[ "$RC" -eq 2 ] || fail "two SPECs were accepted"
reset --group g --topic t:0 --shift-by -3 --execute
check "--shift-by -3 on t:0" "7 10 10 10"
baseline
reset --group g --topic t:1,2 --shift-by 5 --execute
check "--shift-by 5 on t:1,2" "10 15 15 10"

baseline
reset --group g --topic t --shift-by -1000 --execute
check "--shift-by past the start" "0 0 0 0"
grep -q "partition 2: shifting 10 by -1000 goes past the log \[0, ${E[2]}\]: clamped to 0" "$TMP/reset.err" ||
	fail "no warning for a shift past the start: $(cat "$TMP/reset.err")"
baseline
reset --group g --topic t --shift-by 100000 --execute
check "--shift-by past the end" "$end"
grep -q "clamped to ${E[0]}" "$TMP/reset.err" || fail "no warning for a shift past the end"

# Partitions with no commit: the SPEC decides (a shift starts at the log start); the others of the group keep
# their default start (the log start) when consumed.
reset --group fresh --topic t:0 --shift-by 3 --execute
expect_committed fresh t "3 -1 -1 -1" "--shift-by on a new group"
expect_consumed fresh t "3 0 0 0"
reset --group fresh2 --topic t --to-datetime "$mid" --execute
expect_committed fresh2 t "$half" "--to-datetime on a new group"
reset --group fresh3 --topic t --to-latest --execute
expect_committed fresh3 t "$end" "--to-latest on a new group"
expect_consumed fresh3 t "$end"

# A dry run (the default) prints the plan and changes nothing.
baseline
reset --group g --topic t:2 --to-earliest
[ "$RC" -eq 0 ] && [ "$(cat "$TMP/reset.out")" = "t 2 10 0" ] || fail "dry run rows: $(cat "$TMP/reset.out")"
grep -q "dry run" "$TMP/reset.err" || fail "the dry run does not say so"
expect_committed g t "10 10 10 10" "a dry run"
reset --group g --topic t:2 --to-earliest --dry-run --execute
[ "$RC" -eq 2 ] || fail "--dry-run --execute was accepted"

# --json rows.
"$S" --json offsets reset --group g --topic t:1 --to-offset 3 >"$TMP/reset.out" 2>/dev/null
[ "$(cat "$TMP/reset.out")" = '{"group":"g","topic":"t","partition":1,"old_offset":10,"new_offset":3}' ] ||
	fail "JSON row: $(cat "$TMP/reset.out")"

# --all-topics: every topic the group has commits on.
reset --group g --all-topics --to-earliest --execute
[ "$RC" -eq 0 ] || fail "--all-topics: $(cat "$TMP/reset.err")"
[ "$(wc -l <"$TMP/reset.out")" -eq 6 ] || fail "--all-topics planned $(wc -l <"$TMP/reset.out") partitions, expected 6"
expect_committed g u "0 0" "--all-topics on u"
expect_consumed g u "0 0"
check "--all-topics on t" "0 0 0 0"

# --export writes the plan; --from-file applies it (offsets outside the log clamp there too).
baseline
reset --group g --topic t --to-offset 7 --export "$TMP/plan.csv"
[ "$(head -1 "$TMP/plan.csv")" = "topic,partition,old_offset,new_offset" ] ||
	fail "CSV header: $(head -1 "$TMP/plan.csv")"
[ "$(sed -n 2p "$TMP/plan.csv")" = "t,0,10,7" ] || fail "CSV row: $(sed -n 2p "$TMP/plan.csv")"
expect_committed g t "10 10 10 10" "--export without --execute"
reset --group g --from-file "$TMP/plan.csv" --execute
check "--from-file" "7 7 7 7"
printf 'topic,partition,new_offset\nt,1,999999\nu,0,1\n' >"$TMP/hand.csv"
baseline
reset --group g --from-file "$TMP/hand.csv" --execute
grep -q "partition 1: offset 999999 is outside the log" "$TMP/reset.err" || fail "no clamp warning from a file"
read -r -a U <<<"$(next_offsets u)"
expect_committed g u "1 ${U[1]}" "--from-file on u (partition 1 not in the file)"
check "--from-file of a hand-written plan" "10 ${E[1]} 10 10"
printf 'topic,partition,new_offset\nt,0,1\nt,0,2\n' >"$TMP/dup.csv"
reset --group g --from-file "$TMP/dup.csv" --execute
[ "$RC" -eq 1 ] || fail "a file naming a partition twice was applied"

# Unknown, deleted and missing: errors, and nothing changes.
baseline
reset --group g --topic nosuch --to-earliest --execute
[ "$RC" -eq 1 ] && grep -q "topic 'nosuch' does not exist" "$TMP/reset.err" || fail "unknown topic: exit $RC"
reset --group g --topic t:9 --to-earliest --execute
[ "$RC" -eq 1 ] && grep -q "has no partition 9" "$TMP/reset.err" || fail "unknown partition: exit $RC"
"$S" topic create gone --partitions 2 >/dev/null
produce_range gone 1 10
"$S" consume gone --group g >/dev/null
python3 - "${SYNCLOG_BROKER##*:}" <<'PY'
import sys
sys.path.insert(0, "tests/integration")
import wire
s = wire.connect(int(sys.argv[1]))
s.sendall(wire.hello())
assert wire.error_of(wire.read_frame(s)) == 0
s.sendall(wire.delete_topic(2, "gone"))
assert wire.error_of(wire.read_frame(s)) == 0, "delete topic refused"
PY
reset --group g --topic gone --to-earliest --execute
[ "$RC" -eq 1 ] && grep -q "topic 'gone' does not exist" "$TMP/reset.err" || fail "deleted topic: exit $RC"
reset --group g --topic t --to-earliest --topic gone --execute
[ "$RC" -eq 1 ] || fail "a reset naming a deleted topic among others was applied"
expect_committed g t "10 10 10 10" "a refused reset"
reset --group g --to-earliest --execute
[ "$RC" -eq 2 ] || fail "a reset without --topic or --all-topics was accepted"
stop_broker
echo "ok: every SPEC, the edge rules, dry runs, --all-topics, --json and CSV plans"
