#!/usr/bin/env bash
# Issue 19 against a PostgreSQL target (a server of its own, pg_lib.sh): the contract rules the engine applies by
# itself work there, and what needs the conflicts table is refused with a clear message before anything is applied.
#   - a contract with fields_owned: apply exits 1 naming the target and field ownership, nothing applied; the same
#     with --conflicts source-of-truth on a contract without ownership;
#   - with --no-contract it applies (the version rule);
#   - schema versions: v1 and v2 interleaved, a contract accepting [2] with --upcast taking v1 up: every row in
#     version 2's shape, two upcast rows in one transaction each with its own value;
#   - a contract accepting [1] holds the partition at the first v2 record, says why, exits 1.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
SL_APPLY_TARGET=postgresql
. "$(dirname "$0")/apply_lib.sh"

start_broker "$TMP/data"
S=$SYNCLOG
"$S" topic create customers --partitions 1 >/dev/null
cat <<'JSON' | "$S" produce customers --input json >/dev/null
{"key":"c1","version":1,"origin_system":"billing","value":{"status":"active","note":"x"}}
{"key":"c2","version":1,"origin_system":"billing","value":{"status":"trial"}}
JSON
printf 'source_of_truth: {system: billing}\nfields_owned: {billing: [status], support: [note]}\n' >"$TMP/own.yaml"
"$S" contract set customers "$TMP/own.yaml" >/dev/null 2>&1
DB=$TMP/own.db
if "$S" apply customers --group crm $(target "$DB") >"$TMP/out" 2>"$TMP/err"; then
	fail "apply with field ownership to PostgreSQL exited 0: $(cat "$TMP/out")"
fi
grep -q "target $PG_URI keeps no conflicts table and no row's last writer, which the field ownership of topic customers's contract (fields_owned, fields_derived) needs: nothing was applied" "$TMP/err" ||
	fail "refusal of field ownership: $(cat "$TMP/err")"
if target_exists "$DB" && [ "$(sql "$DB" "SELECT count(*) FROM entities")" != 0 ]; then
	fail "rows were applied before the refusal"
fi
"$S" apply customers --group crm $(target "$DB") --no-contract >"$TMP/out" 2>"$TMP/err" ||
	fail "apply --no-contract: $(cat "$TMP/err")"
[ "$(cat "$TMP/out")" = "applied 2 stale 0 duplicate 0 deleted 0 dead_lettered 0" ] || fail "--no-contract: $(cat "$TMP/out")"

printf 'source_of_truth: {system: billing}\n' >"$TMP/sot.yaml"
"$S" contract set customers "$TMP/sot.yaml" >/dev/null 2>&1
if "$S" apply customers --group crm2 $(target "$TMP/sot.db") --conflicts source-of-truth >/dev/null 2>"$TMP/err"; then
	fail "apply --conflicts source-of-truth to PostgreSQL exited 0"
fi
grep -q "which the source-of-truth conflict policy (--conflicts) needs: nothing was applied" "$TMP/err" ||
	fail "refusal of the policy: $(cat "$TMP/err")"

# Schema versions: rule 9a runs in the engine, so PostgreSQL gets it as SQLite does.
"$S" topic create profiles --partitions 1 >/dev/null
cat <<'JSON' | "$S" produce profiles --input json >/dev/null
{"key":"u1","version":1,"schema_version":1,"value":{"full_name":"Ann"}}
{"key":"u2","version":1,"schema_version":2,"value":{"name":{"first":"Bo"}}}
{"key":"u3","version":1,"value":{"full_name":"Cy"}}
JSON
printf 'source_of_truth: {system: accounts}\nschema: {versions: [1], on_unknown: hold}\n' >"$TMP/v1.yaml"
"$S" contract set profiles "$TMP/v1.yaml" >/dev/null 2>&1
DB=$TMP/prof.db
if "$S" apply profiles --group app $(target "$DB") >"$TMP/out" 2>"$TMP/err"; then
	fail "apply exited 0 with a held partition"
fi
grep -q "partition 0 held at offset 1: schema version 2 is not one the contract accepts (1)" "$TMP/err" ||
	fail "hold message: $(cat "$TMP/err")"
[ "$(sql "$DB" "SELECT string_agg(key, ',' ORDER BY key) FROM entities")" = u1 ] || fail "applied past the hold"
printf 'source_of_truth: {system: accounts}\nschema: {versions: [2], on_unknown: hold}\n' >"$TMP/v2.yaml"
"$S" contract set profiles "$TMP/v2.yaml" >/dev/null 2>&1
"$S" apply profiles --group app2 $(target "$TMP/prof2.db") --upcast '1=.name.first=.full_name,del(.full_name)' \
	>"$TMP/out" 2>"$TMP/err" || fail "apply with --upcast: $(cat "$TMP/err")"
[ "$(cat "$TMP/out")" = "applied 3 stale 0 duplicate 0 deleted 0 dead_lettered 0" ] || fail "upcast: $(cat "$TMP/out")"
got=$(sql "$TMP/prof2.db" "SELECT key, value FROM entities ORDER BY key" | compact_json)
want='u1|{"name":{"first":"Ann"}}
u2|{"name":{"first":"Bo"}}
u3|{"name":{"first":"Cy"}}'
[ "$got" = "$want" ] || fail "upcast rows: $got"
echo "ok: PostgreSQL refuses field ownership and conflict policies clearly, applies --no-contract, holds and upcasts by the contract's schema versions"
