#!/usr/bin/env bash
# kafka-python with SASL against the Kafka listener: it speaks SaslHandshake v0 and sends the SASL tokens as bare
# frames (no SaslAuthenticate), which the listener refused before (kafka-python then found no broker at all).
# SCRAM-SHA-256 and PLAIN over TLS (SASL_SSL), SCRAM without TLS (SASL_PLAINTEXT): admin, produce and read work;
# a wrong password is refused and audited; PLAIN without TLS is not offered.
# Usage: tests/integration/test_kafka_python_sasl.sh BUILD_DIR (binaries in BUILD_DIR/bin).
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/kafka_python_lib.sh"

data="$TMP/data"
start_broker_kafka_sasl_ssl "$data"
export KP_USER=admin KP_PASSWORD=admin-pw KP_CAFILE="$PKI/ca.pem" KP_SECURITY=SASL_SSL

# SCRAM-SHA-256 over TLS: the admin client creates the topics, a producer writes, a consumer reads.
KP_MECHANISM=SCRAM-SHA-256 kpy admin "$KAFKA_BROKER" 2>"$TMP/err" || fail "SCRAM admin: $(tail -5 "$TMP/err")"
KP_MECHANISM=SCRAM-SHA-256 kpy produce "$KAFKA_BROKER" orders none 30 >"$TMP/sent" 2>"$TMP/err" ||
	fail "SCRAM produce: $(tail -5 "$TMP/err")"
# PLAIN over TLS reads the same records.
KP_MECHANISM=PLAIN kpy read "$KAFKA_BROKER" orders >"$TMP/read" 2>"$TMP/err" || fail "PLAIN read: $(tail -5 "$TMP/err")"
[ "$(sort "$TMP/read")" = "$(sort "$TMP/sent")" ] || fail "PLAIN read $(wc -l <"$TMP/read") records, not the 30 sent"

# A wrong password: refused, nothing read, the failure audited and logged.
rc=0
KP_MECHANISM=SCRAM-SHA-256 KP_PASSWORD=wrong kpy read "$KAFKA_BROKER" orders >"$TMP/none" 2>"$TMP/err" || rc=$?
[ "$rc" -ne 0 ] && [ ! -s "$TMP/none" ] || fail "a wrong password read: rc $rc: $(head -3 "$TMP/none")"
wait_for_line "$data/security/audit.log" '"action":"authenticate","target":"user:admin","result":"failed"' ||
	fail "the failed login is not audited"
grep -q "authentication of user 'admin' failed.*SaslHandshake v0" "$TMP/broker.err" ||
	fail "the refusal is not in the broker's log: $(grep kafka "$TMP/broker.err" | tail -3)"
stop_broker

# Without TLS: SCRAM works, PLAIN (the password itself) is not offered.
start_broker "$data" --kafka-listen 127.0.0.1:0 --auth scram --super-users admin
KP_SECURITY=SASL_PLAINTEXT KP_MECHANISM=SCRAM-SHA-256 kpy read "$KAFKA_BROKER" orders >"$TMP/read2" 2>"$TMP/err" ||
	fail "SCRAM without TLS: $(tail -5 "$TMP/err")"
[ "$(wc -l <"$TMP/read2")" -eq 30 ] || fail "SCRAM without TLS read $(wc -l <"$TMP/read2") records"
rc=0
KP_SECURITY=SASL_PLAINTEXT KP_MECHANISM=PLAIN kpy read "$KAFKA_BROKER" orders >/dev/null 2>"$TMP/err" || rc=$?
[ "$rc" -ne 0 ] || fail "PLAIN without TLS was accepted"
grep -q "mechanism 'PLAIN' not offered" "$TMP/broker.err" ||
	fail "PLAIN refusal not logged: $(tail -3 "$TMP/broker.err")"
stop_broker
echo ok
