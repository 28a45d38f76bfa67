#!/usr/bin/env bash
# Fetch answers sent from the segment files to the socket by io_uring splices (broker/sendfile.h): a replay
# across many segments returns exactly the stored bytes; a consumer that stops reading leaves its answer waiting
# while the broker serves others, and retention deleting the segment under that answer changes none of its bytes;
# a consumer that goes away mid-answer is counted and costs nothing; --fetch-zero-copy off and TLS connections take
# the copy path and return the same records. The metrics say which path each answer took.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
FZ="$(dirname "$0")/fetch_zc.py"

port() { echo "${SYNCLOG_BROKER##*:}"; }
# 24 MiB of 1 KiB records in partition 0: three segments of 8 MiB.
records() { python3 -c '
import sys
for i in range(24000): sys.stdout.write("k%d\t%s\n" % (i, ("v%d-" % i).ljust(1000, "x")))'; }
# stored BYTES_OUT: the batches of partition 0 as the segment files hold them, in offset order.
stored() { cat $(ls "$TMP/data/topics/t/0/"*.log | sort) >"$1"; }

# 1. A replay crossing segments: the bytes of the answers are the stored bytes, every answer went from the files.
start_broker "$TMP/data" --segment-bytes 8388608 --metrics 127.0.0.1:0 --retention-check-ms 200
"$SYNCLOG" topic create t --partitions 1 >/dev/null || fail "topic create"
records | "$SYNCLOG" produce t --acks written >/dev/null || fail "produce"
[ "$(ls "$TMP/data/topics/t/0/"*.log | wc -l)" -ge 3 ] || fail "expected at least 3 segments"
stored "$TMP/stored"
python3 "$FZ" "$(port)" replay t 0 1048576 "$TMP/replayed" >"$TMP/replay.out" || fail "replay"
cmp -s "$TMP/stored" "$TMP/replayed" || fail "replayed bytes differ from the segment files"
answers=$(metric synclog_fetch_sendfile_answers_total)
[ "$answers" -ge 20 ] || fail "only $answers answers went from the files ($(cat "$TMP/replay.out"))"
[ "$(metric synclog_fetch_sendfile_failed_total)" = 0 ] || fail "answers from files failed"
"$SYNCLOG" consume t | cut -f3 | sort -u | wc -l | grep -qx 24000 || fail "consume lost records"
# The same replay with the files' pages dropped from the page cache (POSIX_FADV_DONTNEED, no privilege needed):
# the pages come from the disk through io_uring's workers, and the bytes are the same.
for f in "$TMP/data/topics/t/0/"*.log; do dd if="$f" iflag=nocache count=0 status=none; done
python3 "$FZ" "$(port)" replay t 0 1048576 "$TMP/replayed" >/dev/null || fail "cold replay"
cmp -s "$TMP/stored" "$TMP/replayed" || fail "cold replayed bytes differ from the segment files"
[ "$(metric synclog_fetch_sendfile_disk_splices_total)" -gt 0 ] || fail "no page came from the disk by io_uring"
[ "$(metric synclog_fetch_sendfile_failed_total)" = 0 ] || fail "answers from files failed (cold)"

# 2. A consumer that closes its connection in the middle of an answer: counted as cut, nothing else changes.
python3 "$FZ" "$(port)" stall t 0 8388608 "$TMP/none" close >/dev/null || fail "stall and close"
for _ in $(seq 1 100); do [ "$(metric synclog_fetch_sendfile_failed_total)" = 1 ] && break; sleep 0.1; done
[ "$(metric synclog_fetch_sendfile_failed_total)" = 1 ] || fail "the cut answer was not counted"
out=$(timeout 60 "$SYNCLOG" consume t --from -3) && grep -q k23999 <<<"$out" || fail "consume after a cut answer"

# 3. A consumer that stops reading an 8 MiB answer: the broker serves others meanwhile; retention deletes the
# segment the answer comes from; the answer, read at last, is exactly the first segment as it was.
first="$TMP/data/topics/t/0/00000000000000000000.log"
cp "$first" "$TMP/first"
before=$(metric synclog_fetch_sendfile_answers_total)
python3 "$FZ" "$(port)" stall t 0 8388608 "$TMP/stalled" "$TMP/go" >"$TMP/stall.out" &
stall_pid=$!
for _ in $(seq 1 100); do grep -qs asked "$TMP/stall.out" && break; sleep 0.1; done
sleep 1
[ "$(metric synclog_fetch_sendfile_answers_total)" = "$before" ] || fail "the stalled answer did not stall"
seq 1 10 | awk '{printf "late%d\tv\n", $1}' | timeout 60 "$SYNCLOG" produce t >/dev/null ||
	fail "produce while a consumer stalls"
out=$(timeout 60 "$SYNCLOG" consume t --from -3) && grep -q late10 <<<"$out" || fail "consume while a consumer stalls"
zc_retention_under_stall t "$first" "$stall_pid" "$before"
stop_broker

# 4. --fetch-zero-copy off: the same bytes, read into memory.
rm -rf "$TMP/data"
start_broker "$TMP/data" --segment-bytes 8388608 --metrics 127.0.0.1:0 --fetch-zero-copy off
"$SYNCLOG" topic create t --partitions 1 >/dev/null || fail "topic create (off)"
records | "$SYNCLOG" produce t --acks written >/dev/null || fail "produce (off)"
stored "$TMP/stored"
python3 "$FZ" "$(port)" replay t 0 1048576 "$TMP/replayed" >/dev/null || fail "replay (off)"
cmp -s "$TMP/stored" "$TMP/replayed" || fail "replayed bytes differ from the segment files (off)"
[ "$(metric synclog_fetch_sendfile_answers_total)" = 0 ] || fail "--fetch-zero-copy off still sent from files"
stop_broker
"$SYNCLOGD" --fetch-zero-copy maybe --data-dir "$TMP/x" 2>"$TMP/err" && fail "--fetch-zero-copy maybe accepted"
grep -q "on or off" "$TMP/err" || fail "bad --fetch-zero-copy: $(cat "$TMP/err")"

# 5. TLS: the copy path (the bytes are encrypted in user space), the same records.
pki="$TMP/pki"
mkdir -p "$pki"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -out "$pki/ca.pem" -days 2 -subj "/CN=ca" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$pki/server.key" -out "$pki/server.csr" -subj "/CN=localhost" \
	2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$pki/server.ext"
openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
	-extfile "$pki/server.ext" -out "$pki/server.pem" 2>/dev/null
rm -rf "$TMP/data"
start_broker "$TMP/data" --segment-bytes 8388608 --metrics 127.0.0.1:0 --tls-cert "$pki/server.pem" \
	--tls-key "$pki/server.key"
export SYNCLOG_TLS_CA="$pki/ca.pem"
"$SYNCLOG" topic create t --partitions 1 >/dev/null || fail "topic create (TLS)"
records | "$SYNCLOG" produce t --acks written >/dev/null || fail "produce (TLS)"
got=$("$SYNCLOG" consume t | cut -f3- | md5sum)
want=$(records | md5sum)
[ "$got" = "$want" ] || fail "consume over TLS read other records"
[ "$(metric synclog_fetch_sendfile_answers_total "$pki/ca.pem")" = 0 ] || fail "a TLS answer went from files"
stop_broker
echo ok
