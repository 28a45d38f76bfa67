#!/usr/bin/env python3
"""The soak: one broker under a random mix of well-behaved and hostile clients for a while, its memory and
descriptors sampled, and at the end every acknowledged record checked. Used bounded by `make test`
(tests/integration/test_soak.sh, 90 s) and long by `make soak DURATION=1h` (with --kill9: the broker is killed
with SIGKILL at random moments and started again on the same data).

Clients (each a thread, reconnecting whenever the broker goes away):
  producers     batches of 1-20 records at acks=fsync to the ledger topics; every acknowledged offset is kept
                with its key and value, and some batches are idempotent and retried once (the retry must come back
                as a duplicate with the same offsets)
  reader        reads the ledger partitions in order, checking every batch's CRC and that offsets follow on
  long polls    fetches at the log end waiting for new records; some clients vanish while theirs are parked
  groups        members join, heartbeat, commit and leave; an operator commits increasing offsets
  topic churn   topics created with 1-20 partitions, written, read and deleted
  slow clients  connections that never say Hello, send a byte a second, leave half a frame, pipeline large
                fetches and never read, or reset the connection mid-request
Fails (exit 1) when the broker's RSS passes its bound, its descriptors pass its limit or leak (more open after
the clients left than before they came, beyond the partition files it caches), its memory accounting is not
back to 0 at the end, the broker dies (other than by our SIGKILL), or an acknowledged record or commit is
missing or different."""
import argparse
import os
import random
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import brokerproc  # noqa: E402
import wire  # noqa: E402

MEMORY_MAX_MB = 128
# What the broker holds besides the budget: the frame pool (64 MiB at most), connections' read buffers, indexes,
# producer state, the allocator's slack.
RSS_SLACK_MB = 200
NOFILE = 1024
LEDGERS = [("ledger-0", 2), ("ledger-1", 3), ("ledger-2", 1)]


def parse_duration(s):
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for u in ("ms", "s", "m", "h"):
        if s.endswith(u) and s[:-len(u)].isdigit():
            return int(s[:-len(u)]) * units[u]
    return float(s)


def zigzag_decode(n):
    return (n >> 1) ^ -(n & 1)


def read_varint(b, i):
    shift = v = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if not c & 0x80:
            return v, i
        shift += 7


def parse_batches(data):
    """[(base_offset, [(offset, key, value)])] of uncompressed batches; raises ValueError on damage."""
    out = []
    pos = 0
    while pos + 61 <= len(data):
        base, blen = struct.unpack(">qi", data[pos:pos + 12])
        total = 12 + blen
        if pos + total > len(data):
            break
        batch = data[pos:pos + total]
        crc, = struct.unpack(">I", batch[17:21])
        if wire.crc32c(batch[21:]) != crc:
            raise ValueError("CRC mismatch in the batch at offset %d" % base)
        attrs, = struct.unpack(">h", batch[21:23])
        count, = struct.unpack(">i", batch[57:61])
        records = []
        if attrs & 7 == 0:
            i = 61
            for _ in range(count):
                length, i = read_varint(batch, i)
                end = i + zigzag_decode(length)
                i += 1  # attributes
                _, i = read_varint(batch, i)  # timestamp delta
                delta, i = read_varint(batch, i)
                klen, i = read_varint(batch, i)
                klen = zigzag_decode(klen)
                key = batch[i:i + klen] if klen >= 0 else None
                i += max(klen, 0)
                vlen, i = read_varint(batch, i)
                vlen = zigzag_decode(vlen)
                value = batch[i:i + vlen] if vlen >= 0 else None
                records.append((base + zigzag_decode(delta), key, value))
                i = end
        out.append((base, records))
        pos += total
    return out


class Soak:
    def __init__(self, build, duration, kill9, seed):
        self.build = build
        self.duration = duration
        self.kill9 = kill9
        self.rng = random.Random(seed)
        self.root = tempfile.mkdtemp()
        self.data = os.path.join(self.root, "data")
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked = {}          # (topic, partition) -> {offset: (key, value)}
        self.commits = {}        # (group, topic, partition) -> last acknowledged offset
        self.failures = []
        self.counts = {}
        self.peak_rss = 0.0
        self.peak_fds = 0
        self.kills = 0
        self.broker = None
        self.generation = 0
        # A sanitizer build holds freed memory in quarantine and shadow memory besides: a looser RSS bound (the
        # accounting check at the end is the same).
        sanitized = "san-" in os.path.basename(os.path.normpath(build))
        self.rss_bound_mb = (MEMORY_MAX_MB + RSS_SLACK_MB) * (3 if sanitized else 1)
        self.start_broker()

    def start_broker(self):
        self.broker = brokerproc.Broker(self.build, self.data, ["--memory-max", "%dM" % MEMORY_MAX_MB,
                                                                 "--idle-timeout", "20s"],
                                        metrics=True, nofile=NOFILE,
                                        stderr_path=os.path.join(self.root, "broker.err"))
        self.generation += 1

    def fail(self, what):
        with self.lock:
            if len(self.failures) < 50:
                self.failures.append(what)
        print("FAIL:", what, flush=True)

    def count(self, what, n=1):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + n

    def connect(self, timeout=10):
        b = self.broker
        s = socket.create_connection(("127.0.0.1", b.port), timeout=timeout)
        s.sendall(wire.hello())
        r = wire.read_frame(s)
        if r is None or wire.error_of(r) != 0:
            s.close()
            raise OSError("hello refused")
        return s

    def call(self, s, frame):
        s.sendall(frame)
        r = wire.read_frame(s)
        if r is None:
            raise OSError("closed by the broker")
        return r

    def loop(self, body):
        """Run body(sock) until stop, reconnecting after connection errors (the broker may be restarting)."""
        s = None
        while not self.stop.is_set():
            try:
                if s is None:
                    s = self.connect()
                body(s)
            except (OSError, ValueError, IndexError, KeyError, struct.error):
                if s is not None:
                    s.close()
                s = None
                self.stop.wait(0.2)
        if s is not None:
            s.close()

    # ---- clients ----

    def producer(self, n):
        rng = random.Random(n)
        seq = [0]
        state = {"pid": None, "seqs": {}}

        def body(s):
            topic, parts = rng.choice(LEDGERS)
            p = rng.randrange(parts)
            recs = [(("p%d-%d-%d" % (n, seq[0], i)).encode(), os.urandom(rng.randrange(10, 1500)).hex().encode())
                    for i in range(rng.randrange(1, 21))]
            seq[0] += 1
            idem = rng.random() < 0.3
            if idem and state["pid"] is None:
                r = self.call(s, wire.init_producer(1))
                state["pid"] = wire.parse(wire.parse(r)[wire.INIT_PRODUCER][0]).get(1, [0])[0]
            if idem:
                base_seq = state["seqs"].get((topic, p), 0)
                batch = wire.record_batch(recs, base_ts=int(time.time() * 1000), producer_id=state["pid"],
                                          producer_epoch=0, base_sequence=base_seq)
            else:
                batch = wire.record_batch(recs, base_ts=int(time.time() * 1000))
            frame = wire.produce(2, topic, p, batch, acks=0)
            try:
                res = wire.produced(self.call(s, frame))
            except OSError:
                if idem:  # the outcome is unknown: start a fresh producer rather than guess its sequence
                    state["pid"] = None
                    state["seqs"] = {}
                raise
            err, base, last, dup = res[0]
            if err != 0:
                self.count("produce refused %d" % err)
                return
            if last - base + 1 != len(recs) or dup:
                self.fail("produce to %s/%d: offsets %d..%d for %d records (duplicate %d)" %
                          (topic, p, base, last, len(recs), dup))
                return
            with self.lock:
                part = self.acked.setdefault((topic, p), {})
                for i, (k, v) in enumerate(recs):
                    part[base + i] = (k, v)
            self.count("records acked", len(recs))
            if idem:
                state["seqs"][(topic, p)] = base_seq + len(recs)
                if rng.random() < 0.2:
                    r2 = wire.produced(self.call(s, frame))[0]
                    if r2[0] != 0 or r2[3] != 1 or r2[1] != base:
                        self.fail("retry of an idempotent batch at %s/%d offset %d answered %s" %
                                  (topic, p, base, r2))
                    self.count("retries answered as duplicates")
        self.loop(body)

    def reader(self):
        pos = {}

        def body(s):
            topic, parts = self.rng.choice(LEDGERS)
            plist = [(p, pos.get((topic, p), 0), 1 << 20) for p in range(parts)]
            for p, err, nxt, records in wire.fetched(self.call(s, wire.fetch(3, topic, plist, 1, 200))):
                if err == 10:  # OFFSET_OUT_OF_RANGE: the log was cut after a crash past what we read
                    pos[(topic, p)] = 0
                    continue
                if err != 0:
                    self.count("reader error %d" % err)
                    continue
                want = pos.get((topic, p), 0)
                for base, recs in parse_batches(records):
                    for off, _, _ in recs:
                        if off < want:
                            continue
                        if off != want:
                            self.fail("reader: %s/%d offset %d follows %d" % (topic, p, off, want - 1))
                        want = off + 1
                pos[(topic, p)] = want
                self.count("batches read")
        self.loop(body)

    def long_poll(self):
        def body(s):
            topic, parts = self.rng.choice(LEDGERS)
            r = self.call(s, wire.frame(wire.request(4, 17, wire.field_bytes(1, topic) + wire.field_varint(3, 1))))
            ends = {}
            for po in wire.parse(wire.parse(r)[17][0]).get(1, []):
                f = wire.parse(po)
                ends[f.get(1, [0])[0]] = f.get(3, [0])[0]
            plist = [(p, ends.get(p, 0), 1 << 16) for p in range(parts)]
            frame = wire.fetch(5, topic, plist, 1, self.rng.randrange(500, 4000))
            if self.rng.random() < 0.2:
                s.sendall(frame)  # and vanish while parked
                raise OSError("vanished")
            self.call(s, frame)
            self.count("long polls answered")
        self.loop(body)

    def groups(self, n):
        rng = random.Random(100 + n)
        committed = [0]

        def body(s):
            group = "g%d" % rng.randrange(3)
            topic = "ledger-0"
            if rng.random() < 0.5:
                r = self.call(s, wire.join(6, group, [topic], session_timeout_ms=3000))
                if wire.error_of(r) != 0:
                    self.count("join refused %d" % wire.error_of(r))
                    return
                member, gen = wire.joined(r)
                self.call(s, wire.heartbeat(7, group, member, gen))
                self.call(s, wire.commit(8, group, topic, {0: rng.randrange(100)}, member=member, generation=gen))
                self.call(s, wire.frame(wire.request(9, 22, wire.field_bytes(1, group) + wire.field_bytes(2, member))))
                self.count("group rounds")
            else:
                # The operator's commits of one group only grow; the last one acknowledged must survive anything.
                committed[0] += rng.randrange(1, 5)
                r = self.call(s, wire.commit(10, "audit-%d" % n, topic, {1: committed[0]}, force=True))
                if wire.error_of(r) == 0:
                    with self.lock:
                        self.commits[("audit-%d" % n, topic, 1)] = committed[0]
                    self.count("commits acked")
        self.loop(body)

    def churn(self):
        k = [0]

        def body(s):
            name = "churn-%d" % k[0]
            k[0] += 1
            parts = self.rng.randrange(1, 21)
            if wire.error_of(self.call(s, wire.create_topic(11, name, parts))) != 0:
                self.count("churn create refused")
                return
            batch = wire.record_batch([(b"c", b"v")])
            for p in range(0, parts, 3):
                self.call(s, wire.produce(12, name, p, batch, acks=1))
            self.call(s, wire.fetch(13, name, [(p, 0, 4096) for p in range(parts)]))
            if wire.error_of(self.call(s, wire.delete_topic(14, name))) != 0:
                self.fail("delete of %s refused" % name)
            self.count("topics churned")
        self.loop(body)

    def slow(self, n):
        rng = random.Random(200 + n)
        held = []
        while not self.stop.is_set():
            try:
                action = rng.randrange(6)
                b = self.broker
                if action == 0:  # never says Hello
                    held.append((time.monotonic() + rng.uniform(1, 8), socket.create_connection(("127.0.0.1", b.port))))
                elif action == 1:  # a byte at a time
                    c = socket.create_connection(("127.0.0.1", b.port))
                    for byte in wire.hello()[:5]:
                        c.send(bytes([byte]))
                        self.stop.wait(0.3)
                    held.append((time.monotonic() + rng.uniform(1, 5), c))
                elif action == 2:  # half of a 1 MiB frame, then gone
                    c = self.connect()
                    c.sendall(struct.pack(">I", 1 << 20) + b"\0" * (1 << 19))
                    held.append((time.monotonic() + rng.uniform(0.5, 3), c))
                elif action == 3:  # large fetches pipelined, never read
                    c = self.connect()
                    topic, parts = rng.choice(LEDGERS)
                    c.sendall(b"".join(wire.fetch(20 + i, topic, [(rng.randrange(parts), 0, 1 << 22)])
                                       for i in range(20)))
                    held.append((time.monotonic() + rng.uniform(1, 5), c))
                elif action == 4:  # reset mid-request
                    c = self.connect()
                    c.send(wire.describe(30, "ledger-0")[:7])
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    c.close()
                else:  # a scrape of the metrics port that never finishes its request
                    c = socket.create_connection(("127.0.0.1", b.metrics_port))
                    c.send(b"GET /met")
                    held.append((time.monotonic() + rng.uniform(1, 8), c))
                self.count("slow clients")
            except OSError:
                self.stop.wait(0.2)
            now = time.monotonic()
            for item in [h for h in held if h[0] <= now or len(held) > 40]:
                item[1].close()
                held.remove(item)
            self.stop.wait(rng.uniform(0.05, 0.3))
        for _, c in held:
            c.close()

    def sampler(self):
        while not self.stop.is_set():
            b = self.broker
            try:
                rss, fds = b.rss_mb(), b.fds()
            except OSError:
                self.stop.wait(0.1)
                continue
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_fds = max(self.peak_fds, fds)
            if rss > self.rss_bound_mb:
                self.fail("broker RSS %.0f MB past its bound %d MB" % (rss, self.rss_bound_mb))
            if fds >= NOFILE:
                self.fail("broker holds %d descriptors, its limit is %d" % (fds, NOFILE))
            if not b.alive() and b.proc.returncode != -9:
                self.fail("the broker died: exit %s" % b.proc.returncode)
                self.stop.set()
            self.stop.wait(0.25)

    def killer(self):
        while not self.stop.wait(self.rng.uniform(5, 30)):
            self.broker.kill9()
            self.kills += 1
            try:
                self.start_broker()
            except RuntimeError as e:
                self.fail("the broker did not start after kill -9: %s" % e)
                self.stop.set()

    # ---- the run ----

    def setup(self):
        s = self.connect()
        for topic, parts in LEDGERS:
            if wire.error_of(self.call(s, wire.create_topic(1, topic, parts))) != 0:
                self.fail("create %s" % topic)
        s.close()
        time.sleep(0.5)
        m = self.broker.scrape()
        self.base_fds = self.broker.fds() - int(m.get("synclog_partition_files_open", 0))

    def run(self):
        self.setup()
        threads = [threading.Thread(target=self.producer, args=(i,)) for i in range(3)]
        threads += [threading.Thread(target=self.reader), threading.Thread(target=self.long_poll),
                    threading.Thread(target=self.long_poll), threading.Thread(target=self.churn),
                    threading.Thread(target=self.sampler)]
        threads += [threading.Thread(target=self.groups, args=(i,)) for i in range(2)]
        threads += [threading.Thread(target=self.slow, args=(i,)) for i in range(3)]
        if self.kill9:
            threads.append(threading.Thread(target=self.killer))
        for t in threads:
            t.daemon = True
            t.start()
        end = time.monotonic() + self.duration
        while time.monotonic() < end and not self.stop.is_set():
            time.sleep(1)
        self.stop.set()
        for t in threads:
            t.join(timeout=30)

    def verify(self):
        b = self.broker
        if not b.alive():
            return
        # Every client is gone: nothing held for them, no connection or scrape left.
        settled = brokerproc.wait_until(
            lambda: (lambda m: m.get("synclog_memory_bytes") == 0 and m.get("synclog_connections") == 0)(b.scrape()),
            30, 0.5)
        m = b.scrape()
        if not settled:
            self.fail("after the clients left: memory_bytes %s, connections %s (want 0 and 0)" %
                      (m.get("synclog_memory_bytes"), m.get("synclog_connections")))
        leaked = b.fds() - int(m.get("synclog_partition_files_open", 0)) - self.base_fds
        if leaked > 4:
            self.fail("%d descriptors more than before the clients came (partition files aside)" % leaked)
        s = self.connect()
        for (topic, p), want in sorted(self.acked.items()):
            got = {}
            offset = 0
            while True:
                res = wire.fetched(self.call(s, wire.fetch(40, topic, [(p, offset, 4 << 20)])))
                _, err, nxt, records = res[0]
                if err != 0:
                    self.fail("verify: fetch %s/%d at %d: error %d" % (topic, p, offset, err))
                    break
                batches = parse_batches(records)
                if not batches:
                    break
                for _, recs in batches:
                    for off, k, v in recs:
                        got[off] = (k, v)
                        offset = off + 1
            missing = [off for off in want if got.get(off) != want[off]]
            if missing:
                self.fail("%s/%d: %d of %d acknowledged records missing or different (first at offset %d)" %
                          (topic, p, len(missing), len(want), missing[0]))
        for (group, topic, p), off in sorted(self.commits.items()):
            got = wire.committed(self.call(s, wire.fetch_offsets(41, group, topic))).get(p, -1)
            if got < off:
                self.fail("group %s %s/%d: committed %d, the last acknowledged commit was %d" %
                          (group, topic, p, got, off))
        s.close()

    def close(self):
        rc = self.broker.stop(timeout=120)
        if rc not in (0, -9):
            self.fail("broker exited %s on SIGTERM" % rc)
        try:
            with open(os.path.join(self.root, "broker.err")) as f:
                lines = f.read().splitlines()
            bad = [line for line in lines if "assertion" in line or "AddressSanitizer" in line or "runtime error" in line]
            if bad:
                self.fail("broker stderr: %s" % bad[0])
        except OSError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("--duration", default="90s", help="how long the clients run (90s, 10m, 1h)")
    ap.add_argument("--kill9", action="store_true", help="kill the broker with SIGKILL at random moments")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("SL_TEST_SEED", "0")) or None)
    a = ap.parse_args()
    brokerproc.raise_nofile(4096)
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    print("soak: %s, seed %d (SL_TEST_SEED=%d replays the mix)%s" % (a.duration, seed, seed,
                                                                       ", kill -9" if a.kill9 else ""), flush=True)
    soak = Soak(a.build, parse_duration(a.duration), a.kill9, seed)
    try:
        soak.run()
        soak.verify()
    finally:
        soak.close()
    acked = sum(len(v) for v in soak.acked.values())
    print("soak: %d acknowledged records checked, %d commits; peak RSS %.0f MB (bound %d), peak descriptors %d "
          "(limit %d), %d kill -9" % (acked, len(soak.commits), soak.peak_rss, soak.rss_bound_mb,
                                      soak.peak_fds, NOFILE, soak.kills))
    for k in sorted(soak.counts):
        print("  %s: %d" % (k, soak.counts[k]))
    if soak.failures:
        print("soak: %d failures" % len(soak.failures))
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
