#!/usr/bin/env bash
# The Kafka listener against a program on librdkafka (tests/integration/kafka_client.c): an idempotent producer
# (acks=all) of 100,000 keyed records over 8 partitions, killed with SIGKILL in the middle and restarted: no record
# twice, every key's records in order; two consumers in one group (default and cooperative-sticky assignors), one
# killed: its partitions move to the other and every record is consumed; and malformed or unserved requests, which
# close only their own connection.
# Usage: tests/integration/test_kafka_librdkafka.sh BUILD_DIR (binaries in BUILD_DIR/bin, BUILD_DIR/tests).
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
CLIENT="$BUILD/tests/kafka_client"
[ -x "$CLIENT" ] || fail "$CLIENT is missing (make test-build)"

start_broker "$TMP/data" --kafka-listen 127.0.0.1:0
S=$SYNCLOG
"$S" topic create orders --partitions 8 >/dev/null

records_in() {
	"$S" --json topic describe "$1" | python3 -c '
import json, sys
text = sys.stdin.read()
try:
    objs = [json.loads(text)]
except ValueError:
    objs = [json.loads(l) for l in text.splitlines() if l.strip()]
total = 0
for o in objs:
    for p in o.get("partitions", [o]):
        total += p.get("next_offset", 0) - p.get("earliest_offset", 0)
print(total)'
}

# ---- idempotent producer killed mid-run, then resumed ----
"$CLIENT" produce "$KAFKA_BROKER" orders 100000 1000 --slow >"$TMP/p1.out" 2>"$TMP/p1.err" &
PRODUCER=$!
for _ in $(seq 1 400); do
	n=$(records_in orders)
	[ "$n" -ge 10000 ] && break
	kill -0 $PRODUCER 2>/dev/null || break
	sleep 0.05
done
kill -KILL $PRODUCER 2>/dev/null || fail "the producer finished before it could be killed: $(cat "$TMP/p1.out")"
wait $PRODUCER 2>/dev/null || true
before=$(records_in orders)
[ "$before" -gt 0 ] && [ "$before" -lt 100000 ] || fail "$before records before the restart"
# Frames the killed producer sent completely are still being appended for a moment; the restart reads after them.
sleep 0.5
"$CLIENT" produce "$KAFKA_BROKER" orders 100000 1000 --resume >"$TMP/p2.out" 2>"$TMP/p2.err" ||
	fail "resumed producer: $(cat "$TMP/p2.err")"
"$CLIENT" verify "$KAFKA_BROKER" orders 100000 1000 >"$TMP/v.out" 2>"$TMP/v.err" ||
	fail "after kill and resume ($before records before): $(cat "$TMP/v.err")"
[ "$(cat "$TMP/v.out")" = "verified 100000 records" ] || fail "verify: $(cat "$TMP/v.out")"
[ "$(records_in orders)" -eq 100000 ] || fail "$(records_in orders) records in the topic, not 100000"

# ---- two consumers in one group, one killed: its partitions move, every record is consumed ----
# Once with librdkafka's default assignors (range, roundrobin), once with cooperative-sticky (incremental).
group_run() {
	local assignor=$1 topic=$2
	"$S" topic create "$topic" --partitions 6 >/dev/null
	"$CLIENT" produce "$KAFKA_BROKER" "$topic" 20000 500 >/dev/null 2>"$TMP/gp.err" || fail "produce: $(cat "$TMP/gp.err")"
	rm -f "$TMP/a.txt" "$TMP/b.txt"
	"$CLIENT" consume "$KAFKA_BROKER" "$topic" "g-$topic" "$TMP/a.txt" 40000 "$assignor" >"$TMP/a.out" 2>"$TMP/a.err" &
	local a=$!
	"$CLIENT" consume "$KAFKA_BROKER" "$topic" "g-$topic" "$TMP/b.txt" 40000 "$assignor" >"$TMP/b.out" 2>"$TMP/b.err" &
	local b=$!
	# Both members own partitions: the group shows two members, each the owner of some partitions.
	local owners=0
	for _ in $(seq 1 300); do
		owners=$({ "$S" --json group describe "g-$topic" 2>/dev/null || true; } | python3 -c '
import json, sys
print(len({json.loads(l)["member"] for l in sys.stdin if l.strip()} - {None}))')
		[ "$owners" -eq 2 ] && [ -s "$TMP/a.txt" ] && [ -s "$TMP/b.txt" ] && break
		sleep 0.1
	done
	[ "$owners" -eq 2 ] || fail "$assignor: the partitions were not shared by two members"
	kill -KILL $b
	wait $b 2>/dev/null || true
	"$CLIENT" produce "$KAFKA_BROKER" "$topic" 40000 500 --resume >/dev/null 2>"$TMP/gp.err" || fail "produce more"
	wait $a || fail "$assignor: the surviving consumer did not take over: $(grep -v '^%7' "$TMP/a.err" | tail -5)"
	local seen
	seen=$(cat "$TMP/a.txt" "$TMP/b.txt" | awk '{print $1 " " $2}' | sort -u | wc -l)
	[ "$seen" -eq 40000 ] || fail "$assignor: $seen distinct records consumed, not 40000"
	# The group as `synclog group describe` shows it: one live member, lag 0 everywhere.
	"$S" --json group describe "g-$topic" >"$TMP/gd.json"
	python3 - "$TMP/gd.json" <<'PY' || fail "$assignor: group describe after the takeover: $(cat "$TMP/gd.json")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert len(rows) == 6 and all(r["lag"] == 0 for r in rows), rows
PY
}
group_run range,roundrobin grouped
group_run cooperative-sticky sticky

# ---- admin: CreateTopics, DescribeConfigs, DeleteTopics through librdkafka's admin API ----
"$CLIENT" admin "$KAFKA_BROKER" admin-made >"$TMP/admin.out" 2>"$TMP/admin.err" || fail "admin: $(cat "$TMP/admin.err")"
grep -q '^config cleanup.policy=delete$' "$TMP/admin.out" && grep -q '^config retention.ms=3600000$' "$TMP/admin.out" &&
	grep -q '^config segment.ms=600000$' "$TMP/admin.out" ||
	fail "DescribeConfigs: $(cat "$TMP/admin.out")"
[ "$(grep -v '^config' "$TMP/admin.out")" = "create NO_ERROR
create TOPIC_ALREADY_EXISTS
create INVALID_REPLICATION_FACTOR
create INVALID_CONFIG
create NO_ERROR
delete NO_ERROR
delete UNKNOWN_TOPIC_OR_PART" ] || fail "admin results: $(cat "$TMP/admin.out")"
# cleanup.policy=compact makes a compacted topic (issue 15's cleaner), with Kafka's delete.retention.ms shown too.
"$S" --json topic list | grep '"topic":"compacted"' | grep -q '"compact":true' ||
	fail "cleanup.policy=compact did not make a compacted topic: $("$S" --json topic list)"
grep -q '^config delete.retention.ms=86400000$' "$TMP/admin.out" || fail "no delete.retention.ms: $(cat "$TMP/admin.out")"
"$S" topic list | grep -q admin-made && fail "the deleted topic is still listed"
grep -q "config 'min.compaction.lag.ms' is not supported" "$TMP/broker.err" || fail "no log line for the refused config"

# ---- hostile and unserved requests: an error or a closed connection for that client only ----
python3 - "${KAFKA_BROKER%:*}" "${KAFKA_BROKER##*:}" <<'PY' || fail "raw requests"
import socket, struct, sys
host, port = sys.argv[1], int(sys.argv[2])

def conn():
    s = socket.create_connection((host, port), timeout=10)
    return s

def request(key, ver, body, corr=1):
    b = struct.pack(">hhi", key, ver, corr) + struct.pack(">h", 4) + b"test" + body
    return struct.pack(">i", len(b)) + b

def recv_all(s):
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
        if len(data) >= 4 and len(data) >= 4 + struct.unpack(">i", data[:4])[0]:
            break
    return data

# ApiVersions at a version from the future: error 35 and the served ranges (KIP-511), in the v0 layout.
s = conn()
s.sendall(request(18, 99, b"\x00garbage"))
r = recv_all(s)
size, corr, err, n = struct.unpack(">iihi", r[:14])
assert corr == 1 and err == 35 and n > 5, (corr, err, n)
keys = {struct.unpack(">hhh", r[14 + 6 * i:20 + 6 * i])[0] for i in range(n)}
assert {0, 1, 2, 3, 18}.issubset(keys), keys
s.close()

# An unserved API key, a truncated body, an impossible array count: the connection is closed.
for key, ver, body in [(57, 0, b""), (3, 4, b"\x00\x00\x00\x05\x00"), (3, 4, b"\x7f\xff\xff\xff\x00")]:
    s = conn()
    s.sendall(request(key, ver, body))
    assert recv_all(s) == b"", (key, ver)
    s.close()

# A size prefix past the frame limit: closed before anything is read.
s = conn()
s.sendall(struct.pack(">i", 0x7fffffff) + b"x" * 100)
assert recv_all(s) == b""
s.close()

# And the broker still answers: Metadata v0 for every topic.
s = conn()
s.sendall(request(3, 0, struct.pack(">i", 0)))
r = recv_all(s)
assert struct.unpack(">i", r[4:8])[0] == 1 and b"orders" in r, r[:64]
PY
grep -q 'kafka .*API key 57 version 0 is not served' "$TMP/broker.err" || fail "no log line for the unserved key"
grep -q 'kafka .*malformed request' "$TMP/broker.err" || fail "no log line for the malformed request"
grep -q 'ApiVersions version 99 not served' "$TMP/broker.err" || fail "no log line for ApiVersions v99"

stop_broker
echo ok
