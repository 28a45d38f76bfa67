# Helpers of the applier's acceptance tests (sourced after lib.sh): SQL on the target, the comparison of a target
# with the source's final state, and counts of the log.

# sql DB QUERY: print the rows, columns separated by '|' (and commit, for a statement that writes).
sql() {
	python3 - "$1" "$2" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=10)
for row in db.execute(sys.argv[2]):
    print("|".join("" if v is None else str(v) for v in row))
db.commit()
PY
}

# target_equals_source DB STATE_FILE: every key at its last version, with its value and deleted flag, and nothing
# else (purged tombstones aside: pass --purged to accept deleted keys that are gone).
target_equals_source() {
	python3 - "$@" <<'PY' || fail "the target differs from the source's final state"
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=10)
want = json.load(open(sys.argv[2]))["keys"]
purged_ok = "--purged" in sys.argv
got = {k: (v, d, val) for k, v, d, val in db.execute("SELECT key, version, deleted, value FROM entities")}
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
