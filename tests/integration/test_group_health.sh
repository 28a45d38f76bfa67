#!/usr/bin/env bash
# Issue 14, consumer health judged by the broker (--stall-after 2s, a window of 4 samples, a tick of 500 ms):
#   - a group whose consumer stops (SIGSTOP: still a member) while producers go on becomes `stalled`, within
#     stall-after plus one tick of its last commit, in `group describe` and in /metrics, and the change is logged once;
#   - a consumer that recovers (SIGCONT) returns to `ok`;
#   - an idle topic's group is `idle` and never `stalled`;
#   - a slow consumer whose commits move while its lag grows is `lagging`, never `stalled`;
#   - a group without members whose records wait is `stopped`.
set -euo pipefail
BUILD=${1:-build/release}
exec python3 - "$BUILD" <<'PY'
import re, signal, sys, threading, time
sys.path.insert(0, "tests/integration")
from healthlib import Env, fail, wait_for
import wire

STALL_MS, TICK_MS = 2000, 500
e = Env(sys.argv[1])
stop = threading.Event()

def state(group, partition=0):
    rows = [r for r in e.describe(group) if r["partition"] == partition]
    return rows[0] if rows else None

def producer(topic, every_s, n):
    i = 0
    while not stop.is_set():
        e.produce(topic, ["k%d\tv%d\n" % (i + j, i + j) for j in range(n)])
        i += n
        time.sleep(every_s)

try:
    e.start_broker("--stall-after", "2s", "--health-window", "4", "--initial-rebalance-delay", "0")
    for t in ("s", "i", "l", "o"):
        e.cli("topic", "create", t, "--partitions", "1")
    e.produce("i", ["k%d\tv\n" % i for i in range(10)])
    e.produce("o", ["k%d\tv\n" % i for i in range(10)])
    threads = [threading.Thread(target=producer, args=("s", 0.1, 10), daemon=True),
               threading.Thread(target=producer, args=("l", 0.25, 20), daemon=True)]
    for t in threads:
        t.start()
    cs = e.spawn("consume", "s", "--group", "gs", "--follow", "--session-timeout-ms", "60000",
                 "--commit-interval-ms", "100", stdout=open("/dev/null", "w"))
    ci = e.spawn("consume", "i", "--group", "gi", "--follow", "--session-timeout-ms", "60000",
                 "--commit-interval-ms", "100", stdout=open("/dev/null", "w"))
    # The slow consumer: a member that commits 5 records every 250 ms while 20 arrive.
    sock = wire.connect(e.port)
    sock.sendall(wire.hello())
    wire.read_frame(sock)
    sock.sendall(wire.join(2, "gl", ["l"], session_timeout_ms=60000))
    member, gen = wire.joined(wire.read_frame(sock))
    slow = {"offset": 0}
    def slow_consumer():
        corr = 10
        while not stop.is_set():
            slow["offset"] += 5
            sock.sendall(wire.commit(corr, "gl", "l", {0: slow["offset"]}, member, gen))
            if wire.error_of(wire.read_frame(sock)) != 0:
                return
            corr += 1
            time.sleep(0.25)
    threading.Thread(target=slow_consumer, daemon=True).start()
    # Group go: offsets only (an operator's commit), no member, records waiting.
    e.cli("offsets", "reset", "--group", "go", "--topic", "o", "--to-offset", "5", "--execute")

    wait_for("gs to consume (ok)", lambda: (r := state("gs")) and r["committed"] > 0 and r["state"] == "ok")
    wait_for("gi to catch up", lambda: (r := state("gi")) and r["lag"] == 0)

    # Stalled: the consumer stops; its member stays (60 s session) and records keep coming.
    cs.send_signal(signal.SIGSTOP)
    r = wait_for("gs to become stalled", lambda: (r := state("gs")) and r["state"] == "stalled" and r, seconds=20)
    since, last = r["state_since_ms"], r["last_commit_ms"]
    if not STALL_MS <= since - last <= STALL_MS + TICK_MS + 1500:
        fail("stalled %d ms after the last commit; expected stall-after %d ms plus at most a tick (%d ms)"
             % (since - last, STALL_MS, TICK_MS))
    m = e.metrics()
    if 'synclog_group_state{group="gs",topic="s",partition="0",state="stalled"} 1' not in m:
        fail("/metrics does not say gs is stalled:\n" + "\n".join(l for l in m.splitlines() if "gs" in l))
    lag = re.search(r'synclog_group_lag_records\{group="gs",topic="s",partition="0"\} (\d+)', m)
    if not lag or int(lag.group(1)) == 0:
        fail("/metrics shows no lag for the stalled group")
    stalled_lines = [l for l in e.log().splitlines() if "group_state" in l and "group=gs" in l and "state=stalled" in l]
    if len(stalled_lines) != 1 or "lag=" not in stalled_lines[0] or "lag_ms=" not in stalled_lines[0]:
        fail("the change to stalled was not logged exactly once with lag and lag_ms: %s" % stalled_lines)

    # Lagging (measured while gs was stalled: the slow consumer had seconds of samples by now).
    wait_for("gl to be lagging", lambda: (r := state("gl")) and r["state"] == "lagging", seconds=20)
    # Stopped: no member, records waiting for stall-after.
    wait_for("go to be stopped", lambda: (r := state("go")) and r["state"] == "stopped", seconds=20)

    # Recovery: the consumer goes on, catches up and commits; producers still running.
    cs.send_signal(signal.SIGCONT)
    wait_for("gs to recover to ok", lambda: (r := state("gs")) and r["state"] == "ok", seconds=20)
    time.sleep(1)
    stop.set()
    log = e.log()
    if re.search(r"group=gi .*state=stalled", log) or re.search(r"group=gl .*state=(stalled|stopped)", log):
        fail("an idle or a slow-but-moving group was reported stalled:\n%s" % log)
    if state("gi")["state"] != "idle":
        fail("the idle topic's group is %s, not idle" % state("gi")["state"])
    print("ok: stalled %d ms after the last commit, lagging, stopped, idle never stalled, recovery to ok"
          % (since - last))
finally:
    stop.set()
    e.close()
PY
