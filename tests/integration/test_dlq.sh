#!/usr/bin/env bash
# Issue 14, dead letters an operator can act on: two targets of one topic get letters they can tell apart (each names
# its group and target, and says whether the error is permanent or transient); `dlq list|show --group` shows one
# target's; `dlq redrive` is a dry run unless --execute, re-applies the letters to their target, and running it twice
# changes nothing.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apply_lib.sh"

start_broker "$TMP/data"
S=$SYNCLOG
"$S" topic create orders --partitions 1 >/dev/null
printf 'o-1\t{"total": 1}\no-2\tnot JSON\n\t{"total": 3}\no-4\t{"total": 4}\n' | "$S" produce orders >/dev/null
"$S" apply orders --group ledger --target "sqlite:$TMP/ledger.db" >"$TMP/l.out"
"$S" apply orders --group search --target "sqlite:$TMP/search.db" --reject-retries 0 >"$TMP/s.out"
[ "$(cat "$TMP/l.out")" = "applied 2 stale 0 duplicate 0 deleted 0 dead_lettered 2" ] || fail "ledger: $(cat "$TMP/l.out")"
[ "$(cat "$TMP/s.out")" = "applied 2 stale 0 duplicate 0 deleted 0 dead_lettered 2" ] || fail "search: $(cat "$TMP/s.out")"

"$S" dlq list orders >"$TMP/all"
[ "$(grep -c '^[0-9]' "$TMP/all")" -eq 4 ] || fail "dlq list: $(cat "$TMP/all")"
"$S" --json dlq list orders --group ledger >"$TMP/ledger.jsonl"
python3 - "$TMP/ledger.jsonl" "$TMP/ledger.db" <<'PY' || fail "ledger's letters: $(cat "$TMP/ledger.jsonl")"
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [r["offset"] for r in rows] == [1, 2], rows
assert all(r["group"] == "ledger" and r["target"] == "sqlite:" + os.path.realpath(sys.argv[2]) for r in rows), rows
assert [r["error_class"] for r in rows] == ["permanent", "permanent"], rows
assert "not JSON" in rows[0]["error"] and "4 times" in rows[0]["error"] and "no key" in rows[1]["error"], rows
PY
"$S" dlq show orders --group search >"$TMP/search.jsonl"
python3 - "$TMP/search.jsonl" <<'PY' || fail "search's envelopes: $(cat "$TMP/search.jsonl")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 2 and all(r["group"] == "search" and "dlq_offset" in r for r in rows), rows
assert "1 time:" in rows[0]["error"], rows[0]  # --reject-retries 0: tried once
assert rows[0]["value"] == "not JSON" and rows[0]["op"] == "upsert" and rows[0]["origin"] == "live", rows[0]
PY

# Dry run: nothing changes.
"$S" dlq redrive orders --group ledger >"$TMP/dry" 2>"$TMP/dry.err"
[ "$(cut -d' ' -f2- "$TMP/dry")" = "$(printf '0 1 o-2 would-redrive\n0 2  would-redrive')" ] || fail "dry run: $(cat "$TMP/dry")"
grep -q "dry run" "$TMP/dry.err" || fail "the dry run does not say so"
[ "$(sql "$TMP/ledger.db" "SELECT count(*) FROM entities")" -eq 2 ] || fail "a dry run changed the target"

# The target now takes text: the letter with a text value applies, the one without a key is still rejected (exit 1).
rc=0
"$S" dlq redrive orders --group ledger --values text --execute >"$TMP/r1" 2>"$TMP/r1.err" || rc=$?
[ "$rc" -eq 1 ] || fail "redrive with a letter still rejected exited $rc"
[ "$(cat "$TMP/r1")" = "redriven 1 applied 1 stale 0 duplicate 0 deleted 0 still_rejected 1 skipped 0 gone 0" ] ||
	fail "redrive: $(cat "$TMP/r1") $(cat "$TMP/r1.err")"
[ "$(sql "$TMP/ledger.db" "SELECT value FROM entities WHERE key = 'o-2'")" = "not JSON" ] || fail "o-2 not redriven"
[ "$(sql "$TMP/search.db" "SELECT count(*) FROM entities WHERE key = 'o-2'")" -eq 0 ] || fail "redrive touched the other target"
# Twice: nothing changes.
before=$(sql "$TMP/ledger.db" "SELECT key, version, value, applied_at_ms FROM entities ORDER BY key")
"$S" dlq redrive orders --group ledger --values text --execute >"$TMP/r2" || fail "second redrive exited $?"
[ "$(cat "$TMP/r2")" = "redriven 0 applied 0 stale 0 duplicate 0 deleted 0 still_rejected 0 skipped 2 gone 0" ] ||
	fail "second redrive: $(cat "$TMP/r2")"
[ "$(sql "$TMP/ledger.db" "SELECT key, version, value, applied_at_ms FROM entities ORDER BY key")" = "$before" ] ||
	fail "the second redrive changed the target"
"$S" dlq redrive orders --group ledger >"$TMP/dry2" 2>/dev/null
[ "$(cut -d' ' -f5 "$TMP/dry2" | sort -u)" = "redriven" ] || fail "the dry run after redrive: $(cat "$TMP/dry2")"

# A target with its own table (apply --table): its letters name the table, and redrive writes into that table.
"$S" apply orders --group tabled --target "sqlite:$TMP/tabled.db" --table orders_t --reject-retries 0 >/dev/null
"$S" --json dlq list orders --group tabled >"$TMP/tabled.jsonl"
python3 - "$TMP/tabled.jsonl" "$TMP/tabled.db" <<'PY' || fail "tabled letters: $(cat "$TMP/tabled.jsonl")"
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 2 and all(r["target"] == "sqlite:%s?table=orders_t" % os.path.realpath(sys.argv[2]) for r in rows), rows
PY
"$S" dlq redrive orders --group tabled --values text --execute >/dev/null 2>&1 || true
[ "$(sql "$TMP/tabled.db" "SELECT value FROM orders_t WHERE key = 'o-2'")" = "not JSON" ] || fail "o-2 not redriven into orders_t"
stop_broker
echo "ok: two targets' letters told apart; redrive applied once, also into a target's own table"
