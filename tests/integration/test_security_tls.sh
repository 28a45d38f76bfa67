#!/usr/bin/env bash
# TLS on the client and metrics listeners with certificates this test makes with `openssl req`: a client that
# trusts the CA produces and consumes; a plaintext client, a client with the system's CAs and one trusting another
# CA are refused; mutual TLS refuses a client without a certificate or with one another CA signed, and makes the
# CN of a good one the principal; SCRAM runs over TLS; SIGHUP swaps the certificate, and a bad file keeps the old.
set -euo pipefail
BUILD=${1:-build/release}
. tests/integration/lib.sh

pki="$TMP/pki"
mkdir -p "$pki"
ca() { openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/$1.key" -out "$pki/$1.pem" -days 2 -subj "/CN=$1" \
	2>/dev/null; }
# cert NAME CN CA [SAN]
cert() {
	openssl req -newkey rsa:2048 -nodes -keyout "$pki/$1.key" -out "$pki/$1.csr" -subj "/CN=$2" 2>/dev/null
	printf '%s\n' "${4:-basicConstraints=CA:FALSE}" >"$pki/$1.ext"
	openssl x509 -req -in "$pki/$1.csr" -CA "$pki/$3.pem" -CAkey "$pki/$3.key" -CAcreateserial -days 2 \
		-extfile "$pki/$1.ext" -out "$pki/$1.pem" 2>/dev/null
}
ca ca1
ca ca2
cert server localhost ca1 "subjectAltName=IP:127.0.0.1,DNS:localhost"
cert server2 localhost ca2 "subjectAltName=IP:127.0.0.1,DNS:localhost"
cert alice alice ca1
cert mallory alice ca2
cp "$pki/server.pem" "$TMP/live.pem"
cp "$pki/server.key" "$TMP/live.key"

# refused CMD...: exit 1 with the reason matching $WHY.
refused() {
	local rc=0
	"$@" >/dev/null 2>"$TMP/err" </dev/null || rc=$?
	[ "$rc" -eq 1 ] && grep -q "$WHY" "$TMP/err" || fail "'$*' was not refused ($WHY): rc $rc: $(cat "$TMP/err")"
}

data="$TMP/data"
start_broker "$data" --tls-cert "$TMP/live.pem" --tls-key "$TMP/live.key" --metrics 127.0.0.1:0
metrics=$(grep -o 'ready listen=[^ ]* metrics=[0-9.:]*' "$TMP/broker.err" | tail -1 | sed 's/.*metrics=//')
WHY='lost while receiving' refused "$SYNCLOG" topic list
WHY='certificate is not trusted' refused "$SYNCLOG" --tls topic list
WHY='certificate is not trusted' refused "$SYNCLOG" --tls-ca "$pki/ca2.pem" topic list
"$SYNCLOG" --tls-ca "$pki/ca1.pem" topic create t --partitions 2 >/dev/null
seq 1 1000 | awk '{printf "k%d\t{\"n\":%d}\n", $1, $1}' | "$SYNCLOG" --tls-ca "$pki/ca1.pem" produce t |
	grep -qx 'produced 1000 records' || fail "produce over TLS"
got=$(SYNCLOG_TLS_CA="$pki/ca1.pem" "$SYNCLOG" consume t | cut -f4 | sort | md5sum)
want=$(seq 1 1000 | awk '{printf "{\"n\":%d}\n", $1}' | sort | md5sum)
[ "$got" = "$want" ] || fail "consume over TLS (SYNCLOG_TLS_CA) read other records"
# HTTPS metrics.
python3 - "$metrics" "$pki/ca1.pem" <<'PY' || fail "metrics over HTTPS"
import re, ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[2])
text = urllib.request.urlopen("https://%s/metrics" % sys.argv[1], context=ctx, timeout=30).read().decode()
assert re.search(r'^synclog_produce_records_total\{topic="t",origin="live"\} 1000$', text, re.M), text[:500]
PY

# SIGHUP: the certificate CA2 signed replaces it for new connections; a file that does not load changes nothing.
cp "$pki/server2.pem" "$TMP/live.pem"
cp "$pki/server2.key" "$TMP/live.key"
kill -HUP "$BROKER_PID"
for _ in $(seq 1 100); do grep -q tls_reloaded "$TMP/broker.err" && break; sleep 0.1; done
grep -q tls_reloaded "$TMP/broker.err" || fail "no tls_reloaded event"
"$SYNCLOG" --tls-ca "$pki/ca2.pem" topic list >/dev/null || fail "the reloaded certificate is not served"
WHY='certificate is not trusted' refused "$SYNCLOG" --tls-ca "$pki/ca1.pem" topic list
echo garbage >"$TMP/live.pem"
kill -HUP "$BROKER_PID"
for _ in $(seq 1 100); do grep -q tls_reload_failed "$TMP/broker.err" && break; sleep 0.1; done
grep -q 'tls_reload_failed.*stay in use' "$TMP/broker.err" || fail "no tls_reload_failed event"
"$SYNCLOG" --tls-ca "$pki/ca2.pem" topic list >/dev/null || fail "a failed reload broke the listener"
stop_broker

# Mutual TLS: only certificates CA1 signed; the CN is the principal (alice is a super user).
: >"$TMP/broker.err"
start_broker "$data" --tls-cert "$pki/server.pem" --tls-key "$pki/server.key" --tls-ca "$pki/ca1.pem" \
	--tls-client-auth required --super-users alice
WHY='certificate required' refused "$SYNCLOG" --tls-ca "$pki/ca1.pem" topic list
WHY='TLS' refused "$SYNCLOG" --tls-ca "$pki/ca1.pem" --tls-cert "$pki/mallory.pem" --tls-key "$pki/mallory.key" topic list
mtls=(--tls-ca "$pki/ca1.pem" --tls-cert "$pki/alice.pem" --tls-key "$pki/alice.key")
"$SYNCLOG" "${mtls[@]}" topic delete t >/dev/null || fail "alice's certificate refused"
wait_for_line "$data/security/audit.log" '"principal":"alice".*"action":"topic_delete","target":"topic:t","result":"ok"' ||
	fail "the certificate's CN is not the principal: $(cat "$data/security/audit.log")"
grep -q 'tls_failed' "$TMP/broker.err" || fail "refused handshakes not logged"
wait_for_line "$data/security/audit.log" '"action":"authenticate","target":"user:","result":"failed","detail":"client certificate refused' ||
	fail "refused client certificates not audited: $(cat "$data/security/audit.log")"
stop_broker

# SCRAM over TLS, as SASL_SSL: the password check still decides.
printf 'pw\n' | "$SYNCLOG" user add bob --password-stdin --data-dir "$data" >/dev/null
: >"$TMP/broker.err"
start_broker "$data" --tls-cert "$pki/server.pem" --tls-key "$pki/server.key" --auth scram --super-users bob
SYNCLOG_PASSWORD=pw "$SYNCLOG" --tls-ca "$pki/ca1.pem" --user bob topic list >/dev/null || fail "SCRAM over TLS"
WHY='AUTHENTICATION_FAILED' refused env SYNCLOG_PASSWORD=nope "$SYNCLOG" --tls-ca "$pki/ca1.pem" --user bob topic list
stop_broker
echo ok
