#!/usr/bin/env bash
# Issue 14, resets move an applier's target: apply 10,000 records, reset the group to earliest with --execute, apply
# again: all 10,000 are re-read and counted as duplicates (the target adopted the reset offsets, with the reset
# generation, and said so). A dry run moves nothing. The applier is a member of its group while it runs
# (group describe shows it with its client id and host) and its counters reach the broker. test_pg_apply_reset.sh
# runs the same against a PostgreSQL target (apply_lib.sh).
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apply_lib.sh"

start_broker "$TMP/data"
S=$SYNCLOG
DB=$TMP/t.db
"$S" topic create orders --partitions 4 >/dev/null
python3 -c '
import json
for i in range(10000):
    print(json.dumps({"key": "k%d" % i, "version": 1, "value": {"n": i}}))
' | "$S" produce orders --input json >/dev/null
"$S" apply orders --group g $(target "$DB") >"$TMP/out1" 2>"$TMP/err1" || fail "first apply: $(cat "$TMP/err1")"
[ "$(cat "$TMP/out1")" = "applied 10000 stale 0 duplicate 0 deleted 0 dead_lettered 0" ] || fail "first: $(cat "$TMP/out1")"

# The broker heard the applier's counters with its commits.
"$S" group describe g >"$TMP/describe"
grep -q "^applier $(target_name "$DB"): applied 10000 stale 0 duplicate 0 deleted 0 dead_lettered 0" "$TMP/describe" ||
	fail "describe does not show the applier's counters: $(cat "$TMP/describe")"

# A dry run changes nothing: a second apply finds nothing to do.
"$S" offsets reset --group g --topic orders --to-earliest >/dev/null 2>&1
"$S" apply orders --group g $(target "$DB") >"$TMP/out2"
[ "$(cat "$TMP/out2")" = "applied 0 stale 0 duplicate 0 deleted 0 dead_lettered 0" ] || fail "after a dry run: $(cat "$TMP/out2")"

"$S" offsets reset --group g --topic orders --to-earliest --execute >/dev/null
"$S" apply orders --group g $(target "$DB") >"$TMP/out3" 2>"$TMP/err3"
[ "$(cat "$TMP/out3")" = "applied 0 stale 0 duplicate 10000 deleted 0 dead_lettered 0" ] ||
	fail "after the reset: $(cat "$TMP/out3") ($(cat "$TMP/err3"))"
grep -q "apply_reset_adopted group=g reset_generation=1" "$TMP/err3" || fail "the adoption was not logged: $(cat "$TMP/err3")"
[ "$(sql "$DB" "SELECT reset_generation FROM synclog_resets WHERE \"group\" = 'g'")" = 1 ] || fail "reset generation not stored"
# Adopted once: the next run has nothing to do.
"$S" apply orders --group g $(target "$DB") >"$TMP/out4"
[ "$(cat "$TMP/out4")" = "applied 0 stale 0 duplicate 0 deleted 0 dead_lettered 0" ] || fail "reset adopted twice: $(cat "$TMP/out4")"

# While following, the applier is a member: client id and host in describe.
"$S" apply orders --group g $(target "$DB") --follow >/dev/null 2>"$TMP/err5" &
pid=$!
for _ in $(seq 1 100); do
	"$S" group describe g >"$TMP/describe" 2>/dev/null && grep -q "^member synclog-apply-$pid-" "$TMP/describe" && break
	sleep 0.1
done
grep -q "^member synclog-apply-$pid-.*client synclog-apply-$pid, host 127.0.0.1, 4 partitions" "$TMP/describe" ||
	fail "the following applier is not a member with its client id and host: $(cat "$TMP/describe")"
kill -TERM $pid
wait $pid || fail "apply --follow exited $? on SIGTERM: $(cat "$TMP/err5")"
stop_broker
echo "ok: 10000 records re-read as duplicates after a reset"
