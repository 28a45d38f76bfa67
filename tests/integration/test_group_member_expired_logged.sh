#!/usr/bin/env bash
# Issue 21: a member removed because its session expired was removed silently; the client learned it at its next
# request and rejoined, and the broker's log showed only the rebalances. Now the broker says so once, at info
# (group_member_expired, with the group, the member, how long it was silent and its session). A consumer that stops
# (SIGSTOP) with a 1 s session is expired and logged.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"

start_broker "$TMP/data"
"$SYNCLOG" topic create g --partitions 1 >/dev/null
"$BUILD/bin/groups-bench" commit-groups --broker "$SYNCLOG_BROKER" --topic g --group stopped --groups 1 \
	--seconds 30 --session-timeout-ms 1000 >/dev/null 2>"$TMP/stopped.err" &
STOPPED=$!
trap 'kill -KILL $STOPPED 2>/dev/null || true; stop_broker_hard; rm -rf "$TMP"' EXIT
wait_for_line "$TMP/stopped.err" 'groups joined' || fail "the group did not join: $(cat "$TMP/stopped.err")"
grep -q 'group_member_expired' "$TMP/broker.err" && fail "a member expired while it polled: $(cat "$TMP/broker.err")"
kill -STOP $STOPPED
wait_for_line "$TMP/broker.err" 'group_member_expired group=stopped-0' ||
	fail "no group_member_expired for the stopped member: $(tail -5 "$TMP/broker.err")"
line=$(grep -m1 'group_member_expired group=stopped-0' "$TMP/broker.err")
for field in member= client_host= silent_ms= session_timeout_ms=1000; do
	[[ "$line" == *"$field"* ]] || fail "group_member_expired lacks $field: $line"
done
kill -KILL $STOPPED 2>/dev/null || true
wait $STOPPED 2>/dev/null || true
stop_broker
echo "ok: the stopped member's expiry was logged ($line)"
