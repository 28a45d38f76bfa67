#!/usr/bin/env bash
# The sync tools on a Kafka cluster that wants authentication: synclogd's Kafka listener with --auth scram, reached
# through the client library's Kafka transport.
#   1. SASL_SSL with SCRAM-SHA-256 from a --kafka-config-file (Kafka's client.properties form): topic create,
#      produce, consume, apply into SQLite with the applier's offsets in the cluster's group;
#   2. the global --user / $SYNCLOG_PASSWORD / --tls-ca, mapped onto librdkafka's settings for a kafka:// broker;
#   3. a wrong password fails at once with the cluster's reason (not after the timeout); a principal without an
#      ACL does not see the topic and writes nothing, then produces once granted;
#   4. SASL_PLAINTEXT from --kafka-config flags, and copy from the native listener (SCRAM) to the Kafka listener
#      (SASL) with both sides authenticated: every record arrives, the digests match.
# Usage: tests/integration/test_kafka_tools_auth.sh BUILD_DIR
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"

data="$TMP/data"
printf 'app-pw\n' | "$SYNCLOG" user add app --password-stdin --data-dir "$data" >/dev/null
start_broker_kafka_sasl_ssl "$data"
KB="kafka://$KAFKA_BROKER"

# ---- 1. SASL_SSL from a client.properties file ----
cat >"$TMP/admin.properties" <<EOF
# what a Kafka user already has for the cluster
security.protocol=SASL_SSL
sasl.mechanisms=SCRAM-SHA-256
sasl.username=admin
sasl.password=admin-pw
ssl.ca.location=$PKI/ca.pem
EOF
A() { "$SYNCLOG" --broker "$KB" --kafka-config-file "$TMP/admin.properties" "$@"; }
A topic create orders --partitions 2 >/dev/null 2>"$TMP/create.err" || fail "topic create over SASL_SSL: $(cat "$TMP/create.err")"
python3 "$KCHECK" events 400 40 3 >"$TMP/events.jsonl"
out=$(A produce orders --input json <"$TMP/events.jsonl" 2>"$TMP/produce.err") ||
	fail "produce over SASL_SSL: $(cat "$TMP/produce.err")"
[ "$out" = "produced 400 records" ] || fail "produce printed '$out'"
A --json consume orders >"$TMP/all.json" 2>"$TMP/consume.err" || fail "consume over SASL_SSL: $(cat "$TMP/consume.err")"
[ "$(python3 "$KCHECK" count "$TMP/all.json")" -eq 400 ] || fail "consume read $(wc -l <"$TMP/all.json") records"
out=$(A apply orders --group crm --target "sqlite:$TMP/crm.db" 2>"$TMP/apply.err") ||
	fail "apply over SASL_SSL: $(cat "$TMP/apply.err")"
case "$out" in "applied "*" stale 0 duplicate 0 deleted "*" dead_lettered 0") ;; *) fail "apply printed '$out'" ;; esac
python3 "$KCHECK" expected "$TMP/events.jsonl" "$TMP/crm.db" || fail "the target is not the newest version of each key"
A --json group describe crm >"$TMP/crm.desc" 2>"$TMP/crm.err" || fail "group describe: $(cat "$TMP/crm.err")"
python3 - "$TMP/crm.desc" <<'PY' || fail "the applier's offsets are not in the group: $(cat "$TMP/crm.desc")"
import json, sys
ps = [json.loads(l) for l in open(sys.argv[1])]
assert len(ps) == 2 and all(p["committed"] == p["next_offset"] for p in ps)
PY

# ---- 2. the global credentials and CA on a kafka:// broker ----
SYNCLOG_PASSWORD=admin-pw "$SYNCLOG" --broker "$KB" --user admin --tls-ca "$PKI/ca.pem" topic list >"$TMP/list.out" \
	2>"$TMP/list.err" || fail "--user and --tls-ca on kafka://: $(cat "$TMP/list.err")"
grep -q '^orders ' "$TMP/list.out" || fail "topic list: $(cat "$TMP/list.out")"
# --kafka-config wins over what the global flags map to: a wrong password given there is the one used.
rc=0
SYNCLOG_PASSWORD=admin-pw "$SYNCLOG" --broker "$KB" --user admin --tls-ca "$PKI/ca.pem" \
	--kafka-config sasl.password=wrong topic list >/dev/null 2>"$TMP/over.err" || rc=$?
[ $rc -eq 1 ] || fail "--kafka-config sasl.password did not replace the mapped one (exit $rc)"

# ---- 3. refusals ----
rc=0
"$SYNCLOG" --broker "$KB" --kafka-config-file "$TMP/admin.properties" --kafka-config sasl.password=wrong \
	--timeout 60s topic list >/dev/null 2>"$TMP/wrong.err" || rc=$?
[ $rc -eq 1 ] || fail "a wrong password exited $rc"
grep -q "refused the connection" "$TMP/wrong.err" && grep -qi "authentication" "$TMP/wrong.err" ||
	fail "a wrong password's message: $(cat "$TMP/wrong.err")"
grep -q "within 60000 ms" "$TMP/wrong.err" && fail "a wrong password waited for the timeout: $(cat "$TMP/wrong.err")"
rc=0
"$SYNCLOG" --broker "$KB" --kafka-config-file "$TMP/admin.properties" --kafka-config sasl.username=app \
	--kafka-config sasl.password=app-pw produce orders --input json <"$TMP/events.jsonl" >/dev/null \
	2>"$TMP/denied.err" || rc=$?
[ $rc -eq 1 ] && grep -q "ACLs hide it" "$TMP/denied.err" || fail "app's produce without an ACL: exit $rc, $(cat "$TMP/denied.err")"
[ "$(A --json consume orders | wc -l)" -eq 400 ] || fail "a refused produce wrote records"
# Granted (natively, as admin), app produces through SASL.
SYNCLOG_USER=admin SYNCLOG_PASSWORD=admin-pw "$SYNCLOG" --tls-ca "$PKI/ca.pem" acl add --principal app --topic orders \
	--op produce >/dev/null || fail "acl add"
SYNCLOG_PASSWORD=app-pw "$SYNCLOG" --broker "$KB" --user app --tls-ca "$PKI/ca.pem" produce orders --input json \
	<"$TMP/events.jsonl" >/dev/null 2>"$TMP/granted.err" || fail "app's produce once granted: $(cat "$TMP/granted.err")"
[ "$(A --json consume orders | wc -l)" -eq 800 ] || fail "app's records are not in orders"
stop_broker

# ---- 4. SASL_PLAINTEXT from flags; copy with both sides authenticated ----
: >"$TMP/broker.err"
start_broker "$data" --kafka-listen 127.0.0.1:0 --auth scram --super-users admin
KB="kafka://$KAFKA_BROKER"
P() {
	"$SYNCLOG" --broker "$KB" --kafka-config security.protocol=SASL_PLAINTEXT \
		--kafka-config sasl.mechanisms=SCRAM-SHA-256 --kafka-config sasl.username=admin \
		--kafka-config sasl.password=admin-pw "$@"
}
[ "$(P --json consume orders 2>"$TMP/plain.err" | wc -l)" -eq 800 ] || fail "consume over SASL_PLAINTEXT: $(cat "$TMP/plain.err")"
export SYNCLOG_USER=admin SYNCLOG_PASSWORD=admin-pw
"$SYNCLOG" --broker "$SYNCLOG_BROKER" topic create native --partitions 3 >/dev/null
"$SYNCLOG" --broker "$SYNCLOG_BROKER" produce native --input json <"$TMP/events.jsonl" >/dev/null
"$SYNCLOG" --json copy --from "$SYNCLOG_BROKER" --to "$KB" native --to-topic migrated >"$TMP/copy.json" 2>"$TMP/copy.err" ||
	fail "copy with SCRAM on both sides: $(cat "$TMP/copy.err")"
python3 - "$TMP/copy.json" <<'PY' || fail "copy: $(cat "$TMP/copy.json")"
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
assert r["records"] == 400 and r["match"], r
PY
unset SYNCLOG_USER SYNCLOG_PASSWORD
stop_broker
echo ok
