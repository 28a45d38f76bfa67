#!/usr/bin/env bash
# The metrics benchmark (issue 14): what a Prometheus scrape of a large broker costs, and what it does to producers.
# Writes bench/results/scrape.json and prints it. On one broker over loopback:
#   setup    PARTITIONS partitions (10,000 by default, in topics of 1,000) and GROUP_COUNT groups (1,000), each group
#            committing offsets on 10 partitions (10,000 group partitions: 60,000 state series), one record per
#            partition so every lag series is real; then two health ticks.
#   scrape   SCRAPES scrapes of /metrics one after the other: the wall time of each HTTP answer (client side), how
#            long each held the broker's loop (synclog_scrape_loop_seconds: the small families and the snapshot; the
#            thread pool formats the rest), the size of the answer.
#   produce  one record at a time at acks written on a topic of its own (synclog-bench produce --one-at-a-time):
#            ack latency percentiles without scrapes, then again while a scraper requests /metrics back to back.
# The broker keeps partition files in a bounded descriptor cache, so any PARTITIONS fits the descriptor limit.
#
# Usage: bench/scrape.sh [BUILD_DIR]   PARTITIONS=N GROUP_COUNT=N SCRAPES=N RECORDS=N override the sizes.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_paths "${1:-}" synclogd synclog synclog-bench
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec python3 - "$build" "$root" <<'PY'
import json, os, re, resource, socket, struct, subprocess, sys, threading, time, urllib.request
build, root = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(root, "tests/integration"))
import wire

want = int(os.environ.get("PARTITIONS", 10000))
groups = int(os.environ.get("GROUP_COUNT", 1000))
scrapes = int(os.environ.get("SCRAPES", 20))
records = int(os.environ.get("RECORDS", 20000))
fds = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
partitions = want
data = os.path.join(root, "build/bench-data-scrape")
subprocess.run(["rm", "-rf", data])
os.makedirs(data)
s = socket.socket(); s.bind(("127.0.0.1", 0)); mport = s.getsockname()[1]; s.close()
broker = subprocess.Popen([os.path.join(build, "bin/synclogd"), "--data-dir", data, "--listen", "127.0.0.1:0",
                           "--metrics", "127.0.0.1:%d" % mport, "--initial-rebalance-delay", "0"],
                          stdout=subprocess.PIPE, stderr=open(os.path.join(data, "../bench-scrape.err"), "w"), text=True)
try:
    addr = broker.stdout.readline().strip().rsplit(" ", 1)[1]
    port = int(addr.rsplit(":", 1)[1])
    env = dict(os.environ, SYNCLOG_BROKER=addr)
    cli = lambda *a, **k: subprocess.run([os.path.join(build, "bin/synclog"), *a], env=env, check=True,
                                         capture_output=True, text=True, **k)
    topics = []
    left = partitions
    while left > 0:
        n = min(1000, left)
        name = "t%02d" % len(topics)
        cli("topic", "create", name, "--partitions", str(n))
        topics.append((name, n))
        left -= n
    sock = wire.connect(port)
    sock.sendall(wire.hello()); wire.read_frame(sock)
    # One record in every partition (so lag series have values), written straight as batches.
    corr = 10
    for name, n in topics:
        for p in range(n):
            batch = wire.record_batch([(b"k", b"v")])
            sock.sendall(wire.produce(corr, name, p, batch, acks=1)); corr += 1
        for p in range(n):
            wire.read_frame(sock)
    # Groups: each commits offset 0 on 10 partitions of one topic (pipelined: the broker group-commits them).
    flat = [(name, p) for name, n in topics for p in range(n)]
    for g in range(groups):
        offs = {}
        name = flat[(g * 10) % len(flat)][0]
        base = (g * 10) % dict(topics)[name]
        for k in range(10):
            offs[(base + k) % dict(topics)[name]] = 0
        sock.sendall(wire.commit(corr, "group-%04d" % g, name, offs)); corr += 1
    for g in range(groups):
        if wire.error_of(wire.read_frame(sock)) != 0:
            raise SystemExit("a group commit was refused")
    time.sleep(2.5)
    url = "http://127.0.0.1:%d/metrics" % mport
    def scrape():
        t0 = time.perf_counter()
        body = urllib.request.urlopen(url, timeout=60).read()
        return time.perf_counter() - t0, body
    walls, renders, size = [], [], 0
    for _ in range(scrapes + 1):
        wall, body = scrape()
        size = len(body)
        m = re.search(rb"^synclog_scrape_loop_seconds ([0-9.e+-]+)$", body, re.M)
        walls.append(wall)
        if m:
            renders.append(float(m.group(1)))  # how long the previous scrape held the loop
    walls = walls[1:]
    renders = renders[1:]
    lines = body.count(b"\n")
    def produce(label):
        out = subprocess.run([os.path.join(build, "bin/synclog-bench"), "produce", "--broker", addr, "--topic", "lat",
                              "--one-at-a-time", "--acks", "written", "--count", str(records), "--label", label],
                             capture_output=True, text=True, check=True).stdout
        return json.loads(out)["ack_latency"]
    cli("topic", "create", "lat", "--partitions", "1")
    quiet = produce("no scrapes")
    stop = threading.Event()
    during = {"n": 0}
    def scraper():
        while not stop.is_set():
            scrape()
            during["n"] += 1
    th = threading.Thread(target=scraper); th.start()
    busy = produce("scraping")
    stop.set(); th.join()
    q = lambda v, f: sorted(v)[min(len(v) - 1, int(f * len(v)))]
    result = {
        "partitions": partitions, "partitions_wanted": want, "descriptor_limit": fds, "groups": groups,
        "group_partitions": groups * 10, "scrape_bytes": size, "scrape_lines": lines,
        "scrape_wall_ms": {"p50": round(q(walls, 0.5) * 1e3, 2), "max": round(max(walls) * 1e3, 2)},
        "scrape_loop_ms": {"p50": round(q(renders, 0.5) * 1e3, 2), "max": round(max(renders) * 1e3, 2)} if renders else None,
        "produce_ack_us_without_scrapes": {k: quiet[k] for k in ("p50_us", "p99_us", "p999_us", "max_us")},
        "produce_ack_us_during_scrapes": {k: busy[k] for k in ("p50_us", "p99_us", "p999_us", "max_us")},
        "scrapes_during_produce": during["n"],
    }
    out = os.path.join(root, "bench/results/scrape.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    open(out, "w").write(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
finally:
    broker.terminate()
    broker.wait()
    subprocess.run(["rm", "-rf", data])
PY
