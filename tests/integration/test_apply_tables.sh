#!/usr/bin/env bash
# Issue 11, data safety: two topics applied into one target table would compare one topic's versions with the
# other's for the same key. The target records which topic feeds each table: `apply` of a second topic into a
# table fed by another exits 1 with one clear line and changes nothing, and `--table NAME` gives each topic its
# own table in the same database (the default table stays `entities`).
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apply_lib.sh"

start_broker "$TMP/data"
S=$SYNCLOG
"$S" topic create orders --partitions 2 >/dev/null
"$S" topic create customers --partitions 2 >/dev/null
printf '%s\n' '{"key": "1", "version": 5, "value": {"order": 1}}' | "$S" produce orders --input json >/dev/null
printf '%s\n' '{"key": "1", "version": 2, "value": {"customer": 1}}' | "$S" produce customers --input json >/dev/null

expect_exit 0 "$S" apply orders --group g --target "sqlite:$TMP/t.db"
expect_exit 1 "$S" apply customers --group g --target "sqlite:$TMP/t.db"
[ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q "table 'entities' is fed by topic 'orders'" "$TMP/err" &&
	grep -q -- '--table' "$TMP/err" || fail "second topic into entities: $(cat "$TMP/err")"
[ "$(sql "$TMP/t.db" "SELECT count(*) FROM stale_events")" = 0 ] || fail "the refused apply wrote stale events"
expect_exit 0 "$S" apply customers --group g --target "sqlite:$TMP/t.db" --table customers
[ "$(cat "$TMP/out")" = "applied 1 stale 0 duplicate 0 deleted 0 dead_lettered 0" ] || fail "$(cat "$TMP/out")"
[ "$(sql "$TMP/t.db" "SELECT version, value FROM entities")" = '5|{"order":1}' ] || fail "entities changed"
[ "$(sql "$TMP/t.db" "SELECT version, value FROM customers")" = '2|{"customer":1}' ] || fail "customers table"
[ "$(sql "$TMP/t.db" "SELECT name, topic FROM synclog_tables ORDER BY name")" = "$(printf 'customers|customers\nentities|orders')" ] ||
	fail "synclog_tables: $(sql "$TMP/t.db" "SELECT * FROM synclog_tables")"
# The claim holds for the other table too, and bad names are usage errors.
expect_exit 1 "$S" apply orders --group g2 --target "sqlite:$TMP/t.db" --table customers
expect_exit 2 "$S" apply orders --group g --target "sqlite:$TMP/t.db" --table "bad name"
expect_exit 2 "$S" apply orders --group g --target "sqlite:$TMP/t.db" --table stale_events
# A purge of one table claims nothing.
expect_exit 0 "$S" apply --target "sqlite:$TMP/t.db" --table customers --purge
stop_broker
