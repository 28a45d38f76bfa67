# Helpers for the tests of the Kafka listener with kafka-python (sourced after lib.sh): KPY runs
# tests/integration/kafka_python.py under a Python that has Debian's python3-kafka (/usr/bin/python3 when the
# python3 on PATH is another installation), or fails the test saying what to install.

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
