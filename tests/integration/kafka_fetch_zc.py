"""Raw Kafka Fetch requests (v4) for test_kafka_fetch_zero_copy.sh: the records sections of the answers, byte for
byte, to compare with the segment files; pipelined requests answered in order; a partition limit smaller than a
batch; a fetch answer left unread in a small socket buffer (a consumer that stops reading).

  kafka_fetch_zc.py replay BROKER OUT TOPIC:PARTITIONS...   fetches naming every partition of the topics at once
                        (1 MiB per request, 256 KiB per partition) from offset 0 to each log end; partition P of
                        TOPIC's records go to OUT.TOPIC.P; prints the number of answers
  kafka_fetch_zc.py pipeline BROKER TOPIC STORED0 STORED1   six requests in one write (ApiVersions, Fetch of
                        partition 0, Metadata, Fetch of partition 1, ApiVersions, Fetch of partition 0 again): the
                        answers come in their order and each fetch's records are the start of its partition's
                        stored bytes (STORED0, STORED1)
  kafka_fetch_zc.py small BROKER TOPIC PARTITION OFFSET     a fetch with 1 byte per partition and per request:
                        exactly one whole batch, the one holding OFFSET; prints its length
  kafka_fetch_zc.py stall BROKER TOPIC PARTITION MAX_BYTES OUT GO   one fetch from offset 0 with a 4 KiB receive
                        buffer; prints 'asked' and reads nothing until the file GO exists; then writes the answer's
                        records to OUT
Exits 0 when what it checks holds, else with the reason."""
import os
import socket
import struct
import sys
import time

FETCH, METADATA, API_VERSIONS = 1, 3, 18


def string(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def request(key, version, corr, body):
    payload = struct.pack(">hhi", key, version, corr) + string("kafka_fetch_zc") + body
    return struct.pack(">i", len(payload)) + payload


def fetch_req(corr, topics, max_bytes, part_bytes):
    """topics: [(name, [(partition, offset)])]; Fetch v4, no wait."""
    body = struct.pack(">iiiib", -1, 0, 0, max_bytes, 0) + struct.pack(">i", len(topics))
    for name, parts in topics:
        body += string(name) + struct.pack(">i", len(parts))
        for p, offset in parts:
            body += struct.pack(">iqi", p, offset, part_bytes)
    return request(FETCH, 4, corr, body)


def connect(broker, rcvbuf=0):
    host, port = broker.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(60)
    s.connect((host, int(port)))
    return s


def read_exact(s, n):
    b = bytearray()
    while len(b) < n:
        chunk = s.recv(min(n - len(b), 1 << 20))
        if not chunk:
            sys.exit("the broker closed the connection after %d of %d bytes" % (len(b), n))
        b += chunk
    return bytes(b)


def read_answer(s):
    """(correlation id, the rest of the answer)."""
    (n,) = struct.unpack(">i", read_exact(s, 4))
    b = read_exact(s, n)
    return struct.unpack_from(">i", b)[0], b[4:]


def parse_fetch(b):
    """{(topic, partition): (error, high watermark, records)} of a Fetch v4 answer body."""
    at = 4  # throttle_time_ms
    out = {}
    (nt,) = struct.unpack_from(">i", b, at)
    at += 4
    for _ in range(nt):
        (ln,) = struct.unpack_from(">h", b, at)
        name = b[at + 2 : at + 2 + ln].decode()
        at += 2 + ln
        (np,) = struct.unpack_from(">i", b, at)
        at += 4
        for _ in range(np):
            p, err, hw, _lso, naborted = struct.unpack_from(">ihqqi", b, at)
            at += 26
            assert naborted <= 0, naborted
            (rl,) = struct.unpack_from(">i", b, at)
            at += 4
            rl = max(rl, 0)
            out[(name, p)] = (err, hw, b[at : at + rl])
            at += rl
    assert at == len(b), ("answer has %d bytes after its last partition" % (len(b) - at))
    return out


def batches(records):
    """[(base offset, last offset, length)] of whole batches back to back."""
    at, out = 0, []
    while at < len(records):
        base, length = struct.unpack_from(">qi", records, at)
        (last_delta,) = struct.unpack_from(">i", records, at + 23)
        out.append((base, base + last_delta, 12 + length))
        at += 12 + length
    assert at == len(records), "a batch is cut"
    return out


def replay(broker, out, specs):
    topics = []
    for spec in specs:
        name, n = spec.split(":")
        topics.append((name, list(range(int(n)))))
    offsets = {(t, p): 0 for t, ps in topics for p in ps}
    done = set()
    files = {k: open("%s.%s.%d" % (out, k[0], k[1]), "wb") for k in offsets}
    s = connect(broker)
    corr, answers = 1, 0
    while len(done) < len(offsets):
        ask = [(t, [(p, offsets[(t, p)]) for p in ps if (t, p) not in done]) for t, ps in topics]
        s.sendall(fetch_req(corr, [a for a in ask if a[1]], 1 << 20, 256 << 10))
        got, body = read_answer(s)
        assert got == corr, (got, corr)
        corr += 1
        answers += 1
        for key, (err, hw, records) in parse_fetch(body).items():
            if err != 0:
                sys.exit("%s/%d: error %d" % (key[0], key[1], err))
            if records:
                files[key].write(records)
                offsets[key] = batches(records)[-1][1] + 1
            if offsets[key] >= hw:
                done.add(key)
        if answers > 100000:
            sys.exit("no end after %d answers" % answers)
    for f in files.values():
        f.close()
    print("answers %d" % answers)


def pipeline(broker, topic, stored0, stored1):
    stored = {0: open(stored0, "rb").read(), 1: open(stored1, "rb").read()}
    reqs = [
        request(API_VERSIONS, 0, 1, b""),
        fetch_req(2, [(topic, [(0, 0)])], 1 << 20, 512 << 10),
        request(METADATA, 1, 3, struct.pack(">i", -1)),
        fetch_req(4, [(topic, [(1, 0)])], 1 << 20, 64 << 10),
        request(API_VERSIONS, 0, 5, b""),
        fetch_req(6, [(topic, [(0, 0)])], 1 << 20, 16 << 10),
    ]
    s = connect(broker)
    s.sendall(b"".join(reqs))
    for corr in range(1, 7):
        got, body = read_answer(s)
        if got != corr:
            sys.exit("answer %d came where %d was due" % (got, corr))
        if corr in (2, 4, 6):
            p = 1 if corr == 4 else 0
            err, _hw, records = parse_fetch(body)[(topic, p)]
            assert err == 0 and records, (corr, err, len(records))
            if stored[p][: len(records)] != records:
                sys.exit("answer %d: the records are not partition %d's stored bytes" % (corr, p))
            batches(records)
    print("in order")


def small(broker, topic, partition, offset):
    s = connect(broker)
    s.sendall(fetch_req(1, [(topic, [(partition, offset)])], 1, 1))
    _, body = read_answer(s)
    err, _hw, records = parse_fetch(body)[(topic, partition)]
    assert err == 0, err
    b = batches(records)
    if len(b) != 1 or not b[0][0] <= offset <= b[0][1]:
        sys.exit("a 1-byte fetch at %d returned batches %s" % (offset, b))
    print(b[0][2])


def stall(broker, topic, partition, max_bytes, out, go):
    s = connect(broker, 4096)
    s.sendall(fetch_req(1, [(topic, [(partition, 0)])], max_bytes, max_bytes))
    print("asked", flush=True)
    for _ in range(600):
        if os.path.exists(go):
            break
        time.sleep(0.1)
    else:
        sys.exit("no go")
    _, body = read_answer(s)
    err, _hw, records = parse_fetch(body)[(topic, partition)]
    assert err == 0, err
    batches(records)
    with open(out, "wb") as f:
        f.write(records)
    print("read %d" % len(records))


if __name__ == "__main__":
    mode, a = sys.argv[1], sys.argv[2:]
    if mode == "replay":
        replay(a[0], a[1], a[2:])
    elif mode == "pipeline":
        pipeline(*a)
    elif mode == "small":
        small(a[0], a[1], int(a[2]), int(a[3]))
    elif mode == "stall":
        stall(a[0], a[1], int(a[2]), int(a[3]), a[4], a[5])
    else:
        sys.exit(__doc__)
