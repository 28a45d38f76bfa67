# Helpers of the applier's acceptance tests (sourced after lib.sh): the target of a test, SQL on it, the comparison
# of a target with the source's final state, and counts of the log.
#
# A test names its targets by a path DB ($TMP/t.db). With SL_APPLY_TARGET=postgresql (the test_pg_apply_*.sh
# wrappers) the same test runs against a PostgreSQL server of its own (pg_lib.sh), and DB names a schema of that
# server (the path's base name without .db): the acceptance tests are written once for both stores. Their SQL
# must mean the same in SQLite and PostgreSQL (CAST(deleted AS INTEGER) for the flag); values come out as compact
# JSON either way (jsonb prints its own spacing).

APPLY_TARGET=${SL_APPLY_TARGET:-sqlite}
case $APPLY_TARGET in
sqlite) ;;
postgresql)
	. "$(dirname "${BASH_SOURCE[0]}")/pg_lib.sh"
	chmod 711 "$TMP"
	pg_start "$TMP/pg" || fail "could not start PostgreSQL"
	;;
*) fail "SL_APPLY_TARGET must be sqlite or postgresql" ;;
esac

# target_schema DB: the PostgreSQL schema of DB.
target_schema() {
	basename "$1" .db
}

# target DB: the --target flags (and --schema for PostgreSQL) of DB, to be used unquoted: no spaces in them.
target() {
	if [ "$APPLY_TARGET" = postgresql ]; then
		echo "--target $PG_URI --schema $(target_schema "$1")"
	else
		echo "--target sqlite:$1"
	fi
}

# target_name DB: the target as the applier names it in reports and dead letters (tools/cli_apply.c).
target_name() {
	if [ "$APPLY_TARGET" = postgresql ]; then
		echo "$PG_URI"
	else
		echo "sqlite:$1"
	fi
}

# target_exists DB: whether the applier created DB's tables.
target_exists() {
	if [ "$APPLY_TARGET" = postgresql ]; then
		[ "$(pg_sql public "SELECT count(*) FROM pg_namespace WHERE nspname = '$(target_schema "$1")'")" = 1 ]
	else
		[ -f "$1" ]
	fi
}

# compact_json: rows on stdin, columns separated by '|'; a column holding a JSON object or array is printed compact.
compact_json() {
	python3 -c '
import json, sys
for line in sys.stdin:
    out = []
    for f in line.rstrip("\n").split("|"):
        if f[:1] in "{[":
            try:
                f = json.dumps(json.loads(f), separators=(",", ":"), ensure_ascii=False)
            except ValueError:
                pass
        out.append(f)
    print("|".join(out))'
}

# sql DB QUERY: print the rows, columns separated by '|', NULL as nothing (and commit, for a statement that writes).
sql() {
	if [ "$APPLY_TARGET" = postgresql ]; then
		pg_sql "$(target_schema "$1")" "$2" | compact_json
		return "${PIPESTATUS[0]}"
	fi
	python3 - "$1" "$2" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=10)
for row in db.execute(sys.argv[2]):
    print("|".join("" if v is None else str(v) for v in row))
db.commit()
PY
}

# target_intact DB: the store's own check of its structures (SQLite's integrity_check; PostgreSQL's amcheck of the
# entities' primary key index).
target_intact() {
	if [ "$APPLY_TARGET" = postgresql ]; then
		pg_sql "$(target_schema "$1")" "CREATE EXTENSION IF NOT EXISTS amcheck WITH SCHEMA public" >/dev/null &&
			pg_sql "$(target_schema "$1")" "SELECT public.bt_index_check('entities_pkey', true)" >/dev/null
	else
		[ "$(sql "$1" "PRAGMA integrity_check")" = ok ]
	fi
}

# target_equals_source DB STATE_FILE: every key at its last version, with its value and deleted flag, and nothing
# else (purged tombstones aside: pass --purged to accept deleted keys that are gone).
target_equals_source() {
	sql "$1" "SELECT key || '|' || version || '|' || CAST(deleted AS INTEGER) || '|' || CAST(coalesce(value, 'null') AS TEXT) FROM entities" \
		>"$TMP/entities.rows" || fail "reading the target"
	python3 - "$TMP/entities.rows" "$2" "${3:-}" <<'PY' || fail "the target differs from the source's final state"
import json, sys
want = json.load(open(sys.argv[2]))["keys"]
purged_ok = sys.argv[3] == "--purged"
got = {}
for line in open(sys.argv[1]):
    key, version, deleted, value = line.rstrip("\n").split("|", 3)
    got[key] = (int(version), int(deleted), value)
bad = []
for key, w in want.items():
    g = got.pop(key, None)
    if g is None:
        if not (purged_ok and w["deleted"]):
            bad.append("%s: missing (want version %d)" % (key, w["version"]))
        continue
    version, deleted, value = g
    if version != w["version"] or deleted != w["deleted"] or json.loads(value) != w["value"]:
        bad.append("%s: got version %d deleted %d %s, want version %d deleted %d %s"
                   % (key, version, deleted, value, w["version"], w["deleted"], json.dumps(w["value"])))
bad += ["%s: not in the source" % k for k in got]
if bad:
    print("\n".join(bad[:20]), "\n%d differences" % len(bad), file=sys.stderr)
    sys.exit(1)
PY
}

# log_end TOPIC: the sum of the topic's next offsets (records written to it).
log_end() {
	"$SYNCLOG" --json topic describe "$1" | python3 -c 'import json, sys; print(sum(json.loads(l)["next_offset"] for l in sys.stdin))'
}

# applied_through DB: the sum of the target's stored next offsets (records it has handled).
applied_through() {
	sql "$1" "SELECT coalesce(sum(next_offset), 0) FROM synclog_offsets"
}
