#!/usr/bin/env bash
# A resumed backfill killed again before its first chunk is acknowledged: the run after it must still find the
# first dead run's records of the window, and produce none of them twice. The resumed run takes its own mark and
# sent_key for its first chunk; a checkpoint with them (rather than the window's, invariant 4 of
# consumer/sync/backfill.c) made the third run read from past the first run's records and send them again. The
# second run is paced slowly so that it is killed, for certain, after its first checkpoint and before that chunk is
# acknowledged, whatever the machine's load.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apply_lib.sh"
. "$(dirname "$0")/backfill_lib.sh"

ROWS=60000
start_broker "$TMP/data"
S=$SYNCLOG
"$S" topic create snap --partitions 4 >/dev/null
make_source "$TMP/src.db" customers $ROWS
CKPT=$TMP/src.db.customers.snap.backfill
SRC=(--source "sqlite:$TMP/src.db:customers" --chunk 5000)

# wait_ckpt_change PID BEFORE: until the checkpoint differs from BEFORE (or PID is gone).
wait_ckpt_change() {
	for _ in $(seq 1 600); do
		[ -s "$CKPT" ] && [ "$(cat "$CKPT")" != "$2" ] && return 0
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.05
	done
	fail "the checkpoint did not move"
}

# 1. The first run: killed with chunks in flight once it has acknowledged a chunk or two.
"$S" backfill snap "${SRC[@]}" --rate 20000 >/dev/null 2>"$TMP/bf1.err" &
pid=$!
wait_ckpt_change "$pid" ""
first=$(cat "$CKPT")
wait_ckpt_change "$pid" "$first"
wait_ckpt_change "$pid" "$(cat "$CKPT")"
kill -KILL "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
window=$(cat "$CKPT")
read -r records _ < <(origin_counts snap)
[ "$records" -gt 0 ] && [ "$records" -lt $ROWS ] || fail "the first run left $records records: no window to recover"

# 2. The resumed run: it recovers the window, writes its first checkpoint, and is killed while that chunk's rows
# (1,000 a second) are still going out.
"$S" backfill snap "${SRC[@]}" --rate 1000 >/dev/null 2>"$TMP/bf2.err" &
pid=$!
wait_ckpt_change "$pid" "$window"
kill -KILL "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
[ "$(cat "$CKPT")" != "$window" ] || fail "the resumed run wrote no checkpoint: $(cat "$TMP/bf2.err")"

# 3. The next run finishes: every row once.
"$S" backfill snap "${SRC[@]}" >"$TMP/bf3.out" 2>"$TMP/bf3.err" || fail "third run: $(cat "$TMP/bf3.err")"
grep -q "^backfilled $ROWS rows, acknowledged $ROWS, skipped 0, checksum [0-9a-f]\{16\}$" "$TMP/bf3.out" ||
	fail "third run printed: $(cat "$TMP/bf3.out")"
read -r records keys < <(origin_counts snap)
[ "$records" -eq $ROWS ] && [ "$keys" -eq $ROWS ] ||
	fail "the topic holds $records backfill records of $keys keys, expected $ROWS of $ROWS"
stop_broker
echo ok
