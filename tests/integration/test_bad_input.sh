#!/usr/bin/env bash
# Hostile clients: random bytes, truncated frames, a 2 GiB length prefix, a valid frame of garbage, produce
# with a bad CRC or a wrong record count, unknown topics, hostile topic names. Each gets an error response or a
# closed connection, the broker keeps serving, the log is unchanged and nothing appears outside --data-dir.
set -euo pipefail
build=${1:-build/release}
exec python3 - "$build" <<'PY'
import os, shutil, struct, subprocess, sys, time
sys.path.insert(0, "tests/integration")
import testenv
from checks import check, finish
import wire

build, root, data = testenv.dirs()
broker = subprocess.Popen([os.path.join(build, "bin/synclogd"), "--data-dir", data, "--listen", "127.0.0.1:0",
                           "--metrics", "off"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
try:
    line = broker.stdout.readline().strip()
    port = int(line.rsplit(":", 1)[1])

    def session():
        s = wire.connect(port)
        s.sendall(wire.hello())
        check(wire.error_of(wire.read_frame(s)) == 0, "hello accepted")
        return s

    s = session()
    s.sendall(wire.create_topic(2, "t", 2))
    check(wire.error_of(wire.read_frame(s)) == 0, "create topic t")
    good = wire.record_batch([(b"k1", b"v1"), (b"k2", b"v2")])
    s.sendall(wire.produce(3, "t", 0, good))
    r = wire.parse(wire.read_frame(s))
    check(r.get(2, [0])[0] == 0, "good produce accepted")

    # Connections that must be cut or answered with an error.
    for junk in [os.urandom(4096), b"\x7f\xff\xff\xff", b"\x00\x00\x00", b"\x00\x00\x01\x00" + b"x" * 10]:
        c = wire.connect(port)
        c.sendall(junk)
        c.shutdown(1)
        try:
            while c.recv(65536):
                pass
        except OSError:
            pass
        c.close()
    c = session()
    c.sendall(wire.frame(os.urandom(300)))
    resp = wire.read_frame(c)
    check(resp is None or wire.error_of(resp) == 2, "garbage frame: INVALID_REQUEST or closed")

    # Produce that must be refused with nothing appended.
    bad_crc = bytearray(good)
    bad_crc[-1] ^= 0xFF
    wrong_count = bytearray(good)
    struct.pack_into(">i", wrong_count, 57, 3)
    # Recompute the CRC so only the count is wrong.
    struct.pack_into(">I", wrong_count, 17, wire.crc32c(bytes(wrong_count[21:])))
    for name, batch in [("bad crc", bytes(bad_crc)), ("wrong count", bytes(wrong_count)), ("truncated", good[:40]),
                        ("empty", b"")]:
        s.sendall(wire.produce(4, "t", 0, batch))
        res = wire.parse(wire.parse(wire.read_frame(s))[15][0])[1][0]
        check(wire.parse(res).get(2, [0])[0] == 8, name + ": CORRUPT_BATCH")
    s.sendall(wire.produce(5, "nope", 0, good))
    check(wire.error_of(wire.read_frame(s)) == 3, "unknown topic: UNKNOWN_TOPIC")
    s.sendall(wire.produce(6, "t", 7, good))
    res = wire.parse(wire.parse(wire.read_frame(s))[15][0])[1][0]
    check(wire.parse(res).get(2, [0])[0] == 7, "unknown partition: UNKNOWN_PARTITION")
    for name in ["../x", "..", ".", "", "a" * 300, "a/b", "__x", "/etc", "a\x00b"]:
        s.sendall(wire.create_topic(7, name, 1))
        # A NUL byte is caught before decoding (INVALID_REQUEST); the rest by the name rules.
        check(wire.error_of(wire.read_frame(s)) in (2, 5), "hostile name %r refused" % name[:20])
    s.sendall(wire.create_topic(8, "p", 0))
    check(wire.error_of(wire.read_frame(s)) == 6, "0 partitions refused")

    # The log holds exactly the one good batch.
    s.sendall(wire.describe(9, "t"))
    d = wire.parse(wire.parse(wire.read_frame(s))[14][0])
    p0 = wire.parse(d[2][0])
    check(p0.get(3, [0])[0] == 2, "partition 0 next offset is 2 (one good batch of 2 records)")
    entries = sorted(os.listdir(root))
    check(entries == ["data"], "nothing created outside the data dir: %s" % entries)
    check(sorted(os.listdir(os.path.join(data, "topics"))) == ["t"], "only topic t exists")
    # A long poll parked on a topic that is then deleted is answered, and the broker keeps serving.
    c2 = session()
    s.sendall(wire.create_topic(20, "doomed", 2))
    check(wire.error_of(wire.read_frame(s)) == 0, "create topic doomed")
    c2.sendall(wire.fetch(21, "doomed", [(0, 0, 1000)], min_bytes=1, wait_ms=5000))
    time.sleep(0.2)
    s.sendall(wire.frame(wire.request(22, 12, wire.field_bytes(1, "doomed"))))
    check(wire.error_of(wire.read_frame(s)) == 0, "delete topic doomed")
    check(wire.read_frame(c2) is not None, "parked fetch on a deleted topic answered")
    check(broker.poll() is None, "broker still running")
finally:
    broker.terminate()
    rc = broker.wait(timeout=20)
    check(rc == 0, "broker exits 0 on SIGTERM (got %s)" % rc)
    shutil.rmtree(root, ignore_errors=True)
finish()
PY
