#!/usr/bin/env bash
# Retries after a dropped connection create no duplicates: a proxy cuts the producer's connection three times
# after some answers came back, so batches the broker appended go unanswered; the producer resends them with
# the same sequence numbers and the broker answers with the original offsets instead of appending twice.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"

start_broker "$TMP/data"
"$SYNCLOG" topic create orders --partitions 1 >/dev/null || fail "topic create"
direct=$SYNCLOG_BROKER
python3 -u "$(dirname "$0")/dropproxy.py" "${direct##*:}" 3 3000 >"$TMP/proxy.out" &
PROXY_PID=$!
trap 'kill $PROXY_PID 2>/dev/null; stop_broker_hard; rm -rf "$TMP"' EXIT
for _ in $(seq 1 100); do grep -q '^proxy on' "$TMP/proxy.out" && break; sleep 0.05; done
port=$(sed -n 's/^proxy on //p' "$TMP/proxy.out")
seq 1 50000 | awk '{print "order-" $1 "\t" $1}' >"$TMP/input"
out=$("$SYNCLOG" --broker "127.0.0.1:$port" produce orders --acks written <"$TMP/input") || fail "produce: $out"
[ "$out" = "produced 50000 records" ] || fail "produce said: $out"
"$SYNCLOG" --broker "$direct" consume orders --from earliest | cut -f3,4 >"$TMP/consumed"
n=$(wc -l <"$TMP/consumed")
[ "$n" -eq 50000 ] || fail "$n records in the log for 50000 produced (duplicates or losses)"
cmp -s "$TMP/input" "$TMP/consumed" || fail "the log does not hold the input in order"
stop_broker
echo ok
