"""Hand-built frames of the synclog wire protocol (proto/synclog.proto) for tests that must send what no
well-behaved client sends: protobuf encoded by hand, so the tests need nothing beyond python3."""
import socket
import struct


def varint(n):
    out = b""
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field_varint(num, value):
    return varint(num << 3) + varint(value)


def field_bytes(num, data):
    if isinstance(data, str):
        data = data.encode()
    return varint((num << 3) | 2) + varint(len(data)) + data


def request(corr, body_field, body):
    return field_varint(1, corr) + field_bytes(body_field, body)


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


HELLO = 10
CREATE_TOPIC = 11
DELETE_TOPIC = 12
LIST_TOPICS = 13
DESCRIBE_TOPIC = 14
PRODUCE = 15
FETCH = 16


def hello(corr=1, version=1):
    return frame(request(corr, HELLO, field_varint(1, version) + field_bytes(2, "wire.py")))


def create_topic(corr, name, partitions):
    cfg = field_bytes(1, name) + field_varint(2, partitions)
    return frame(request(corr, CREATE_TOPIC, field_bytes(1, cfg)))


def produce(corr, topic, partition, batch, acks=0):
    part = field_varint(1, partition) + field_bytes(2, batch)
    return frame(request(corr, PRODUCE, field_bytes(1, topic) + field_varint(2, acks) + field_bytes(3, part)))


def fetch(corr, topic, parts, min_bytes=0, wait_ms=0):
    """A Fetch of topic; parts: [(partition, offset, max_bytes)], in the order given (repeats kept)."""
    body = field_bytes(1, topic) + b"".join(
        field_bytes(2, field_varint(1, p) + field_varint(2, offset) + field_varint(3, max_bytes))
        for p, offset, max_bytes in parts)
    body += field_varint(3, wait_ms) + field_varint(4, min_bytes)
    return frame(request(corr, FETCH, body))


def fetched(payload):
    """The partitions of a Fetch answer: [(partition, error, next offset, records bytes)]."""
    out = []
    for r in parse(parse(payload).get(FETCH, [b""])[0]).get(1, []):
        f = parse(r)
        next_offset = f.get(5, [0])[0]
        if next_offset >= 1 << 63:
            next_offset -= 1 << 64
        out.append((f.get(1, [0])[0], f.get(2, [0])[0], next_offset, f.get(6, [b""])[0]))
    return out


INIT_PRODUCER = 18


def init_producer(corr):
    return frame(request(corr, INIT_PRODUCER, b""))


def producer_id_of(payload):
    """The producer id of an InitProducer response (0 is encoded as an absent field)."""
    body = parse(payload).get(INIT_PRODUCER, [b""])[0]
    return parse(body).get(1, [0])[0]


def delete_topic(corr, name):
    return frame(request(corr, DELETE_TOPIC, field_bytes(1, name)))


def describe(corr, topic):
    return frame(request(corr, DESCRIBE_TOPIC, field_bytes(1, topic)))


def connect(port):
    # A generous timeout: it only bounds a hang. On a shared 2-core machine under a sanitizer build, a broker
    # that has just recovered a thousand partitions can take seconds to answer its first request.
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    return s


def session(port):
    """A connection to the broker on port whose Hello was accepted (RuntimeError if it was not)."""
    s = connect(port)
    s.sendall(hello())
    if error_of(read_frame(s)) != 0:
        raise RuntimeError("the broker refused the Hello")
    return s


def read_frame(s):
    """Returns the payload bytes, or None when the broker closed the connection."""
    hdr = b""
    while len(hdr) < 4:
        chunk = s.recv(4 - len(hdr))
        if not chunk:
            return None
        hdr += chunk
    (n,) = struct.unpack(">I", hdr)
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def parse(payload):
    """Top-level fields of a message: {field number: [values]} (varints as ints, the rest as bytes)."""
    out = {}
    i = 0
    while i < len(payload):
        key, i = _read_varint(payload, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _read_varint(payload, i)
        elif wt == 2:
            n, i = _read_varint(payload, i)
            v = payload[i:i + n]
            i += n
        elif wt == 1:
            v = payload[i:i + 8]
            i += 8
        elif wt == 5:
            v = payload[i:i + 4]
            i += 4
        else:
            raise ValueError("bad wire type")
        out.setdefault(num, []).append(v)
    return out


def _read_varint(b, i):
    shift = 0
    v = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if not c & 0x80:
            return v, i
        shift += 7


def error_of(payload):
    return parse(payload).get(2, [0])[0]


_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def zigzag(n):
    return varint((n << 1) ^ (n >> 63))


def record_batch(records, base_ts=1000, producer_id=-1, producer_epoch=-1, base_sequence=-1, attributes=0):
    """A Kafka record batch v2 (uncompressed) of (key, value) byte pairs."""
    body = b""
    for i, (k, v) in enumerate(records):
        r = b"\x00" + zigzag(0) + zigzag(i) + zigzag(len(k)) + k + zigzag(len(v)) + v + zigzag(0)
        body += zigzag(len(r)) + r
    n = len(records)
    after_crc = struct.pack(">hiqqqhii", attributes, n - 1, base_ts, base_ts, producer_id, producer_epoch,
                            base_sequence, n) + body
    crc = crc32c(after_crc)
    batch_len = 4 + 1 + 4 + len(after_crc)
    return struct.pack(">qiibI", 0, batch_len, -1, 2, crc) + after_crc


INIT_PRODUCER = 18


def init_producer(corr):
    return frame(request(corr, INIT_PRODUCER, b""))


def produced(payload):
    """[(error, base_offset, last_offset, duplicate)] of a Produce response, one per partition result."""
    out = []
    for res in parse(parse(payload).get(PRODUCE, [b""])[0]).get(1, []):
        f = parse(res)
        signed = lambda v: v - (1 << 64) if v >= 1 << 63 else v
        out.append((f.get(2, [0])[0], signed(f.get(4, [0])[0]), signed(f.get(5, [0])[0]), f.get(6, [0])[0]))
    return out


JOIN_GROUP = 20
HEARTBEAT = 21
OFFSET_COMMIT = 23
OFFSET_FETCH = 24


def commit(corr, group, topic, offsets, member="", generation=-1, force=False):
    """offsets: {partition: offset}."""
    parts = b"".join(field_bytes(2, field_varint(1, p) + field_varint(2, o)) for p, o in sorted(offsets.items()))
    body = field_bytes(1, group) + field_bytes(2, member) + field_varint(3, generation)
    body += field_bytes(4, field_bytes(1, topic) + parts) + field_varint(5, 1 if force else 0)
    return frame(request(corr, OFFSET_COMMIT, body))


def fetch_offsets(corr, group, topic):
    return frame(request(corr, OFFSET_FETCH, field_bytes(1, group) + field_bytes(2, field_bytes(1, topic))))


def committed(payload):
    """{partition: offset} from an OffsetFetch response."""
    body = parse(parse(payload)[24][0])
    out = {}
    for co in body.get(1, []):
        f = parse(co)
        off = f.get(3, [0])[0]
        if off >= 1 << 63:
            off -= 1 << 64
        out[f.get(2, [0])[0]] = off
    return out


def join(corr, group, topics, member="", session_timeout_ms=0):
    body = field_bytes(1, group) + field_bytes(2, member)
    body += b"".join(field_bytes(3, t) for t in topics)
    body += field_varint(4, session_timeout_ms) + field_bytes(5, "wire.py")
    return frame(request(corr, JOIN_GROUP, body))


def joined(payload):
    """(member_id, generation) from a JoinGroup response."""
    body = parse(parse(payload)[JOIN_GROUP][0])
    return body.get(1, [b""])[0].decode(), body.get(2, [0])[0]


def heartbeat(corr, group, member, generation):
    body = field_bytes(1, group) + field_bytes(2, member) + field_varint(3, generation)
    return frame(request(corr, HEARTBEAT, body))
