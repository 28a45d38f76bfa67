#!/usr/bin/env bash
# A topic's contract binds Kafka producers too: through the Kafka listener (kcat), a record without the ik header
# is refused as INVALID_RECORD when the contract refuses records without idempotency keys (nothing appended), and
# one with it is stored; zstd batches are read the same way.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
command -v kcat >/dev/null || fail "kcat is not installed (tools/install-deps.sh test)"

start_broker "$TMP/data" --kafka-listen 127.0.0.1:0
S=$SYNCLOG
K=(kcat -b "$KAFKA_BROKER" -X socket.timeout.ms=10000 -X topic.request.timeout.ms=10000 -X message.send.max.retries=0)
"$S" topic create payments --partitions 1 >/dev/null
printf 'source_of_truth: {system: ledger}\ndelivery: {duplicates: idempotency-key, without_idempotency_key: refuse}\n' \
	>"$TMP/c.yaml"
"$S" contract set payments "$TMP/c.yaml" >/dev/null

echo 'p1#{"amount": 5}' | "${K[@]}" -P -t payments -K '#' -z zstd 2>"$TMP/kcat.err" && true
grep -q "Broker failed to validate record" "$TMP/kcat.err" || fail "kcat without ik: $(cat "$TMP/kcat.err")"
echo 'p1#{"amount": 5}' | "${K[@]}" -P -t payments -K '#' -H ik=evt-1 -z zstd 2>"$TMP/kcat.err" ||
	fail "kcat with ik: $(cat "$TMP/kcat.err")"
"$S" --json consume payments >"$TMP/out"
[ "$(wc -l <"$TMP/out")" -eq 1 ] || fail "stored: $(cat "$TMP/out")"
grep -q '"idempotency_key":"evt-1"' "$TMP/out" || fail "stored: $(cat "$TMP/out")"
"$S" --json contract show payments | python3 -c '
import json, sys
e = json.load(sys.stdin)["enforcement"]
assert e["batches_refused"] == 1 and e["live_records"] == 2 and e["without_idempotency_key"] == 1, e'
stop_broker
