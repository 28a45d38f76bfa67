#!/usr/bin/env bash
# The Kafka listener against kcat (librdkafka): -L lists topics and partitions; -P with keys and headers, with
# idempotence on and zstd; -C from the beginning, from an offset, from a timestamp (-o s@MS), to the end (-e);
# records produced by `synclog produce` read by kcat with their headers; records produced by kcat applied by
# `synclog apply` (version from the header, a null value deletes); a keyed record produced with librdkafka's
# murmur2_random partitioner lands where `synclog produce` puts the same key.
# Usage: tests/integration/test_kafka_kcat.sh BUILD_DIR (binaries in BUILD_DIR/bin).
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/apply_lib.sh"
command -v kcat >/dev/null || fail "kcat is not installed (tools/install-deps.sh test)"

start_broker "$TMP/data" --kafka-listen 127.0.0.1:0
[ -n "$KAFKA_BROKER" ] || fail "the ready line names no kafka listener"
S=$SYNCLOG
K=(kcat -b "$KAFKA_BROKER" -X socket.timeout.ms=10000 -X topic.request.timeout.ms=10000)

"$S" topic create events --partitions 4 >/dev/null

# ---- -L: topics and partitions, broker 0 at the listener's own address ----
"${K[@]}" -L -J >"$TMP/meta.json"
python3 - "$TMP/meta.json" "$KAFKA_BROKER" <<'PY' || fail "kcat -L: $(cat "$TMP/meta.json")"
import json, sys
m = json.load(open(sys.argv[1]))
host, port = sys.argv[2].rsplit(":", 1)
assert m["brokers"] == [{"id": 0, "name": f"{host}:{port}"}], m["brokers"]
t = [t for t in m["topics"] if t["topic"] == "events"][0]
assert [p["partition"] for p in t["partitions"]] == [0, 1, 2, 3], t
assert all(p["leader"] == 0 for p in t["partitions"]), t
PY

# ---- -P: keys and headers, idempotent, zstd ----
for i in $(seq 1 40); do echo "key-$i#{\"n\": $i}"; done >"$TMP/in.txt"
"${K[@]}" -P -t events -K '#' -H v=7 -H origin=backfill -X enable.idempotence=true -X acks=all -z zstd \
	<"$TMP/in.txt" 2>"$TMP/kcat.err" || fail "kcat -P: $(cat "$TMP/kcat.err")"
"$S" consume events --from earliest --json >"$TMP/native.json"
python3 - "$TMP/native.json" <<'PY' || fail "records produced by kcat, read natively: $(head -3 "$TMP/native.json")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 40, len(rows)
assert sorted(r["key"] for r in rows) == sorted(f"key-{i}" for i in range(1, 41))
assert all(r["version"] == 7 and r["origin"] == "backfill" and r["op"] == "upsert" for r in rows), rows[0]
assert all(r["value"] == {"n": int(r["key"][4:])} for r in rows), rows[0]
PY
# The broker stored zstd batches as kcat sent them (attributes codec 4 at byte 21 of the first batch).
first_seg=$(ls "$TMP"/data/topics/events/*/00000000000000000000.log | head -1)
python3 -c "
import sys
b = [open(f, 'rb').read() for f in sys.argv[1:]]
assert any(len(x) > 61 and (x[22] & 7) == 4 for x in b), 'no zstd batch stored'
" "$TMP"/data/topics/events/*/00000000000000000000.log || fail "kcat's zstd batches were not stored as sent"

# ---- -C: from the beginning to the end ----
"${K[@]}" -C -t events -o beginning -e -f '%p %o %k %s %h\n' >"$TMP/all.txt" 2>/dev/null
[ "$(wc -l <"$TMP/all.txt")" -eq 40 ] || fail "kcat -C -e read $(wc -l <"$TMP/all.txt") records, not 40"
grep -q '^[0-3] [0-9]* key-5 {"n": 5} v=7,origin=backfill$' "$TMP/all.txt" || fail "kcat -C: $(head -3 "$TMP/all.txt")"

# ---- -C from an offset of one partition ----
p0=$(awk '$1 == 0' "$TMP/all.txt" | wc -l)
[ "$p0" -ge 3 ] || fail "partition 0 holds $p0 records: too few for the offset test"
"${K[@]}" -C -t events -p 0 -o 2 -e -f '%o\n' >"$TMP/from2.txt" 2>/dev/null
[ "$(head -1 "$TMP/from2.txt")" = 2 ] && [ "$(wc -l <"$TMP/from2.txt")" -eq $((p0 - 2)) ] ||
	fail "kcat -p 0 -o 2: $(tr '\n' ' ' <"$TMP/from2.txt") (partition 0 has $p0)"

# ---- -C from a timestamp: only what was produced after it ----
sleep 1.1
t_ms=$(date +%s%3N)
sleep 0.1
for i in $(seq 1 10); do echo "late-$i#x"; done | "${K[@]}" -P -t events -K '#' 2>/dev/null
"${K[@]}" -C -t events -o "s@$t_ms" -e -f '%k\n' >"$TMP/late.txt" 2>/dev/null
[ "$(sort "$TMP/late.txt" | tr '\n' ' ')" = "$(for i in $(seq 1 10); do echo "late-$i"; done | sort | tr '\n' ' ')" ] ||
	fail "kcat -o s@$t_ms read: $(tr '\n' ' ' <"$TMP/late.txt")"
# A timestamp after every record: nothing.
"${K[@]}" -C -t events -o "s@$(($(date +%s%3N) + 60000))" -e -f '%k\n' >"$TMP/none.txt" 2>/dev/null
[ ! -s "$TMP/none.txt" ] || fail "a future timestamp read: $(head -3 "$TMP/none.txt")"

# ---- cross-reading: `synclog produce` read by kcat with its headers ----
"$S" topic create native --partitions 1 >/dev/null
printf '%s\n' '{"key":"a","version":3,"value":{"x":1},"idempotency_key":"ik-1"}' \
	'{"key":"a","version":4,"op":"delete"}' | "$S" produce native --input json --origin repair >/dev/null
"${K[@]}" -C -t native -o beginning -e -Z -f '%k|%s|%h\n' >"$TMP/native.txt" 2>/dev/null
[ "$(cat "$TMP/native.txt")" = 'a|{"x":1}|v=3,origin=repair,ik=ik-1
a|NULL|v=4,op=delete,origin=repair' ] || fail "kcat read of synclog produce: $(cat "$TMP/native.txt")"

# ---- cross-applying: kcat records applied by `synclog apply` (v header, null value deletes) ----
"$S" topic create kapply --partitions 2 >/dev/null
printf '%s\n' 'u1#{"s":"old"}' | "${K[@]}" -P -t kapply -K '#' -H v=1 2>/dev/null
printf '%s\n' 'u1#{"s":"new"}' 'u2#{"s":"keep"}' | "${K[@]}" -P -t kapply -K '#' -H v=2 2>/dev/null
printf '%s\n' 'u1#' | "${K[@]}" -P -t kapply -K '#' -Z -H v=3 2>/dev/null # -Z: the empty value is sent as null
printf '%s\n' 'u2#{"s":"stale"}' | "${K[@]}" -P -t kapply -K '#' -H v=1 2>/dev/null
"$S" apply kapply --group applier --target "sqlite:$TMP/t.db" >"$TMP/apply.out"
[ "$(cat "$TMP/apply.out")" = "applied 3 stale 1 duplicate 0 deleted 1 dead_lettered 0" ] ||
	fail "apply of kcat records: $(cat "$TMP/apply.out")"
[ "$(sql "$TMP/t.db" "SELECT key, version, deleted FROM entities ORDER BY key")" = "u1|3|1
u2|2|0" ] || fail "entities after apply: $(sql "$TMP/t.db" "SELECT * FROM entities")"

# ---- partitioning: librdkafka's murmur2_random agrees with synclog produce ----
"$S" topic create keyed --partitions 8 >/dev/null
for i in $(seq 1 50); do echo "cust-$i#k"; done | "${K[@]}" -P -t keyed -K '#' -X partitioner=murmur2_random \
	2>/dev/null
for i in $(seq 1 50); do printf 'cust-%s\tn\n' "$i"; done | "$S" produce keyed >/dev/null
"$S" consume keyed --from earliest --json >"$TMP/keyed.json"
python3 - "$TMP/keyed.json" <<'PY' || fail "partitions differ between librdkafka and synclog"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 100, len(rows)
where = {}
for r in rows:
    where.setdefault(r["key"], set()).add(r["partition"])
bad = {k: v for k, v in where.items() if len(v) != 1}
assert not bad, bad
assert len({next(iter(v)) for v in where.values()}) > 4, "keys did not spread"
PY

# ---- -G: group consumption with commits; `synclog group describe` shows the group with lag 0 ----
"${K[@]}" -G kgroup -X auto.offset.reset=earliest -X enable.auto.commit=true -X auto.commit.interval.ms=100 \
	-e -f '%p %o\n' events >"$TMP/g.txt" 2>"$TMP/g.err" || fail "kcat -G: $(tail -3 "$TMP/g.err")"
[ "$(sort -u "$TMP/g.txt" | wc -l)" -eq 50 ] || fail "kcat -G read $(sort -u "$TMP/g.txt" | wc -l) records, not 50"
"$S" --json group describe kgroup >"$TMP/gd.json"
python3 - "$TMP/gd.json" <<'PY' || fail "group describe after kcat -G: $(cat "$TMP/gd.json")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert [r["partition"] for r in rows] == [0, 1, 2, 3], rows
assert all(r["lag"] == 0 and r["committed"] == r["next_offset"] for r in rows), rows
assert sum(r["committed"] for r in rows) == 50, rows
PY
"$S" group list | grep -q '^kgroup ' || fail "group list does not show kgroup: $("$S" group list)"
# The same group read by our own consumer: nothing left to consume.
left=$("$S" consume events --group kgroup --max 1 2>"$TMP/c.err") || fail "synclog consume --group: $(cat "$TMP/c.err")"
[ -z "$left" ] || fail "synclog consume --group kgroup found records after kcat -G: $left"

# ---- the broker logged nothing alarming, and stops cleanly ----
stop_broker
! grep -q 'kafka.*closing' "$TMP/broker.err" || fail "the broker closed a kcat connection: $(grep kafka "$TMP/broker.err")"
echo "ok"
