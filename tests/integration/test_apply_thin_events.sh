#!/usr/bin/env bash
# Thin events (op changed): the applier fetches each entity from the source's API (a small local HTTP server that
# fails on purpose). While the API fails, the partition stalls at the event: nothing after it is applied, the target's
# synclog_partition_state and stderr say stalled and why; once the API answers, the entity and everything behind it
# apply and the state is ok again. A 404 is a delete; an event the API keeps failing is dead-lettered after
# --fetch-retries tries; so is one whose API cannot be reached at all (with the URL and the budget from the
# topic's contract).
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apply_lib.sh"

SERVER_PID=
APPLY_PID=
cleanup() {
	[ -n "$APPLY_PID" ] && kill -KILL "$APPLY_PID" 2>/dev/null || true
	[ -n "$SERVER_PID" ] && kill -KILL "$SERVER_PID" 2>/dev/null || true
	stop_broker_hard
	rm -rf "$TMP"
}
trap cleanup EXIT

# wait_for DB QUERY WANT: poll the target until the query prints WANT (30 s bound a hang, not a speed).
wait_for() {
	for _ in $(seq 1 300); do
		[ "$(sql "$1" "$2" 2>/dev/null || true)" = "$3" ] && return 0
		sleep 0.1
	done
	fail "waited for '$2' to be '$3', got '$(sql "$1" "$2" 2>&1 || true)'"
}

cat >"$TMP/entities.json" <<'JSON'
{"cust-1": {"status": "active", "plan": "pro"}, "cust-2": {"status": "trial"}}
JSON
echo '{"always": ["cust-1"]}' >"$TMP/control.json"
python3 tests/integration/entity_server.py "$TMP/entities.json" "$TMP/control.json" >"$TMP/server.out" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do grep -q '^listening ' "$TMP/server.out" 2>/dev/null && break; sleep 0.05; done
PORT=$(sed -n 's/^listening //p' "$TMP/server.out")
[ -n "$PORT" ] || fail "the entity server did not start: $(cat "$TMP/server.out")"

start_broker "$TMP/data"
S=$SYNCLOG
DB=$TMP/t.db
"$S" topic create customers --partitions 1 >/dev/null
cat <<'JSON' | "$S" produce customers --input json >/dev/null
{"key":"cust-3","version":1,"value":{"status":"trial"}}
{"key":"cust-1","version":5,"op":"changed"}
{"key":"cust-2","version":2,"op":"changed"}
{"key":"cust-3","version":2,"op":"changed"}
JSON

"$S" apply customers --group crm --target "sqlite:$DB" --follow --fetch-url "http://127.0.0.1:$PORT/entities/{key}" \
	--fetch-retries 30 >"$TMP/apply.out" 2>"$TMP/apply.err" &
APPLY_PID=$!
# The API fails for cust-1: the partition waits there; cust-3's first version (before it) applied, cust-2 not.
wait_for "$DB" "SELECT state FROM synclog_partition_state" stalled
sql "$DB" "SELECT reason FROM synclog_partition_state" | grep -q "entities/cust-1: HTTP 503 (try [0-9]* of 30)" ||
	fail "state reason: $(sql "$DB" "SELECT reason FROM synclog_partition_state")"
[ "$(sql "$DB" "SELECT key || ' ' || version FROM entities ORDER BY key")" = "cust-3 1" ] ||
	fail "applied past the waiting event: $(sql "$DB" "SELECT key, version FROM entities")"
grep -q "partition 0 stalled at offset 1: GET http://127.0.0.1:$PORT/entities/cust-1: HTTP 503" "$TMP/apply.err" ||
	fail "stderr: $(cat "$TMP/apply.err")"

# The API recovers: everything behind the event applies, cust-3 is gone from the source (404: a delete).
echo '{}' >"$TMP/control.json"
wait_for "$DB" "SELECT state FROM synclog_partition_state" ok
wait_for "$DB" "SELECT count(*) FROM synclog_offsets WHERE next_offset = 4" 1
[ "$(sql "$DB" "SELECT key || ' ' || version || ' ' || deleted || ' ' || coalesce(value, '-') FROM entities ORDER BY key")" = \
	"cust-1 5 0 {\"status\": \"active\", \"plan\": \"pro\"}
cust-2 2 0 {\"status\": \"trial\"}
cust-3 2 1 {\"status\":\"trial\"}" ] || fail "after recovery: $(sql "$DB" "SELECT * FROM entities")"
grep -q "partition 0 moves again at offset 1" "$TMP/apply.err" || fail "no recovery line: $(cat "$TMP/apply.err")"

# An event the API keeps failing is dead-lettered after the retry budget, and the partition goes on.
echo '{"always": ["cust-9"], "status": 500}' >"$TMP/control.json"
printf '{"key":"cust-9","version":1,"op":"changed"}\n{"key":"cust-2","version":3,"op":"changed"}\n' |
	"$S" produce customers --input json >/dev/null
kill -TERM "$APPLY_PID"
wait "$APPLY_PID" || fail "apply --follow did not stop cleanly: $(tail -3 "$TMP/apply.err")"
APPLY_PID=
# (The follower may have tried cust-9 already: the budget counts the tries of one run.)
before=$(grep -c '^cust-9 500$' "$TMP/control.json.log" || true)
"$S" apply customers --group crm --target "sqlite:$DB" --fetch-url "http://127.0.0.1:$PORT/entities/{key}" \
	--fetch-retries 3 >"$TMP/out" 2>"$TMP/err" || fail "apply: $(cat "$TMP/err")"
[ "$(cat "$TMP/out")" = "applied 1 stale 0 duplicate 0 deleted 0 dead_lettered 1" ] || fail "budget: $(cat "$TMP/out")"
[ $(($(grep -c '^cust-9 500$' "$TMP/control.json.log") - before)) -eq 3 ] ||
	fail "tries: $(grep cust-9 "$TMP/control.json.log")"
"$S" --json consume customers.dlq | python3 -c '
import json, sys
d = json.loads(sys.stdin.readline())["value"]
assert d["key"] == "cust-9" and d["op"] == "changed" and "failed 3 times" in d["error"] and "HTTP 500" in d["error"], d'

# The API not there at all: no connection is a failure that may pass, tried and then dead-lettered.
kill -KILL "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=
echo '{"key":"cust-4","version":1,"op":"changed"}' | "$S" produce customers --input json >/dev/null
# This time the topic's contract gives the URL and the retry budget (recovery.retry_limit) instead of the flags.
printf 'source_of_truth: {system: crm}\ndelivery: {payload: thin, fetch_url: "http://127.0.0.1:%s/entities/{key}"}\nrecovery: {retry_limit: 2}\n' \
	"$PORT" >"$TMP/c.yaml"
"$S" contract set customers "$TMP/c.yaml" >/dev/null 2>&1
"$S" apply customers --group crm --target "sqlite:$DB" >"$TMP/out" 2>"$TMP/err" || fail "apply: $(cat "$TMP/err")"
grep -q "thin events from http://127.0.0.1:$PORT/entities/{key}, 2 tries before the dead-letter topic" "$TMP/err" ||
	fail "contract note: $(cat "$TMP/err")"
[ "$(cat "$TMP/out")" = "applied 0 stale 0 duplicate 0 deleted 0 dead_lettered 1" ] || fail "no server: $(cat "$TMP/out")"
grep -q "partition 0 stalled at offset 6: GET http://127.0.0.1:$PORT/entities/cust-4: .*(try 1 of 2)" "$TMP/err" ||
	fail "no server: $(cat "$TMP/err")"
stop_broker
