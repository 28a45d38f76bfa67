#!/usr/bin/env bash
# Group offsets are durable: an acknowledged commit survives kill -9 of the broker, and the offset log, which
# grows with every commit, is compacted while the broker runs (so a restart replays the live state, not the
# history) without losing the newest commit of any partition.
set -euo pipefail
BUILD=${1:-build/release}
exec python3 - "$BUILD" <<'PY'
import os, random, shutil, subprocess, sys
sys.path.insert(0, "tests/integration")
import testenv
import wire

build, root, data = testenv.dirs()
procs = []

def start():
    p = subprocess.Popen([os.path.join(build, "bin/synclogd"), "--data-dir", data, "--listen", "127.0.0.1:0",
                          "--metrics", "off"], stdout=subprocess.PIPE, text=True)
    procs.append(p)
    port = int(p.stdout.readline().strip().rsplit(":", 1)[1])
    s = wire.connect(port)
    s.sendall(wire.hello())
    assert wire.error_of(wire.read_frame(s)) == 0
    return p, s

def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)

try:
    p, s = start()
    s.sendall(wire.create_topic(2, "t", 1000))
    if wire.error_of(wire.read_frame(s)) != 0:
        fail("create topic")
    rng = random.Random(7)
    latest = {}
    # ~450 commits of 1000 partitions, ~18 MiB of log: over the 16 MiB that triggers an online compaction.
    for i in range(450):
        offsets = {part: rng.randrange(0, 1 << 40) for part in range(1000)}
        s.sendall(wire.commit(10 + i, "g", "t", offsets))
        if wire.error_of(wire.read_frame(s)) != 0:
            fail("commit %d refused" % i)
        latest.update(offsets)
    p.kill()  # kill -9: every acknowledged commit must be there
    p.wait()
    size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(os.path.join(data, "groups"))
               for f in fs)
    p, s = start()
    s.sendall(wire.fetch_offsets(1000, "g", "t"))
    got = wire.committed(wire.read_frame(s))
    if got != latest:
        bad = [k for k in latest if got.get(k) != latest[k]]
        fail("%d partitions lost their newest commit after kill -9 (e.g. %s)" % (len(bad), bad[:3]))
    after = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(os.path.join(data, "groups"))
                for f in fs)
    written = 450 * 1000 * 40
    if not size < written / 4 or not after < written / 4:
        fail("offset log not compacted while running: ~%d bytes written, %d on disk at kill -9, %d after restart"
             % (written, size, after))
    p.terminate()
    if p.wait() != 0:
        fail("broker exit code")
    p, s = start()
    s.sendall(wire.fetch_offsets(1001, "g", "t"))
    if wire.committed(wire.read_frame(s)) != latest:
        fail("offsets changed across a clean restart after compaction")
    print("ok: ~%d bytes of commits kept in an offset log of %d bytes (%d after a restart)" % (written, size, after))
finally:
    for pr in procs:
        if pr.poll() is None:
            pr.terminate()
            pr.wait()
    shutil.rmtree(root, ignore_errors=True)
PY
