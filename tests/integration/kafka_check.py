#!/usr/bin/env python3
"""Checks for the tests of the sync tools on a Kafka cluster, on the output of `synclog --json consume`.

  kafka_check.py events N KEYS SEED         print N JSON change events for `synclog produce --input json`: each
                                            key's versions count up from 1, one in twenty is a delete, one in
                                            twenty carries an idempotency key
  kafka_check.py placement PARTITIONS FILE  every record of FILE is in partition murmur2(key) % PARTITIONS, as
                                            Kafka's Java client puts it
  kafka_check.py expected EVENTS DB [TABLE] the target DB holds exactly the newest event of each key (value, or
                                            deleted), as the applier's rules give for increasing versions
  kafka_check.py same-db A B [TABLE]        two targets hold the same rows (key, version, value, deleted)
  kafka_check.py same-records A B           two consumes hold the same records per partition in the same order
                                            (key, value, version, op, origin, timestamp)
  kafka_check.py count FILE                 print the number of records in FILE
Exits 0 when the check holds, else prints the first difference and exits 1."""
import json
import random
import sqlite3
import sys


def murmur2(data):
    """org.apache.kafka.common.utils.Utils.murmur2, as a signed 32-bit value."""
    m, r, h = 0x5BD1E995, 24, 0x9747B28C ^ len(data)
    h &= 0xFFFFFFFF
    n = len(data) // 4
    for i in range(n):
        k = int.from_bytes(data[4 * i : 4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = data[4 * n :]
    if len(tail) >= 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if len(tail) >= 1:
        h ^= tail[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h >= 1 << 31 else h


def records(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def fail(msg):
    print(msg)
    sys.exit(1)


def events(n, keys, seed):
    rnd = random.Random(seed)
    version = {}
    for i in range(n):
        k = "k%d" % rnd.randrange(keys)
        version[k] = version.get(k, 0) + 1
        e = {"key": k, "version": version[k]}
        if rnd.random() < 0.05:  # one in twenty
            e["op"] = "delete"
        else:
            e["value"] = {"n": i, "text": "value %d of %s" % (version[k], k)}
        if i % 20 == 0:
            e["idempotency_key"] = "ik-%d" % i
        print(json.dumps(e))


def placement(parts, path):
    for r in records(path):
        want = (murmur2(r["key"].encode()) & 0x7FFFFFFF) % parts
        if r["partition"] != want:
            fail("key %r is in partition %d, murmur2 puts it in %d" % (r["key"], r["partition"], want))


def rows(db, table):
    c = sqlite3.connect(db)
    return {
        k: (v, json.loads(val) if val is not None else None, d)
        for k, v, val, d in c.execute("SELECT key, version, value, deleted FROM %s" % table)
    }


def expected(events_path, db, table):
    newest = {}
    for e in records(events_path):
        newest[e["key"]] = e
    got = rows(db, table)
    if set(got) != set(newest):
        fail("keys differ: %d in the target, %d expected" % (len(got), len(newest)))
    for k, e in newest.items():
        v, val, d = got[k]
        if v != e["version"] or bool(d) != (e.get("op") == "delete"):
            fail("key %s: target version %s deleted %s, expected %s" % (k, v, d, e))
        if not d and val != e["value"]:
            fail("key %s: target value %r, expected %r" % (k, val, e["value"]))


def same_records(a, b):
    def by_partition(path):
        out = {}
        for r in records(path):
            out.setdefault(r["partition"], []).append(
                (r["key"], r.get("value"), r.get("version"), r["op"], r["origin"], r["timestamp_ms"]))
        return out
    x, y = by_partition(a), by_partition(b)
    if set(x) != set(y):
        fail("partitions differ: %s and %s" % (sorted(x), sorted(y)))
    for p in x:
        if x[p] != y[p]:
            n = next((i for i in range(min(len(x[p]), len(y[p]))) if x[p][i] != y[p][i]), None)
            fail("partition %d: %d and %d records; first difference at %s" % (p, len(x[p]), len(y[p]), n))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "events":
        events(int(args[0]), int(args[1]), int(args[2]))
    elif cmd == "placement":
        placement(int(args[0]), args[1])
    elif cmd == "expected":
        expected(args[0], args[1], args[2] if len(args) > 2 else "entities")
    elif cmd == "same-db":
        table = args[2] if len(args) > 2 else "entities"
        if rows(args[0], table) != rows(args[1], table):
            a, b = rows(args[0], table), rows(args[1], table)
            diff = [k for k in set(a) | set(b) if a.get(k) != b.get(k)]
            fail("%d keys differ, e.g. %s: %s / %s" % (len(diff), diff[0], a.get(diff[0]), b.get(diff[0])))
    elif cmd == "same-records":
        same_records(args[0], args[1])
    elif cmd == "count":
        print(len(records(args[0])))
    else:
        fail("unknown check " + cmd)


main()
