#!/usr/bin/env bash
# Each ACL operation (synclog-acl(1)) refused without its ACL, with the resource's authorization error, and allowed
# with it: topic produce, consume, describe, alter (create, settings), delete; group read, describe, reset, delete;
# cluster admin; prefixes and the '*' principal; describe implied by the other operations; lists filtered to what
# a principal may see; a removed ACL refuses again; denied administrative requests are audited.
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
# denied CODE CMD...: the command exits 1 naming the authorization error.
denied() {
	local code=$1 rc=0
	shift
	"$@" >"$TMP/out" 2>"$TMP/err" </dev/null || rc=$?
	[ "$rc" -eq 1 ] && grep -q "$code" "$TMP/err" || fail "'$*' was not refused with $code: rc $rc: $(cat "$TMP/err")"
}

admin topic create t1 --partitions 1 >/dev/null
admin topic create t2 --partitions 1 >/dev/null
admin topic create t3 --partitions 1 >/dev/null
admin topic create pub --partitions 1 >/dev/null
printf 'k\troot\n' | admin produce pub >/dev/null

# topic produce
denied TOPIC_AUTHORIZATION_FAILED sh -c "printf 'k\tv\n' | SYNCLOG_PASSWORD=app-pw '$SYNCLOG' --user app produce t1"
grep -q "principal 'app' may not see topic 't1'" "$TMP/err" || fail "produce refusal text: $(cat "$TMP/err")"
grant --topic t1 --op produce
printf 'k1\tv1\nk2\tv2\n' | app produce t1 | grep -qx 'produced 2 records' || fail "produce with its ACL"
# topic consume
denied TOPIC_AUTHORIZATION_FAILED app consume t1
grep -q "may not consume topic 't1'" "$TMP/err" || fail "consume refusal text: $(cat "$TMP/err")"
grant --topic t1 --op consume
[ "$(app consume t1 | wc -l)" -eq 2 ] || fail "consume with its ACL"
# topic describe, and list filtered to what app may see
denied TOPIC_AUTHORIZATION_FAILED app topic describe t2
grant --topic t2 --op describe
app topic describe t2 >/dev/null || fail "describe with its ACL"
[ "$(app --json topic list | python3 -c 'import json,sys; print(" ".join(sorted(json.loads(l)["topic"] for l in sys.stdin)))')" = "t1 t2" ] ||
	fail "topic list shows app: $(app topic list)"
[ "$(admin topic list | tail -n +2 | wc -l)" -eq 4 ] || fail "the super user sees every topic"
# topic alter: create topics under a prefix
denied TOPIC_AUTHORIZATION_FAILED app topic create team.x --partitions 1
grant --topic team. --prefix --op alter
app topic create team.x --partitions 1 >/dev/null || fail "create under a granted prefix"
denied TOPIC_AUTHORIZATION_FAILED app topic create other.y --partitions 1
# topic alter: also a topic's settings
denied TOPIC_AUTHORIZATION_FAILED app topic alter t3 --set retention.ms=86400000
grant --topic t3 --op alter
app topic alter t3 --set retention.ms=86400000 >/dev/null || fail "topic alter with its ACL"
# topic delete
denied TOPIC_AUTHORIZATION_FAILED app topic delete team.x
grant --topic team.x --op delete
app topic delete team.x >/dev/null || fail "delete with its ACL"

# group read (joining as a member also needs consume on the topic, which app has)
denied GROUP_AUTHORIZATION_FAILED app consume t1 --group g1 --max 1
grant --group g1 --op read
[ "$(app consume t1 --group g1 --max 2 | wc -l)" -eq 2 ] || fail "group read with its ACL"
# group describe: implied by read on g1; on g2 it needs its own ACL
app group describe g1 >/dev/null || fail "describe implied by read"
admin consume t1 --group g2 --max 1 >/dev/null
denied GROUP_AUTHORIZATION_FAILED app group describe g2
grant --group g2 --op describe
app group describe g2 >/dev/null || fail "group describe with its ACL"
[ "$(app --json group list | wc -l)" -eq 2 ] || fail "group list shows app: $(app group list)"
# group reset (an operator's offsets reset)
denied GROUP_AUTHORIZATION_FAILED app offsets reset --group g1 --topic t1 --to-earliest --execute
grant --group g1 --op reset
app offsets reset --group g1 --topic t1 --to-earliest --execute >/dev/null || fail "offsets reset with its ACL"
# group delete
denied GROUP_AUTHORIZATION_FAILED app group delete g1
grant --group g1 --op delete
app group delete g1 >/dev/null || fail "group delete with its ACL"

# cluster admin: ACLs, users, any topic
denied CLUSTER_AUTHORIZATION_FAILED app acl list
denied CLUSTER_AUTHORIZATION_FAILED app acl add --principal app --topic t3 --op produce
grant --cluster --op admin
app acl list | grep -q '^app .* cluster .* admin' || fail "acl list with cluster admin"
app topic create anything --partitions 1 >/dev/null || fail "cluster admin creates any topic"

# '*' grants every authenticated principal
denied TOPIC_AUTHORIZATION_FAILED app consume pub
admin acl add --principal '*' --topic pub --op consume | grep -q 'added ACL principal=\*' || fail "acl add *"
[ "$(app consume pub | wc -l)" -eq 1 ] || fail "consume through the '*' ACL"

# A removed ACL refuses again; removing it twice is an error; adding one twice is not.
admin acl remove --principal app --topic t1 --op produce | grep -q 'removed ACL' || fail "acl remove"
denied TOPIC_AUTHORIZATION_FAILED sh -c "printf 'k\tv\n' | SYNCLOG_PASSWORD=app-pw '$SYNCLOG' --user app produce t1"
rc=0
admin acl remove --principal app --topic t1 --op produce 2>"$TMP/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q 'no such ACL' "$TMP/err" || fail "second remove: $(cat "$TMP/err")"
admin acl add --principal app --topic t2 --op describe | grep -q 'ACL already present' || fail "second add"
# Invalid ACLs are refused by the broker with the reason.
rc=0
admin acl add --principal app --group g1 --op produce 2>"$TMP/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "a group has no operation 'produce'" "$TMP/err" || fail "invalid ACL: $(cat "$TMP/err")"
admin --json acl list --principal app >"$TMP/acls"
grep -qx '{"principal":"app","resource":"topic","pattern":"prefix","name":"team.","op":"alter"}' "$TMP/acls" ||
	fail "acl list --json: $(cat "$TMP/acls")"

# The refusals were logged, the denied administrative ones audited; the ACLs survive a restart.
grep -q 'access_denied principal=app' "$TMP/broker.err" || fail "no access_denied event"
wait_for_line "$data/security/audit.log" \
	'"principal":"app".*"action":"topic_delete","target":"topic:team.x","result":"denied"' || fail "denied delete not audited: $(cat "$data/security/audit.log")"
stop_broker
start_broker "$data" --auth scram --super-users root
app topic describe t2 >/dev/null || fail "ACLs lost in a restart"
stop_broker
echo ok
