#!/usr/bin/env bash
# Housekeeping writes a partition's producer-state snapshot only when records were appended since the last one:
# with nothing appended, passes every 200 ms leave the file as it is (no rewrite, no fsyncs), and the next append
# brings a new snapshot in the next pass. A broker of 10,000 idle partitions otherwise rewrote 10,000 files per pass.
set -euo pipefail
build=${1:-build/release}
exec python3 - "$build" <<'PY'
import os, subprocess, sys, time, shutil
sys.path.insert(0, "tests/integration")
import testenv
from checks import check, finish

build, root, data = testenv.dirs()
synclog = os.path.join(build, "bin/synclog")

def cli(addr, *args, stdin=None):
    return subprocess.run([synclog, "--broker", addr] + list(args), input=stdin, capture_output=True, text=True)

def wait_for(pred, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()

broker = subprocess.Popen([os.path.join(build, "bin/synclogd"), "--data-dir", data, "--listen", "127.0.0.1:0",
                           "--metrics", "off", "--retention-check-ms", "200"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
addr = broker.stdout.readline().strip().rsplit(" ", 1)[1]
snap = os.path.join(data, "topics", "t", "0", "producers.snapshot")
mtime = lambda: os.stat(snap).st_mtime_ns if os.path.exists(snap) else None
try:
    check(cli(addr, "topic", "create", "t", "--partitions", "1").returncode == 0, "create t")
    check(cli(addr, "produce", "t", stdin="k1\tv1\nk2\tv2\n").returncode == 0, "first produce")
    check(wait_for(lambda: mtime() is not None, 30), "no snapshot after the first produce")
    first = mtime()
    time.sleep(1.5)  # seven passes or so, with nothing appended
    check(mtime() == first, "the snapshot was rewritten although nothing was appended")
    check(cli(addr, "produce", "t", stdin="k3\tv3\n").returncode == 0, "second produce")
    check(wait_for(lambda: mtime() != first, 30), "no new snapshot after an append")
finally:
    broker.terminate()
    broker.wait(timeout=60)
    shutil.rmtree(root, ignore_errors=True)
finish()
PY
