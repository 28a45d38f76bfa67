#!/usr/bin/env python3
"""kafka-python (Debian's python3-kafka, a Kafka client with its own protocol code, group coordinator client, admin
client and API version negotiation) against synclogd's Kafka listener: the steps a Debezium or Kafka Connect user
takes, each a subcommand that exits 0 when what it checks holds, else prints what differed and exits 1.

  kafka_python.py admin BROKER                  CreateTopics, ListTopics (Metadata), describe, DescribeConfigs,
                                                DeleteTopics, and the errors of a duplicate and a bad topic
  kafka_python.py produce BROKER TOPIC CODEC N  N records with keys, headers (v, origin) and CreateTime timestamps,
                                                acks=all, compression CODEC (none, gzip, lz4, snappy, zstd); prints
                                                one JSON line per record: partition, offset, key, value, headers,
                                                timestamp_ms
  kafka_python.py read BROKER TOPIC             every record of TOPIC, from the earliest offset to the end, as
                                                produce prints them
  kafka_python.py group-run BROKER TOPIC GROUP N consume N records in group GROUP, commit, close; prints them
  kafka_python.py group-split BROKER TOPIC GROUP two consumers in one group split the partitions; when one leaves,
                                                the other takes them all and reads what the leaver left
  kafka_python.py offsets BROKER TOPIC T_MS     beginning/end offsets, offsets_for_times(T_MS), seek
Connection options come from the environment: KP_SECURITY (SASL_SSL or SASL_PLAINTEXT), KP_MECHANISM, KP_USER,
KP_PASSWORD, KP_CAFILE."""
import json
import os
import sys
import threading
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import InvalidPartitionsError, TopicAlreadyExistsError

# Long enough for a shared 2-core machine; a check that waits this long has failed.
TIMEOUT_MS = 20000


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def opts(broker):
    o = {"bootstrap_servers": broker, "request_timeout_ms": TIMEOUT_MS + 10000}
    sec = os.environ.get("KP_SECURITY")
    if sec:
        o.update(security_protocol=sec, sasl_mechanism=os.environ["KP_MECHANISM"],
                 sasl_plain_username=os.environ["KP_USER"], sasl_plain_password=os.environ["KP_PASSWORD"])
        if os.environ.get("KP_CAFILE"):
            o.update(ssl_cafile=os.environ["KP_CAFILE"], ssl_check_hostname=False)
    return o


def as_json(m):
    return json.dumps({"partition": m.partition, "offset": m.offset,
                       "key": None if m.key is None else m.key.decode(),
                       "value": None if m.value is None else m.value.decode(),
                       "headers": [[k, v.decode()] for k, v in m.headers], "timestamp_ms": m.timestamp})


def admin(broker):
    a = KafkaAdminClient(**opts(broker))
    r = a.create_topics([NewTopic("orders", 3, 1), NewTopic("scratch", 1, 1)], timeout_ms=TIMEOUT_MS)
    errs = {t: e for t, e, *_ in r.topic_errors}
    if errs != {"orders": 0, "scratch": 0}:
        fail("create_topics: %s" % (r,))
    if sorted(a.list_topics()) != ["orders", "scratch"]:
        fail("list_topics: %s" % a.list_topics())
    d = a.describe_topics(["orders"])
    parts = sorted(p["partition"] for p in d[0]["partitions"])
    if d[0]["error_code"] != 0 or parts != [0, 1, 2] or any(p["leader"] != 0 for p in d[0]["partitions"]):
        fail("describe_topics: %s" % d)
    c = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "orders")])
    entries = {e[0]: e[1] for e in c[0].resources[0][4]}
    if entries.get("cleanup.policy") != "delete":
        fail("describe_configs: %s" % c)
    try:
        a.create_topics([NewTopic("orders", 3, 1)], timeout_ms=TIMEOUT_MS)
        fail("a second create of orders succeeded")
    except TopicAlreadyExistsError:
        pass
    try:
        a.create_topics([NewTopic("empty", 0, 1)], timeout_ms=TIMEOUT_MS)
        fail("a topic of 0 partitions was created")
    except InvalidPartitionsError:
        pass
    r = a.delete_topics(["scratch"], timeout_ms=TIMEOUT_MS)
    if [e for _, e in r.topic_error_codes] != [0]:
        fail("delete_topics: %s" % (r,))
    if sorted(a.list_topics()) != ["orders"]:
        fail("list_topics after delete: %s" % a.list_topics())
    a.close()


def produce(broker, topic, codec, n):
    p = KafkaProducer(acks="all", compression_type=None if codec == "none" else codec, linger_ms=20,
                      **opts(broker))
    t0 = int(time.time() * 1000) - 10 * n
    futures = []
    for i in range(n):
        key = ("key-%d" % (i % 50)).encode()
        value = json.dumps({"n": i, "pad": "x" * (i % 64)}).encode()
        futures.append(p.send(topic, key=key, value=value, timestamp_ms=t0 + i,
                              headers=[("v", str(i + 1).encode()), ("origin", b"backfill")]))
    p.flush()
    for i, f in enumerate(futures):
        md = f.get(timeout=TIMEOUT_MS / 1000)
        print(json.dumps({"partition": md.partition, "offset": md.offset, "key": "key-%d" % (i % 50),
                          "value": json.dumps({"n": i, "pad": "x" * (i % 64)}),
                          "headers": [["v", str(i + 1)], ["origin", "backfill"]], "timestamp_ms": t0 + i}))
    p.close()


def read(broker, topic):
    c = KafkaConsumer(enable_auto_commit=False, **opts(broker))
    tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or [])]
    if not tps:
        fail("no partitions for %s" % topic)
    c.assign(tps)
    c.seek_to_beginning(*tps)
    end = c.end_offsets(tps)
    deadline = time.time() + TIMEOUT_MS / 1000
    while any(c.position(tp) < end[tp] for tp in tps):
        if time.time() > deadline:
            fail("read %s: positions %s, end %s" % (topic, [c.position(tp) for tp in tps], end))
        for msgs in c.poll(timeout_ms=500).values():
            for m in msgs:
                print(as_json(m))
    c.close()


def consumer(broker, topic, group, **kw):
    return KafkaConsumer(topic, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False,
                         session_timeout_ms=10000, heartbeat_interval_ms=500, **kw, **opts(broker))


def group_run(broker, topic, group, n):
    c = consumer(broker, topic, group, max_poll_records=max(1, n))
    got = []
    deadline = time.time() + TIMEOUT_MS / 1000
    while len(got) < n:
        if time.time() > deadline:
            fail("group %s read %d of %d records" % (group, len(got), n))
        for msgs in c.poll(timeout_ms=500, max_records=n - len(got)).values():
            got.extend(msgs)
    # Commit exactly what was read, partition by partition, as a connector does.
    from kafka.structs import OffsetAndMetadata
    last = {}
    for m in got:
        last[TopicPartition(m.topic, m.partition)] = m.offset + 1
    c.commit({tp: OffsetAndMetadata(o, "") for tp, o in last.items()})
    for tp, o in last.items():
        if c.committed(tp) != o:
            fail("committed %s is %s, not %d" % (tp, c.committed(tp), o))
    c.close()
    for m in got:
        print(as_json(m))


class Member(threading.Thread):
    """One group member polling in its own thread, as each would in its own process: a JoinGroup blocks its
    consumer until every member rejoined, so two members polled by one thread would wait on each other."""

    def __init__(self, broker, topic, group):
        super().__init__(daemon=True)
        self.c = consumer(broker, topic, group)
        self.got = []
        self.assigned = set()
        self.stop = threading.Event()
        self.stopped = threading.Event()
        self.error = None

    def run(self):
        try:
            while not self.stop.is_set():
                batch = [m for msgs in self.c.poll(timeout_ms=100).values() for m in msgs]
                if batch:
                    self.got.extend(batch)
                    self.c.commit()  # what was read is committed before the next poll may rebalance
                self.assigned = {tp.partition for tp in self.c.assignment()}
                # Positions at the end of the log as it is: all read (the topic is not written meanwhile).
                self.caught_up = all(self.c.position(tp) >= o for tp, o in self.c.end_offsets(
                    list(self.c.assignment())).items()) if self.assigned else False
            self.c.commit()
            self.c.close()
        except Exception as e:  # reported by the main thread
            self.error = e
        self.stopped.set()


def wait_for(what, cond, members):
    deadline = time.time() + TIMEOUT_MS / 1000
    while not cond():
        for m in members:
            if m.error:
                fail("%s: %r" % (what, m.error))
        if time.time() > deadline:
            fail("%s: assignments %s" % (what, [sorted(m.assigned) for m in members]))
        time.sleep(0.1)


def leave(m):
    m.stop.set()
    if not m.stopped.wait(TIMEOUT_MS / 1000) or m.error:
        fail("a member did not commit and leave: %r" % m.error)


def send_round(broker, topic, tag, n):
    p = KafkaProducer(acks="all", **opts(broker))
    for i in range(n):
        p.send(topic, key=("%s-%d" % (tag, i)).encode(), value=b"x")
    p.flush()
    p.close()


def group_split(broker, topic, group):
    """The topic has 4 partitions. Rounds of 100 records: read by the first member alone, by two members, by the
    one left after the other left; every record is read once in all."""
    m1 = Member(broker, topic, group)
    m1.caught_up = False
    m1.start()
    wait_for("the first member alone", lambda: len(m1.assigned) == 4 and m1.caught_up, [m1])
    m2 = Member(broker, topic, group)
    m2.caught_up = False
    m2.start()
    wait_for("two members", lambda: len(m1.assigned) == 2 and len(m2.assigned) == 2, [m1, m2])
    a1, a2 = set(m1.assigned), set(m2.assigned)
    if a1 & a2 or a1 | a2 != {0, 1, 2, 3}:
        fail("the two consumers' partitions overlap or miss some: %s %s" % (a1, a2))
    # DescribeGroups, as Kafka answers it: both members, each with its client id and "/ADDRESS" it joined from.
    a = KafkaAdminClient(**opts(broker))
    desc = a.describe_consumer_groups([group])[0]
    a.close()
    hosts = sorted(m.client_host for m in desc.members)
    if desc.state != "Stable" or hosts != ["/127.0.0.1", "/127.0.0.1"]:
        fail("describe_consumer_groups: state %s, members' hosts %s" % (desc.state, hosts))
    before = (len(m1.got), len(m2.got))
    send_round(broker, topic, "two", 100)
    wait_for("both read the second round", lambda: m1.caught_up and m2.caught_up and
             len(m1.got) + len(m2.got) >= sum(before) + 100, [m1, m2])
    if len(m1.got) == before[0] or len(m2.got) == before[1]:
        fail("one member read nothing of the second round: %s then %s" % (before, (len(m1.got), len(m2.got))))
    # m2 leaves (LeaveGroup) after its commits: m1 takes its partitions and reads on from them.
    leave(m2)
    wait_for("the member left behind", lambda: len(m1.assigned) == 4, [m1])
    send_round(broker, topic, "after", 100)
    c = KafkaConsumer(**opts(broker))
    end = c.end_offsets([TopicPartition(topic, p) for p in range(4)])
    c.close()
    total = sum(end.values())
    wait_for("the last round", lambda: m1.caught_up and len(m1.got) + len(m2.got) >= total, [m1])
    leave(m1)
    seen = {}
    for m in m1.got + m2.got:
        seen[(m.partition, m.offset)] = seen.get((m.partition, m.offset), 0) + 1
    dup = [k for k, v in seen.items() if v > 1]
    if len(seen) != total or dup:
        fail("the group read %d distinct of %d records, %d twice" % (len(seen), total, len(dup)))
    print("split %s %s: read %d and %d" % (sorted(a1), sorted(a2), len(m1.got), len(m2.got)))


def offsets(broker, topic, t_ms):
    c = KafkaConsumer(enable_auto_commit=False, **opts(broker))
    tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic))]
    beg = c.beginning_offsets(tps)
    end = c.end_offsets(tps)
    times = c.offsets_for_times({tp: t_ms for tp in tps})
    future = c.offsets_for_times({tp: int(time.time() * 1000) + 3600 * 1000 for tp in tps})
    tp = max(tps, key=lambda tp: end[tp])
    c.assign([tp])
    c.seek(tp, 2)
    first = None
    deadline = time.time() + TIMEOUT_MS / 1000
    while first is None and time.time() < deadline:
        for msgs in c.poll(timeout_ms=200).values():
            first = first if first is not None else msgs[0].offset
    c.seek_to_end(tp)
    at_end = c.position(tp)
    c.close()
    print(json.dumps({"beginning": {str(t.partition): o for t, o in beg.items()},
                      "end": {str(t.partition): o for t, o in end.items()},
                      "times": {str(t.partition): None if o is None else [o.offset, o.timestamp]
                                for t, o in times.items()},
                      "future": {str(t.partition): o for t, o in future.items()},
                      "seek_partition": tp.partition, "seek_first": first, "seek_to_end": at_end}))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "admin":
        admin(*args)
    elif cmd == "produce":
        produce(args[0], args[1], args[2], int(args[3]))
    elif cmd == "read":
        read(*args)
    elif cmd == "group-run":
        group_run(args[0], args[1], args[2], int(args[3]))
    elif cmd == "group-split":
        group_split(*args)
    elif cmd == "offsets":
        offsets(args[0], args[1], int(args[2]))
    else:
        fail("unknown subcommand %s" % cmd)


if __name__ == "__main__":
    main()
