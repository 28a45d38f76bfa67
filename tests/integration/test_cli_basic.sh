#!/usr/bin/env bash
# The operator contract of `synclog` (../shared/CLI.md) against a real broker: topic create/list/describe, produce
# TSV and JSON with a bad line in each (exit 1, its line number on stderr, its neighbours produced), consume back in
# text and JSON, --from/--partition/--max/--follow, usage errors (exit 2) and operating errors (exit 1).
# Usage: tests/integration/test_cli_basic.sh BUILD_DIR (binaries in BUILD_DIR/bin).
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"

# json_check FILE PYTHON: every line of FILE is one JSON object; PYTHON runs with `rows` bound to the list.
json_check() {
	python3 -c '
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
assert all(isinstance(r, dict) for r in rows), "not one object per line"
exec(sys.argv[2])
' "$1" "$2" || fail "JSON check failed on $1: $(head -c 500 "$1")"
}

start_broker "$TMP/data"
S=$SYNCLOG

# ---- usage: exit 2, --help: exit 0 ----
expect_exit 2 "$S"
expect_exit 0 "$S" --help
grep -q '^usage: synclog' "$TMP/out" || fail "--help prints no usage"
for cmd in "topic" "topic create" "topic list" "topic describe" "produce" "consume"; do
	# shellcheck disable=SC2086
	expect_exit 0 "$S" $cmd --help
	grep -q 'usage' "$TMP/out" || fail "$cmd --help prints no usage"
done
expect_exit 2 "$S" frobnicate
expect_exit 2 "$S" topic create nopartitions
expect_exit 2 "$S" topic create x --partitions zero
expect_exit 2 "$S" produce t --acks maybe
expect_exit 2 "$S" consume t --from yesterday
expect_exit 2 "$S" consume t --group g --partition 0
expect_exit 2 "$S" --broker "no:port:here:" topic list

# ---- operating errors: exit 1 with one line on stderr ----
expect_exit 1 "$S" --broker 127.0.0.1:1 topic list
[ "$(wc -l <"$TMP/err")" -eq 1 ] || fail "an unreachable broker gives more than one line: $(cat "$TMP/err")"
grep -q 'cannot connect' "$TMP/err" || fail "unreachable broker message: $(cat "$TMP/err")"

# ---- topics ----
expect_exit 0 "$S" topic create events --partitions 3
[ "$(cat "$TMP/out")" = "created topic events with 3 partitions" ] || fail "topic create said: $(cat "$TMP/out")"
expect_exit 1 "$S" topic create events --partitions 3
grep -q 'TOPIC_EXISTS' "$TMP/err" || fail "second create: $(cat "$TMP/err")"
expect_exit 0 "$S" topic create one --partitions 1 --json
json_check "$TMP/out" 'assert rows == [{"created": "one", "partitions": 1}], rows'
expect_exit 0 "$S" topic list
grep -q '^events ' "$TMP/out" || fail "topic list lacks events: $(cat "$TMP/out")"
expect_exit 0 "$S" --json topic list
json_check "$TMP/out" '
t = {r["topic"]: r for r in rows}
assert t["events"]["partitions"] == 3 and t["one"]["partitions"] == 1, t
assert t["events"]["retention_ms"] == -1 and t["events"]["compact"] is False, t'
expect_exit 0 "$S" topic describe events
grep -q 'EARLIEST_OFFSET' "$TMP/out" || fail "describe has no table header"
expect_exit 0 "$S" topic describe events --json
json_check "$TMP/out" '
assert [r["partition"] for r in rows] == [0, 1, 2], rows
assert all(r["topic"] == "events" and r["earliest_offset"] == 0 and r["next_offset"] == 0 for r in rows), rows
assert all(isinstance(r["bytes"], int) and isinstance(r["segments"], int) for r in rows), rows'
expect_exit 1 "$S" topic describe missing
grep -q 'UNKNOWN_TOPIC' "$TMP/err" || fail "describe of a missing topic: $(cat "$TMP/err")"

# ---- produce TSV with a bad line: exit 1, line number, neighbours produced ----
printf 'k1\tv1\nk2\tv2 with\ttab\nno tab on this line\nk3\t{"a": 1}\n\nk1\tv1b\n' >"$TMP/in.tsv"
expect_exit 1 "$S" produce one <"$TMP/in.tsv"
[ "$(cat "$TMP/out")" = "produced 4 records" ] || fail "TSV produce said: $(cat "$TMP/out")"
grep -q 'line 3' "$TMP/err" || fail "the bad TSV line is not named: $(cat "$TMP/err")"
grep -q 'line 5' "$TMP/err" && fail "a blank line was reported as bad"
expect_exit 0 "$S" consume one
# The tab inside k2's value is escaped: a line stays four fields.
printf '0\t0\tk1\tv1\n0\t1\tk2\tv2 with\\ttab\n0\t2\tk3\t{"a": 1}\n0\t3\tk1\tv1b\n' >"$TMP/want"
cmp -s "$TMP/want" "$TMP/out" || fail "consume after TSV produce: $(cat "$TMP/out")"

# ---- produce JSON with a bad line, --json output ----
cat >"$TMP/in.jsonl" <<'EOF'
{"key": "cust-1", "version": 1, "value": {"status": "trial", "n": 0.1}}
{"key": "cust-2", "version": 1, "value": "plain string", "idempotency_key": "evt-2"}
{"key": "cust-1", "version": 2, "op": "delete"}
{"key": "cust-3", "value": }
{"value": 5}
{"key": "cust-3", "value": [1, 2, 3]}
EOF
expect_exit 1 "$S" --json produce one --input json --origin backfill --acks written <"$TMP/in.jsonl"
json_check "$TMP/out" 'assert rows == [{"produced": 4}], rows'
grep -q 'line 4' "$TMP/err" || fail "the bad JSON line 4 is not named: $(cat "$TMP/err")"
grep -q 'line 5' "$TMP/err" || fail "the keyless JSON line 5 is not named: $(cat "$TMP/err")"
expect_exit 0 "$S" consume one --from 4 --json
json_check "$TMP/out" '
assert [r["offset"] for r in rows] == [4, 5, 6, 7], rows
a, b, c, d = rows
assert a["key"] == "cust-1" and a["value"] == {"status": "trial", "n": 0.1} and a["version"] == 1, a
assert a["op"] == "upsert" and a["origin"] == "backfill" and a["partition"] == 0, a
assert isinstance(a["timestamp_ms"], int) and a["timestamp_ms"] > 1600000000000, a
assert b["value"] == "plain string" and b["idempotency_key"] == "evt-2", b
assert c["op"] == "delete" and c["value"] is None and c["version"] == 2, c
assert d["value"] == [1, 2, 3] and d["version"] is None and d["idempotency_key"] is None, d'
# Text output of JSON values: the stored JSON text, compact.
expect_exit 0 "$S" consume one --from 4 --max 1
[ "$(cat "$TMP/out")" = "$(printf '0\t4\tcust-1\t{"status":"trial","n":0.1}')" ] || fail "text of a JSON value: $(cat "$TMP/out")"

# ---- a keyed topic of 3 partitions: everything back, each key in one partition, offsets increasing ----
seq 1 3000 | awk '{print "user-" ($1 % 50) "\t" $1}' >"$TMP/in3.tsv"
expect_exit 0 "$S" produce events --acks fsync <"$TMP/in3.tsv"
[ "$(cat "$TMP/out")" = "produced 3000 records" ] || fail "keyed produce said: $(cat "$TMP/out")"
expect_exit 0 "$S" consume events
python3 - "$TMP/out" "$TMP/in3.tsv" <<'PY' || fail "keyed consume check"
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
want = [l.rstrip("\n").split("\t") for l in open(sys.argv[2])]
assert len(rows) == 3000, len(rows)
part_of, last_off, last_val = {}, {}, {}
for p, off, key, val in rows:
    p, off, val = int(p), int(off), int(val)
    assert part_of.setdefault(key, p) == p, "key %s in two partitions" % key
    assert last_off.get(p, -1) < off, "offsets not increasing in partition %d" % p
    last_off[p] = off
    assert last_val.get(key, 0) < val, "key %s out of order" % key
    last_val[key] = val
assert sorted((k, v) for _, _, k, v in rows) == sorted((k, v) for k, v in want)
assert len(set(part_of.values())) == 3, "keys did not spread over the 3 partitions"
PY
expect_exit 0 "$S" --json topic describe events
json_check "$TMP/out" 'assert sum(r["next_offset"] for r in rows) == 3000, rows'

# ---- --partition, --max, --from latest / offset / time ----
expect_exit 0 "$S" consume events --partition 1
awk -F'\t' '$1 != 1 {exit 1}' "$TMP/out" || fail "--partition 1 printed other partitions"
[ -s "$TMP/out" ] || fail "--partition 1 printed nothing"
expect_exit 0 "$S" consume events --max 7
[ "$(wc -l <"$TMP/out")" -eq 7 ] || fail "--max 7 printed $(wc -l <"$TMP/out") lines"
expect_exit 0 "$S" consume events --max 0
[ ! -s "$TMP/out" ] || fail "--max 0 printed something"
expect_exit 0 "$S" consume events --from latest
[ ! -s "$TMP/out" ] || fail "--from latest without --follow printed something"
expect_exit 0 "$S" consume one --from 2 --partition 0
[ "$(cut -f2 "$TMP/out" | tr '\n' ' ')" = "2 3 4 5 6 7 " ] || fail "--from 2: $(cut -f2 "$TMP/out" | tr '\n' ' ')"
expect_exit 0 "$S" consume one --from @2000-01-01T00:00:00Z
[ "$(wc -l <"$TMP/out")" -eq 8 ] || fail "--from a past time printed $(wc -l <"$TMP/out") lines"
expect_exit 0 "$S" consume one --from "@2999-01-01T00:00:00+02:00"
[ ! -s "$TMP/out" ] || fail "--from a future time printed something"
expect_exit 1 "$S" consume events --partition 9
expect_exit 1 "$S" consume missing
grep -q 'UNKNOWN_TOPIC' "$TMP/err" || fail "consume of a missing topic: $(cat "$TMP/err")"
expect_exit 1 "$S" produce missing </dev/null
[ "$(cat "$TMP/out")" = "produced 0 records" ] || fail "produce to a missing topic said: $(cat "$TMP/out")"

# ---- --follow: new records show up; SIGINT ends it with exit 0 ----
"$S" consume one --from latest --follow >"$TMP/follow" 2>"$TMP/follow.err" &
follower=$!
sleep 0.3
printf 'f1\tone\nf2\ttwo\n' | "$S" produce one >/dev/null
for _ in $(seq 1 100); do
	[ "$(wc -l <"$TMP/follow")" -ge 2 ] && break
	sleep 0.05
done
printf '0\t8\tf1\tone\n0\t9\tf2\ttwo\n' | cmp -s - "$TMP/follow" || fail "--follow printed: $(cat "$TMP/follow")"
kill -INT "$follower"
rc=0
wait "$follower" || rc=$?
[ "$rc" -eq 0 ] || fail "consume --follow exited $rc on SIGINT: $(cat "$TMP/follow.err")"

stop_broker
echo ok
