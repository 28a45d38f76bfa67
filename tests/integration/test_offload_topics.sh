#!/usr/bin/env bash
# Topic creation, deletion and lookups by time run off the broker's loop (broker/topic_jobs.c,
# handlers/list_offsets.c) and still answer right and in order: under strace, the loop's thread makes no fsync,
# no open of a topic's metadata or of an index file, no pread, mkdir, rename or unlink while one connection
# pipelines a create, produces to the new topic, a second create of the same name and a delete of it, and another
# looks up offsets by time in a log whose sealed segments' indexes were never loaded since the restart.
set -euo pipefail
build=${1:-build/release}
exec python3 - "$build" <<'PY'
import os, sys, time, shutil
sys.path.insert(0, "tests/integration")
import coldlog, loopstrace, testenv, wire
from checks import check, finish

build, root, data = testenv.dirs()

def list_offsets_at(corr, topic, ts):
    body = wire.field_bytes(1, topic) + wire.field_varint(3, 2) + wire.field_varint(4, ts)
    return wire.frame(wire.request(corr, 17, body))

def offsets_of(payload):
    out = []
    for po in wire.parse(wire.parse(payload).get(17, [b""])[0]).get(1, []):
        f = wire.parse(po)
        out.append((f.get(1, [0])[0], f.get(2, [0])[0], f.get(3, [0])[0]))
    return out

# Batch i holds offsets 20i..20i+19, all at 1000 + 10i ms.
BATCHES, PER_BATCH = coldlog.BATCHES, coldlog.PER_BATCH
coldlog.fill(build, data, "hist", 1)

# A new start: the sealed segments' indexes are loaded only when a lookup needs them.
broker = coldlog.start(build, data)
port = broker.port
tracer = None
try:
    tracer = loopstrace.LoopTrace(broker.pid, "fsync,fdatasync,open,openat,pread64,preadv,mkdir,mkdirat,rename,"
                                  "renameat,renameat2,unlink,unlinkat", os.path.join(root, "strace.out"))

    # One connection, pipelined: create, two produces into it, a second create of the name, a delete of it.
    a = wire.session(port)
    batch = wire.record_batch([(b"a", b"1"), (b"b", b"2")])
    a.sendall(wire.create_topic(2, "fresh", 4) + wire.produce(3, "fresh", 0, batch, acks=1) +
              wire.produce(4, "fresh", 3, batch, acks=1) + wire.create_topic(5, "fresh", 2) +
              wire.delete_topic(6, "fresh"))
    got = {}
    for _ in range(5):
        f = wire.read_frame(a)
        got[wire.parse(f)[1][0]] = f
    check(wire.error_of(got[2]) == 0, "create fresh: %r" % got[2])
    check([r[0] for r in wire.produced(got[3])] == [0] and [r[0] for r in wire.produced(got[4])] == [0],
          "produce behind the create: %r %r" % (wire.produced(got[3]), wire.produced(got[4])))
    check(wire.error_of(got[5]) == 4, "second create of fresh must say TOPIC_EXISTS: %r" % got[5])
    check(wire.error_of(got[6]) == 0, "delete fresh: %r" % got[6])
    check(not os.path.exists(os.path.join(data, "topics", "fresh")), "fresh still on disk")
    a.sendall(wire.describe(7, "fresh"))
    check(wire.error_of(wire.read_frame(a)) == 3, "fresh still known after its delete")
    # Created again under the same name: empty, serving.
    a.sendall(wire.create_topic(8, "fresh", 1) + wire.produce(9, "fresh", 0, batch, acks=1))
    check(wire.error_of(wire.read_frame(a)) == 0, "create fresh again")
    check([r[1] for r in wire.produced(wire.read_frame(a))] == [0], "the new fresh starts at offset 0")

    # Lookups by time: the oldest sealed segment (its index loaded now, off the loop), the middle, the active
    # one, before everything and after everything.
    b = wire.session(port)
    cases = [(1005, 20), (1000, 0), (1000 + 10 * 77 + 3, 20 * 78), (1000 + 10 * (BATCHES - 1), 20 * (BATCHES - 1)),
             (0, 0), (10 ** 12, BATCHES * PER_BATCH), (1000 + 10 * 40, 20 * 40)]
    for n, (ts, want) in enumerate(cases):
        b.sendall(list_offsets_at(100 + n, "hist", ts))
        f = wire.read_frame(b)
        check(wire.error_of(f) == 0 and offsets_of(f) == [(0, 0, want)],
              "offset at %d ms: %r, want %d" % (ts, offsets_of(f), want))
    a.close()
    b.close()
    time.sleep(0.3)
    loop, workers = tracer.split()
    def bad(l):
        call = l.split(" ", 1)[1].lstrip()
        if call.startswith(("open(", "openat(")):
            return any(x in call for x in (".index", ".timeindex", "topic.json", "producers.snapshot"))
        return not call.startswith("<...") and not call.startswith("+++")
    blocked = [l for l in loop if bad(l)]
    check(not blocked, "the loop thread made blocking calls:\n" + "\n".join(blocked[:12]))
    check(any("mkdir" in l and "create-fresh" in l for l in workers), "no creation by a worker")
    check(any("rename" in l and "delete-fresh" in l for l in workers), "no deletion by a worker")
    check(any(".timeindex" in l for l in workers), "no index loaded by a worker")
    check(any("pread64" in l for l in workers), "no lookup read by a worker")
finally:
    if tracer:
        tracer.detach()
    check(broker.stop() == 0, "broker exit status")
    shutil.rmtree(root)
finish()
PY
