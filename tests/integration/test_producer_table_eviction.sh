#!/usr/bin/env bash
# A client cannot push a real producer's idempotence state out of a partition's producer table (4,096 ids): one
# connection brings at most 8 producer ids into the tables (ids it is first to use on a partition), and when the
# table is full the ids used for a single batch go before a producer that has been writing. Here a real producer
# appends 3 batches, then 640 connections bring 5,120 ids of one batch each; the producer's retry of its last
# batch is still answered as a duplicate with its original offsets. Before the fix the producer was forgotten
# (least recently used) and its retry was appended a second time.
set -euo pipefail
build=${1:-build/release}
exec python3 - "$build" <<'PY'
import os, shutil, sys
sys.path.insert(0, "tests/integration")
import testenv
from checks import check, finish
import wire, brokerproc

build, root, data = testenv.dirs()

def init(s, corr):
    s.sendall(wire.init_producer(corr))
    r = wire.read_frame(s)
    return wire.error_of(r), wire.parse(wire.parse(r).get(wire.INIT_PRODUCER, [b""])[0]).get(1, [0])[0]

b = brokerproc.Broker(build, data)
try:
    real = wire.session(b.port)
    real.sendall(wire.create_topic(2, "t", 1))
    check(wire.error_of(wire.read_frame(real)) == 0, "create t")
    err, pid = init(real, 3)
    batches = [wire.record_batch([(b"k%d" % i, b"v")], producer_id=pid, producer_epoch=0, base_sequence=i)
               for i in range(3)]
    offsets = []
    for i, batch in enumerate(batches):
        real.sendall(wire.produce(10 + i, "t", 0, batch, acks=1))
        offsets.append(wire.produced(wire.read_frame(real))[0])
    check(all(o[0] == 0 for o in offsets), "the real producer appends 3 batches")

    # Ids to bring: InitProducer itself is not bounded (it takes no place in any table).
    c = wire.session(b.port)
    ids = [init(c, 100 + i) for i in range(9)]
    check(all(e == 0 for e, _ in ids), "9 InitProducer on one connection")
    # Another connection brings ids it was not issued to a partition that does not know them: 8, not 9.
    c2 = wire.session(b.port)
    c2.sendall(wire.create_topic(4, "u", 1))
    check(wire.error_of(wire.read_frame(c2)) == 0, "create u")
    results = []
    for i, fid in enumerate([i for _, i in ids]):
        c2.sendall(wire.produce(200 + i, "u", 0, wire.record_batch([(b"a", b"b")], producer_id=fid, producer_epoch=0,
                                                                   base_sequence=0), acks=1))
        results.append(wire.produced(wire.read_frame(c2))[0][0])
    check(results == [0] * 8 + [16], "a 9th producer id brought by one connection: THROTTLED (%s)" % results)
    c.close()
    c2.close()

    flood = 0
    for conn in range(640):
        c = wire.session(b.port)
        frames = b""
        for i in range(8):
            err, fid = init(c, 1000 + i)
            if err != 0:
                break
            frames += wire.produce(2000 + i, "t", 0, wire.record_batch([(b"x", b"y")], producer_id=fid,
                                                                        producer_epoch=0, base_sequence=0), acks=1)
        c.sendall(frames)
        for i in range(8):
            res = wire.produced(wire.read_frame(c))
            flood += res[0][0] == 0
        c.close()
    check(flood == 5120, "5,120 one-batch producers appended (%d)" % flood)

    # The retry of the real producer's last batch: recognised, not appended again.
    real.sendall(wire.produce(30, "t", 0, batches[2], acks=1))
    res = wire.produced(wire.read_frame(real))[0]
    check(res[0] == 0 and res[3] == 1 and res[1] == offsets[2][1],
          "the real producer's retry is a duplicate at its original offset %d (got %s)" % (offsets[2][1], res))
    # And its next batch follows on.
    nxt = wire.record_batch([(b"k3", b"v")], producer_id=pid, producer_epoch=0, base_sequence=3)
    real.sendall(wire.produce(31, "t", 0, nxt, acks=1))
    res = wire.produced(wire.read_frame(real))[0]
    check(res[0] == 0 and res[3] == 0, "its next batch is appended (%s)" % (res,))
finally:
    rc = b.stop()
    check(rc == 0, "broker exits 0 on SIGTERM (got %s)" % rc)
    shutil.rmtree(root, ignore_errors=True)
finish()
PY
