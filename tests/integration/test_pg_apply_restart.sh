#!/usr/bin/env bash
# The PostgreSQL server restarts (`pg_ctl restart -m fast`, twice) under a follow-mode apply while a producer keeps
# writing: the applier loses its connection in the middle of its work, reconnects, rolls back what was open and
# resumes from the offsets stored in the target. It keeps running, and once the producer stops the target equals
# the source's final state with every record counted exactly once (nothing lost, nothing applied twice: no
# duplicate, no stale). A value only the server refuses (jsonb has no \u0000) is dead-lettered alone on the way.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
SL_APPLY_TARGET=postgresql
. "$(dirname "$0")/apply_lib.sh"

DB=$TMP/t.db
start_broker "$TMP/data"
S=$SYNCLOG
"$S" topic create orders --partitions 4 >/dev/null
python3 tests/integration/apply_events.py --keys 3000 --count 120000 --delete-every 25 --state "$TMP/backlog.json" \
	>"$TMP/backlog.jsonl"
"$S" produce orders --input json --acks written <"$TMP/backlog.jsonl" >/dev/null
# The refused value: valid JSON that PostgreSQL's jsonb does not take; its key is not among the generator's.
echo '{"key": "refused", "version": 1, "value": {"note": "\u0000"}}' | "$S" produce orders --input json >/dev/null
python3 tests/integration/apply_events.py --start "$TMP/backlog.json" --keys 3000 --rate 3000 --seconds 9 \
	--delete-every 25 --seed 2 --state "$TMP/state.json" | "$S" produce orders --input json --acks written \
	>"$TMP/produced" &
PRODUCER=$!

"$S" apply orders --group dw $(target "$DB") --follow >"$TMP/apply.out" 2>"$TMP/apply.err" &
APPLIER=$!
restarts=0
# The first restart lands while the backlog is being applied (transactions of thousands of records), the second
# while the applier follows the producer.
for at in 0.5 4; do
	sleep "$at"
	before=$(applied_through "$DB")
	old_pid=$PG_PID
	pg_restart_fast || fail "pg_ctl restart failed: $(tail -5 "$PG_DIR/pg_ctl.log")"
	[ "$PG_PID" != "$old_pid" ] || fail "the server's pid did not change"
	restarts=$((restarts + 1))
	kill -0 $APPLIER || fail "the applier died at restart $restarts: $(cat "$TMP/apply.err")"
	echo "restart $restarts with $before records applied of $(log_end orders)"
done
wait $PRODUCER || fail "the producer failed: $(cat "$TMP/produced")"
total=$(log_end orders)
for _ in $(seq 1 300); do
	[ "$(applied_through "$DB")" -eq "$total" ] && break
	sleep 0.1
done
[ "$(applied_through "$DB")" -eq "$total" ] || fail "the applier stopped at $(applied_through "$DB") of $total: $(cat "$TMP/apply.err")"
kill -0 $APPLIER || fail "the applier died: $(cat "$TMP/apply.err")"
kill -TERM $APPLIER
rc=0
wait $APPLIER || rc=$?
[ $rc -eq 0 ] || fail "the applier exited $rc: $(cat "$TMP/apply.err")"
# The server really went away under the applier: its log has both fast shutdowns, and sessions cut by them (FATAL:
# terminating connection due to administrator command).
[ "$(grep -c 'received fast shutdown request' "$PG_DIR/server.log")" -eq 2 ] || fail "server log: $(tail -20 "$PG_DIR/server.log")"
[ "$(grep -c 'terminating connection due to administrator command' "$PG_DIR/server.log")" -ge 1 ] ||
	fail "no session was cut: $(grep -v 'Unicode\|u0000\|STATEMENT\|parameter' "$PG_DIR/server.log" | tail -20)"
# The applier noticed, said so, and went on.
grep -q 'warning: .*retrying from the target' "$TMP/apply.err" ||
	fail "the applier did not report the lost connection: $(cat "$TMP/apply.err")"
grep 'warning: ' "$TMP/apply.err" | cut -c1-200 | sort | uniq -c

target_equals_source "$DB" "$TMP/state.json"
[ "$(sql "$DB" "SELECT sum(applied + deleted), sum(duplicate), sum(stale), sum(dead_lettered), sum(next_offset) FROM synclog_offsets")" = "$((total - 1))|0|0|1|$total" ] ||
	fail "stored counts over $total records: $(sql "$DB" "SELECT * FROM synclog_offsets")"
[ "$(sql "$DB" "SELECT count(*) FROM stale_events")" -eq 0 ] || fail "stale events logged"
[ "$(sql "$DB" "SELECT count(*) FROM entities WHERE key = 'refused'")" -eq 0 ] || fail "the refused value was stored"
"$S" --json consume orders.dlq >"$TMP/dlq.jsonl"
python3 - "$TMP/dlq.jsonl" <<'PY' || fail "dead letters: $(cat "$TMP/dlq.jsonl")"
import json, sys
rows = [json.loads(l)["value"] for l in open(sys.argv[1])]
assert len(rows) == 1, rows
assert rows[0]["key"] == "refused" and "22P05" in rows[0]["error"], rows[0]
PY
target_intact "$DB" || fail "amcheck found damage"
stop_broker
