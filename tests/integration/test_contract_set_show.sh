#!/usr/bin/env bash
# A topic's sync contract: set from YAML or JSON, shown back as written and as its stored form, versioned with who
# set it, kept across a broker restart; a bad file refused with its line and nothing stored; --if-version guards
# a concurrent edit; the produce clause enforced by the broker (refuse: the batch is refused whole; count: appended
# and counted).
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"

start_broker "$TMP/data"
S=$SYNCLOG
"$S" topic create cs --partitions 2 >/dev/null
cat >"$TMP/v1.yaml" <<'YAML'
# customer status: billing owns it
source_of_truth:
  system: billing
delivery:
  duplicates: idempotency-key
  without_idempotency_key: refuse
YAML
[ "$("$S" contract set cs "$TMP/v1.yaml" --set-by alice@ops 2>"$TMP/err")" = "topic cs contract version 1" ] ||
	fail "set v1"
# The review drill: the lines of the block the file leaves blank are named (and the contract stored anyway).
grep -q '^synclog contract set: topic cs: 20 lines of the contract block left blank: fields_owned, fields_derived, delivery.model, delivery.ordering, delivery.stale, recovery.backfill_source, .*consumer_impact.on_delete, consumer_impact.on_schema_change, consumer_impact.rollout_pause$' \
	"$TMP/err" || fail "blank lines: $(cat "$TMP/err")"
"$S" contract show cs >"$TMP/show"
head -1 "$TMP/show" | grep -q '^topic cs contract version 1, set by alice@ops from 127.0.0.1:[0-9]* at 20' ||
	fail "show header: $(head -1 "$TMP/show")"
tail -n +2 "$TMP/show" | cmp -s - "$TMP/v1.yaml" || fail "show does not print the file as written"

# A refused file stores nothing and says where the mistake is.
printf 'source_of_truth:\n  system: billing\ndelivery:\n  duplicate: version\n' >"$TMP/bad.yaml"
if "$S" contract set cs "$TMP/bad.yaml" 2>"$TMP/err"; then fail "a bad contract was stored"; fi
grep -q 'line 4: delivery.duplicate: unknown key' "$TMP/err" || fail "bad file message: $(cat "$TMP/err")"
"$S" --json contract show cs | python3 -c 'import json,sys; assert json.load(sys.stdin)["version"] == 1'

# The produce clause: a live record without an idempotency key is refused, nothing of its batch appended.
printf '{"key":"c1","value":{"status":"active"},"idempotency_key":"e1"}\n{"key":"c1","version":2,"value":{"status":"paused"}}\n' |
	"$S" produce cs --input json >"$TMP/out" 2>"$TMP/err" && fail "a record without an idempotency key was accepted"
grep -q 'IDEMPOTENCY_KEY_REQUIRED' "$TMP/err" || fail "refusal message: $(cat "$TMP/err")"
echo '{"key":"c1","value":1,"origin":"backfill","version":1}' | "$S" produce cs --input json >/dev/null ||
	fail "a backfill record (no key needed) was refused"
"$S" --json contract show cs | python3 -c '
import json, sys
e = json.load(sys.stdin)["enforcement"]
assert e["batches_refused"] >= 1 and e["without_idempotency_key"] >= 1, e'

# JSON file, another version; --if-version refuses an edit based on an old version.
cat >"$TMP/v2.json" <<'JSON'
{"source_of_truth": {"system": "billing"}, "delivery": {"duplicates": "idempotency-key", "without_idempotency_key": "count"}}
JSON
"$S" contract set cs "$TMP/v2.json" --if-version 1 >/dev/null
if "$S" contract set cs "$TMP/v2.json" --if-version 1 2>"$TMP/err"; then fail "--if-version 1 at version 2 stored"; fi
grep -q 'version 2, not 1' "$TMP/err" || fail "if-version message: $(cat "$TMP/err")"
if "$S" contract set cs "$TMP/v2.json" --if-version 0 2>/dev/null; then fail "--if-version 0 stored over a contract"; fi

# count: appended and counted.
n=$(printf '{"key":"c2","value":1}\n{"key":"c3","value":2,"idempotency_key":"e9"}\n' | "$S" --json produce cs --input json)
[ "$n" = '{"produced":2}' ] || [ "$n" = '{"produced": 2}' ] || fail "count mode: $n"
"$S" --json contract show cs | python3 -c '
import json, sys
d = json.load(sys.stdin)
e = d["enforcement"]
assert d["version"] == 2 and e["live_records"] == 2 and e["without_idempotency_key"] == 1 and e["batches_refused"] == 0, d
assert d["contract"]["delivery"]["without_idempotency_key"] == "count", d'

# Kept across a restart, with its history.
stop_broker
start_broker "$TMP/data"
"$S" contract show cs --history >"$TMP/history"
[ "$(wc -l <"$TMP/history")" -eq 2 ] || fail "history: $(cat "$TMP/history")"
grep -q '^topic cs contract version 1, set by alice@ops' "$TMP/history" || fail "history lost who set v1"
"$S" contract show cs --version 1 | tail -n +2 | cmp -s - "$TMP/v1.yaml" || fail "version 1 not kept as written"
n=$(echo '{"key":"c4","value":1}' | "$S" produce cs --input json)
[ "$n" = "produced 1 record" ] || fail "count mode after restart: $n"

# A topic without a contract, and a deleted topic's contract goes with it.
"$S" topic create plain --partitions 1 >/dev/null
if "$S" contract show plain 2>"$TMP/err"; then fail "show of a topic without a contract exited 0"; fi
grep -q 'NO_CONTRACT' "$TMP/err" || fail "no contract message: $(cat "$TMP/err")"
"$S" topic delete cs >/dev/null
"$S" topic create cs --partitions 1 >/dev/null
if "$S" contract show cs 2>/dev/null; then fail "a recreated topic kept the old contract"; fi

# The history keeps the last 50 versions; numbers are never reused.
for i in $(seq 1 51); do
	printf 'source_of_truth: {system: s%d}\n' "$i" | "$S" contract set plain - >/dev/null
done
"$S" --json contract show plain --history | python3 -c '
import json, sys
v = [json.loads(l)["version"] for l in sys.stdin]
assert v == list(range(2, 52)), v'
if "$S" contract show plain --version 1 2>"$TMP/err"; then fail "version 1 is still kept"; fi
grep -q "NO_CONTRACT.*no version 1 kept" "$TMP/err" || fail "dropped version: $(cat "$TMP/err")"
stop_broker
