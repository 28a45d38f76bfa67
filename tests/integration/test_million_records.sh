#!/usr/bin/env bash
# One million small records over 8 partitions come back complete and in per-key order, before and after a
# clean restart of the broker.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"

start_broker "$TMP/data"
"$SYNCLOG" topic create events --partitions 8 >/dev/null || fail "topic create"
# 10,000 keys, 100 versions each; the value carries the key and its sequence so order can be checked.
python3 -c '
import sys
w = sys.stdout.write
for seq in range(100):
    for k in range(10000):
        w("user-%d\t%d\n" % (k, seq))
' >"$TMP/input"
out=$("$SYNCLOG" produce events --acks written <"$TMP/input") || fail "produce: $out"
[ "$out" = "produced 1000000 records" ] || fail "produce said: $out"

check() {
	"$SYNCLOG" consume events --from earliest >"$TMP/consumed" || fail "consume ($1)"
	python3 - "$TMP/consumed" "$1" <<'PY' || exit 1
import sys
last = {}
offsets = {}
n = 0
for line in open(sys.argv[1]):
    p, off, key, val = line.rstrip("\n").split("\t")
    p, off, seq = int(p), int(off), int(val)
    if offsets.get(p, -1) >= off:
        sys.exit("FAIL (%s): partition %d offsets not increasing at %d" % (sys.argv[2], p, off))
    offsets[p] = off
    if last.get(key, -1) + 1 != seq:
        sys.exit("FAIL (%s): key %s: %d after %d" % (sys.argv[2], key, seq, last.get(key, -1)))
    last[key] = seq
    n += 1
if n != 1000000 or len(last) != 10000 or any(v != 99 for v in last.values()):
    sys.exit("FAIL (%s): %d records, %d keys" % (sys.argv[2], n, len(last)))
if len(offsets) != 8:
    sys.exit("FAIL (%s): %d partitions used" % (sys.argv[2], len(offsets)))
PY
}
check "before restart"
stop_broker
start_broker "$TMP/data"
check "after restart"
stop_broker
echo ok
