#!/usr/bin/env bash
# Disk work the loop hands to the thread pool (broker/offload.c) still does its job: retention removes the
# files of the segments it drops (the unlink, close and directory fsync now run off the loop), producer-state
# snapshots are written, and InitProducer hands out unique ids in order across several id reservations (each
# one a file replaced off the loop), ids that stay above the reservation after a restart. Under strace, the
# loop's thread makes none of the blocking calls those jobs make (fsync, unlink, rename) while it serves.
set -euo pipefail
build=${1:-build/release}
exec python3 - "$build" <<'PY'
import os, subprocess, sys, time, glob, shutil
sys.path.insert(0, "tests/integration")
import testenv
from checks import check, finish
import loopstrace, wire

build, root, data = testenv.dirs()
synclog = os.path.join(build, "bin/synclog")

def start():
    b = subprocess.Popen([os.path.join(build, "bin/synclogd"), "--data-dir", data, "--listen", "127.0.0.1:0",
                          "--metrics", "off", "--segment-bytes", "1048576", "--retention-check-ms", "200"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = b.stdout.readline().strip()
    return b, line.rsplit(" ", 1)[1]

def total_size(paths):
    # Retention may remove a file between the glob and the stat: a removed file counts as gone.
    size = 0
    for f in paths:
        try:
            size += os.path.getsize(f)
        except FileNotFoundError:
            pass
    return size

def cli(addr, *args, stdin=None):
    return subprocess.run([synclog, "--broker", addr] + list(args), input=stdin, capture_output=True, text=True)

broker, addr = start()
tracer = None
try:
    # Topic create fsyncs and renames on the loop (an administrative call, rare): trace what comes after it.
    check(cli(addr, "topic", "create", "t", "--partitions", "1", "--retention-bytes", "3000000").returncode == 0,
          "create t")
    tracer = loopstrace.LoopTrace(broker.pid, "fsync,fdatasync,unlink,unlinkat,rename,renameat,renameat2",
                                  os.path.join(root, "strace.out"))
    lines = "".join("k%d\t%s\n" % (i, "v" * 200) for i in range(40000))
    r = cli(addr, "produce", "t", "--acks", "fsync", stdin=lines)
    check(r.returncode == 0, "produce: " + r.stderr)
    pdir = os.path.join(data, "topics", "t", "0")
    # Retention runs every 200 ms; its removals complete on a worker thread.
    deadline = time.time() + 20
    while time.time() < deadline:
        logs = glob.glob(os.path.join(pdir, "*.log"))
        size = total_size(logs)
        if size <= 3000000 + 1048576:
            break
        time.sleep(0.1)
    time.sleep(0.5)  # let a removal that started finish, so the file sets below are stable
    logs = glob.glob(os.path.join(pdir, "*.log"))
    size = total_size(logs)
    check(size <= 3000000 + 1048576, "retention left %d bytes in %d segment files" % (size, len(logs)))
    for ext in (".index", ".timeindex"):
        check(len(glob.glob(os.path.join(pdir, "*" + ext))) == len(logs), "index files of removed segments remain")
    desc = cli(addr, "--json", "topic", "describe", "t").stdout
    check('"earliest_offset":0' not in desc, "earliest offset did not move: " + desc)
    check(os.path.exists(os.path.join(pdir, "producers.snapshot")), "no producer snapshot written")

    # 2,500 InitProducer requests pipelined on one connection: three reservations of 1,000 ids.
    s = wire.connect(int(addr.rsplit(":", 1)[1]))
    s.sendall(wire.hello())
    wire.read_frame(s)
    n = 2500
    s.sendall(b"".join(wire.init_producer(10 + i) for i in range(n)))
    ids = []
    for i in range(n):
        f = wire.read_frame(s)
        check(wire.error_of(f) == 0, "init producer error")
        ids.append(wire.producer_id_of(f))
    check(ids == sorted(ids) and len(set(ids)) == n, "ids not unique and in order")
    with open(os.path.join(data, "producer-ids")) as f:
        reserved = int(f.read())
    check(reserved > max(ids), "reserved %d not above the highest id %d" % (reserved, max(ids)))
    s.close()
    time.sleep(0.5)
    on_loop, off_loop = tracer.split()
    check(not on_loop, "the loop thread made blocking calls:\n" + "\n".join(on_loop[:5]))
    check(any("unlink" in l for l in off_loop), "no segment file was removed by a worker")
    check(any("rename" in l and "producer-ids" in l for l in off_loop), "no producer-id reservation by a worker")
finally:
    if tracer:
        tracer.detach()
    broker.terminate()
    check(broker.wait(timeout=30) == 0, "broker exit status")

broker, addr = start()
try:
    s = wire.connect(int(addr.rsplit(":", 1)[1]))
    s.sendall(wire.hello())
    wire.read_frame(s)
    s.sendall(wire.init_producer(2))
    after = wire.producer_id_of(wire.read_frame(s))
    check(after >= reserved, "after restart id %d is below the reservation %d" % (after, reserved))
finally:
    broker.terminate()
    broker.wait(timeout=30)
    shutil.rmtree(root)
finish()
PY
