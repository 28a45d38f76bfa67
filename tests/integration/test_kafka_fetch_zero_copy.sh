#!/usr/bin/env bash
# The Kafka listener's Fetch answers with their records sent from the segment files by splices (broker/sendfile.h,
# broker/kafka/kafka_impl.h invariant 5): raw fetches of several topics and partitions return exactly the stored
# bytes across segment boundaries; pipelined requests are answered in their order; a partition limit smaller than a
# batch still returns that batch whole; kcat and a librdkafka group consumer read every record at its offset, the
# same with --fetch-zero-copy on and off; a consumer that stops reading leaves its answer waiting while others are
# served, and retention deleting the segment under that answer changes none of its bytes; TLS keeps the copy path.
# The metrics say which path each answer took.
# Usage: tests/integration/test_kafka_fetch_zero_copy.sh BUILD_DIR (binaries in BUILD_DIR/bin, BUILD_DIR/tests).
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
command -v kcat >/dev/null || fail "kcat is not installed (tools/install-deps.sh test)"
CLIENT="$BUILD/tests/kafka_client"
[ -x "$CLIENT" ] || fail "$CLIENT is missing (make test-build)"
KZ="$(dirname "$0")/kafka_fetch_zc.py"

# records N PREFIX: N lines "PREFIX<i><TAB><about 1 KiB value>" for synclog produce.
records() { python3 -c '
import sys
n, p = int(sys.argv[1]), sys.argv[2]
for i in range(n): sys.stdout.write("%s%d\t%s\n" % (p, i, ("v%d-" % i).ljust(1000, "x")))' "$1" "$2"; }
# stored TOPIC PARTITION: the partition's batches as its segment files hold them, in offset order.
stored() { cat $(ls "$TMP/data/topics/$1/$2/"*.log | sort); }
kc() { timeout 60 kcat -b "$KAFKA_BROKER" -X socket.timeout.ms=10000 -q "$@"; }
# reads SUFFIX [KCAT_OPTS...]: what every client reads of the topics, into $TMP/*.SUFFIX.
reads() {
	local sfx=$1
	shift
	python3 "$KZ" replay "$KAFKA_BROKER" "$TMP/raw.$sfx" t:2 u:1 >"$TMP/replay.$sfx" || fail "raw replay ($sfx)"
	python3 "$KZ" pipeline "$KAFKA_BROKER" t "$TMP/stored.t.0" "$TMP/stored.t.1" >/dev/null ||
		fail "pipelined requests ($sfx)"
	kc "$@" -C -t t -o beginning -e -f '%p %o %k %s\n' >"$TMP/kcat.$sfx" || fail "kcat -C t ($sfx)"
	# One byte per partition: librdkafka gets one whole batch per fetch.
	kc "$@" -X fetch.message.max.bytes=1 -C -t u -o beginning -e -f '%p %o %k %s\n' >"$TMP/small.$sfx" ||
		fail "kcat -C u with fetch.message.max.bytes=1 ($sfx)"
	rm -f "$TMP/rdk.$sfx"
	"$CLIENT" consume "$KAFKA_BROKER" t "g-$sfx" "$TMP/rdk.$sfx" 6000 2>"$TMP/rdk.err" ||
		fail "librdkafka consumer ($sfx): $(tail -3 "$TMP/rdk.err")"
	sort -n -k1,1 -k2,2 -o "$TMP/rdk.$sfx" "$TMP/rdk.$sfx"
	sort -n -k1,1 -k2,2 -o "$TMP/kcat.$sfx" "$TMP/kcat.$sfx"
}
# check_reads SUFFIX: every record of t and u at its offset, once; the raw answers are the stored bytes.
check_reads() {
	local sfx=$1
	for tp in t.0 t.1 u.0; do
		cmp -s "$TMP/stored.$tp" "$TMP/raw.$sfx.$tp" || fail "raw fetches of $tp differ from its segment files ($sfx)"
	done
	python3 - "$TMP/kcat.$sfx" "$TMP/rdk.$sfx" "$TMP/small.$sfx" <<'PY' || fail "records read ($sfx)"
import sys
def value(i): return ("v%d-" % i).ljust(1000, "x")
for path, prefix, n in ((sys.argv[1], "k", 6000), (sys.argv[2], "k", 6000), (sys.argv[3], "u", 2000)):
    rows = [l.rstrip("\n").split(" ", 3) for l in open(path)]
    assert len(rows) == n, (path, len(rows))
    seen, next_offset = set(), {}
    for p, o, k, v in rows:
        assert int(o) == next_offset.get(p, 0), (path, p, o)
        next_offset[p] = int(o) + 1
        i = int(k[len(prefix):])
        assert k == prefix + str(i) and v == value(i), (path, k, v[:20])
        seen.add(i)
    assert seen == set(range(n)), (path, len(seen))
PY
}

# ---- zero copy on (the default): two topics, 1 MiB segments ----
start_broker "$TMP/data" --kafka-listen 127.0.0.1:0 --metrics 127.0.0.1:0 --retention-check-ms 200
"$SYNCLOG" topic create t --partitions 2 --segment-bytes 1048576 >/dev/null || fail "topic create t"
"$SYNCLOG" topic create u --partitions 1 --segment-bytes 1048576 >/dev/null || fail "topic create u"
records 6000 k | "$SYNCLOG" produce t --acks written >/dev/null || fail "produce t"
records 2000 u | "$SYNCLOG" produce u --acks written >/dev/null || fail "produce u"
for tp in t/0 t/1 u/0; do
	[ "$(ls "$TMP/data/topics/$tp/"*.log | wc -l)" -ge 2 ] || fail "$tp has one segment: no boundary to cross"
	stored "${tp%/*}" "${tp#*/}" >"$TMP/stored.${tp/\//.}"
done
reads on
check_reads on
# Every answer of the raw replay (one at a time on its connection) went from the files, and most of the others.
raw=$(sed -n 's/^answers //p' "$TMP/replay.on")
answers=$(metric synclog_fetch_sendfile_answers_total)
[ "$raw" -ge 8 ] && [ "$answers" -ge $((raw + 8)) ] ||
	fail "only $answers Kafka fetch answers went from the files (the raw replay alone had $raw answers)"
[ "$(metric synclog_fetch_sendfile_failed_total)" = 0 ] || fail "answers from files failed"
# A partition limit of one byte: the batch holding the offset, whole (first, middle and last batch of u).
last=$(tail -1 "$TMP/small.on" | cut -d' ' -f2)
for offset in 0 1000 "$last"; do
	python3 "$KZ" small "$KAFKA_BROKER" u 0 "$offset" >/dev/null || fail "1-byte fetch at $offset"
done
[ "$(metric synclog_fetch_sendfile_answers_total)" -gt "$answers" ] || fail "the 1-byte fetches were not from files"
stop_broker

# ---- zero copy off: the same data, read into memory; the same records at the same offsets ----
start_broker "$TMP/data" --kafka-listen 127.0.0.1:0 --metrics 127.0.0.1:0 --fetch-zero-copy off
reads off
check_reads off
for f in kcat rdk small; do cmp -s "$TMP/$f.on" "$TMP/$f.off" || fail "$f read other records with zero copy off"; done
[ "$(metric synclog_fetch_sendfile_answers_total)" = 0 ] || fail "--fetch-zero-copy off still sent from files"
stop_broker

# ---- TLS: the copy path (encrypted in user space), the same records ----
make_pki "$TMP/pki"
start_broker "$TMP/data" --kafka-listen 127.0.0.1:0 --metrics 127.0.0.1:0 --tls-cert "$TMP/pki/server.pem" \
	--tls-key "$TMP/pki/server.key"
kc -X security.protocol=ssl -X ssl.ca.location="$TMP/pki/ca.pem" -C -t t -o beginning -e -f '%p %o %k %s\n' |
	sort -n -k1,1 -k2,2 >"$TMP/kcat.tls" || fail "kcat over TLS"
cmp -s "$TMP/kcat.on" "$TMP/kcat.tls" || fail "kcat over TLS read other records"
[ "$(metric synclog_fetch_sendfile_answers_total "$TMP/pki/ca.pem")" = 0 ] || fail "a TLS answer went from files"
stop_broker

# ---- a consumer that stops reading an 8 MiB answer; retention deletes the segment under it ----
start_broker "$TMP/data" --kafka-listen 127.0.0.1:0 --metrics 127.0.0.1:0 --retention-check-ms 200
"$SYNCLOG" topic create w --partitions 1 --segment-bytes 8388608 >/dev/null || fail "topic create w"
records 24000 w | "$SYNCLOG" produce w --acks written >/dev/null || fail "produce w"
first="$TMP/data/topics/w/0/00000000000000000000.log"
[ "$(ls "$TMP/data/topics/w/0/"*.log | wc -l)" -ge 3 ] || fail "w: expected at least 3 segments"
cp "$first" "$TMP/first"
before=$(metric synclog_fetch_sendfile_answers_total)
python3 "$KZ" stall "$KAFKA_BROKER" w 0 8388608 "$TMP/stalled" "$TMP/go" >"$TMP/stall.out" &
stall_pid=$!
for _ in $(seq 1 100); do grep -qs asked "$TMP/stall.out" && break; sleep 0.1; done
sleep 1
[ "$(metric synclog_fetch_sendfile_answers_total)" = "$before" ] || fail "the stalled answer did not stall"
# Other consumers are served meanwhile.
kc -C -t u -o -3 -e -f '%k\n' | grep -qx u1999 || fail "kcat while a Kafka consumer stalls"
zc_retention_under_stall w "$first" "$stall_pid" "$before"
stop_broker
echo ok
