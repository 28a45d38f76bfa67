#!/usr/bin/env bash
# apply --on-delete and the deleted row's lifecycle against a real broker: with archive, the live row is copied to
# entities_archive and the deleted row keeps its version without its value; past --tombstone-retention the row
# stays while the compacted topic's log still holds the delete, and goes once the cleaner removed it (after the
# applier's group committed past it). erase-value clears the value at once. About 6 s.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
S="$SYNCLOG"
q() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$@"; }
start_broker "$TMP/data" --cleaner-check-ms 100
"$S" topic create people --partitions 1 --compact --delete-retention-ms 0 >/dev/null || fail "create"
printf '%s\n' '{"key":"ann","version":1,"value":{"email":"ann@x"}}' '{"key":"bob","version":1,"value":{"email":"bob@x"}}' \
	'{"key":"ann","version":2,"op":"delete"}' | "$S" produce people --input json >/dev/null || fail "produce"

"$S" apply people --group crm --target "sqlite:$TMP/a.db" --on-delete archive >/dev/null || fail "apply archive"
[ "$(q "$TMP/a.db" "SELECT deleted || ':' || version || ':' || ifnull(value, 'NULL') FROM entities WHERE key = 'ann'")" = "1:2:NULL" ] ||
	fail "archive: the deleted row is not version 2 without value"
[ "$(q "$TMP/a.db" "SELECT value FROM entities_archive WHERE key = 'ann' AND version = 1 AND deleted_version = 2")" = '{"email":"ann@x"}' ] ||
	fail "archive: the live row was not copied to entities_archive"

"$S" apply people --group pii --target "sqlite:$TMP/e.db" --on-delete erase-value >/dev/null || fail "apply erase-value"
[ "$(q "$TMP/e.db" "SELECT ifnull(value, 'NULL') FROM entities WHERE key = 'ann'")" = NULL ] || fail "erase-value kept the value"

# Past the retention, while the log still holds the delete (nothing cleaned yet): the row stays.
sleep 1.2
# A following applier purges when it starts polling (then every half retention): run one for 1.5 s.
purge_run() {
	timeout -s TERM 1.5 "$S" apply people --group crm --target "sqlite:$TMP/a.db" --tombstone-retention 1s \
		--follow >/dev/null 2>"$TMP/follow.err" || [ $? = 124 ] || fail "apply --follow: $(cat "$TMP/follow.err")"
}
purge_run
[ "$(q "$TMP/a.db" "SELECT count(*) FROM entities WHERE key = 'ann'")" = 1 ] || fail "the row went while the log still holds its delete"

# Both groups committed past the delete (each apply commits its position): the cleaner removes it, then the row goes.
"$S" topic compact people --wait >/dev/null || fail "compact"
[ "$("$S" --json consume people --from earliest | grep -c '"key":"ann"')" = 0 ] || fail "the cleaner kept the tombstone"
purge_run
[ "$(q "$TMP/a.db" "SELECT count(*) FROM entities WHERE key = 'ann'")" = 0 ] || fail "the row stayed after the log dropped its delete"
[ "$(q "$TMP/a.db" "SELECT count(*) FROM entities_archive WHERE key = 'ann'")" = 1 ] || fail "the archive was purged"
[ "$(q "$TMP/a.db" "SELECT count(*) FROM entities WHERE key = 'bob' AND deleted = 0")" = 1 ] || fail "bob is gone"
stop_broker
echo ok
