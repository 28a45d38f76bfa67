#!/usr/bin/env bash
# A rolling producer upgrade: schema version 1 and 2 events interleaved in one log. Consumers on version 1 (the
# contract lists [1], on_unknown hold) apply up to each partition's first version-2 event and hold there, saying why,
# and apply exits 1; a consumer on version 1 that dead-letters instead goes on. Consumers upgraded to version 2
# (the contract lists [2], with --upcast taking version 1 values up, or an upcast hook) apply everything from where
# the hold was, in version 2's shape.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apply_lib.sh"

start_broker "$TMP/data"
S=$SYNCLOG
"$S" topic create profiles --partitions 1 >/dev/null
cat <<'JSON' | "$S" produce profiles --input json >/dev/null
{"key":"u1","version":1,"schema_version":1,"value":{"first_name":"Ann","last_name":"Lee","score":0.1}}
{"key":"u2","version":1,"schema_version":2,"value":{"name":{"first":"Bo","last":"Ng"},"score":1.0}}
{"key":"u3","version":1,"value":{"first_name":"Cy","last_name":"Ito","score":0.1}}
{"key":"u4","version":1,"schema_version":2,"value":{"name":{"first":"Di","last":"Oh"},"score":3}}
JSON

printf 'source_of_truth: {system: accounts}\nschema: {versions: [1], on_unknown: hold}\n' >"$TMP/v1.yaml"
"$S" contract set profiles "$TMP/v1.yaml" >/dev/null
DB=$TMP/t.db
if "$S" apply profiles --group app --target "sqlite:$DB" >"$TMP/out" 2>"$TMP/err"; then
	fail "apply exited 0 with a held partition"
fi
grep -q "partition 0 held at offset 1: schema version 2 is not one the contract accepts (1)" "$TMP/err" ||
	fail "hold message: $(cat "$TMP/err")"
grep -q "1 partition(s) held" "$TMP/err" || fail "exit message: $(cat "$TMP/err")"
[ "$(cat "$TMP/out")" = "applied 1 stale 0 duplicate 0 deleted 0 dead_lettered 0" ] || fail "v1: $(cat "$TMP/out")"
[ "$(sql "$DB" "SELECT group_concat(key) FROM entities")" = u1 ] || fail "applied past the hold"
[ "$(sql "$DB" "SELECT state || ' ' || next_offset FROM synclog_partition_state JOIN synclog_offsets USING (\"group\", topic, \"partition\")")" = "held 1" ] ||
	fail "state: $(sql "$DB" "SELECT * FROM synclog_partition_state")"
# Started again with the same contract: still held at the same record, nothing lost or skipped.
"$S" apply profiles --group app --target "sqlite:$DB" >"$TMP/out" 2>/dev/null && fail "second v1 run exited 0"
[ "$(cat "$TMP/out")" = "applied 0 stale 0 duplicate 0 deleted 0 dead_lettered 0" ] || fail "v1 again: $(cat "$TMP/out")"

# A version-1 consumer that dead-letters the unknown version instead goes on.
"$S" apply profiles --group app-dl --target "sqlite:$TMP/dl.db" --on-unknown-schema dead-letter >"$TMP/out" 2>/dev/null
[ "$(cat "$TMP/out")" = "applied 2 stale 0 duplicate 0 deleted 0 dead_lettered 2" ] || fail "dead-letter: $(cat "$TMP/out")"

# Consumers on version 2: the contract moves, version 1 values are brought up by a mapping.
printf 'source_of_truth: {system: accounts}\nschema: {versions: [2], on_unknown: hold}\n' >"$TMP/v2.yaml"
"$S" contract set profiles "$TMP/v2.yaml" >/dev/null
"$S" apply profiles --group app --target "sqlite:$DB" \
	--upcast '1=.name.first=.first_name,.name.last=.last_name,.migrated=true' >"$TMP/out" 2>"$TMP/err" ||
	fail "v2 consumer: $(cat "$TMP/err")"
[ "$(cat "$TMP/out")" = "applied 3 stale 0 duplicate 0 deleted 0 dead_lettered 0" ] || fail "v2: $(cat "$TMP/out")"
# u1 was applied by the version-1 consumer, before the upgrade: rows are not rewritten, only records applied.
[ "$(sql "$DB" "SELECT key || ' ' || value FROM entities ORDER BY key")" = \
	'u1 {"first_name":"Ann","last_name":"Lee","score":0.1}
u2 {"name":{"first":"Bo","last":"Ng"},"score":1.0}
u3 {"score":0.1,"name":{"first":"Cy","last":"Ito"},"migrated":true}
u4 {"name":{"first":"Di","last":"Oh"},"score":3}' ] || fail "v2 values: $(sql "$DB" "SELECT key, value FROM entities")"

# The same with a shared-object hook instead of a mapping.
cat >"$TMP/hook.c" <<'C'
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* Wraps a version-1 value: {"v1": VALUE}. */
int synclog_upcast(int32_t from, const char *value, size_t len, char **out, size_t *out_len, int32_t *to)
{
	if (from != 1)
		return 1;
	*out = malloc(len + 8);
	if (*out == NULL)
		return -1;
	*out_len = (size_t)sprintf(*out, "{\"v1\":%.*s}", (int)len, value);
	*to = 2;
	return 0;
}
C
gcc -shared -fPIC -o "$TMP/hook.so" "$TMP/hook.c"
"$S" apply profiles --group app-hook --target "sqlite:$TMP/hook.db" --upcast-hook "$TMP/hook.so" >"$TMP/out" 2>/dev/null ||
	fail "hook consumer"
[ "$(sql "$TMP/hook.db" "SELECT value FROM entities WHERE key = 'u3'")" = \
	'{"v1":{"first_name":"Cy","last_name":"Ito","score":0.1}}' ] || fail "hook: $(sql "$TMP/hook.db" "SELECT * FROM entities")"
if "$S" apply profiles --group x --target "sqlite:$TMP/x.db" --upcast-hook "$TMP/nonexistent.so" 2>"$TMP/err"; then
	fail "a missing hook was accepted"
fi
grep -q "upcast-hook" "$TMP/err" || fail "missing hook message: $(cat "$TMP/err")"
if "$S" apply profiles --group x --target "sqlite:$TMP/x.db" --upcast '1=.a=' 2>"$TMP/err"; then
	fail "a bad mapping was accepted"
fi
grep -q "upcast step '.a='" "$TMP/err" || fail "bad mapping message: $(cat "$TMP/err")"
stop_broker
