#!/usr/bin/env bash
# Issue 14: a group whose first members join together waits --initial-rebalance-delay so they share its first
# generation: two consumers started at once each get half the partitions in generation 1 and no record is read
# twice. With a delay of 0 the first member gets every partition and starts reading before the second joins.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"

start_broker "$TMP/data" --initial-rebalance-delay 2s
S=$SYNCLOG
"$S" topic create t --partitions 4 >/dev/null
seq 1 2000 | awk '{print "k" $1 "\tv" $1}' | "$S" produce t >/dev/null
"$S" consume t --group g >"$TMP/a.out" 2>"$TMP/a.err" &
A=$!
"$S" consume t --group g >"$TMP/b.out" 2>"$TMP/b.err" &
B=$!
wait $A || fail "member A exited $?: $(cat "$TMP/a.err")"
wait $B || fail "member B exited $?: $(cat "$TMP/b.err")"
total=$(cat "$TMP/a.out" "$TMP/b.out" | wc -l)
distinct=$(cat "$TMP/a.out" "$TMP/b.out" | cut -f4 | sort -u | wc -l)
[ "$total" -eq 2000 ] && [ "$distinct" -eq 2000 ] || fail "$total records printed, $distinct distinct: expected 2000 once"
[ "$(wc -l <"$TMP/a.out")" -gt 0 ] && [ "$(wc -l <"$TMP/b.out")" -gt 0 ] || fail "one member read everything"
parts_a=$(cut -f1 "$TMP/a.out" | sort -u | tr '\n' ' ')
parts_b=$(cut -f1 "$TMP/b.out" | sort -u | tr '\n' ' ')
[ "$(echo $parts_a | wc -w)" -eq 2 ] && [ "$(echo $parts_b | wc -w)" -eq 2 ] ||
	fail "partitions were not shared 2 and 2 from the start: A read $parts_a, B read $parts_b"
grep -q "rebalance\|given up" "$TMP/a.err" "$TMP/b.err" && fail "a member gave up partitions: $(cat "$TMP"/*.err)"
stop_broker
echo "ok: two members shared the first generation (A: $parts_a, B: $parts_b)"
