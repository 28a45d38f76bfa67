# Helpers of the backfill and reconcile acceptance tests (sourced after lib.sh and apply_lib.sh).

# make_source DB TABLE ROWS [FIRST_VERSION]: a source table of ROWS rows, key TEXT PRIMARY KEY "k%07d", version
# FIRST_VERSION (default 1), name and score columns (the value is the JSON object of those two).
make_source() {
	python3 - "$@" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
table, rows = sys.argv[2], int(sys.argv[3])
v = int(sys.argv[4]) if len(sys.argv) > 4 else 1
db.execute("CREATE TABLE %s (key TEXT PRIMARY KEY, version INTEGER NOT NULL, name TEXT, score INTEGER)" % table)
db.executemany("INSERT INTO %s VALUES (?, ?, ?, ?)" % table,
               (("k%07d" % i, v, "name %d" % i, i % 1000) for i in range(rows)))
db.commit()
PY
}

# origin_counts TOPIC: "RECORDS DISTINCT_KEYS" of the topic's origin=backfill records.
origin_counts() {
	"$SYNCLOG" --json consume "$1" | python3 -c '
import json, sys
n, keys = 0, set()
for line in sys.stdin:
    r = json.loads(line)
    if r["origin"] == sys.argv[1]:
        n += 1
        keys.add(r["key"])
print(n, len(keys))' "${2:-backfill}"
}
