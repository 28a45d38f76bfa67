"""Raw fetches for test_fetch_zero_copy.sh: reads a partition's stored bytes through Fetch answers, to compare
them byte for byte with the segment files, and holds a fetch answer unread in a small socket buffer (a consumer
that stops reading).

  fetch_zc.py PORT replay TOPIC PARTITION MAX_BYTES OUT    every batch from offset 0 to the log end, into OUT
  fetch_zc.py PORT stall TOPIC PARTITION MAX_BYTES OUT GO  one fetch from offset 0 with a 4 KiB receive buffer;
                                                           prints 'asked' and reads nothing until the file GO
                                                           exists (or, when GO is 'close', closes unread after
                                                           1 s); then reads the answer's records into OUT"""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wire  # noqa: E402


def signed(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def result_of(payload):
    resp = wire.parse(payload)
    if resp.get(2, [0])[0] != 0:
        sys.exit("fetch failed: error %d %s" % (resp[2][0], resp.get(3, [b""])[0]))
    results = wire.parse(resp[wire.FETCH][0]).get(1, [])
    assert len(results) == 1, results
    r = wire.parse(results[0])
    if r.get(2, [0])[0] != 0:
        sys.exit("partition error %d: %s" % (r[2][0], r.get(3, [b""])[0]))
    return r.get(6, [b""])[0], signed(r.get(5, [0])[0])


def batches_end(records):
    """The offset after the last batch of records (whole batches, back to back)."""
    at, end = 0, None
    while at < len(records):
        base, length = struct.unpack_from(">qi", records, at)
        (last_delta,) = struct.unpack_from(">i", records, at + 23)
        end = base + last_delta + 1
        at += 12 + length
    assert at == len(records), "a batch is cut"
    return end


def hello(s):
    s.sendall(wire.hello(1))
    assert wire.read_frame(s) is not None


def replay(port, topic, partition, max_bytes, out):
    s = wire.connect(port)
    hello(s)
    offset, corr, answers = 0, 2, 0
    with open(out, "wb") as f:
        while True:
            s.sendall(wire.fetch(corr, topic, [(partition, offset, max_bytes)]))
            records, log_end = result_of(wire.read_frame(s))
            corr += 1
            if not records:
                assert offset == log_end, (offset, log_end)
                break
            f.write(records)
            answers += 1
            offset = batches_end(records)
    print("answers %d" % answers)


def stall(port, topic, partition, max_bytes, out, go):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(60)
    s.connect(("127.0.0.1", port))
    hello(s)
    s.sendall(wire.fetch(2, topic, [(partition, 0, max_bytes)]))
    print("asked", flush=True)
    if go == "close":
        time.sleep(1)
        s.close()
        return
    for _ in range(600):
        if os.path.exists(go):
            break
        time.sleep(0.1)
    else:
        sys.exit("no go")
    records, _ = result_of(wire.read_frame(s))
    with open(out, "wb") as f:
        f.write(records)
    print("read %d" % len(records))


if __name__ == "__main__":
    port, mode, topic, partition, max_bytes, out = sys.argv[1:7]
    if mode == "replay":
        replay(int(port), topic, int(partition), int(max_bytes), out)
    else:
        stall(int(port), topic, int(partition), int(max_bytes), out, sys.argv[7])
