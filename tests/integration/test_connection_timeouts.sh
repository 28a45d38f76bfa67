#!/usr/bin/env bash
# Idle and slow clients cannot lock real ones out: with all 1,024 connection slots taken by connections that never
# send Hello (and a few that send one byte a second), a real client is still served at once (it takes the place of
# the least recently active idle connection), and the broker closes every one of them within its 5 s handshake
# timeout. With --idle-timeout 1s a connection that said Hello and then went quiet is closed, while one with a
# long poll parked, or one that keeps sending requests, is not. Before the fix the real client was refused for as
# long as the idle connections stayed.
set -euo pipefail
build=${1:-build/release}
exec python3 - "$build" <<'PY'
import os, shutil, socket, sys, time
sys.path.insert(0, "tests/integration")
import testenv
from checks import check, finish
import wire, brokerproc

build, root, data = testenv.dirs()
brokerproc.raise_nofile(4096)

def closed_by_peer(s):
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True

b = brokerproc.Broker(build, data, metrics=True, nofile=4096)
socks = []
try:
    for _ in range(1024):
        socks.append(socket.create_connection(("127.0.0.1", b.port), timeout=5))
    slow = socks[:8]
    hello = wire.hello()
    for s in slow:
        s.send(hello[:1])
    time.sleep(0.3)
    t0 = time.monotonic()
    rc, out, err = brokerproc.cli(build, b.addr, "topic", "create", "t", "--partitions", "1", timeout=30)
    check(rc == 0, "a real client is served with every slot taken (%s)" % err.strip())
    rc, out, err = brokerproc.cli(build, b.addr, "topic", "list", timeout=30)
    check(rc == 0, "and again")
    # One byte a second of Hello from the slow ones; none of them finishes.
    for i in range(1, 4):
        for s in slow:
            try:
                s.send(hello[i:i + 1])
            except OSError:
                pass
        time.sleep(1)
    check(brokerproc.wait_until(lambda: all(closed_by_peer(s) for s in socks), 10),
          "every connection without Hello is closed by the broker (%d still open)" %
          sum(not closed_by_peer(s) for s in socks))
    m = b.scrape()
    check(m.get("synclog_connections_evicted_total", 0) > 0, "evictions counted")
    check(m.get("synclog_connections_timed_out_total", 0) > 0, "handshake timeouts counted")
    check(m.get("synclog_connections", -1) == 0, "no connection left open (%s)" % m.get("synclog_connections"))
finally:
    for s in socks:
        s.close()
    rc = b.stop()
    check(rc == 0, "broker exits 0 on SIGTERM (got %s)" % rc)

b = brokerproc.Broker(build, data, ["--idle-timeout", "1s"])
try:
    def session():
        s = wire.connect(b.port)
        s.sendall(wire.hello())
        check(wire.error_of(wire.read_frame(s)) == 0, "hello")
        return s
    quiet, polling, busy = session(), session(), session()
    polling.sendall(wire.fetch(5, "t", [(0, 0, 1000)], min_bytes=1, wait_ms=3000))
    for i in range(6):
        busy.sendall(wire.describe(10 + i, "t"))
        check(wire.error_of(wire.read_frame(busy)) == 0, "busy connection answered (%d)" % i)
        time.sleep(0.5)
    check(closed_by_peer(quiet), "a quiet connection is closed after --idle-timeout 1s")
    polling.setblocking(True)
    polling.settimeout(10)
    r = wire.read_frame(polling)
    check(r is not None and wire.error_of(r) == 0, "the long poll parked for 3 s was answered, not cut")
    busy.sendall(wire.describe(20, "t"))
    check(wire.read_frame(busy) is not None, "the busy connection is still open")
finally:
    rc = b.stop()
    check(rc == 0, "broker exits 0 on SIGTERM (got %s)" % rc)
    shutil.rmtree(root, ignore_errors=True)
finish()
PY
