#!/usr/bin/env bash
# The TLS suites the broker accepts and the one it picks (proto/tls_suites.h): AES-128-GCM for a client that lists
# AES-256-GCM first (TLS 1.3 and 1.2), ChaCha20-Poly1305 for a client that lists it first, and no session for a
# client that offers only CBC suites or TLS 1.1. The certificate is ECDSA P-256, as bench/security.sh makes it.
set -euo pipefail
BUILD=${1:-build/release}
. tests/integration/lib.sh

start_broker_tls "$TMP/data"

# suite FLAG...: the cipher an openssl client offering FLAG... gets, or "none".
suite() {
	local out
	out=$(openssl s_client -connect "$SYNCLOG_BROKER" -CAfile "$PKI/ca.pem" "$@" </dev/null 2>/dev/null || true)
	local c
	c=$(printf '%s\n' "$out" | sed -n 's/^ *Cipher *: *//p; s/^New, .*, Cipher is //p' | head -1)
	[ -n "$c" ] && [ "$c" != "(NONE)" ] && [ "$c" != "0000" ] && echo "$c" || echo none
}
got=$(suite -tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256)
[ "$got" = TLS_AES_128_GCM_SHA256 ] || fail "TLS 1.3, AES-256 listed first: got $got, want TLS_AES_128_GCM_SHA256"
got=$(suite -tls1_3 -ciphersuites TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256)
[ "$got" = TLS_CHACHA20_POLY1305_SHA256 ] || fail "TLS 1.3, ChaCha20 listed first: got $got"
got=$(suite -tls1_2 -cipher ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256)
[ "$got" = ECDHE-ECDSA-AES128-GCM-SHA256 ] || fail "TLS 1.2, AES-256 listed first: got $got"
got=$(suite -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA)
[ "$got" = none ] || fail "TLS 1.2 with CBC suites only was accepted: $got"
got=$(suite -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0')
[ "$got" = none ] || fail "TLS 1.1 was accepted: $got"
# Our own client offers the same suites (consumer/client/tls.c) and connects.
"$SYNCLOG" --tls-ca "$PKI/ca.pem" topic list >/dev/null || fail "synclog over TLS"
stop_broker
echo ok
