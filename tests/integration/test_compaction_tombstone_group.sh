#!/usr/bin/env bash
# A tombstone stays while a group lags behind it, even past delete.retention.ms, and goes once the group's
# committed offset passes it: a topic with delete.retention.ms 0, a delete at offset 2, a group committed at 2
# (the delete not yet consumed). Cleans keep the tombstone (describe counts it, a replay sees the delete); after
# the group commits past it, the next clean removes it and the key is gone from a replay. group describe warns
# when the group's lag nears the delete horizon. About 5 s.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
S="$SYNCLOG"
start_broker "$TMP/data" --cleaner-check-ms 100
"$S" topic create accounts --partitions 1 --compact --delete-retention-ms 0 >/dev/null || fail "create"
printf '%s\n' '{"key":"a","version":1,"value":1}' '{"key":"b","version":1,"value":1}' \
	'{"key":"a","version":2,"op":"delete"}' '{"key":"c","version":1,"value":1}' |
	"$S" produce accounts --input json >/dev/null || fail "produce"
"$S" offsets reset --group billing --topic accounts --to-offset 2 --execute >/dev/null || fail "commit at 2"

keys() { "$S" --json consume accounts --from earliest | python3 -c 'import json,sys
print(" ".join(r["key"] + ("-" if r["op"] == "delete" else "") for r in map(json.loads, sys.stdin)))'; }
kept() { "$S" --json topic describe accounts | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["tombstones_kept"])'; }

for i in 1 2; do
	"$S" topic compact accounts --wait >/dev/null || fail "compact $i"
	[ "$(keys)" = "b a- c" ] || fail "clean $i while the group lags: replay is '$(keys)', want the tombstone kept"
	[ "$(kept)" = 1 ] || fail "describe counts $(kept) tombstones kept, want 1"
done

# The group's lag nears the delete horizon (0 ms here): describe warns.
"$S" group describe billing >"$TMP/describe" || fail "group describe"
grep -q "^WARNING accounts/0 at risk: delete horizon" "$TMP/describe" || fail "no delete-horizon warning: $(cat "$TMP/describe")"
"$S" --json group describe billing | grep -q '"at_risk":"delete horizon' || fail "no at_risk in JSON"

"$S" offsets reset --group billing --topic accounts --to-offset 3 --execute >/dev/null || fail "commit past the delete"
"$S" topic compact accounts --wait >/dev/null || fail "compact after the group passed"
[ "$(keys)" = "b c" ] || fail "after the group passed the tombstone the replay is '$(keys)', want 'b c'"
[ "$(kept)" = 0 ] || fail "describe still counts $(kept) tombstones kept"
stop_broker
echo ok
