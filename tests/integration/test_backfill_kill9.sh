#!/usr/bin/env bash
# Acceptance 3 of issue 13: `synclog backfill` killed with -9 in the middle of its run, twice, then the same command
# again: every row arrives and no row is produced twice (the topic holds exactly one origin=backfill record per
# source row), and the checksum equals that of an uninterrupted run over the same snapshot. Also Ctrl-C (SIGINT)
# stops it cleanly with the progress kept. 200,000 rows, paced at 50,000 rows/s so that the kills land mid-run.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apply_lib.sh"
. "$(dirname "$0")/backfill_lib.sh"

ROWS=200000
start_broker "$TMP/data"
S=$SYNCLOG
"$S" topic create snap --partitions 4 >/dev/null
"$S" topic create snap2 --partitions 4 >/dev/null
make_source "$TMP/src.db" customers $ROWS
SEED=${SL_TEST_SEED:-$RANDOM}
echo "seed $SEED (SL_TEST_SEED=$SEED replays the kill times)"
RANDOM=$SEED

BF=("$S" backfill snap --source "sqlite:$TMP/src.db:customers" --chunk 5000 --rate 50000)
CKPT=$TMP/src.db.customers.snap.backfill
for kill in 1 2; do
	before=$(cat "$CKPT" 2>/dev/null || true)
	"${BF[@]}" >"$TMP/bf.out" 2>"$TMP/bf.err" &
	pid=$!
	# Once this run has moved the checkpoint (a loaded machine may take seconds to get there), 0 to 0.9 s more, in
	# a run of about 4 s (less for the second, which resumes): the kill lands mid-run, not before the first chunk.
	for _ in $(seq 1 600); do
		[ -s "$CKPT" ] && [ "$(cat "$CKPT")" != "$before" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	sleep "0.$((RANDOM % 10))"
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	[ -s "$CKPT" ] || fail "kill $kill: no checkpoint next to the source"
done
"${BF[@]}" >"$TMP/bf.out" 2>"$TMP/bf.err" || fail "resumed backfill: $(cat "$TMP/bf.err")"
grep -q "^backfilled $ROWS rows, acknowledged $ROWS, skipped 0, checksum [0-9a-f]\{16\}$" "$TMP/bf.out" ||
	fail "resumed backfill printed: $(cat "$TMP/bf.out")"
read -r records keys < <(origin_counts snap)
[ "$records" -eq $ROWS ] && [ "$keys" -eq $ROWS ] ||
	fail "the topic holds $records backfill records of $keys keys, expected $ROWS of $ROWS"
# The same snapshot backfilled in one go gives the same checksum.
"$S" backfill snap2 --source "sqlite:$TMP/src.db:customers" >"$TMP/bf2.out" 2>"$TMP/bf2.err" ||
	fail "second backfill: $(cat "$TMP/bf2.err")"
[ "$(sed 's/.*checksum //' "$TMP/bf.out")" = "$(sed 's/.*checksum //' "$TMP/bf2.out")" ] ||
	fail "checksums differ: $(cat "$TMP/bf.out") / $(cat "$TMP/bf2.out")"
# Run again: the checkpoint says it finished; nothing is produced.
"${BF[@]}" >"$TMP/bf.out" 2>"$TMP/bf.err" || fail "finished backfill run again: $(cat "$TMP/bf.err")"
grep -q 'finished before' "$TMP/bf.err" || fail "no note that it finished: $(cat "$TMP/bf.err")"
[ "$(log_end snap)" -eq $ROWS ] || fail "running a finished backfill again produced records"

# SIGINT: stops, keeps its progress, and the next run finishes without a second copy.
"$S" topic create snap3 --partitions 4 >/dev/null
"$S" backfill snap3 --source "sqlite:$TMP/src.db:customers" --rate 50000 >"$TMP/bf3.out" 2>"$TMP/bf3.err" &
pid=$!
sleep 1
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 1 ] && grep -q 'interrupted' "$TMP/bf3.err" || fail "SIGINT: exit $rc: $(cat "$TMP/bf3.err")"
"$S" backfill snap3 --source "sqlite:$TMP/src.db:customers" >"$TMP/bf3.out" 2>"$TMP/bf3.err" ||
	fail "after SIGINT: $(cat "$TMP/bf3.err")"
read -r records keys < <(origin_counts snap3)
[ "$records" -eq $ROWS ] && [ "$keys" -eq $ROWS ] || fail "after SIGINT: $records records of $keys keys"
stop_broker
