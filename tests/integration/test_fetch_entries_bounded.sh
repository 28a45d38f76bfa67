#!/usr/bin/env bash
# A Fetch cannot freeze the broker or blow up its memory through its partition entries: a partition listed twice
# is refused (INVALID_REQUEST) instead of parking twice, more than 10,000 entries are refused before decoding, a
# 4 MB Fetch of two-byte entries is refused without the broker's memory growing (it used to peak at 326 MB), and 8
# long polls over 1,000 partitions woken by an append to each cost the broker little CPU (waking used to be
# quadratic in the entries: every wake refilled every partition; 4.5 s of CPU here).
set -euo pipefail
build=${1:-build/release}
exec python3 - "$build" <<'PY'
import os, shutil, sys, time
sys.path.insert(0, "tests/integration")
import testenv
from checks import check, finish
import wire, brokerproc

build, root, data = testenv.dirs()

def entry(partition, offset=0, max_bytes=1 << 20):
    return partition, offset, max_bytes

def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

b = brokerproc.Broker(build, data)
try:
    s = wire.connect(b.port)
    s.settimeout(30)
    s.sendall(wire.hello())
    check(wire.error_of(wire.read_frame(s)) == 0, "hello")
    s.sendall(wire.create_topic(2, "t", 1))
    check(wire.error_of(wire.read_frame(s)) == 0, "create t")
    s.sendall(wire.produce(3, "t", 0, wire.record_batch([(b"k", b"v")])))
    check(wire.error_of(wire.read_frame(s)) == 0, "produce to t")

    # The same partition twice, as a long poll: refused at once, not parked.
    s.sendall(wire.fetch(4, "t", [entry(0, 1), entry(0, 1)], min_bytes=1 << 30, wait_ms=10000))
    t0 = time.monotonic()
    r = wire.read_frame(s)
    check(wire.error_of(r) == 2, "a partition listed twice: INVALID_REQUEST (got %s)" % wire.error_of(r))
    print("   answered after %.2f s (a parked fetch would wait 10 s)" % (time.monotonic() - t0))

    # 10,001 distinct entries: past SL_REQUEST_ENTRIES_MAX.
    s.sendall(wire.fetch(5, "t", [entry(p) for p in range(10001)]))
    r = wire.read_frame(s)
    check(wire.error_of(r) == 2, "10,001 entries: INVALID_REQUEST (got %s)" % wire.error_of(r))

    # A 4 MB Fetch of two million empty entries (each "12 00": partition 0, offset 0).
    rss_before = b.rss_mb()
    payload = wire.field_varint(1, 6) + wire.field_bytes(wire.FETCH, wire.field_bytes(1, "t") + b"\x12\x00" * 2000000)
    s.sendall(wire.frame(payload))
    peak = rss_before
    r = None
    s.setblocking(False)
    end = time.monotonic() + 60
    buf = b""
    while time.monotonic() < end:
        peak = max(peak, b.rss_mb())
        try:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
        except BlockingIOError:
            time.sleep(0.01)
            continue
        if len(buf) >= 4 and len(buf) >= 4 + int.from_bytes(buf[:4], "big"):
            r = buf[4:4 + int.from_bytes(buf[:4], "big")]
            break
    s.settimeout(30)
    check(r is not None and wire.error_of(r) == 2, "4 MB Fetch of 2,000,000 entries: INVALID_REQUEST")
    check(peak - rss_before < 100, "decoding it grew the broker by %.0f MB (< 100 MB)" % (peak - rss_before))

    # A long poll over 1,000 partitions, woken by one append to each: linear work.
    s.sendall(wire.create_topic(7, "wide", 1000))
    check(wire.error_of(wire.read_frame(s)) == 0, "create wide (1,000 partitions)")
    batch = wire.record_batch([(b"key", b"value")])
    pollers = []
    for i in range(8):
        poller = wire.connect(b.port)
        poller.settimeout(60)
        poller.sendall(wire.hello())
        wire.read_frame(poller)
        # Satisfied once every partition has its batch.
        poller.sendall(wire.fetch(8, "wide", [entry(p) for p in range(1000)], min_bytes=1000 * len(batch),
                                  wait_ms=30000))
        pollers.append(poller)
    time.sleep(0.5)
    cpu0 = cpu_seconds(b.pid)
    parts = b"".join(wire.field_bytes(3, wire.field_varint(1, p) + wire.field_bytes(2, batch)) for p in range(1000))
    s.sendall(wire.frame(wire.request(9, wire.PRODUCE, wire.field_bytes(1, "wide") + wire.field_varint(2, 1) + parts)))
    check(wire.error_of(wire.read_frame(s)) == 0, "produce one batch to each of 1,000 partitions")
    for poller in pollers:
        r = wire.read_frame(poller)
        check(r is not None and wire.error_of(r) == 0, "the long poll is answered")
        got = len(wire.parse(wire.parse(r)[wire.FETCH][0]).get(1, [])) if r else 0
        check(got == 1000, "with 1,000 partition results (got %d)" % got)
    cpu = cpu_seconds(b.pid) - cpu0
    check(cpu < 2, "produce and 8 long polls woken 1,000 times took %.2f s of broker CPU (< 2 s)" % cpu)
    check(b.alive(), "broker still running")
finally:
    rc = b.stop()
    check(rc == 0, "broker exits 0 on SIGTERM (got %s)" % rc)
    shutil.rmtree(root, ignore_errors=True)
finish()
PY
