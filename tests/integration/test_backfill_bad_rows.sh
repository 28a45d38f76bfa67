#!/usr/bin/env bash
# Issue 13, "Bad input" and the run's output: rows without a key or with a version that is not an integer are
# reported with their position, skipped and counted, the exit status is 1, and every valid row is produced; the
# progress goes to stderr as plain lines when it is not a terminal, and as JSON lines with --json; a finished
# backfill run again produces nothing, and --restart produces the source again from its start.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apply_lib.sh"
. "$(dirname "$0")/backfill_lib.sh"

start_broker "$TMP/data"
S=$SYNCLOG
"$S" topic create t --partitions 2 >/dev/null
python3 - "$TMP/src.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("CREATE TABLE t (key TEXT, version, name TEXT)")
db.executemany("INSERT INTO t VALUES (?, ?, ?)", [("k%04d" % i, 1, "n%d" % i) for i in range(1000)])
db.executemany("INSERT INTO t VALUES (?, ?, ?)", [(None, 1, "no key"), ("kbad", "x1", "bad version")])
db.commit()
PY
BF=("$S" backfill t --source "sqlite:$TMP/src.db:t")

rc=0
"${BF[@]}" >"$TMP/out" 2>"$TMP/err" || rc=$?
[ "$rc" -eq 1 ] || fail "a backfill with bad rows exited $rc, not 1: $(cat "$TMP/err")"
grep -q "^backfilled 1000 rows, acknowledged 1000, skipped 2, checksum [0-9a-f]\{16\}$" "$TMP/out" ||
	fail "summary: $(cat "$TMP/out")"
grep -q "rowid 1001: no key; the row was skipped" "$TMP/err" || fail "the keyless row: $(cat "$TMP/err")"
grep -q "rowid 1002 key 'kbad': version 'x1' is not an integer; the row was skipped" "$TMP/err" ||
	fail "the bad version: $(cat "$TMP/err")"
grep -q "rows/s" "$TMP/err" || fail "no plain progress line on stderr: $(cat "$TMP/err")"
read -r records keys < <(origin_counts t)
[ "$records" -eq 1000 ] && [ "$keys" -eq 1000 ] || fail "the topic holds $records records of $keys keys, not 1000"

# Run again: finished, nothing produced.
"${BF[@]}" >"$TMP/out" 2>"$TMP/err" || fail "a finished backfill run again failed: $(cat "$TMP/err")"
grep -q 'finished before' "$TMP/err" || fail "no note that it finished: $(cat "$TMP/err")"
read -r records _ < <(origin_counts t)
[ "$records" -eq 1000 ] || fail "running a finished backfill again produced records ($records)"

# --restart --json: the source again, progress and summary as JSON lines.
rc=0
"${BF[@]}" --restart --json >"$TMP/out" 2>"$TMP/err" || rc=$?
[ "$rc" -eq 1 ] || fail "--restart with bad rows exited $rc, not 1"
python3 - "$TMP/out" "$TMP/err" <<'PY' || fail "--json output: $(cat "$TMP/out" "$TMP/err")"
import json, sys
summary = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert summary[-1]["backfilled"] == 1000 and summary[-1]["skipped"] == 2 and summary[-1]["finished"], summary
progress = [json.loads(l) for l in open(sys.argv[2]) if l.startswith("{")]
assert progress and all("progress" in p for p in progress), progress
assert progress[-1]["progress"]["total"] == 1002, progress[-1]
PY
read -r records keys < <(origin_counts t)
[ "$records" -eq 2000 ] && [ "$keys" -eq 1000 ] || fail "--restart: $records records of $keys keys, not 2000 of 1000"
stop_broker
echo ok
