#!/usr/bin/env bash
# Issue 14: a forced offset reset (--force) while two members consume makes them rebalance and start again from the
# new offsets: after `--to-earliest --execute --force`, every record is printed a second time, once overall.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"

# Both members join the same first generation (the delay), so no record is read twice before the reset.
start_broker "$TMP/data" --initial-rebalance-delay 1s
S=$SYNCLOG
"$S" topic create t --partitions 4 >/dev/null
seq 1 400 | awk '{print "k" $1 "\tv" $1}' | "$S" produce t >/dev/null
"$S" consume t --group g --follow --commit-interval-ms 100 >"$TMP/a.out" 2>"$TMP/a.err" &
A=$!
"$S" consume t --group g --follow --commit-interval-ms 100 >"$TMP/b.out" 2>"$TMP/b.err" &
B=$!
trap 'kill -KILL $A $B 2>/dev/null || true; stop_broker_hard; rm -rf "$TMP"' EXIT
caught_up() {
	"$S" --json group describe g >"$TMP/d.json" 2>/dev/null &&
		[ "$(grep -c '"lag":0,' "$TMP/d.json")" -eq 4 ] && [ "$(grep -c '"member":null' "$TMP/d.json")" -eq 0 ]
}
printed() { cat "$TMP/a.out" "$TMP/b.out" | wc -l; }
for _ in $(seq 1 200); do caught_up && [ "$(printed)" -ge 400 ] && break; sleep 0.1; done
caught_up || fail "the two members did not consume the topic: $(cat "$TMP/d.json")"
[ "$(printed)" -eq 400 ] || fail "$(printed) records printed before the reset, expected 400"

"$S" offsets reset --group g --topic t --to-earliest --execute --force >/dev/null 2>"$TMP/reset.err" ||
	fail "forced reset: $(cat "$TMP/reset.err")"
for _ in $(seq 1 300); do [ "$(printed)" -ge 800 ] && caught_up && break; sleep 0.1; done
[ "$(printed)" -eq 800 ] || fail "$(printed) records printed after the forced reset, expected 800"
all=$(cat "$TMP/a.out" "$TMP/b.out" | cut -f4 | sort | uniq -c | awk '{print $1}' | sort -u)
[ "$all" = "2" ] || fail "not every record was read exactly twice: counts $all"
kill -TERM $A $B
wait $A || fail "member A exited $?"
wait $B || fail "member B exited $?"
stop_broker
echo "ok: both members re-read from the reset offsets"
