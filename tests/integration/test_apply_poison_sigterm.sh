#!/usr/bin/env bash
# Issue 12 defect 8: `synclog apply` ignored SIGTERM while it retried rejected records (144 s after SIGTERM with 2,000
# poison records) and dead-lettered one record at a time (14 records/s: a backoff and an fsync each). Now 2,000
# poison records are dead-lettered in one run (retried together in rounds, letters flushed once per transaction),
# and a SIGTERM during the retry rounds ends the applier promptly with exit 0, committing what it finished: every
# poison record still ends up dead-lettered exactly once, and every good record applied.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apply_lib.sh"

start_broker "$TMP/data"
S=$SYNCLOG
DB=$TMP/t.db
"$S" topic create p --partitions 2 >/dev/null
poison() { # FROM TO: keyed records whose value is not JSON, between good ones
	python3 -c '
import sys
for i in range(int(sys.argv[1]), int(sys.argv[2]) + 1):
    print("bad-%d\t{not json %d" % (i, i))
    if i % 100 == 0:
        print("good-%d\t{\"n\": %d}" % (i, i))
' "$1" "$2" | "$S" produce p >/dev/null
}
dead_letters() { "$S" consume p.dlq | wc -l; }

# 1. 2,000 poison records in one run. Before: ~140 s (70 ms of backoff each). The bound only catches a hang.
poison 1 2000
start=$(date +%s%N)
timeout 60 "$S" apply p --group g --target "sqlite:$DB" >"$TMP/out" 2>"$TMP/err" ||
	fail "apply of 2,000 poison records did not finish within 60 s (exit $?): $(tail -3 "$TMP/err")"
ms=$((($(date +%s%N) - start) / 1000000))
[ "$(cat "$TMP/out")" = "applied 20 stale 0 duplicate 0 deleted 0 dead_lettered 2000" ] || fail "counters: $(cat "$TMP/out")"
[ "$(dead_letters)" -eq 2000 ] || fail "$(dead_letters) dead letters, expected 2000"
echo "2000 poison records dead-lettered in $ms ms"

# 2. SIGTERM in the middle of long retry rounds (50 retries: the backoff reaches 1 s per round): the applier stops
# within a round's slice, commits what it resolved, exits 0. Before: it finished every retry of the batch first.
poison 2001 4000
"$S" apply p --group g --target "sqlite:$DB" --follow --reject-retries 50 >"$TMP/out2" 2>"$TMP/err2" &
pid=$!
sleep 2
kill -TERM $pid
start=$(date +%s%N)
for _ in $(seq 1 200); do
	kill -0 $pid 2>/dev/null || break
	sleep 0.05
done
if kill -0 $pid 2>/dev/null; then
	kill -KILL $pid
	fail "apply still running 10 s after SIGTERM"
fi
rc=0
wait $pid || rc=$?
stop_ms=$((($(date +%s%N) - start) / 1000000))
[ "$rc" -eq 0 ] || fail "apply exited $rc on SIGTERM: $(tail -3 "$TMP/err2")"
grep -q "^applied " "$TMP/out2" || fail "no counters printed on SIGTERM: $(cat "$TMP/out2")"
echo "exited $stop_ms ms after SIGTERM during retry rounds"

# 3. What the interrupted run left is finished by the next: each poison record dead-lettered once, good ones applied.
timeout 60 "$S" apply p --group g --target "sqlite:$DB" >"$TMP/out3" 2>"$TMP/err3" || fail "last run: $(cat "$TMP/err3")"
[ "$(dead_letters)" -eq 4000 ] || fail "$(dead_letters) dead letters after the rerun, expected 4000 (each once)"
[ "$(sql "$DB" "SELECT count(*) FROM entities WHERE key LIKE 'good-%'")" -eq 40 ] || fail "good records missing"
[ "$(sql "$DB" "SELECT sum(next_offset) FROM synclog_offsets WHERE \"group\" = 'g'")" -eq "$(log_end p)" ] ||
	fail "the target's offsets do not reach the log end"
python3 - "$TMP" <<'PY' || fail "dead letters are not each poison record exactly once"
import json, subprocess, sys, os
out = subprocess.run([os.environ["SYNCLOG"], "--json", "consume", "p.dlq"], capture_output=True, text=True).stdout
keys = [json.loads(l)["value"]["key"] for l in out.splitlines()]
assert len(keys) == len(set(keys)) == 4000, (len(keys), len(set(keys)))
PY
stop_broker
