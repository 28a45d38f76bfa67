#!/usr/bin/env bash
# make demo: start the broker on its built-in defaults (127.0.0.1:7070, metrics on 7071), walk one customer-
# status sync through it (produce, replay, apply to SQLite, lag), and stop it. Data lives in build/demo-data.
set -euo pipefail
build=${1:-build/release}
synclogd=$build/bin/synclogd
synclog=$build/bin/synclog
data=build/demo-data
rm -rf "$data"
mkdir -p "$data"

"$synclogd" --data-dir "$data" >"$data/broker.out" 2>"$data/broker.err" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
	grep -q '^synclogd ready' "$data/broker.out" && break
	if ! kill -0 $pid 2>/dev/null; then
		echo "synclogd did not start: $(cat "$data/broker.err")" >&2
		exit 1
	fi
	sleep 0.05
done
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "broker: $(cat "$data/broker.out")"
say "1. create the topic the billing service publishes customer status changes to"
"$synclog" topic create customer-status --partitions 4

say "2. billing emits change events (fat events: the whole entity, a version per key)"
cat >"$data/events.jsonl" <<'JSON'
{"key": "cust-1001", "version": 1, "value": {"status": "trial", "email": "ana@example.com"}}
{"key": "cust-1002", "version": 1, "value": {"status": "active", "email": "bo@example.com"}}
{"key": "cust-1001", "version": 2, "value": {"status": "active", "email": "ana@example.com"}}
{"key": "cust-1003", "version": 1, "value": {"status": "active", "email": "cy@example.com"}}
{"key": "cust-1002", "version": 2, "value": {"status": "past_due", "email": "bo@example.com"}}
{"key": "cust-1003", "version": 2, "op": "delete"}
{"key": "cust-1001", "version": 1, "value": {"status": "trial", "email": "ana@example.com"}}
JSON
cat "$data/events.jsonl"
"$synclog" produce customer-status --input json --acks fsync <"$data/events.jsonl"

say "3. a target replays the log from the beginning (per-key order holds within each partition)"
"$synclog" --json consume customer-status --from earliest

say "4. the CRM applies the log to its SQLite store: stale versions dropped, the delete kept as a tombstone"
"$synclog" apply customer-status --group crm --target "sqlite:$data/crm.db"
sqlite3 -header -column "$data/crm.db" \
	"SELECT key, version, deleted, value FROM entities ORDER BY key;"
echo
sqlite3 -header -column "$data/crm.db" \
	"SELECT key, stored_version, incoming_version, partition, offset FROM stale_events;"

say "5. billing keeps writing while the CRM applier is stopped: the operator sees the lag"
cat >"$data/more.jsonl" <<'JSON'
{"key": "cust-1002", "version": 3, "value": {"status": "active", "email": "bo@example.com"}}
{"key": "cust-1004", "version": 1, "value": {"status": "trial", "email": "di@example.com"}}
JSON
"$synclog" produce customer-status --input json <"$data/more.jsonl"
"$synclog" group describe crm

say "6. the applier catches up; lag is back to zero"
"$synclog" apply customer-status --group crm --target "sqlite:$data/crm.db"
"$synclog" group describe crm

say "7. offsets per partition"
"$synclog" topic describe customer-status

say "8. what Prometheus scrapes"
python3 -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:7071/metrics").read().decode())' |
	grep -E '^synclog_(produce_records_total|partition_next_offset)' || true
