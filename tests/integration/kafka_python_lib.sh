# Helpers for the tests of the Kafka listener with kafka-python (sourced instead of lib.sh, which it sources): KPY
# runs tests/integration/kafka_python.py under a Python that has Debian's python3-kafka (/usr/bin/python3 when the
# python3 on PATH is another installation), or fails the test saying what to install.

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KPY_SCRIPT="$(dirname "${BASH_SOURCE[0]}")/kafka_python.py"
KPY_PYTHON=
for py in python3 /usr/bin/python3; do
	if command -v "$py" >/dev/null && "$py" -c 'import kafka' 2>/dev/null; then
		KPY_PYTHON=$py
		break
	fi
done
[ -n "$KPY_PYTHON" ] || fail "kafka-python is not installed (tools/install-deps.sh test: python3-kafka)"

# kpy SUBCOMMAND ARGS...: kafka_python.py, at most 120 s.
kpy() {
	timeout 120 "$KPY_PYTHON" "$KPY_SCRIPT" "$@"
}

# kpy_topic TOPIC PARTITIONS CODEC COUNT SENT: TOPIC created by synclog with PARTITIONS, then COUNT records
# produced to it by kafka-python with CODEC (none, gzip, ...); what kpy produce printed of them goes to SENT.
kpy_topic() {
	"$SYNCLOG" topic create "$1" --partitions "$2" >/dev/null
	kpy produce "$KAFKA_BROKER" "$1" "$3" "$4" >"$5" 2>"$TMP/err" ||
		fail "kafka-python produce to $1 ($3): $(tail -5 "$TMP/err")"
}
