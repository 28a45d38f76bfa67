#!/usr/bin/env bash
# Issue 19: a topic's sync contract sets the stall-after of the groups reading it (recovery.alert.stall_after), in
# the broker's own health evaluation. The broker runs with its default --stall-after (60 s); topic c's contract
# says 2s, topic n has none. Three groups, each a member (wire join, 60 s session) that commits once and then
# stands still while records wait:
#   - gc on c becomes `stalled`, never before 2 s after its last commit; describe shows stall_after_ms 2000 and
#     names the contract on a line of its own;
#   - gn on n (no contract) and gx on c with its own `group alter --stall-after 30s` are not stalled meanwhile
#     (their stall-after, 60 s and 30 s, has not passed) and describe shows 60000 and 30000;
#   - `group alter gx --stall-after 0` gives gx back the contract's 2s: it becomes stalled too;
#   - a contract set without stall_after gives gc the broker's 60 s again (describe says 60000).
set -euo pipefail
BUILD=${1:-build/release}
exec python3 - "$BUILD" <<'PY'
import os, sys, time
sys.path.insert(0, "tests/integration")
from healthlib import Env, fail, wait_for
import wire

e = Env(sys.argv[1])

def row(group):
    rows = [r for r in e.describe(group) if r["partition"] == 0]
    return rows[0] if rows else None

def contract(path, stall_after):
    with open(path, "w") as f:
        f.write("source_of_truth:\n  system: billing\n")
        if stall_after:
            f.write("recovery:\n  alert:\n    stall_after: %s\n" % stall_after)
    return path

try:
    e.start_broker("--initial-rebalance-delay", "0")  # --stall-after: the default, 60 s
    for t in ("c", "n"):
        e.cli("topic", "create", t, "--partitions", "1")
    e.cli("contract", "set", "c", contract(os.path.join(e.root, "c.yaml"), "2s"))
    e.cli("group", "alter", "gx", "--stall-after", "30s")
    socks = {}
    for corr, (group, topic) in enumerate((("gc", "c"), ("gn", "n"), ("gx", "c")), start=2):
        e.produce(topic, ["k%d\tv\n" % i for i in range(10)])
        sock = wire.connect(e.port)
        sock.sendall(wire.hello())
        wire.read_frame(sock)
        sock.sendall(wire.join(corr, group, [topic], session_timeout_ms=60000))
        member, gen = wire.joined(wire.read_frame(sock))
        sock.sendall(wire.commit(100 + corr, group, topic, {0: 1}, member, gen))
        if wire.error_of(wire.read_frame(sock)) != 0:
            fail("the commit of %s was refused" % group)
        socks[group] = sock  # kept open: the member stays live

    r = wait_for("gc to become stalled", lambda: (r := row("gc")) and r["state"] == "stalled" and r, seconds=30)
    if r["stall_after_ms"] != 2000:
        fail("gc's partition is judged with stall_after_ms %s, not the contract's 2000" % r["stall_after_ms"])
    if r["state_since_ms"] - r["last_commit_ms"] < 2000:
        fail("gc became stalled %d ms after its last commit, before the contract's 2 s"
             % (r["state_since_ms"] - r["last_commit_ms"]))
    now_ms = int(time.time() * 1000)
    for group, want in (("gn", 60000), ("gx", 30000)):
        g = row(group)
        if g is None or g["stall_after_ms"] != want:
            fail("%s: stall_after_ms %s, expected %d" % (group, g and g["stall_after_ms"], want))
        if g["lag"] <= 0:
            fail("%s has no lag: the test needs records waiting" % group)
        if now_ms - g["last_commit_ms"] < want and g["state"] == "stalled":
            fail("%s is stalled %d ms after its last commit, before its stall-after of %d ms"
                 % (group, now_ms - g["last_commit_ms"], want))
    text = e.cli("group", "describe", "gc").stdout
    if "topic c: stall-after 2000 ms (its sync contract's recovery.alert.stall_after)" not in text:
        fail("group describe gc does not name the contract's stall-after:\n" + text)
    if "stall-after" in e.cli("group", "describe", "gn").stdout.split("\n", 1)[1]:
        fail("group describe gn names a contract's stall-after for a topic without a contract")

    # The group's own setting wins; without it, the contract's.
    e.cli("group", "alter", "gx", "--stall-after", "0")
    r = wait_for("gx to become stalled on the contract's 2 s", lambda: (r := row("gx")) and r["state"] == "stalled"
                 and r, seconds=30)
    if r["stall_after_ms"] != 2000:
        fail("gx after group alter --stall-after 0: stall_after_ms %s, not the contract's 2000" % r["stall_after_ms"])

    # A new contract version without stall_after: the broker's default again.
    e.cli("contract", "set", "c", contract(os.path.join(e.root, "c2.yaml"), None))
    wait_for("gc back on the broker's stall-after", lambda: (r := row("gc")) and r["stall_after_ms"] == 60000)
    print("ok: stalled on the contract's stall-after (2 s) while the broker's 60 s and a group's own 30 s held; "
          "the group's own setting wins; a contract without it falls back to the broker's")
finally:
    e.close()
PY
