#!/usr/bin/env bash
# Issue 22, the console when the broker requires authentication (--auth scram): the page and every API answer 401
# with WWW-Authenticate without credentials or with a wrong password (each failure counted); HTTP Basic with a
# synclog user works, over HTTPS from anywhere and over plain HTTP only from loopback; each answer shows only what
# that user may describe (the status, the overview, topics and groups), a topic or group it may not describe is a
# 403, and the message browser needs consume like `synclog consume`; a super user sees everything. Also
# the ACL of group alter, a request the operations work added. A topic's sync contract and failed contract checks
# follow describe on the topic.
set -euo pipefail
BUILD=${1:-build/release}
. tests/integration/lib.sh

data="$TMP/data"
printf 'root-pw\n' | "$SYNCLOG" user add root --password-stdin --data-dir "$data" >/dev/null
printf 'view-pw\n' | "$SYNCLOG" user add viewer --password-stdin --data-dir "$data" >/dev/null
# A certificate for the HTTPS half (the metrics listener speaks TLS with --tls-cert).
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/key.pem" -out "$TMP/cert.pem" -days 1 \
	-subj "/CN=localhost" -addext "subjectAltName=IP:127.0.0.1" >/dev/null 2>&1 || fail "openssl could not make a certificate"
mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start_broker "$data" --auth scram --super-users root --metrics "127.0.0.1:$mport"
export SYNCLOG_PASSWORD=root-pw
admin() { "$SYNCLOG" --user root "$@"; }
admin topic create orders --partitions 1 >/dev/null
admin topic create payroll --partitions 1 >/dev/null
printf 'o-1\t{"n":1}\n' | admin produce orders >/dev/null
printf 'p-1\t{"salary":1}\n' | admin produce payroll >/dev/null
admin consume orders --group g-orders >/dev/null
admin consume payroll --group g-payroll >/dev/null
admin acl add --principal viewer --topic orders --op describe >/dev/null
admin acl add --principal viewer --group g-orders --op describe >/dev/null

base="http://127.0.0.1:$mport"
# code PATH [CURL ARGS...]: the HTTP status of a GET
code() { local p=$1; shift; curl -s -o "$TMP/body" -D "$TMP/head" -w '%{http_code}' "$@" "$base$p"; }

for p in /ui/ /ui/console.js /api/v1/overview /api/v1/status /api/v1/topics /api/v1/groups/g-orders; do
	[ "$(code "$p")" = 401 ] || fail "$p without credentials: $(code "$p") $(cat "$TMP/body")"
	grep -qi '^WWW-Authenticate: Basic' "$TMP/head" || fail "$p: no WWW-Authenticate: $(cat "$TMP/head")"
done
failed_before=$(curl -s "$base/metrics" | sed -n 's/^synclog_auth_failures_total //p')
[ "$(code /api/v1/status -u viewer:wrong)" = 401 ] || fail "a wrong password: $(cat "$TMP/body")"
[ "$(code /api/v1/status -u nobody:x)" = 401 ] || fail "an unknown user: $(cat "$TMP/body")"
[ "$(code /api/v1/status -H 'Authorization: Basic !!!')" = 401 ] || fail "a malformed header: $(cat "$TMP/body")"
failed_after=$(curl -s "$base/metrics" | sed -n 's/^synclog_auth_failures_total //p')
[ $((failed_after - failed_before)) -eq 3 ] || fail "failures counted: $failed_before -> $failed_after"
grep -q '"action":"authenticate","target":"user:viewer","result":"failed"' "$data/security/audit.log" ||
	fail "a failed console login is not audited: $(tail -3 "$data/security/audit.log")"

# The viewer: only what it may describe.
[ "$(code /ui/ -u viewer:view-pw)" = 200 ] || fail "the page for viewer: $(cat "$TMP/body")"
[ "$(code /api/v1/status -u viewer:view-pw)" = 200 ] || fail "status for viewer: $(cat "$TMP/body")"
python3 - "$TMP/body" <<'PY' || fail "viewer's status: $(cat "$TMP/body")"
import json, sys
s = json.load(open(sys.argv[1]))
assert [t["name"] for t in s["topics"]] == ["orders"], s["topics"]
assert [g["group"] for g in s["groups"]] == ["g-orders"], s["groups"]
PY
[ "$(code /api/v1/overview -u viewer:view-pw)" = 200 ] || fail "overview for viewer"
python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert [g["summary"]["group"] for g in o["groups"]] == ["g-orders"] and o["topics"] == 1, o' "$TMP/body" ||
	fail "viewer's overview: $(cat "$TMP/body")"
[ "$(code /api/v1/topics -u viewer:view-pw)" = 200 ] || fail "topics for viewer"
python3 -c 'import json,sys; t=json.load(open(sys.argv[1])); assert [x["config"]["name"] for x in t["topics"]] == ["orders"], t' "$TMP/body" ||
	fail "viewer's topics: $(cat "$TMP/body")"
[ "$(code /api/v1/groups -u viewer:view-pw)" = 200 ] || fail "groups for viewer"
python3 -c 'import json,sys; g=json.load(open(sys.argv[1])); assert [x["group"] for x in g["groups"]] == ["g-orders"], g' "$TMP/body" ||
	fail "viewer's groups: $(cat "$TMP/body")"
[ "$(code /api/v1/topics/orders -u viewer:view-pw)" = 200 ] || fail "topics/orders for viewer: $(cat "$TMP/body")"
[ "$(code /api/v1/groups/g-orders -u viewer:view-pw)" = 200 ] || fail "groups/g-orders for viewer: $(cat "$TMP/body")"
for p in /api/v1/topics/payroll /api/v1/groups/g-payroll "/api/v1/topics/payroll/messages?partition=0" \
	"/api/v1/topics/orders/messages?partition=0"; do
	[ "$(code "$p" -u viewer:view-pw)" = 403 ] || fail "$p for viewer: $(cat "$TMP/body")"
	grep -q AUTHORIZATION_FAILED "$TMP/body" || fail "$p: $(cat "$TMP/body")"
done
grep -q "salary" "$TMP/body" && fail "payroll's records leaked"
# With consume on orders the browser shows its records.
admin acl add --principal viewer --topic orders --op consume >/dev/null
[ "$(code "/api/v1/topics/orders/messages?partition=0" -u viewer:view-pw)" = 200 ] && grep -q '"o-1"' "$TMP/body" ||
	fail "orders' records with consume: $(cat "$TMP/body")"

# The requests ops added need their ACLs too: a group's health settings need reset on it.
rc=0
SYNCLOG_PASSWORD=view-pw "$SYNCLOG" --user viewer group alter g-orders --stall-after 5s >/dev/null 2>"$TMP/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q GROUP_AUTHORIZATION_FAILED "$TMP/err" || fail "group alter without reset: rc $rc $(cat "$TMP/err")"
admin acl add --principal viewer --group g-orders --op reset >/dev/null
SYNCLOG_PASSWORD=view-pw "$SYNCLOG" --user viewer group alter g-orders --stall-after 5s >/dev/null ||
	fail "group alter with reset"

# Sync contracts need describe on the topic, as `synclog contract show`: the viewer sees orders' contract; a failed
# `contract check` of payroll (it has no contract) is listed for root and not for the viewer.
printf 'source_of_truth:\n  system: shop\n' >"$TMP/orders.yaml"
admin contract set orders "$TMP/orders.yaml" >/dev/null 2>&1
admin contract check payroll >/dev/null 2>&1 && fail "contract check of payroll (no contract) passed"
[ "$(code /api/v1/topics/orders -u viewer:view-pw)" = 200 ] || fail "topics/orders for viewer: $(cat "$TMP/body")"
python3 -c 'import json,sys; t=json.load(open(sys.argv[1])); assert t["contract"]["current"]["text"] == "source_of_truth:\n  system: shop\n", t' "$TMP/body" ||
	fail "viewer's contract of orders: $(cat "$TMP/body")"
[ "$(code /api/v1/sync -u viewer:view-pw)" = 200 ] || fail "sync for viewer"
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert s["contract_checks_failed"] == [] and s["runs"] == [], s' "$TMP/body" ||
	fail "viewer sees payroll's contract check: $(cat "$TMP/body")"
[ "$(code /api/v1/sync -u root:root-pw)" = 200 ] || fail "sync for root"
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert [r["topic"] for r in s["contract_checks_failed"]] == ["payroll"], s' "$TMP/body" ||
	fail "root's failed contract checks: $(cat "$TMP/body")"

# The super user sees everything, and a second request is answered from the checked-credentials cache.
[ "$(code /api/v1/status -u root:root-pw)" = 200 ] || fail "status for root"
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert sorted(t["name"] for t in s["topics"]) == ["orders","payroll"], s' "$TMP/body" ||
	fail "root's status: $(cat "$TMP/body")"
[ "$(code "/api/v1/topics/payroll/messages?partition=0" -u root:root-pw)" = 200 ] && grep -q salary "$TMP/body" ||
	fail "root's browser: $(cat "$TMP/body")"
stop_broker

# Beyond loopback without TLS, Basic is refused before a password is read; with TLS it works.
addr=$(ip -4 -o addr show scope global 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -1)
if [ -n "$addr" ]; then
	start_broker "$data" --auth scram --super-users root --metrics "$addr:$mport" --insecure
	[ "$(curl -s -o "$TMP/body" -w '%{http_code}' -u root:root-pw "http://$addr:$mport/api/v1/status")" = 403 ] ||
		fail "Basic over plain HTTP from $addr: $(cat "$TMP/body")"
	grep -q -- "--tls-cert" "$TMP/body" || fail "the refusal does not say how to turn TLS on: $(cat "$TMP/body")"
	stop_broker
else
	echo "note: no non-loopback IPv4 address here; the plain-HTTP refusal beyond loopback was not exercised"
fi
start_broker "$data" --auth scram --super-users root --metrics "127.0.0.1:$mport" --tls-cert "$TMP/cert.pem" --tls-key "$TMP/key.pem"
[ "$(curl -s -o "$TMP/body" -w '%{http_code}' --cacert "$TMP/cert.pem" -u root:root-pw "https://127.0.0.1:$mport/api/v1/status")" = 200 ] ||
	fail "status over HTTPS: $(cat "$TMP/body")"
[ "$(curl -s -o "$TMP/body" -w '%{http_code}' --cacert "$TMP/cert.pem" "https://127.0.0.1:$mport/ui/")" = 401 ] ||
	fail "the page over HTTPS without credentials"
stop_broker
echo "console auth: ok"
