# Shared helpers for integration tests (sourced). Each test starts its own broker on 127.0.0.1 port 0 in a
# temp dir and stops it by PID; everything is removed on exit.

: "${BUILD:=build/release}"
SYNCLOGD="$BUILD/bin/synclogd"
export SYNCLOG="$BUILD/bin/synclog"
TMP=$(mktemp -d)
BROKER_PID=
trap 'stop_broker_hard; rm -rf "$TMP"' EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# wait_for_line FILE PATTERN: 0 once FILE has a line matching the grep PATTERN, 1 after 10 s. For files the broker
# writes off its loop (the audit log): the line comes shortly after the answer that caused it.
wait_for_line() {
	for _ in $(seq 1 100); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# start_broker DATA_DIR [FLAGS...]: starts synclogd, waits for its readiness line, sets BROKER_PID and
# SYNCLOG_BROKER, and KAFKA_BROKER when the flags include --kafka-listen. Groups form at once
# (--initial-rebalance-delay 0) unless the flags say otherwise: most tests start one consumer at a time and would
# each wait the 3 s default.
start_broker() {
	local data=$1
	shift
	local out="$TMP/broker.out.$$.$RANDOM"
	BROKER_OUT=$out
	"$SYNCLOGD" --data-dir "$data" --listen 127.0.0.1:0 --metrics off --initial-rebalance-delay 0 "$@" \
		>"$out" 2>>"$TMP/broker.err" &
	BROKER_PID=$!
	for _ in $(seq 1 200); do
		if grep -q '^synclogd ready on ' "$out" 2>/dev/null; then
			export SYNCLOG_BROKER=$(sed -n 's/^synclogd ready on \([^ ]*\).*/\1/p' "$out")
			export KAFKA_BROKER=$(sed -n 's/^synclogd ready on .* kafka //p' "$out")
			return 0
		fi
		kill -0 "$BROKER_PID" 2>/dev/null || fail "synclogd exited: $(cat "$TMP/broker.err")"
		sleep 0.05
	done
	fail "synclogd did not print its readiness line"
}

# stop_broker: SIGTERM, wait, expect exit 0.
stop_broker() {
	[ -n "$BROKER_PID" ] || return 0
	kill -TERM "$BROKER_PID"
	local rc=0
	wait "$BROKER_PID" || rc=$?
	BROKER_PID=
	[ "$rc" -eq 0 ] || fail "synclogd exited $rc on SIGTERM: $(tail -5 "$TMP/broker.err")"
}

stop_broker_hard() {
	[ -n "$BROKER_PID" ] || return 0
	kill -KILL "$BROKER_PID" 2>/dev/null || true
	wait "$BROKER_PID" 2>/dev/null || true
	BROKER_PID=
}

# make_pki DIR [ec]: a test CA (DIR/ca.pem, DIR/ca.key) and a server certificate it signed for 127.0.0.1
# (DIR/server.pem, DIR/server.key), valid two days: RSA 2048, or ECDSA P-256 (as bench/security.sh makes them) with ec.
make_pki() {
	local pki=$1 key=(-newkey rsa:2048)
	[ "${2:-}" = ec ] && key=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1)
	mkdir -p "$pki"
	openssl req -x509 "${key[@]}" -nodes -keyout "$pki/ca.key" -out "$pki/ca.pem" -days 2 -subj /CN=ca \
		2>/dev/null || fail "openssl could not make a CA"
	openssl req "${key[@]}" -nodes -keyout "$pki/server.key" -out "$pki/server.csr" -subj /CN=localhost \
		2>/dev/null || fail "openssl could not make a server key"
	printf 'subjectAltName=IP:127.0.0.1\n' >"$pki/san"
	openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
		-extfile "$pki/san" -out "$pki/server.pem" 2>/dev/null || fail "openssl could not sign the server certificate"
}

# start_broker_tls DATA_DIR [FLAGS...]: start_broker with TLS on its listener, serving the certificate of a new ECDSA
# test PKI (make_pki ec) in $TMP/pki, whose path it sets in PKI (clients trust $PKI/ca.pem).
start_broker_tls() {
	PKI="$TMP/pki"
	make_pki "$PKI" ec
	start_broker "$@" --tls-cert "$PKI/server.pem" --tls-key "$PKI/server.key"
}

# start_broker_kafka_sasl_ssl DATA_DIR [FLAGS...]: start_broker with a Kafka listener that wants SASL over TLS, as
# a Kafka cluster with authentication does: SCRAM with the super user admin (password admin-pw, added to DATA_DIR
# here; add other users before), and the server certificate of a new RSA test PKI in $TMP/pki, whose path it sets
# in PKI (clients trust $PKI/ca.pem).
start_broker_kafka_sasl_ssl() {
	local data=$1
	shift
	PKI="$TMP/pki"
	make_pki "$PKI"
	printf 'admin-pw\n' | "$SYNCLOG" user add admin --password-stdin --data-dir "$data" >/dev/null
	start_broker "$data" --kafka-listen 127.0.0.1:0 --tls-cert "$PKI/server.pem" --tls-key "$PKI/server.key" \
		--auth scram --super-users admin "$@"
	[ -n "$KAFKA_BROKER" ] || fail "the ready line names no kafka listener"
}

# metric NAME [CA]: the value of an unlabelled sample of the broker started last (started with --metrics; over https
# with the CA file CA), or "missing".
metric() {
	local addr
	addr=$(grep -o 'ready listen=[^ ]* metrics=[0-9.:]*' "$TMP/broker.err" | tail -1 | sed 's/.*metrics=//')
	if [ -n "${2:-}" ]; then
		curl -sf --cacert "$2" "https://$addr/metrics"
	else
		curl -sf "http://$addr/metrics"
	fi | awk -v n="$1" '$1 == n { print $2; found = 1 } END { if (!found) print "missing" }'
}

# zc_retention_under_stall TOPIC FIRST STALL_PID BEFORE: an answer sent from files outlives retention. A reader
# (STALL_PID) asked for TOPIC's first segment FIRST (a copy of it in $TMP/first) and stalls until $TMP/go exists,
# saving what it then reads in $TMP/stalled; BEFORE is synclog_fetch_sendfile_answers_total when it asked. Retention
# deletes the segment under the stalled answer; the reader must then get the deleted segment's bytes, from the
# files, and the broker must let go of the deleted file once the answer is sent.
zc_retention_under_stall() {
	local topic=$1 first=$2 stall_pid=$3 before=$4 failed
	failed=$(metric synclog_fetch_sendfile_failed_total)
	"$SYNCLOG" topic alter "$topic" --set retention.bytes=1 >/dev/null || fail "topic alter $topic"
	for _ in $(seq 1 100); do [ -e "$first" ] || break; sleep 0.1; done
	[ ! -e "$first" ] || fail "retention did not delete the first segment of $topic"
	touch "$TMP/go"
	wait "$stall_pid" || fail "the stalled consumer: $(cat "$TMP/stall.out")"
	python3 - "$TMP/first" "$TMP/stalled" <<'PY' || fail "the stalled answer differs from the deleted segment"
import sys
seg, got = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
assert len(got) > 4 << 20 and got == seg[:len(got)], (len(got), len(seg))
PY
	[ "$(metric synclog_fetch_sendfile_answers_total)" -gt "$before" ] || fail "the stalled answer was not from files"
	[ "$(metric synclog_fetch_sendfile_failed_total)" = "$failed" ] || fail "the stalled answer from files failed"
	for _ in $(seq 1 100); do
		ls -l "/proc/$BROKER_PID/fd" 2>/dev/null | grep -q '(deleted)' || break
		sleep 0.1
	done
	! ls -l "/proc/$BROKER_PID/fd" | grep '(deleted)' || fail "the broker still holds a deleted segment"
}

# expect_exit CODE CMD...: runs CMD with its output in $TMP/out and $TMP/err; fails unless it exits CODE (naming the
# command and the start of its stderr).
expect_exit() {
	local want=$1 rc=0
	shift
	"$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
	[ "$rc" -eq "$want" ] || fail "exit $rc, expected $want: $* (stderr: $(head -c 600 "$TMP/err"))"
}
