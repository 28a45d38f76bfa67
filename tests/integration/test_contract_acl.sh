#!/usr/bin/env bash
# A topic's sync contract under authentication: setting one needs alter on the topic (a contract can refuse every
# producer of it), reading one needs describe; each refusal is TOPIC_AUTHORIZATION_FAILED and stores nothing; a
# contract set is audited, denied or done; apply and reconcile read the contract with the command's credentials.
set -euo pipefail
BUILD=${1:-build/release}
. tests/integration/lib.sh

data="$TMP/data"
printf 'root-pw\n' | "$SYNCLOG" user add root --password-stdin --data-dir "$data" >/dev/null
printf 'app-pw\n' | "$SYNCLOG" user add app --password-stdin --data-dir "$data" >/dev/null
start_broker "$data" --auth scram --super-users root
export SYNCLOG_PASSWORD=root-pw
admin() { "$SYNCLOG" --user root "$@"; }
app() { SYNCLOG_PASSWORD=app-pw "$SYNCLOG" --user app "$@"; }
grant() { admin acl add --principal app "$@" >/dev/null; }
# denied CMD...: the command exits 1 with the topic's authorization error.
denied() {
	local rc=0
	"$@" >"$TMP/out" 2>"$TMP/err" </dev/null || rc=$?
	[ "$rc" -eq 1 ] && grep -q TOPIC_AUTHORIZATION_FAILED "$TMP/err" ||
		fail "'$*' was not refused: rc $rc: $(cat "$TMP/err")"
}

admin topic create cs --partitions 1 >/dev/null
printf 'source_of_truth: {system: billing}\nschema: {versions: [1]}\n' >"$TMP/c.yaml"

# set: refused without alter, nothing stored; allowed with it.
denied app contract set cs "$TMP/c.yaml"
rc=0
admin contract show cs >"$TMP/out" 2>"$TMP/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q NO_CONTRACT "$TMP/err" || fail "a refused set stored a contract: $(cat "$TMP/out" "$TMP/err")"
grant --topic cs --op alter
app contract set cs "$TMP/c.yaml" 2>/dev/null | grep -qx 'topic cs contract version 1' || fail "set with alter"

# show: describe (which alter implies) lets app read it; another principal's topic stays closed.
app contract show cs | head -1 | grep -q '^topic cs contract version 1, set by ' || fail "show with alter"
admin topic create other --partitions 1 >/dev/null
admin contract set other "$TMP/c.yaml" >/dev/null 2>&1
denied app contract show other
denied app contract check other

# apply reads the contract with the command's credentials (it says which version it follows).
grant --topic cs --op consume
grant --group crm --op read
grant --topic cs.dlq --op alter
grant --topic cs.dlq --op produce
printf '{"key":"c1","version":1,"value":{"status":"active"}}\n' | admin produce cs --input json >/dev/null
app apply cs --group crm --target "sqlite:$TMP/crm.db" >"$TMP/out" 2>"$TMP/err" || fail "apply: $(cat "$TMP/err")"
grep -q 'contract version 1 of topic cs' "$TMP/err" || fail "apply did not read the contract: $(cat "$TMP/err")"
grep -qx 'applied 1 stale 0 duplicate 0 deleted 0 dead_lettered 0' "$TMP/out" || fail "apply: $(cat "$TMP/out")"

# Audited: the denied set and the done one.
grep -q '"principal":"app".*"action":"contract_set","target":"topic:cs","result":"denied"' \
	"$data/security/audit.log" || fail "denied set not audited: $(cat "$data/security/audit.log")"
grep -q '"principal":"app".*"action":"contract_set","target":"topic:cs","result":"ok"' \
	"$data/security/audit.log" || fail "set not audited: $(cat "$data/security/audit.log")"
stop_broker
echo ok
