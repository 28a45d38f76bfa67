#!/usr/bin/env bash
# Security on the Kafka listener, with kcat (librdkafka) as a Kafka user would run it: security.protocol=SASL_SSL
# with SCRAM-SHA-256 produces and consumes, and PLAIN works over TLS; a wrong password, no SASL at all, and PLAIN
# without TLS are refused; a principal without an ACL gets Kafka's TOPIC_AUTHORIZATION_FAILED and sees no topics
# in metadata, then produces once granted; a failed login is audited.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
command -v kcat >/dev/null || fail "kcat is not installed (tools/install-deps.sh test)"

data="$TMP/data"
printf 'app-pw\n' | "$SYNCLOG" user add app --password-stdin --data-dir "$data" >/dev/null
start_broker_kafka_sasl_ssl "$data"
export SYNCLOG_USER=admin SYNCLOG_PASSWORD=admin-pw SYNCLOG_TLS_CA="$PKI/ca.pem"
"$SYNCLOG" topic create orders --partitions 1 >/dev/null
"$SYNCLOG" topic create hidden --partitions 1 >/dev/null

# kcat USER PASSWORD MECHANISM [PROTOCOL] ARGS...
kc() {
	local user=$1 password=$2 mech=$3 proto=$4
	shift 4
	timeout 60 kcat -b "$KAFKA_BROKER" -X socket.timeout.ms=10000 -X message.timeout.ms=10000 \
		-X security.protocol="$proto" -X ssl.ca.location="$PKI/ca.pem" -X sasl.mechanisms="$mech" \
		-X sasl.username="$user" -X sasl.password="$password" "$@"
}

# SASL_SSL with SCRAM-SHA-256: produce and consume.
printf 'k1#one\nk2#two\n' | kc admin admin-pw SCRAM-SHA-256 SASL_SSL -P -t orders -K '#' 2>"$TMP/err" ||
	fail "kcat SCRAM produce: $(cat "$TMP/err")"
got=$(kc admin admin-pw SCRAM-SHA-256 SASL_SSL -C -t orders -e -f '%k=%s\n' 2>"$TMP/err") ||
	fail "kcat SCRAM consume: $(cat "$TMP/err")"
[ "$got" = "$(printf 'k1=one\nk2=two')" ] || fail "kcat read: $got"
# PLAIN over TLS reads the same.
got=$(kc admin admin-pw PLAIN SASL_SSL -C -t orders -e -f '%s\n' 2>"$TMP/err") || fail "kcat PLAIN: $(cat "$TMP/err")"
[ "$(echo "$got" | wc -l)" -eq 2 ] || fail "kcat PLAIN read: $got"

# Refused: a wrong password; no SASL at all (the connection is closed); the records are still two.
rc=0
kc admin wrong SCRAM-SHA-256 SASL_SSL -L >/dev/null 2>"$TMP/err" || rc=$?
[ "$rc" -ne 0 ] && grep -q "authentication of user 'admin' failed" "$TMP/err" || fail "wrong password: $(cat "$TMP/err")"
rc=0
timeout 60 kcat -b "$KAFKA_BROKER" -X socket.timeout.ms=5000 -X security.protocol=SSL \
	-X ssl.ca.location="$PKI/ca.pem" -L -m 5 >/dev/null 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "a client without SASL listed the metadata"
grep -q 'request before authentication' "$TMP/broker.err" || fail "no log of the unauthenticated request"
wait_for_line "$data/security/audit.log" '"action":"authenticate","target":"user:admin","result":"failed"' ||
	fail "the failed login is not audited"

# ACLs: app sees nothing and may not produce, until granted.
kc app app-pw SCRAM-SHA-256 SASL_SSL -L -J >"$TMP/meta.json" 2>/dev/null || fail "app metadata"
python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); assert m["topics"] == [], m["topics"]' "$TMP/meta.json" ||
	fail "app sees topics: $(cat "$TMP/meta.json")"
rc=0
printf 'x#denied\n' | kc app app-pw SCRAM-SHA-256 SASL_SSL -P -t orders -K '#' >/dev/null 2>"$TMP/err" || rc=$?
grep -q 'Topic authorization failed' "$TMP/err" || fail "app's produce: rc $rc: $(cat "$TMP/err")"
"$SYNCLOG" acl add --principal app --topic orders --op produce >/dev/null
printf 'k3#three\n' | kc app app-pw SCRAM-SHA-256 SASL_SSL -P -t orders -K '#' 2>"$TMP/err" ||
	fail "app's produce once granted: $(cat "$TMP/err")"
kc app app-pw SCRAM-SHA-256 SASL_SSL -L -J >"$TMP/meta.json" 2>/dev/null || fail "app metadata"
python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); assert [t["topic"] for t in m["topics"]] == ["orders"], m' \
	"$TMP/meta.json" || fail "app sees: $(cat "$TMP/meta.json")"
[ "$("$SYNCLOG" consume orders | wc -l)" -eq 3 ] || fail "records in orders: $("$SYNCLOG" consume orders)"
stop_broker

# Without TLS, PLAIN (the password itself) is not offered; SCRAM still works.
: >"$TMP/broker.err"
start_broker "$data" --kafka-listen 127.0.0.1:0 --auth scram --super-users admin
rc=0
kc admin admin-pw PLAIN SASL_PLAINTEXT -L >/dev/null 2>"$TMP/err" || rc=$?
[ "$rc" -ne 0 ] || fail "PLAIN without TLS was accepted"
grep -q "mechanism 'PLAIN' not offered" "$TMP/broker.err" || fail "PLAIN refusal not logged: $(cat "$TMP/broker.err")"
kc admin admin-pw SCRAM-SHA-256 SASL_PLAINTEXT -L >/dev/null 2>"$TMP/err" || fail "SCRAM without TLS: $(cat "$TMP/err")"
stop_broker
echo ok
