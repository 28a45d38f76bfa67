#!/usr/bin/env bash
# One flipped byte in the middle of a sealed segment costs only the batch it hit. A consumer reaching it stops
# with "corrupt batch"; `synclogd --repair` cuts out the damaged batch, keeps every record
# after it at its offset, and names the offsets lost; a consumer then stops at them with RECORDS_LOST, unless it
# passes --skip-lost, and reads every other record. Before the fix --repair cut the log at the damage: every
# acknowledged record after the flipped byte was gone.
set -euo pipefail
BUILD=${1:-build/release}
. tests/integration/lib.sh

data="$TMP/data"
start_broker_with() {
	local out="$TMP/broker.out.$RANDOM"
	"$SYNCLOGD" --data-dir "$data" --listen 127.0.0.1:0 --metrics off --segment-bytes 1048576 >"$out" 2>>"$TMP/broker.err" &
	BROKER_PID=$!
	for _ in $(seq 1 200); do
		if grep -q '^synclogd ready on ' "$out" 2>/dev/null; then
			export SYNCLOG_BROKER=$(sed -n 's/^synclogd ready on //p' "$out")
			return 0
		fi
		kill -0 "$BROKER_PID" 2>/dev/null || fail "synclogd exited: $(cat "$TMP/broker.err")"
		sleep 0.05
	done
	fail "synclogd did not start"
}

start_broker_with
"$SYNCLOG" topic create t --partitions 1 >/dev/null
seq 1 30000 | awk '{printf "k%d\t%s-%d\n", $1, "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv", $1}' >"$TMP/input"
"$SYNCLOG" produce t --acks fsync <"$TMP/input" >/dev/null
stop_broker

seg=$(ls "$data/topics/t/0/" | grep '\.log$' | sort | sed -n 2p)
[ -n "$seg" ] && [ "$(ls "$data/topics/t/0/" | grep -c '\.log$')" -ge 3 ] || fail "expected several segments"
# Flip one byte inside the records of the middle batch of a sealed segment (its CRC no longer matches).
python3 - "$data/topics/t/0/$seg" <<'PY'
import struct, sys
p = sys.argv[1]
data = open(p, "rb").read()
starts, pos = [], 0
while pos < len(data):
    starts.append(pos)
    pos += 12 + struct.unpack(">i", data[pos + 8:pos + 12])[0]
at = starts[len(starts) // 2] + 1000
with open(p, "r+b") as f:
    f.seek(at)
    f.write(bytes([data[at] ^ 0xFF]))
PY

start_broker_with
"$SYNCLOG" consume t --from earliest >/dev/null 2>"$TMP/err" && fail "the damaged batch was read as good"
grep -q "corrupt batch" "$TMP/err" || fail "consume of the damaged batch said: $(cat "$TMP/err")"
stop_broker

"$SYNCLOGD" --data-dir "$data" --repair >"$TMP/repair" 2>&1 || fail "repair failed: $(cat "$TMP/repair")"
cat "$TMP/repair"
lost=$(sed -n 's/.*, offsets \([0-9]*\)\.\.\([0-9]*\) lost.*/\1 \2/p' "$TMP/repair")
[ -n "$lost" ] || fail "repair did not name the offsets lost: $(cat "$TMP/repair")"
read -r first last <<<"$lost"
count=$((last - first + 1))
[ "$count" -ge 1 ] && [ "$count" -lt 10000 ] || fail "repair lost $count offsets ($first..$last): more than a batch"
ls "$data/topics/t/0/" | grep -q "\.log\.corrupt-" || fail "the damaged bytes were not kept aside"

start_broker_with
rc=0
"$SYNCLOG" consume t --from earliest >"$TMP/out1" 2>"$TMP/err" || rc=$?
[ "$rc" -eq 1 ] || fail "consume across the lost offsets exited $rc, want 1"
grep -q -- "--skip-lost" "$TMP/err" || fail "consume said: $(cat "$TMP/err")"
[ "$(wc -l <"$TMP/out1")" -eq "$first" ] || fail "consume printed $(wc -l <"$TMP/out1") records before the lost range at $first"
"$SYNCLOG" consume t --from earliest --skip-lost >"$TMP/out2" 2>"$TMP/err" || fail "consume --skip-lost: $(cat "$TMP/err")"
grep -q "skipped $count offsets lost" "$TMP/err" || fail "consume --skip-lost said: $(cat "$TMP/err")"
# Every input line but the lost ones, each at its original offset.
awk -v a="$first" -v b="$last" 'NR - 1 < a || NR - 1 > b {print NR - 1 "\t" $0}' "$TMP/input" >"$TMP/want"
cut -f2- "$TMP/out2" | cmp -s - "$TMP/want" || fail "the records after the lost range are not all there at their offsets"
echo "repair lost offsets $first..$last ($count); $(wc -l <"$TMP/out2") of 30000 records kept"
# New records go on after the end.
printf 'after\trepair\n' | "$SYNCLOG" produce t --acks fsync >/dev/null
"$SYNCLOG" consume t --from 30000 | grep -q "^0	30000	after	repair$" || fail "the next record is not at offset 30000"
stop_broker
echo ok
