#!/usr/bin/env bash
# Acceptance 2: the newer version of a key arrives before the older one; the target keeps the newer and logs the
# older in stale_events (stored and incoming versions, topic, partition, offset), counted as stale. Also the CLI's
# usage and operating errors of `synclog apply`.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apply_lib.sh"

start_broker "$TMP/data"
S=$SYNCLOG
"$S" topic create accounts --partitions 3 >/dev/null

# ---- usage (exit 2) and operating errors (exit 1, one line) ----
expect_exit 0 "$S" apply --help
grep -q 'usage: synclog apply' "$TMP/out" || fail "apply --help prints no usage"
expect_exit 2 "$S" apply accounts --target "sqlite:$TMP/t.db"
grep -q -- '--group' "$TMP/err" || fail "missing --group: $(cat "$TMP/err")"
expect_exit 2 "$S" apply accounts --group g
expect_exit 2 "$S" apply accounts --group "a b" --target "sqlite:$TMP/t.db"
expect_exit 2 "$S" apply accounts --group g --target mysql://x
expect_exit 2 "$S" apply accounts --group g --target "sqlite:$TMP/t.db" --schema s
expect_exit 1 "$S" apply accounts --group g --target postgresql://postgres@127.0.0.1:1/db
[ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q 'cannot connect' "$TMP/err" || fail "unreachable PostgreSQL: $(cat "$TMP/err")"
expect_exit 2 "$S" apply accounts --group g --target "sqlite:$TMP/t.db" --tombstone-retention 7x
expect_exit 2 "$S" apply accounts --group g --target "sqlite:$TMP/t.db" --tombstone-retention P1M
expect_exit 2 "$S" apply accounts --group g --target "sqlite:$TMP/t.db" --values xml
expect_exit 1 "$S" apply missing --group g --target "sqlite:$TMP/t.db"
[ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q 'UNKNOWN_TOPIC' "$TMP/err" || fail "unknown topic: $(cat "$TMP/err")"
expect_exit 1 "$S" --broker 127.0.0.1:1 apply accounts --group g --target "sqlite:$TMP/t.db"
[ "$(wc -l <"$TMP/err")" -eq 1 ] || fail "unreachable broker: $(cat "$TMP/err")"
expect_exit 1 "$S" apply accounts --group g --target "sqlite:$TMP/no/such/dir/t.db"
grep -q 'cannot open' "$TMP/err" || fail "bad target path: $(cat "$TMP/err")"

# ---- out of order ----
cat >"$TMP/events.jsonl" <<'JSON'
{"key": "acct-1", "version": 2, "value": {"email": "new@example.com"}}
{"key": "acct-1", "version": 1, "value": {"email": "old@example.com"}}
{"key": "acct-2", "version": 1, "value": {"plan": "free"}}
{"key": "acct-2", "version": 3, "value": {"plan": "pro"}}
{"key": "acct-2", "version": 2, "value": {"plan": "team"}}
{"key": "acct-3", "version": 1, "value": {"plan": "free"}}
JSON
"$S" produce accounts --input json <"$TMP/events.jsonl" >/dev/null
expect_exit 0 "$S" apply accounts --group g $(target "$TMP/t.db")
[ "$(cat "$TMP/out")" = "applied 4 stale 2 duplicate 0 deleted 0 dead_lettered 0" ] || fail "counters: $(cat "$TMP/out")"
[ "$(sql "$TMP/t.db" "SELECT key, version, value, CAST(deleted AS INTEGER) FROM entities ORDER BY key")" = "$(printf '%s\n' \
	'acct-1|2|{"email":"new@example.com"}|0' 'acct-2|3|{"plan":"pro"}|0' 'acct-3|1|{"plan":"free"}|0')" ] ||
	fail "entities: $(sql "$TMP/t.db" "SELECT * FROM entities")"
# The stale rows name where the late events sit in the log.
"$S" --json consume accounts >"$TMP/log.jsonl"
sql "$TMP/t.db" 'SELECT key, stored_version, incoming_version, topic, "partition", "offset", seen_at_ms FROM stale_events' \
	>"$TMP/stale.rows"
python3 - "$TMP/log.jsonl" "$TMP/stale.rows" <<'PY' || fail "stale_events rows"
import json, sys
log = [json.loads(l) for l in open(sys.argv[1])]
want = sorted((r["key"], v_stored, r["version"], "accounts", r["partition"], r["offset"])
              for r in log for v_stored in [{"acct-1": 2, "acct-2": 3}.get(r["key"])]
              if v_stored is not None and r["version"] < v_stored and not (r["key"] == "acct-2" and r["version"] == 1))
rows = [l.rstrip("\n").split("|") for l in open(sys.argv[2])]
got = sorted((k, int(s), int(i), t, int(p), int(o)) for k, s, i, t, p, o, _ in rows)
assert got == want, (got, want)
assert all(int(r[6]) > 1600000000000 for r in rows)
PY
# A second run has nothing left to do; --json gives the same keys.
expect_exit 0 "$S" --json apply accounts --group g $(target "$TMP/t.db")
python3 -c 'import json, sys; r = json.loads(open(sys.argv[1]).read()); assert r == {"applied": 0, "stale": 0, "duplicate": 0, "deleted": 0, "dead_lettered": 0}, r' "$TMP/out" ||
	fail "second run: $(cat "$TMP/out")"
# A target whose offsets are past the log (the topic was deleted and created again) is refused, not skipped.
sql "$TMP/t.db" "UPDATE synclog_offsets SET next_offset = next_offset + 100" >/dev/null
expect_exit 1 "$S" apply accounts --group g $(target "$TMP/t.db")
grep -q 'log ends at' "$TMP/err" || fail "offsets past the log: $(cat "$TMP/err")"
sql "$TMP/t.db" "UPDATE synclog_offsets SET next_offset = next_offset - 100" >/dev/null
# The broker hears of the target's offsets, so the lag is visible.
"$S" --json group describe g >"$TMP/group.jsonl"
python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert rows and all(r["lag"] == 0 for r in rows), rows
assert sum(r["committed"] for r in rows if r["committed"] > 0) == 6, rows' "$TMP/group.jsonl" ||
	fail "group describe: $(cat "$TMP/group.jsonl")"
stop_broker
