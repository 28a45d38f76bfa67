"""A topic whose partitions each span several sealed segments, written through one broker that then stops, so
that the next broker on the same data directory has no sealed segment's index in memory: what the off-loop tests
(test_offload_fetch.sh, test_offload_topics.sh) fetch from and look up by time."""
import os

import brokerproc
import wire
from checks import check

# Batch i of each partition holds offsets PER_BATCH * i to PER_BATCH * i + PER_BATCH - 1, all at timestamp_ms(i),
# with values of VALUE_BYTES: about 3 MiB a partition, three sealed segments of SEGMENT_BYTES and the active one.
BATCHES, PER_BATCH, VALUE_BYTES = 160, 20, 1000
SEGMENT_BYTES = 1 << 20


def timestamp_ms(i):
    return 1000 + 10 * i


def start(build, data):
    """A broker on data with segments of SEGMENT_BYTES."""
    return brokerproc.Broker(build, data, ["--segment-bytes", str(SEGMENT_BYTES)])


def fill(build, data, topic, partitions):
    """Create topic, produce BATCHES batches to each partition through a broker of its own, stop that broker, and
    check each partition has at least three segment files."""
    value = b"v" * VALUE_BYTES
    broker = start(build, data)
    try:
        s = wire.session(broker.port)
        s.sendall(wire.create_topic(2, topic, partitions))
        check(wire.error_of(wire.read_frame(s)) == 0, "create " + topic)
        for p in range(partitions):
            for i in range(BATCHES):
                recs = [(b"k%d" % (i * PER_BATCH + j), value) for j in range(PER_BATCH)]
                batch = wire.record_batch(recs, base_ts=timestamp_ms(i))
                s.sendall(wire.produce(10 + i, topic, p, batch, acks=1))
            errors = [wire.error_of(wire.read_frame(s)) for _ in range(BATCHES)]
            check(errors == [0] * BATCHES, "produce %s/%d: errors %s" % (topic, p, sorted(set(errors))))
        s.close()
    finally:
        check(broker.stop() == 0, "broker exit status")
    for p in range(partitions):
        segs = sorted(f for f in os.listdir(os.path.join(data, "topics", topic, str(p))) if f.endswith(".log"))
        check(len(segs) >= 3, "partition %d has sealed segments: %s" % (p, segs))
