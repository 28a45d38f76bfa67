#!/usr/bin/env bash
# A fetch of cold data plans off the broker's loop (handlers/fetch.c, storage/log.h sl_log_warm_*): after a
# restart no sealed segment's index is in memory, and under strace the loop's thread opens no index file and makes
# no blocking read (pread64; only preadv2 with RWF_NOWAIT, which never waits on the disk) while consumers fetch
# from the oldest sealed segments: one partition, two at once, a long poll that must wait after its warm-up, a
# fetch of one batch, and one whose connection closes while it warms up. Every answer holds the batches asked for,
# byte for byte what the same fetch returns once everything is warm, and a worker thread did the index loads.
set -euo pipefail
build=${1:-build/release}
exec python3 - "$build" <<'PY'
import os, sys, time, shutil, struct
sys.path.insert(0, "tests/integration")
import coldlog, loopstrace, testenv, wire
from checks import check, finish

build, root, data = testenv.dirs()

def results(frame):
    """{partition: (error, records)} of a fetch answer."""
    return {p: (err, records) for p, err, _, records in wire.fetched(frame)}

def batches(records):
    """(base offset, last offset) of each batch, checking that they follow each other."""
    out, at = [], 0
    while at < len(records):
        base, length = struct.unpack_from(">qi", records, at)
        last_delta = struct.unpack_from(">i", records, at + 23)[0]
        out.append((base, base + last_delta))
        at += 12 + length
    return out if at == len(records) else None

# Batch i of each partition holds offsets 20i..20i+19.
coldlog.fill(build, data, "hist", 2)

# (entries, min_bytes, wait_ms): cold the first time each segment is met since the restart.
cases = [
    ([(0, 0, 1 << 20)], 0, 0),              # the oldest segment of partition 0, from its start
    ([(0, 20 * 60 + 7, 1 << 20)], 0, 0),    # the middle one, an offset inside a batch
    ([(1, 20 * 30, 64 << 10), (0, 20 * 5, 1)], 0, 0),  # two partitions; partition 0 warm now, one batch asked
    ([(1, 20 * 75, 1 << 20)], 1 << 30, 300),  # a long poll: warmed up, then waits for more, then answers
]
broker = coldlog.start(build, data)
port = broker.port
tracer = None
answers = []
try:
    tracer = loopstrace.LoopTrace(broker.pid, "open,openat,pread64,preadv,preadv2,read",
                                  os.path.join(root, "strace.out"))
    c = wire.session(port)
    for n, (entries, min_bytes, wait_ms) in enumerate(cases):
        c.sendall(wire.fetch(100 + n, "hist", entries, min_bytes, wait_ms))
        f = wire.read_frame(c)
        check(wire.error_of(f) == 0, "fetch %d answered" % n)
        answers.append(results(f))
    # A connection that closes while its fetch warms up the newest sealed segment of partition 1: the broker
    # drops the answer and goes on serving.
    gone = wire.session(port)
    gone.sendall(wire.fetch(200, "hist", [(1, 20 * 120, 1 << 20)]))
    gone.close()
    c.sendall(wire.fetch(201, "hist", [(1, 20 * 121, 1 << 20)]))
    late = results(wire.read_frame(c))
    check(late[1][0] == 0 and batches(late[1][1]) and batches(late[1][1])[0][0] <= 20 * 121,
          "after a connection closed on its cold fetch, the next fetch is served")
    c.close()
    time.sleep(0.3)
    loop, workers = tracer.split()
    # The same fetches again, everything warm now: the same bytes.
    c = wire.session(port)
    for n, (entries, min_bytes, wait_ms) in enumerate(cases):
        c.sendall(wire.fetch(300 + n, "hist", entries, 0, 0))
        warm = results(wire.read_frame(c))
        check(warm == answers[n], "fetch %d: the cold answer equals the warm one" % n)
    c.close()
finally:
    if tracer:
        tracer.detach()
    check(broker.stop() == 0, "broker exit status")

for n, (entries, _, _) in enumerate(cases):
    for p, offset, max_bytes in entries:
        err, records = answers[n].get(p, (-1, b""))
        got = batches(records) or []
        check(err == 0 and got and got[0][0] <= offset <= got[0][1],
              "fetch %d partition %d from %d: batches %s" % (n, p, offset, got[:1]))
        if max_bytes == 1:
            check(len(got) == 1, "a fetch of 1 byte returns one batch, got %d" % len(got))
        else:  # up to max_bytes of whole batches, ending at the limit or at the end of the segment
            check(0 < len(records) <= max_bytes, "fetch %d partition %d: %d bytes for %d asked"
                  % (n, p, len(records), max_bytes))

def bad(l):
    call = l.split(" ", 1)[1].lstrip()
    if call.startswith(("open(", "openat(")):
        return ".index" in call or ".timeindex" in call
    if call.startswith("preadv2("):
        return "RWF_NOWAIT" not in call
    return call.startswith(("pread64(", "preadv("))
blocked = [l for l in loop if bad(l)]
check(not blocked, "the loop thread read no index and waited on no read:\n" + "\n".join(blocked[:12]))
check(any(".index" in l and "open" in l for l in workers), "a worker loaded an index")
check(any("preadv2(" in l and "RWF_NOWAIT" in l for l in loop), "the loop read batch headers without waiting")
shutil.rmtree(root)
finish()
PY
