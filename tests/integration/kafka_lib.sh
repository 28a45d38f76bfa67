# Helpers for the tests of the sync tools on a Kafka cluster (sourced after lib.sh): librdkafka's mock cluster as a
# process (tests/integration/kafka_mock.c), driven through a FIFO, and stopped by PID with the rest.
#
#   start_mock             starts 3 brokers; sets MOCK_PID and MOCK_BROKER (kafka://HOST:PORT,HOST:PORT,...)
#   mock_cmd CMD...        sends one command (topic NAME PARTITIONS, leader TOPIC PARTITION BROKER, down BROKER,
#                          up BROKER) and fails the test unless the mock answers "ok"
#   stop_mock              closes its stdin (it exits) and waits for it

MOCK="$BUILD/tests/kafka_mock"
MOCK_PID=
trap 'stop_mock_hard; stop_broker_hard; rm -rf "$TMP"' EXIT

start_mock() {
	[ -x "$MOCK" ] || fail "$MOCK is missing (make test-build)"
	rm -f "$TMP/mock.ctl"
	mkfifo "$TMP/mock.ctl"
	"$MOCK" <"$TMP/mock.ctl" >"$TMP/mock.out" 2>"$TMP/mock.err" &
	MOCK_PID=$!
	exec 9>"$TMP/mock.ctl"
	for _ in $(seq 1 200); do
		if grep -q '^mock ready on ' "$TMP/mock.out" 2>/dev/null; then
			MOCK_BROKER="kafka://$(sed -n 's/^mock ready on //p' "$TMP/mock.out")"
			return 0
		fi
		kill -0 "$MOCK_PID" 2>/dev/null || fail "kafka_mock exited: $(cat "$TMP/mock.err")"
		sleep 0.05
	done
	fail "kafka_mock did not print its readiness line"
}

mock_cmd() {
	local before
	before=$(wc -l <"$TMP/mock.out")
	echo "$*" >&9
	for _ in $(seq 1 200); do
		if [ "$(wc -l <"$TMP/mock.out")" -gt "$before" ]; then
			local answer
			answer=$(tail -1 "$TMP/mock.out")
			[ "$answer" = ok ] || fail "mock '$*': $answer"
			return 0
		fi
		sleep 0.02
	done
	fail "mock '$*': no answer"
}

stop_mock() {
	[ -n "$MOCK_PID" ] || return 0
	exec 9>&-
	wait "$MOCK_PID" || true
	MOCK_PID=
}

stop_mock_hard() {
	[ -n "$MOCK_PID" ] || return 0
	kill -KILL "$MOCK_PID" 2>/dev/null || true
	wait "$MOCK_PID" 2>/dev/null || true
	MOCK_PID=
}

# kafka_check.py: murmur2 placement, the expected state of a target, and record comparisons.
KCHECK="$(dirname "${BASH_SOURCE[0]}")/kafka_check.py"
