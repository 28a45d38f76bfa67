#!/usr/bin/env bash
# Issue 14: /healthz says the process is alive and /readyz that recovery finished and the listener accepts. The
# metrics listener answers from the start, while a broker killed with -9 recovers 3,000 partitions: /healthz 200 and
# /readyz 503 before the readiness line, /readyz 200 once it is printed; 503 again while shutting down is not asked
# here (the listener closes with the rest). Unknown paths are 404.
set -euo pipefail
BUILD=${1:-build/release}
exec python3 - "$BUILD" <<'PY'
import os, resource, select, signal, sys, time
sys.path.insert(0, "tests/integration")
from healthlib import Env, fail

# Four descriptors per partition: raise the soft limit as far as the hard one allows.
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
e = Env(sys.argv[1])
try:
    e.start_broker("--segment-bytes", "1048576")
    for t in ("a", "b", "c"):
        e.cli("topic", "create", t, "--partitions", "1000")
    e.produce("a", ["k%d\tv\n" % i for i in range(20000)])
    e.broker.kill()
    e.broker.wait()
    e.start_broker(wait_ready=False)
    seen = []  # (healthz, readyz, ready line printed)
    ready = False
    deadline = time.time() + 120
    while time.time() < deadline:
        h, _ = e.http("/healthz")
        r, body = e.http("/readyz")
        if not ready and select.select([e.broker.stdout], [], [], 0)[0]:
            e.wait_ready()
            ready = True
        seen.append((h, r, ready))
        if ready and r == 200:
            break
        time.sleep(0.01)
    else:
        fail("not ready within 120 s: %s" % e.log()[-2000:])
    before = [s for s in seen if not s[2]]
    if not any(h == 200 and r == 503 for h, r, _ in before):
        fail("no /healthz 200 with /readyz 503 while recovering (observations before the readiness line: %s)"
             % before[:10])
    if any(r == 200 for h, r, _ in before[:-1]):
        fail("/readyz said 200 before recovery finished: %s" % before)
    status, body = e.http("/healthz")
    if status != 200 or body.strip() != "ok":
        fail("/healthz after recovery: %d %r" % (status, body))
    if e.http("/nope")[0] != 404:
        fail("an unknown path is not 404")
    if "synclog_ready 1" not in e.metrics():
        fail("synclog_ready is not 1 once ready")
    e.cli("topic", "describe", "a")
    print("ok: %d observations while recovering, /healthz 200 and /readyz 503 until ready" % len(before))
finally:
    e.close()
PY
