#!/usr/bin/env bash
# Partitions cannot run the broker out of descriptors: with a limit of 1,024, topics of 300 + 2 x 350 partitions
# are created with every partition available, produced to and read back, the broker never holds more than its
# limit, and it starts again (after SIGTERM and after kill -9) with every partition available. Idle partitions'
# files are closed and opened again on use. The soft limit is raised to the hard one at start. Before the fix the
# 300-partition topic left partitions unavailable (about four descriptors each, all kept open) and after a
# restart the broker could not start.
set -euo pipefail
build=${1:-build/release}
exec python3 - "$build" <<'PY'
import json, os, shutil, sys, threading, time
sys.path.insert(0, "tests/integration")
import testenv
from checks import check, finish
import brokerproc

build, root, data = testenv.dirs()

TOPICS = [("a", 300), ("b", 350), ("c", 350)]

class FdSampler(threading.Thread):
    def __init__(self, b):
        super().__init__(daemon=True)
        self.b, self.peak, self.stop = b, 0, False
    def run(self):
        while not self.stop and self.b.alive():
            try:
                self.peak = max(self.peak, self.b.fds())
            except OSError:
                pass
            time.sleep(0.05)

def unavailable(b, topic):
    rc, out, err = brokerproc.cli(build, b.addr, "--json", "topic", "describe", topic, timeout=60)
    if rc != 0:
        return -1
    return sum(1 for line in out.splitlines() if line.strip() and json.loads(line).get("error"))

def all_available(b, when):
    for t, n in TOPICS:
        u = unavailable(b, t)
        check(u == 0, "%s: topic %s has every one of its %d partitions available (%d not)" % (when, t, n, u))

def read_back(b, when):
    total = 0
    for t, _ in TOPICS:
        rc, out, err = brokerproc.cli(build, b.addr, "consume", t, "--from", "earliest", timeout=120)
        total += len(out.splitlines()) if rc == 0 else 0
        check(rc == 0, "%s: consume %s (%s)" % (when, t, err.strip()[:200]))
    check(total == 3 * 3000, "%s: every record read back (%d of %d)" % (when, total, 9000))

b = brokerproc.Broker(build, data, nofile=1024, nofile_soft=256, metrics=True)
sampler = FdSampler(b)
sampler.start()
try:
    check(b.nofile_soft() == 1024, "the soft descriptor limit was raised to the hard one (%d)" % b.nofile_soft())
    for t, n in TOPICS:
        rc, out, err = brokerproc.cli(build, b.addr, "topic", "create", t, "--partitions", str(n), timeout=120)
        check(rc == 0, "create %s with %d partitions (%s)" % (t, n, err.strip()[:200]))
        lines = "".join("key-%s-%d\tvalue %d\n" % (t, i, i) for i in range(3000))
        rc, out, err = brokerproc.cli(build, b.addr, "produce", t, "--acks", "fsync", input_text=lines, timeout=120)
        check(rc == 0, "produce 3,000 records to %s (%s)" % (t, err.strip()[:200]))
    all_available(b, "first start")
    read_back(b, "first start")
    m = b.scrape()
    check(m.get("synclog_partition_files_closed_total", 0) > 0, "idle partitions' files were closed to make room")
    print("   partition files open %d of %d" % (m.get("synclog_partition_files_open", -1),
                                                m.get("synclog_partition_files_max", -1)))
finally:
    sampler.stop = True
    rc = b.stop(timeout=120)
    check(rc == 0, "broker exits 0 on SIGTERM (got %s)" % rc)
check(sampler.peak < 1024, "the broker never held more than its limit (peak %d descriptors)" % sampler.peak)

b = brokerproc.Broker(build, data, nofile=1024)
try:
    all_available(b, "after a clean restart")
    read_back(b, "after a clean restart")
finally:
    b.kill9()
b = brokerproc.Broker(build, data, nofile=1024)
try:
    all_available(b, "after kill -9")
    read_back(b, "after kill -9")
    check(b.fds() < 1024, "holding %d descriptors" % b.fds())
finally:
    rc = b.stop(timeout=120)
    check(rc == 0, "broker exits 0 on SIGTERM (got %s)" % rc)
    shutil.rmtree(root, ignore_errors=True)
finish()
PY
