#!/usr/bin/env bash
# Defaults that cannot surprise (synclogd(8), SECURITY): with no security configured the broker listens on loopback
# and says so at start; asked to listen beyond loopback without TLS and authentication it exits 1 before its ready
# line unless --insecure is given, and then warns at every start; with TLS and authentication it starts quietly.
set -euo pipefail
BUILD=${1:-build/release}
. tests/integration/lib.sh

data="$TMP/data"
# The default: loopback, and the start says so.
start_broker "$data"
stop_broker
grep -q 'loopback_only.*listening on loopback only' "$TMP/broker.err" || fail "no loopback_only event: $(cat "$TMP/broker.err")"

# Beyond loopback, on the client, metrics and Kafka listeners: refused, exit 1, no ready line.
for flags in "--listen 0.0.0.0:0 --metrics off" "--listen 127.0.0.1:0 --metrics 0.0.0.0:0" \
	"--listen 127.0.0.1:0 --metrics off --kafka-listen 0.0.0.0:0"; do
	rc=0
	# shellcheck disable=SC2086
	out=$(timeout 30 "$SYNCLOGD" --data-dir "$data" $flags 2>"$TMP/refused.err") || rc=$?
	[ "$rc" -eq 1 ] || fail "synclogd $flags exited $rc, want 1"
	[ -z "$out" ] || fail "synclogd $flags printed on stdout: $out"
	grep -q 'start_failed.*refusing to listen on .* beyond loopback without TLS and authentication.*--insecure' \
		"$TMP/refused.err" || fail "refusal message for $flags: $(cat "$TMP/refused.err")"
done
# TLS alone or SCRAM alone is not enough beyond loopback.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/k.pem" -out "$TMP/c.pem" -days 1 -subj /CN=localhost \
	2>/dev/null
rc=0
timeout 30 "$SYNCLOGD" --data-dir "$data" --listen 0.0.0.0:0 --metrics off --tls-cert "$TMP/c.pem" \
	--tls-key "$TMP/k.pem" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "TLS without authentication beyond loopback exited $rc, want 1"
rc=0
timeout 30 "$SYNCLOGD" --data-dir "$data" --listen 0.0.0.0:0 --metrics off --auth scram >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "SCRAM without TLS beyond loopback exited $rc, want 1"

# --insecure: it starts, serves, and warns.
: >"$TMP/broker.err"
start_broker "$data" --listen 0.0.0.0:0 --insecure
"$SYNCLOG" --broker "127.0.0.1:${SYNCLOG_BROKER##*:}" topic create t --partitions 1 >/dev/null
stop_broker
grep -q 'WARN insecure.*beyond loopback without TLS and authentication (--insecure)' "$TMP/broker.err" ||
	fail "no insecure warning: $(cat "$TMP/broker.err")"
# ... at every start, also from the config file.
: >"$TMP/broker.err"
printf '{"listen": "0.0.0.0:0", "insecure": true}\n' >"$TMP/conf"
start_broker "$data" --config "$TMP/conf" --listen 0.0.0.0:0
stop_broker
grep -q 'WARN insecure' "$TMP/broker.err" || fail "no insecure warning with the config key"

# TLS and authentication: beyond loopback without a warning.
: >"$TMP/broker.err"
start_broker "$data" --listen 0.0.0.0:0 --tls-cert "$TMP/c.pem" --tls-key "$TMP/k.pem" --auth scram
stop_broker
if grep -q 'WARN insecure\|loopback_only' "$TMP/broker.err"; then fail "a secured broker warned: $(cat "$TMP/broker.err")"; fi
echo ok
