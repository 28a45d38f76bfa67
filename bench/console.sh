#!/usr/bin/env bash
# The console benchmark (issue 22): what the web console's API costs on a large broker, and what a console left
# open does to producers. Writes bench/results/console.json and prints it. On one broker over loopback:
#   setup    PARTITIONS partitions (10,000 by default, in topics of 1,000), one record each, and GROUPS groups
#            (1,000) committing on 10 partitions each; then two health ticks.
#   api      REQUESTS requests of each endpoint one after the other, client-side wall time (p50, max), how long
#            each held the broker's loop (synclog_console_request_loop_seconds, read after it) and its size:
#            overview and status (the Status handler over every topic and group), topics (all settings, first
#            page), a topic of 1,000 partitions, a page of 20 messages, groups, one group.
#   produce  one record at a time at acks written (synclog-bench produce --one-at-a-time): ack latency without the
#            console, then while a poller requests overview, a topic and a group back to back (a far heavier load
#            than a browser tab refreshing every 5 s).
#
# Usage: bench/console.sh [BUILD_DIR]   PARTITIONS=N GROUP_COUNT=N REQUESTS=N RECORDS=N override the
# sizes (not GROUPS: bash keeps that name for itself).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_paths "${1:-}" synclogd synclog synclog-bench
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec python3 - "$build" "$root" <<'PY'
import json, os, re, socket, subprocess, sys, threading, time, urllib.request
build, root = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(root, "tests/integration"))
import wire

partitions = int(os.environ.get("PARTITIONS", 10000))
groups = int(os.environ.get("GROUP_COUNT", 1000))
requests = int(os.environ.get("REQUESTS", 20))
records = int(os.environ.get("RECORDS", 20000))
data = os.path.join(root, "build/bench-data-console")
subprocess.run(["rm", "-rf", data])
os.makedirs(data)
s = socket.socket(); s.bind(("127.0.0.1", 0)); mport = s.getsockname()[1]; s.close()
broker = subprocess.Popen([os.path.join(build, "bin/synclogd"), "--data-dir", data, "--listen", "127.0.0.1:0",
                           "--metrics", "127.0.0.1:%d" % mport, "--initial-rebalance-delay", "0"],
                          stdout=subprocess.PIPE, stderr=open(os.path.join(data, "../bench-console.err"), "w"), text=True)
try:
    addr = broker.stdout.readline().strip().rsplit(" ", 1)[1]
    port = int(addr.rsplit(":", 1)[1])
    env = dict(os.environ, SYNCLOG_BROKER=addr)
    cli = lambda *a: subprocess.run([os.path.join(build, "bin/synclog"), *a], env=env, check=True,
                                    capture_output=True, text=True)
    topics, left = [], partitions
    while left > 0:
        n = min(1000, left)
        topics.append(("t%02d" % len(topics), n))
        cli("topic", "create", topics[-1][0], "--partitions", str(n))
        left -= n
    sock = wire.connect(port)
    sock.sendall(wire.hello()); wire.read_frame(sock)
    corr = 10
    for name, n in topics:
        for p in range(n):
            sock.sendall(wire.produce(corr, name, p, wire.record_batch([(b"k", b'{"v": 1}')]), acks=1)); corr += 1
        for p in range(n):
            wire.read_frame(sock)
    sizes = dict(topics)
    for g in range(groups):
        name = topics[g % len(topics)][0]
        base = (g * 10) % sizes[name]
        sock.sendall(wire.commit(corr, "group-%04d" % g, name, {(base + k) % sizes[name]: 0 for k in range(10)})); corr += 1
    for g in range(groups):
        if wire.error_of(wire.read_frame(sock)) != 0:
            raise SystemExit("a group commit was refused")
    time.sleep(2.5)

    def get(path):
        t0 = time.perf_counter()
        body = urllib.request.urlopen("http://127.0.0.1:%d/api/v1/%s" % (mport, path), timeout=60).read()
        return time.perf_counter() - t0, len(body)
    q = lambda v, f: sorted(v)[min(len(v) - 1, int(f * len(v)))]
    endpoints = ["overview", "status", "topics", "topics/t00", "topics/t00?limit=1000",
                 "topics/t00/messages?partition=0", "groups", "groups/group-0000"]
    api = {}
    def loop_s():
        m = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=60).read()
        return float(re.search(rb"^synclog_console_request_loop_seconds ([0-9.e+-]+)$", m, re.M).group(1))
    for e in endpoints:
        walls, loops, size = [], [], 0
        for _ in range(requests):
            w, size = get(e)
            walls.append(w)
            loops.append(loop_s())
        api[e] = {"wall_p50_ms": round(q(walls, 0.5) * 1e3, 2), "wall_max_ms": round(max(walls) * 1e3, 2),
                  "loop_p50_ms": round(q(loops, 0.5) * 1e3, 3), "loop_max_ms": round(max(loops) * 1e3, 3),
                  "bytes": size}

    def produce(label):
        out = subprocess.run([os.path.join(build, "bin/synclog-bench"), "produce", "--broker", addr, "--topic", "lat",
                              "--one-at-a-time", "--acks", "written", "--count", str(records), "--label", label],
                             capture_output=True, text=True, check=True).stdout
        return json.loads(out)["ack_latency"]
    cli("topic", "create", "lat", "--partitions", "1")
    quiet = produce("no console")
    stop, during = threading.Event(), {"n": 0}
    def poller():
        while not stop.is_set():
            for e in ("overview", "topics/t00", "groups/group-0000"):
                get(e)
                during["n"] += 1
    th = threading.Thread(target=poller); th.start()
    busy = produce("console polling")
    stop.set(); th.join()
    keys = ("p50_us", "p99_us", "p999_us", "max_us")
    result = {"partitions": partitions, "groups": groups, "group_partitions": groups * 10, "api": api,
              "produce_ack_us_without_console": {k: quiet[k] for k in keys},
              "produce_ack_us_during_console": {k: busy[k] for k in keys},
              "console_requests_during_produce": during["n"]}
    out = os.path.join(root, "bench/results/console.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    open(out, "w").write(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
finally:
    broker.terminate()
    broker.wait()
    subprocess.run(["rm", "-rf", data])
PY
