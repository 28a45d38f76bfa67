#!/usr/bin/env bash
# Batches the broker does not implement are refused with UNSUPPORTED_BATCH and nothing is appended: the
# transactional bit, the control bit, a producer id below -1, an idempotent producer id with a negative epoch or
# base sequence. Before the fix all of them were stored and acknowledged.
set -euo pipefail
build=${1:-build/release}
exec python3 - "$build" <<'PY'
import os, shutil, sys
sys.path.insert(0, "tests/integration")
import testenv
from checks import check, finish
import wire, brokerproc

build, root, data = testenv.dirs()

b = brokerproc.Broker(build, data)
try:
    s = wire.connect(b.port)
    s.sendall(wire.hello())
    wire.read_frame(s)
    s.sendall(wire.create_topic(2, "t", 1))
    check(wire.error_of(wire.read_frame(s)) == 0, "create t")
    s.sendall(wire.init_producer(3))
    pid = wire.parse(wire.parse(wire.read_frame(s))[wire.INIT_PRODUCER][0]).get(1, [0])[0]
    rec = [(b"k", b"v")]
    cases = [
        ("transactional bit", wire.record_batch(rec, attributes=0x10)),
        ("control bit", wire.record_batch(rec, attributes=0x20)),
        ("producer id -5", wire.record_batch(rec, producer_id=-5)),
        ("idempotent id with epoch -1", wire.record_batch(rec, producer_id=pid, producer_epoch=-1, base_sequence=0)),
        ("idempotent id with base sequence -3", wire.record_batch(rec, producer_id=pid, producer_epoch=0,
                                                                 base_sequence=-3)),
    ]
    for i, (name, batch) in enumerate(cases):
        s.sendall(wire.produce(10 + i, "t", 0, batch))
        res = wire.produced(wire.read_frame(s))
        check(res and res[0][0] == 45, "%s: UNSUPPORTED_BATCH (got %s)" % (name, res[0][0] if res else None))
    s.sendall(wire.produce(20, "t", 0, wire.record_batch(rec)))
    res = wire.produced(wire.read_frame(s))
    check(res and res[0][0] == 0 and res[0][1] == 0, "a plain batch is still appended, at offset 0 (%s)" % res)
    s.sendall(wire.produce(21, "t", 0, wire.record_batch(rec, producer_id=pid, producer_epoch=0, base_sequence=0)))
    res = wire.produced(wire.read_frame(s))
    check(res and res[0][0] == 0 and res[0][1] == 1, "an idempotent batch is appended, at offset 1 (%s)" % res)
finally:
    rc = b.stop()
    check(rc == 0, "broker exits 0 on SIGTERM (got %s)" % rc)
    shutil.rmtree(root, ignore_errors=True)
finish()
PY
