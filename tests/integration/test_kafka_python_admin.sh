#!/usr/bin/env bash
# kafka-python's admin client against the Kafka listener, as a connector's setup runs it: create_topics,
# list_topics, describe_topics, describe_configs, delete_topics, and the errors of a topic that exists and of zero
# partitions; the topics it made are synclog's own (`synclog topic list`).
# Usage: tests/integration/test_kafka_python_admin.sh BUILD_DIR (binaries in BUILD_DIR/bin).
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/kafka_python_lib.sh"

start_broker "$TMP/data" --kafka-listen 127.0.0.1:0
kpy admin "$KAFKA_BROKER" 2>"$TMP/err" || fail "kafka-python admin: $(tail -5 "$TMP/err")"
"$SYNCLOG" --json topic describe orders >"$TMP/d.json" || fail "synclog topic describe orders"
[ "$(wc -l <"$TMP/d.json")" -eq 3 ] || fail "orders has not 3 partitions: $(cat "$TMP/d.json")"
"$SYNCLOG" topic list | grep -q scratch && fail "scratch is still listed after delete_topics"
stop_broker
! grep -q 'kafka.*closing' "$TMP/broker.err" || fail "the broker closed a connection: $(grep kafka "$TMP/broker.err")"
echo ok
