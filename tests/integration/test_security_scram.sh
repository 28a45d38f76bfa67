#!/usr/bin/env bash
# SCRAM-SHA-256 on the native handshake (synclogd --auth scram): the first administrator is created offline with
# `synclog user add --data-dir` (refused while a broker holds the directory); the right password works from
# SYNCLOG_PASSWORD and from --password-file, a wrong one, an unknown user and no credentials fail with exit 1
# and a clear message; users added through the broker need the cluster admin operation; a deleted user can no
# longer log in; every failed login is in the audit log and the metrics; the users file holds no password.
set -euo pipefail
BUILD=${1:-build/release}
. tests/integration/lib.sh

data="$TMP/data"
printf 'admin-secret\n' | "$SYNCLOG" user add admin --password-stdin --data-dir "$data" >"$TMP/out"
grep -qx 'added user admin' "$TMP/out" || fail "user add --data-dir said: $(cat "$TMP/out")"
grep -q '^admin SCRAM-SHA-256 4096 ' "$data/security/users" || fail "users file: $(cat "$data/security/users")"
if grep -q 'admin-secret' "$data/security/users"; then fail "the users file holds the password"; fi
[ "$(stat -c %a "$data/security")" = 700 ] || fail "DATA/security is not private"

start_broker "$data" --auth scram --super-users admin --metrics 127.0.0.1:0
metrics=$(grep -o 'ready listen=[^ ]* metrics=[0-9.:]*' "$TMP/broker.err" | tail -1 | sed 's/.*metrics=//')

# The offline path refuses while the broker runs, naming it.
rc=0
printf 'x\n' | "$SYNCLOG" user add other --password-stdin --data-dir "$data" 2>"$TMP/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "synclogd (pid $BROKER_PID) is running on $data" "$TMP/err" ||
	fail "user add --data-dir on a running broker: rc $rc: $(cat "$TMP/err")"

# No credentials: exit 1, saying what to give.
rc=0
"$SYNCLOG" topic list 2>"$TMP/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q 'requires authentication: give --user NAME' "$TMP/err" || fail "no credentials: $(cat "$TMP/err")"
# Wrong password, unknown user: the same refusal.
for who in "admin wrong" "nobody admin-secret"; do
	set -- $who
	rc=0
	SYNCLOG_PASSWORD=$2 "$SYNCLOG" --user "$1" topic list 2>"$TMP/err" || rc=$?
	[ "$rc" -eq 1 ] && grep -q "AUTHENTICATION_FAILED: authentication of user '$1' failed: wrong password or unknown user" \
		"$TMP/err" || fail "user $1 with a wrong password: rc $rc: $(cat "$TMP/err")"
done
# The right password, from the environment, with SYNCLOG_USER, and from a file.
SYNCLOG_PASSWORD=admin-secret "$SYNCLOG" --user admin topic create orders --partitions 2 >/dev/null
SYNCLOG_USER=admin SYNCLOG_PASSWORD=admin-secret "$SYNCLOG" topic list | grep -q '^orders ' || fail "SYNCLOG_USER"
printf 'admin-secret\n' >"$TMP/pw"
"$SYNCLOG" --user admin --password-file "$TMP/pw" topic describe orders >/dev/null || fail "--password-file"
export SYNCLOG_USER=admin SYNCLOG_PASSWORD=admin-secret

# Users through the broker: the admin adds one; that user may not add users itself.
printf 'bob-secret\n' | "$SYNCLOG" user add bob --password-stdin | grep -qx 'added user bob' || fail "user add bob"
printf 'bob-secret2\n' | "$SYNCLOG" user add bob --password-stdin | grep -qx 'changed the password of user bob' ||
	fail "second user add bob"
"$SYNCLOG" --json user list >"$TMP/users"
grep -qx '{"user":"admin","mechanism":"SCRAM-SHA-256","iterations":4096,"super_user":true}' "$TMP/users" &&
	grep -qx '{"user":"bob","mechanism":"SCRAM-SHA-256","iterations":4096,"super_user":false}' "$TMP/users" ||
	fail "user list: $(cat "$TMP/users")"
rc=0
SYNCLOG_PASSWORD=bob-secret "$SYNCLOG" --user bob topic list 2>/dev/null || rc=$?
[ "$rc" -eq 1 ] || fail "bob's old password still works"
rc=0
printf 'x\n' | SYNCLOG_USER=bob SYNCLOG_PASSWORD=bob-secret2 "$SYNCLOG" user add eve --password-stdin 2>"$TMP/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "CLUSTER_AUTHORIZATION_FAILED: principal 'bob' may not do that" "$TMP/err" ||
	fail "bob added a user: rc $rc: $(cat "$TMP/err")"
"$SYNCLOG" user delete bob | grep -qx 'deleted user bob' || fail "user delete"
rc=0
SYNCLOG_PASSWORD=bob-secret2 "$SYNCLOG" --user bob topic list 2>/dev/null || rc=$?
[ "$rc" -eq 1 ] || fail "a deleted user logged in"
rc=0
"$SYNCLOG" user delete bob 2>"$TMP/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q 'UNKNOWN_USER' "$TMP/err" || fail "deleting a missing user: $(cat "$TMP/err")"

# The failed logins are audited (JSON lines, written off the loop in order: the last one's arrival means all are
# there) and counted.
wait_for_line "$data/security/audit.log" '"action":"user_delete".*"result":"failed"' || fail "no audit line of the user delete"
python3 - "$data/security/audit.log" <<'PY' || fail "audit log: $(cat "$data/security/audit.log")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
failed = [l for l in lines if l["action"] == "authenticate" and l["result"] == "failed"]
assert {l["target"] for l in failed} >= {"user:admin", "user:nobody", "user:bob"}, failed
assert all(l["address"].startswith("127.0.0.1:") and l["ts"].endswith("Z") for l in failed), failed
adds = [l for l in lines if l["action"] == "user_add"]
assert [(l["principal"], l["target"], l["result"]) for l in adds] == [
    ("admin", "user:bob", "ok"), ("admin", "user:bob", "ok"), ("bob", "user:eve", "denied")], adds
assert any(l["action"] == "user_delete" and l["result"] == "failed" for l in lines)
PY
python3 - "$metrics" <<'PY' || fail "metrics"
import sys, urllib.request
text = urllib.request.urlopen("http://%s/metrics" % sys.argv[1], timeout=30).read().decode()
values = {l.split()[0]: float(l.split()[1]) for l in text.splitlines() if l and not l.startswith("#")}
assert values["synclog_auth_failures_total"] == 4, values["synclog_auth_failures_total"]
assert values["synclog_auth_successes_total"] >= 5
assert values['synclog_audit_events_total{action="user_add",result="denied"}'] == 1
PY
stop_broker

# The password of a user added through the broker survives a restart: it was saved before it was answered.
start_broker "$data" --auth scram --super-users admin
"$SYNCLOG" user list | grep -q '^admin ' || fail "after restart"
stop_broker
echo ok
