#!/usr/bin/env bash
# The Kafka listener cuts pipelined requests of every size out of one stream: large requests (read into a buffer of
# their own), small ones (many per read) and mid-sized ones (more than the short read the listener makes after a
# large request, so assembled over several reads), sent back to back in one write, are each answered, in order.
# The large ones are Produce requests whose records are not a record batch: each is answered with
# CORRUPT_MESSAGE and the connection goes on.
# Usage: tests/integration/test_kafka_pipelined_requests.sh BUILD_DIR (binaries in BUILD_DIR/bin).
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"

start_broker "$TMP/data" --kafka-listen 127.0.0.1:0
[ -n "$KAFKA_BROKER" ] || fail "the ready line names no kafka listener"

python3 - "$KAFKA_BROKER" <<'PY' || fail "pipelined requests were not answered in order (broker log: $(tail -3 "$TMP/broker.err"))"
import socket, struct, sys

host, port = sys.argv[1].rsplit(":", 1)


def string(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def request(key, version, corr, body):
    payload = struct.pack(">hhi", key, version, corr) + string("pipelined") + body
    return struct.pack(">i", len(payload)) + payload


def produce(corr, records_bytes):
    # Produce v3: transactional id (null), acks 1, timeout, one topic with one partition whose records are zeros.
    part = struct.pack(">i", 0) + struct.pack(">i", records_bytes) + bytes(records_bytes)
    topic = string("nowhere") + struct.pack(">i", 1) + part
    return request(0, 3, corr, struct.pack(">hhi", -1, 1, 30000) + struct.pack(">i", 1) + topic)


def api_versions(corr):
    return request(18, 0, corr, b"")


def metadata(corr, names):
    # Metadata v1: the named topics (none of them exists).
    return request(3, 1, corr, struct.pack(">i", len(names)) + b"".join(string(n) for n in names))


ROUNDS = 20
MID_NAMES = ["topic-%05d" % i for i in range(1000)]  # a 13 KiB request: past the 4 KiB probe, within rbuf
stream, kinds = b"", []
corr = 0
for r in range(ROUNDS):
    for kind in ("produce", "versions", "metadata", "versions"):
        corr += 1
        if kind == "produce":
            stream += produce(corr, 100000 + 997 * r)  # 100 KiB and more: a buffer of its own
        elif kind == "versions":
            stream += api_versions(corr)
        else:
            stream += metadata(corr, MID_NAMES)
        kinds.append(kind)
assert len(stream) > 2 * 1024 * 1024 and len(metadata(0, MID_NAMES)) > 4096

s = socket.create_connection((host, int(port)), timeout=30)
s.sendall(stream)


def read_exact(n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        assert chunk, "connection closed after %d responses" % got
        out += chunk
    return out


got = 0
for want, kind in enumerate(kinds, start=1):
    size = struct.unpack(">i", read_exact(4))[0]
    body = read_exact(size)
    (c,) = struct.unpack(">i", body[:4])
    assert c == want, "response %d has correlation id %d, expected %d" % (got + 1, c, want)
    if kind == "produce":
        # topics[1]: name, partitions[1]: index, error
        at = 4
        assert struct.unpack(">i", body[at : at + 4])[0] == 1
        at += 4
        (n,) = struct.unpack(">h", body[at : at + 2])
        at += 2 + n
        assert struct.unpack(">i", body[at : at + 4])[0] == 1
        at += 4
        index, err = struct.unpack(">ih", body[at : at + 6])
        assert (index, err) == (0, 2), "produce %d: partition %d error %d, expected CORRUPT_MESSAGE" % (c, index, err)
    elif kind == "versions":
        assert struct.unpack(">h", body[4:6])[0] == 0, "ApiVersions %d failed" % c
    else:
        # brokers, controller id, then the topics: as many as asked
        at = 4
        (brokers,) = struct.unpack(">i", body[at : at + 4])
        at += 4
        for _ in range(brokers):
            at += 4
            (n,) = struct.unpack(">h", body[at : at + 2])
            at += 2 + n + 4
            (n,) = struct.unpack(">h", body[at : at + 2])  # rack, nullable
            at += 2 + max(n, 0)
        at += 4
        assert struct.unpack(">i", body[at : at + 4])[0] == len(MID_NAMES), "metadata %d: wrong topic count" % c
    got += 1
s.close()
print("answered %d pipelined requests in order" % got)
PY

kill -0 "$BROKER_PID" || fail "synclogd died"
"$SYNCLOG" topic list >/dev/null || fail "the native listener stopped answering"
stop_broker
echo ok
