#!/usr/bin/env bash
# make demo: the README's quick start, run for you. It starts the broker on its defaults (clients on
# 127.0.0.1:7070, metrics on 127.0.0.1:7071) with its data in build/demo-data, then walks one customer-status sync
# through it: produce JSON change events, consume them, two consumer groups and their lag, a replay of the last
# ten minutes, apply to SQLite and query it. Every command is printed before it runs, as you would type it.
set -euo pipefail
build=${1:-build/release}
data=build/demo-data
# The commands run from the build as `synclog` and `synclogd` (make install puts them on your PATH).
export PATH="$PWD/$build/bin:$PATH"
rm -rf "$data"
mkdir -p "$data"

# Bold headings on a terminal only, and not with NO_COLOR (https://no-color.org).
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
	bold=$'\033[1m' plain=$'\033[0m'
else
	bold='' plain=''
fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
# run CMD...: print the command as you would type it (quoted where the shell needs it), then run it.
run() {
	local line='$' arg
	for arg in "$@"; do
		case $arg in
		*[!A-Za-z0-9_./:=@,+-]*) line+=" '${arg//\'/\'\\\'\'}'" ;;
		*) line+=" $arg" ;;
		esac
	done
	printf '%s\n' "$line"
	"$@"
}
# sh 'CMD': the same for a command with a pipe or a redirection.
sh() {
	printf '$ %s\n' "$1"
	eval "$1"
}

say "0. the broker: data in $data, clients on 127.0.0.1:7070, metrics on 127.0.0.1:7071"
printf '$ %s\n' "synclogd --data-dir $data &"
synclogd --data-dir "$data" >"$data/broker.out" 2>"$data/broker.log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
	grep -q '^synclogd ready' "$data/broker.out" && break
	if ! kill -0 $pid 2>/dev/null; then
		echo "synclogd did not start: $(cat "$data/broker.log")" >&2
		echo "(another broker on port 7070? stop it, or see man synclog-troubleshooting)" >&2
		exit 1
	fi
	sleep 0.05
done
cat "$data/broker.out"
echo "(its event log: $data/broker.log)"

say "1. a topic for the customer-status changes the billing service publishes"
run synclog topic create customer-status --partitions 4

say "2. billing emits change events: the whole entity each time, a version per key, deletes as deletes"
cat >"$data/events.jsonl" <<'JSON'
{"key": "cust-1001", "version": 1, "value": {"status": "trial", "email": "ana@example.com"}}
{"key": "cust-1002", "version": 1, "value": {"status": "active", "email": "bo@example.com"}}
{"key": "cust-1001", "version": 2, "value": {"status": "active", "email": "ana@example.com"}}
{"key": "cust-1003", "version": 1, "value": {"status": "active", "email": "cy@example.com"}}
{"key": "cust-1002", "version": 2, "value": {"status": "past_due", "email": "bo@example.com"}}
{"key": "cust-1003", "version": 2, "op": "delete"}
{"key": "cust-1001", "version": 1, "value": {"status": "trial", "email": "ana@example.com"}}
JSON
run cat "$data/events.jsonl"
sh "synclog produce customer-status --input json < $data/events.jsonl"

say "3. read them back: every partition, in order within each (the last line is a late, stale version 1)"
run synclog consume customer-status --format '%p/%o %k v%v %O %s\n'

say "4. two targets, two consumer groups: each reads the whole log at its own pace"
run synclog consume customer-status --group billing-search --max 3
run synclog consume customer-status --group crm-export
run synclog group list

say "5. more changes arrive; the group that read only 3 records shows its lag"
cat >"$data/more.jsonl" <<'JSON'
{"key": "cust-1002", "version": 3, "value": {"status": "active", "email": "bo@example.com"}}
{"key": "cust-1004", "version": 1, "value": {"status": "trial", "email": "di@example.com"}}
JSON
sh "synclog produce customer-status --input json < $data/more.jsonl"
run synclog group describe billing-search

say "6. replay the last ten minutes for crm-export (a dry run first, then --execute)"
run synclog offsets reset --group crm-export --topic customer-status --by-duration 10m
run synclog offsets reset --group crm-export --topic customer-status --by-duration 10m --execute
run synclog consume customer-status --group crm-export --format '%k v%v %O\n'

say "7. apply the log to a SQLite store: stale versions dropped and logged, the delete kept as a tombstone"
run synclog apply customer-status --group crm --target "sqlite:$data/crm.db"
run sqlite3 -header -column "$data/crm.db" "SELECT key, version, deleted, value FROM entities ORDER BY key"
run sqlite3 -header -column "$data/crm.db" \
	"SELECT key, stored_version, incoming_version, partition, offset FROM stale_events"
run synclog group describe crm

say "8. what Prometheus scrapes at http://127.0.0.1:7071/metrics"
sh "python3 -c 'import urllib.request; print(urllib.request.urlopen(\"http://127.0.0.1:7071/metrics\").read().decode())' | grep -E '^synclog_log_end_offset|^synclog_group_state.* 1$'"

say "done: the broker stops now; its data stays in $data (remove it with rm -rf $data)"
