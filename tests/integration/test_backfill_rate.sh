#!/usr/bin/env bash
# Acceptance 4 of issue 13: a backfill at --rate 20000 runs at 20,000 +/- 10% records/s, measured from the records'
# timestamps (100,000 rows, about 5 s); --rate-bytes holds the bytes of keys and values to its rate; and the
# broker's cap (synclogd --backfill-rate-max) holds a backfill without a rate of its own to the cap, by holding
# back its answers (only the lower bound of the run's length is checked: a loaded machine may be slower, never
# faster).
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apply_lib.sh"
. "$(dirname "$0")/backfill_lib.sh"

# rate_of TOPIC: "RECORDS RECORDS_PER_S BYTES_PER_S" from the first to the last record's timestamp.
rate_of() {
	"$SYNCLOG" --json consume "$1" | python3 -c '
import json, sys
ts, nbytes = [], 0
for line in sys.stdin:
    r = json.loads(line)
    ts.append(r["timestamp_ms"])
    nbytes += len(r["key"].encode()) + len(json.dumps(r["value"], separators=(",", ":")).encode())
span = (max(ts) - min(ts)) / 1000.0
print(len(ts), int((len(ts) - 1) / span), int(nbytes / span))'
}

start_broker "$TMP/data"
S=$SYNCLOG
make_source "$TMP/src.db" customers 100000
"$S" topic create paced --partitions 2 >/dev/null
"$S" backfill paced --source "sqlite:$TMP/src.db:customers" --rate 20000 >"$TMP/out" 2>"$TMP/err" ||
	fail "backfill --rate: $(cat "$TMP/err")"
read -r n rate bytes_rate < <(rate_of paced)
echo "--rate 20000: $n records at $rate records/s"
[ "$n" -eq 100000 ] || fail "$n records"
[ "$rate" -ge 18000 ] && [ "$rate" -le 22000 ] || fail "--rate 20000 ran at $rate records/s"

# --rate-bytes: 20,000 rows of about 37 bytes at 250,000 bytes/s: about 3 s.
make_source "$TMP/small.db" customers 20000
"$S" topic create bytes --partitions 2 >/dev/null
"$S" backfill bytes --source "sqlite:$TMP/small.db:customers" --rate-bytes 250000 >"$TMP/out" 2>"$TMP/err" ||
	fail "backfill --rate-bytes: $(cat "$TMP/err")"
read -r n rate bytes_rate < <(rate_of bytes)
echo "--rate-bytes 250000: $n records at $bytes_rate bytes/s"
[ "$bytes_rate" -ge 200000 ] && [ "$bytes_rate" -le 275000 ] || fail "--rate-bytes 250000 ran at $bytes_rate bytes/s"
stop_broker

# The broker's cap: 10,000 backfill records/s per topic; a backfill of 30,000 rows with no rate of its own.
"$SYNCLOGD" --data-dir "$TMP/data2" --listen 127.0.0.1:0 --metrics off --backfill-rate-max 10000 \
	>"$TMP/broker2.out" 2>>"$TMP/broker.err" &
BROKER_PID=$!
for _ in $(seq 1 200); do
	grep -q '^synclogd ready on ' "$TMP/broker2.out" 2>/dev/null && break
	sleep 0.05
done
export SYNCLOG_BROKER=$(sed -n 's/^synclogd ready on //p' "$TMP/broker2.out")
"$S" topic create capped --partitions 2 >/dev/null
make_source "$TMP/more.db" customers 30000
t0=$(date +%s%N)
"$S" backfill capped --source "sqlite:$TMP/more.db:customers" >/dev/null 2>"$TMP/err" ||
	fail "capped backfill: $(cat "$TMP/err")"
elapsed_ms=$((($(date +%s%N) - t0) / 1000000))
echo "--backfill-rate-max 10000: 30000 records in $elapsed_ms ms"
[ "$(log_end capped)" -eq 30000 ] || fail "$(log_end capped) records"
# The records are timestamped as the client takes them, ahead of the broker: the run's length is what the cap
# bounds. The bucket starts empty, so 30,000 records take at least 3 s (10% for the clock's grain).
[ "$elapsed_ms" -ge 2700 ] || fail "the broker's cap of 10000 records/s let 30000 through in $elapsed_ms ms"
# Live records are not held: a produce of 1,000 live records after the backfill gets its answers (no wait on the
# cap is asserted here, only that live traffic is not counted: the cap's bucket is untouched by it).
seq 1 1000 | sed 's/^/live-/; s/$/\t{}/' | "$S" produce capped >"$TMP/out" 2>"$TMP/err" || fail "live produce: $(cat "$TMP/err")"
grep -q '^produced 1000 records$' "$TMP/out" || fail "live produce: $(cat "$TMP/out")"
stop_broker
