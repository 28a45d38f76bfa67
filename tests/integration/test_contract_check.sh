#!/usr/bin/env bash
# synclog contract check: every clause passes on a healthy sync and fails, with its evidence and exit 1, when the
# running system breaks it: a producer without idempotency keys (duplicates), no/old/drifting reconcile runs
# (reconcile), a group with records to read and no commit for longer than stall_after (stall), deletes kept less
# long than the contract promises or than the slowest group lags (deletes), a backfill source that cannot be read
# (backfill), a topic without a contract (contract).
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apply_lib.sh"

start_broker "$TMP/data"
S=$SYNCLOG
python3 - "$TMP/billing.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("CREATE TABLE customers (key TEXT PRIMARY KEY, version INTEGER, status TEXT)")
db.executemany("INSERT INTO customers VALUES (?, 1, 'active')", [("c%d" % i,) for i in range(20)])
db.commit()
PY
contract() { # contract FILE BACKFILL_SOURCE STALL_AFTER DELETE_RETENTION
	cat >"$1" <<YAML
source_of_truth: {system: billing}
delivery: {duplicates: idempotency-key, without_idempotency_key: count}
recovery:
  backfill_source: $2
  reconcile_every: 1h
  mismatch_threshold: 0.01
  alert: {stall_after: $3, notify: "#crm-oncall"}
  replay_owner: crm-team
deletes: {mode: soft, retention: $4}
YAML
}
# check_says TOPIC CLAUSE ok|FAIL PATTERN [FLAGS...]: the clause's line, and the exit status that goes with it.
check_says() {
	local topic=$1 name=$2 want=$3 pattern=$4 rc=0
	shift 4
	"$S" contract check "$topic" "$@" >"$TMP/check" 2>&1 || rc=$?
	grep -q "^$want *$name: .*$pattern" "$TMP/check" || fail "$name: want $want /$pattern/: $(cat "$TMP/check")"
	if [ "$want" = FAIL ] && [ "$rc" -ne 1 ]; then fail "$name: FAIL but exit $rc"; fi
	return 0
}

# ---- a healthy sync: every clause ok, exit 0 ----
"$S" topic create customer-status --partitions 1 >/dev/null
contract "$TMP/c.yaml" "sqlite:$TMP/billing.db:customers" 10m 7d
"$S" contract set customer-status "$TMP/c.yaml" >/dev/null
"$S" backfill customer-status --source "sqlite:$TMP/billing.db:customers" >/dev/null 2>&1
for i in 1 2 3; do echo "{\"key\":\"c$i\",\"version\":2,\"value\":{\"status\":\"paused\"},\"idempotency_key\":\"e$i\"}"; done |
	"$S" produce customer-status --input json >/dev/null
python3 -c "import sqlite3; db = sqlite3.connect('$TMP/billing.db'); db.execute(\"UPDATE customers SET version = 2, status = 'paused' WHERE key IN ('c1', 'c2', 'c3')\"); db.commit()"
"$S" apply customer-status --group crm --target "sqlite:$TMP/crm.db" >/dev/null 2>&1
"$S" reconcile --source "sqlite:$TMP/billing.db:customers" --target "sqlite:$TMP/crm.db" >"$TMP/out" 2>&1 ||
	fail "reconcile of the healthy sync: $(cat "$TMP/out")"
"$S" contract check customer-status --target "sqlite:$TMP/crm.db" >"$TMP/healthy" 2>&1 ||
	fail "a healthy sync failed its contract: $(cat "$TMP/healthy")"
[ "$(grep -c '^ok ' "$TMP/healthy")" -eq 6 ] || fail "healthy: $(cat "$TMP/healthy")"
"$S" --json contract check customer-status --target "sqlite:$TMP/crm.db" | python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
assert [r["clause"] for r in rows] == ["contract", "duplicates", "reconcile", "stall", "deletes", "backfill"], rows
assert all(r["ok"] for r in rows), rows'

# ---- contract: a topic without one, an unknown topic ----
"$S" topic create bare --partitions 1 >/dev/null
check_says bare contract FAIL "topic bare has no sync contract: set one with .synclog contract set bare FILE."
check_says nosuch contract FAIL "UNKNOWN_TOPIC: unknown topic 'nosuch'"

# ---- duplicates: a producer without idempotency keys ----
echo '{"key":"c4","version":2,"value":{"status":"paused"}}' | "$S" produce customer-status --input json >/dev/null
check_says customer-status duplicates FAIL "1 of 4 live records .* had no idempotency key" --target "sqlite:$TMP/crm.db"
# The page reaches the people the contract names (stderr, what cron mails), and only on a FAIL.
grep -q '^synclog contract check: 1 clause of topic customer-status FAIL; notify #crm-oncall; replay owner crm-team$' \
	"$TMP/check" || fail "alert note: $(cat "$TMP/check")"
grep -q 'notify' "$TMP/healthy" && fail "an alert note on a healthy sync: $(cat "$TMP/healthy")"
# A new contract version counts afresh.
"$S" contract set customer-status "$TMP/c.yaml" >/dev/null
check_says customer-status duplicates ok "0 live records produced since" --target "sqlite:$TMP/crm.db"

# ---- reconcile: none, too old, above the threshold ----
check_says customer-status reconcile FAIL "no target given"
"$S" apply customer-status --group crm2 --target "sqlite:$TMP/crm2.db" >/dev/null 2>&1
check_says customer-status reconcile FAIL "has no reconcile run" --target "sqlite:$TMP/crm2.db"
sql "$TMP/crm2.db" "INSERT INTO reconcile_runs VALUES (0, CAST(strftime('%s','now') AS INTEGER) * 1000 - 7200000, 'x', 'entities', 20, 0, 0, 0, 0, 0.0, 0.01, 1.0, 0, 0)" >/dev/null
check_says customer-status reconcile FAIL "older than reconcile_every 1h" --target "sqlite:$TMP/crm2.db"
sql "$TMP/crm2.db" "UPDATE entities SET version = 9 WHERE key IN ('c10', 'c11')" >/dev/null
"$S" reconcile --source "sqlite:$TMP/billing.db:customers" --target "sqlite:$TMP/crm2.db" >/dev/null 2>&1 || true
check_says customer-status reconcile FAIL "diff_ratio 0.15 above mismatch_threshold 0.01" --target "sqlite:$TMP/crm2.db"

# ---- backfill: the source is gone ----
"$S" topic create orders --partitions 1 >/dev/null
contract "$TMP/o.yaml" "sqlite:$TMP/missing.db:orders" 1s 1d
"$S" contract set orders "$TMP/o.yaml" >/dev/null
check_says orders backfill FAIL "missing.db"
check_says customer-status backfill ok "billing.db:customers reads: 20 rows" --target "sqlite:$TMP/crm.db"

# ---- stall: a group with records to read and no commit for longer than stall_after (1s) ----
printf 'o1\t1\no2\t2\n' | "$S" produce orders >/dev/null
check_says orders stall ok "0 group(s) read the topic"
"$S" consume orders --group warehouse --max 1 >/dev/null
sleep 1.5
check_says orders stall FAIL "group warehouse partition 0: 1 records to read, last commit .* ago"
"$S" consume orders --group warehouse >/dev/null
check_says orders stall ok "every one caught up"

# ---- deletes: shorter than the contract promises; shorter than the slowest group lags ----
check_says orders deletes ok "keeps deletes forever"
"$S" topic alter orders --set retention.ms=3600000 >/dev/null
check_says orders deletes FAIL "keeps deletes 1h (retention.ms), less than the contract's deletes.retention 1d"
"$S" topic alter orders --set retention.ms=-1 --set compact=true --set delete.retention.ms=1000 >/dev/null
contract "$TMP/o2.yaml" "sqlite:$TMP/billing.db:customers" 1h 1s
"$S" contract set orders "$TMP/o2.yaml" >/dev/null
printf 'o3\t3\n' | "$S" produce orders >/dev/null
sleep 1.5
check_says orders deletes FAIL "the slowest group, warehouse, lags .* not less than the 1s the topic keeps deletes"
"$S" consume orders --group warehouse >/dev/null
check_says orders deletes ok "the slowest of 1 group(s), warehouse, lags 0s"
stop_broker
