#!/usr/bin/env bash
# Fencing of consumer groups: a zombie's commit (an older generation, or a member that expired) is refused and
# changes nothing; a paused member that wakes up after its partitions moved does not move the group's offsets
# back; `offsets reset` and `group delete` are refused while the group has live members unless --force (a member
# removed by a forced delete joins again); and
# committed offsets survive kill -9 of the broker, so a consumer resumes exactly where the group stood.
set -euo pipefail
BUILD=${1:-build/release}
exec python3 - "$BUILD" <<'PY'
import json, os, shutil, signal, subprocess, sys, time
sys.path.insert(0, "tests/integration")
import testenv
import wire

build, root, data = testenv.dirs()
synclog = os.path.join(build, "bin/synclog")
procs = []
env = dict(os.environ)

ILLEGAL_GENERATION, UNKNOWN_MEMBER, REBALANCE_IN_PROGRESS = 32, 31, 33


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def start_broker(port=0):
    p = subprocess.Popen([os.path.join(build, "bin/synclogd"), "--data-dir", data, "--listen", "127.0.0.1:%d" % port,
                          "--metrics", "off"], stdout=subprocess.PIPE, text=True)
    procs.append(p)
    line = p.stdout.readline().strip()
    env["SYNCLOG_BROKER"] = line.rsplit(" ", 1)[1]
    return p, int(line.rsplit(":", 1)[1])


def cli(*args, check=True, stdin=None):
    r = subprocess.run([synclog, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        fail("synclog %s exited %d: %s" % (" ".join(args), r.returncode, r.stderr))
    return r


def consumer(*args):
    p = subprocess.Popen([synclog, "consume", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    procs.append(p)
    return p


def produce(first, last):
    cli("produce", "t", stdin="".join("k%d\tv%d\n" % (i, i) for i in range(first, last + 1)))


def committed(group="g"):
    r = cli("--json", "group", "describe", group)
    return [json.loads(l)["committed"] for l in r.stdout.splitlines()]


def members(group="g"):
    for l in cli("--json", "group", "list").stdout.splitlines():
        g = json.loads(l)
        if g["group"] == group:
            return g["members"]
    return 0


def wait_for(what, cond, seconds=20):
    deadline = time.time() + seconds
    while not cond():
        if time.time() > deadline:
            fail("timed out waiting for " + what)
        time.sleep(0.1)


def call(s, frame):
    s.sendall(frame)
    return wire.read_frame(s)


try:
    broker, port = start_broker()
    cli("topic", "create", "t", "--partitions", "4")
    produce(1, 400)
    end = [json.loads(l)["next_offset"] for l in cli("--json", "topic", "describe", "t").stdout.splitlines()]

    # 1. A zombie: member A joins (generation 1), a real consumer joins (generation 2): A's commit in generation 1
    # is refused and changes nothing; its heartbeat says to join again; once expired, its commit is refused too.
    a = wire.session(port)
    member, gen = wire.joined(call(a, wire.join(2, "g", ["t"], session_timeout_ms=1000)))
    if gen != 1:
        fail("first join got generation %d" % gen)
    if wire.error_of(call(a, wire.commit(3, "g", "t", {0: 5, 1: 5, 2: 5, 3: 5}, member, gen))) != 0:
        fail("a live member's commit was refused")
    b = consumer("t", "--group", "g", "--follow", "--session-timeout-ms", "2000", "--commit-interval-ms", "100")
    wait_for("the consumer to join", lambda: members() == 2)
    wait_for("the consumer to commit its partitions", lambda: sorted(committed()).count(5) == 2)
    before = committed()
    err = wire.error_of(call(a, wire.commit(4, "g", "t", {0: 1, 1: 1, 2: 1, 3: 1}, member, gen)))
    if err != ILLEGAL_GENERATION:
        fail("a zombie's commit from generation %d got error %d, expected ILLEGAL_GENERATION" % (gen, err))
    if committed() != before:
        fail("a refused commit changed the offsets: %s -> %s" % (before, committed()))
    if wire.error_of(call(a, wire.heartbeat(5, "g", member, gen))) != REBALANCE_IN_PROGRESS:
        fail("a stale heartbeat was not told to rejoin")
    wait_for("member A to expire", lambda: members() == 1)
    err = wire.error_of(call(a, wire.commit(6, "g", "t", {0: 1}, member, gen + 1)))
    if err != UNKNOWN_MEMBER:
        fail("an expired member's commit got error %d, expected UNKNOWN_MEMBER" % err)
    wait_for("the consumer to own and finish every partition", lambda: committed() == end)

    # 2. Operator actions while a member is live: refused without --force, nothing changed; done with --force.
    r = cli("offsets", "reset", "--group", "g", "--topic", "t", "--to-earliest", "--execute", check=False)
    if r.returncode != 1 or "live member" not in r.stderr:
        fail("reset with a live member: exit %d, %s" % (r.returncode, r.stderr))
    r = cli("offsets", "reset", "--group", "g", "--topic", "t", "--to-earliest", check=False)
    if r.returncode != 1:
        fail("a dry run with a live member was not refused")
    if committed() != end:
        fail("a refused reset changed the offsets")
    cli("offsets", "reset", "--group", "g", "--topic", "t:0", "--to-earliest", "--execute", "--force")
    if committed()[0] != 0:
        fail("--force did not reset")
    d = consumer("t", "--group", "d", "--follow", "--session-timeout-ms", "2000")
    wait_for("a member of group d", lambda: members("d") == 1)
    r = cli("group", "delete", "d", check=False)
    if r.returncode != 1 or "live members" not in r.stderr:
        fail("delete with a live member: exit %d, %s" % (r.returncode, r.stderr))
    cli("group", "delete", "d", "--force")
    # The removed member learns it at its next heartbeat and joins again, as a new member of a new group d.
    wait_for("the removed member to join again", lambda: members("d") == 1)
    d.send_signal(signal.SIGTERM)
    if d.wait(timeout=20) != 0:
        fail("the consumer of a deleted group exited %d: %s" % (d.returncode, d.stderr.read()))

    # 3. A member paused past its session timeout (SIGSTOP) while its partitions move on: when it wakes up, it
    # joins again and the group's offsets never go back.
    b.send_signal(signal.SIGTERM)
    b.wait(timeout=20)
    cli("offsets", "reset", "--group", "g", "--topic", "t", "--to-latest", "--execute")
    z = consumer("t", "--group", "g", "--follow", "--session-timeout-ms", "1000", "--commit-interval-ms", "100")
    wait_for("the zombie-to-be to join", lambda: members() == 1)
    time.sleep(0.5)
    z.send_signal(signal.SIGSTOP)
    produce(401, 800)
    wait_for("the paused member to expire", lambda: members() == 0)
    y = consumer("t", "--group", "g", "--follow", "--session-timeout-ms", "2000", "--commit-interval-ms", "100")
    end = [json.loads(l)["next_offset"] for l in cli("--json", "topic", "describe", "t").stdout.splitlines()]
    wait_for("the new member to read everything", lambda: committed() == end)
    z.send_signal(signal.SIGCONT)
    wait_for("the woken member to join again", lambda: members() == 2)
    deadline = time.time() + 2
    while time.time() < deadline:
        if any(c < e for c, e in zip(committed(), end)):
            fail("the woken member moved the offsets back: %s < %s" % (committed(), end))
        time.sleep(0.1)
    for p in (y, z):
        p.send_signal(signal.SIGTERM)
        if p.wait(timeout=20) != 0:
            fail("a consumer exited %d: %s" % (p.returncode, p.stderr.read()))
    cli("group", "delete", "g")
    if "g" in [json.loads(l)["group"] for l in cli("--json", "group", "list").stdout.splitlines()]:
        fail("group g still listed after delete")

    # 4. Commits survive kill -9 of the broker: a consumer resumes exactly where the group stood; and a member that
    # follows the topic meanwhile reconnects, joins the restarted broker's group again and reads on.
    first = cli("consume", "t", "--group", "h", "--max", "300").stdout.splitlines()
    kept = committed("h")
    f = consumer("t", "--group", "live", "--follow", "--session-timeout-ms", "2000", "--commit-interval-ms", "100")
    wait_for("the follower to read everything", lambda: members("live") == 1 and committed("live") == end)
    broker.kill()
    broker.wait()
    time.sleep(0.5)
    broker, port = start_broker(port)
    if committed("h") != kept:
        fail("commits changed across kill -9: %s -> %s" % (kept, committed("h")))
    rest = cli("consume", "t", "--group", "h").stdout.splitlines()
    seen = [l.split("\t")[3] for l in first + rest]
    if len(first) != 300 or len(seen) != 800 or len(set(seen)) != 800:
        fail("after kill -9: %d + %d records, %d distinct (expected 300 + 500, 800 distinct)" %
             (len(first), len(rest), len(set(seen))))
    wait_for("the follower to join the restarted broker", lambda: members("live") == 1)
    produce(801, 900)
    end = [json.loads(l)["next_offset"] for l in cli("--json", "topic", "describe", "t").stdout.splitlines()]
    wait_for("the follower to read the records written after the restart", lambda: committed("live") == end)
    f.send_signal(signal.SIGTERM)
    out, err = f.communicate(timeout=20)
    vals = set(l.split("\t")[3] for l in out.splitlines())
    if f.returncode != 0 or vals != set("v%d" % i for i in range(1, 901)):
        fail("the follower exited %d having seen %d distinct records of 900: %s" % (f.returncode, len(vals), err))
    broker.terminate()
    if broker.wait() != 0:
        fail("broker exit code")
    print("ok: zombie commits refused, a woken member does not move offsets back, operator actions fenced, "
          "commits survive kill -9, a follower rejoins the restarted broker")
finally:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    shutil.rmtree(root, ignore_errors=True)
PY
