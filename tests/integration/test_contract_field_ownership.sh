#!/usr/bin/env bash
# Field ownership from a topic's contract: billing owns status and plan, support owns note, the CRM derives
# stale_badge. Fat events of both systems update only their own fields of the target's row; the CRM's own field
# survives every event; a field a system sends but does not own is noted in conflicts, not applied.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apply_lib.sh"

start_broker "$TMP/data"
S=$SYNCLOG
"$S" topic create customer-status --partitions 2 >/dev/null
cat >"$TMP/contract.yaml" <<'YAML'
source_of_truth:
  system: billing
fields_owned:
  billing: [status, plan]
  support: [note]
fields_derived: [stale_badge]
YAML
"$S" contract set customer-status "$TMP/contract.yaml" >/dev/null
DB=$TMP/crm.db
cat <<'JSON' | "$S" produce customer-status --input json >/dev/null
{"key":"c1","version":1,"value":{"status":"trial","plan":"free"},"origin_system":"billing"}
{"key":"c1","version":2,"value":{"status":"cancelled","note":"called twice"},"origin_system":"support"}
JSON
"$S" apply customer-status --group crm --target "sqlite:$DB" >/dev/null 2>"$TMP/err" || fail "apply: $(cat "$TMP/err")"
grep -q "field ownership" "$TMP/err" || fail "no contract note: $(cat "$TMP/err")"
# The CRM computes its own field on the row.
sql "$DB" "UPDATE entities SET value = json_set(value, '\$.stale_badge', json('true')) WHERE key = 'c1'" >/dev/null
echo '{"key":"c1","version":3,"value":{"status":"active","plan":"pro","note":"","stale_badge":false},"origin_system":"billing"}' |
	"$S" produce customer-status --input json >/dev/null
"$S" apply customer-status --group crm --target "sqlite:$DB" >/dev/null 2>&1
[ "$(sql "$DB" "SELECT value || ' ' || version || ' ' || origin_system FROM entities WHERE key = 'c1'")" = \
	'{"status":"active","plan":"pro","note":"called twice","stale_badge":true} 3 billing' ] ||
	fail "merged row: $(sql "$DB" "SELECT value, version FROM entities")"
[ "$(sql "$DB" "SELECT origin_system || ': ' || reason FROM conflicts WHERE policy = 'fields' ORDER BY rowid")" = \
	"support: fields not owned by support kept the target's value: status (billing)
billing: fields not owned by billing kept the target's value: note (support), stale_badge (derived)" ] ||
	fail "notes: $(sql "$DB" "SELECT origin_system, reason FROM conflicts")"
# Without the contract the same events replace the whole value.
"$S" apply customer-status --group plain --target "sqlite:$TMP/plain.db" --no-contract >/dev/null 2>&1
[ "$(sql "$TMP/plain.db" "SELECT value FROM entities WHERE key = 'c1'")" = \
	'{"status":"active","plan":"pro","note":"","stale_badge":false}' ] || fail "--no-contract"
stop_broker
