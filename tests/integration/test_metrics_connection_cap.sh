#!/usr/bin/env bash
# The metrics port cannot take the descriptors the main listener needs: with the broker at 1,200 descriptors,
# 1,300 idle connections to the metrics port leave it at most 16 scrapes open (the rest closed at accept), the
# main port keeps serving clients, idle scrapes are closed after their 5 s timeout, and a real scrape works
# afterwards. Before the fix the idle connections filled the descriptor table and every client of the main port
# was refused.
set -euo pipefail
build=${1:-build/release}
exec python3 - "$build" <<'PY'
import os, shutil, socket, sys, time
sys.path.insert(0, "tests/integration")
import testenv
from checks import check, finish
import brokerproc

build, root, data = testenv.dirs()
brokerproc.raise_nofile(4096)

b = brokerproc.Broker(build, data, metrics=True, nofile=1200)
socks = []
try:
    for _ in range(1300):
        try:
            socks.append(socket.create_connection(("127.0.0.1", b.metrics_port), timeout=5))
        except OSError:
            pass
    time.sleep(0.5)
    print("   %d metrics connections made; broker holds %d descriptors" % (len(socks), b.fds()))
    check(b.fds() < 400, "the broker holds fewer than 400 descriptors (%d)" % b.fds())
    rc, out, err = brokerproc.cli(build, b.addr, "topic", "create", "t", "--partitions", "2", timeout=30)
    check(rc == 0, "the main port serves a client meanwhile (%s)" % err.strip())
    rc, out, err = brokerproc.cli(build, b.addr, "topic", "list", timeout=30)
    check(rc == 0 and "t" in out, "and another")

    # Every idle scrape is closed by the broker: at accept past the cap, the others at their timeout.
    def all_closed():
        for s in list(socks):
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    socks.remove(s)
                    s.close()
            except BlockingIOError:
                pass
            except OSError:
                socks.remove(s)
                s.close()
        return not socks
    check(brokerproc.wait_until(all_closed, 15), "idle metrics connections closed by the broker (%d open)" % len(socks))
    m = b.scrape()
    check(m.get("synclog_metrics_connections_refused_total", 0) > 0, "refused scrapes counted")
    check(m.get("synclog_metrics_connections_timed_out_total", 0) > 0, "timed-out scrapes counted")
    check(b.alive(), "broker still running")
finally:
    for s in socks:
        s.close()
    rc = b.stop()
    check(rc == 0, "broker exits 0 on SIGTERM (got %s)" % rc)
    shutil.rmtree(root, ignore_errors=True)
finish()
PY
