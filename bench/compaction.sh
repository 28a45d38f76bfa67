#!/usr/bin/env bash
# The compaction benchmark (issue 15). Writes bench/results/compaction.json and prints what it measured:
#   1. bench/clean.sh: the cleaner alone against fio reading and writing the same bytes (bench/results/clean.json).
#   2. Produce latency at 20,000 records/s (synclog-bench latency: 100-byte keyless records, one partition, acks
#      written, 10 s after 1 s of warm-up; p99 of the produce acknowledgement and of produce-to-consume) on one
#      broker with the cleaner idle, unthrottled (--cleaner-bytes-per-s 0) and at its default throttle (50 MiB/s).
#      The cleaner's work is a compacted topic of 512 MiB of distinct keys in 64 MiB segments: a clean keeps every
#      record, so it reads and rewrites it all, and `topic compact --wait` runs in a loop for the whole
#      measurement. Target: p99 with the default throttle at most 2 times p99 with the cleaner idle.
#   3. A compacted topic of 1 million keys x 10 versions (10 million records of 100-byte values and 8-byte keys,
#      versions in order, one partition): bytes before and after `topic compact --wait`, the clean's duration,
#      and the time of a full replay from earliest (synclog-bench replay) before and after.
#
# Usage: bench/compaction.sh [BUILD_DIR]    COMPACTION_BENCH_QUICK=1: small sizes (tests the script)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_paths "${1:-}" synclogd synclog synclog-bench clean-bench
quick=${COMPACTION_BENCH_QUICK:-0}
out=$root/bench/results/compaction.json
if [ "$quick" = 1 ]; then
	out=$build/compaction-quick.json
	CLEAN_BENCH_QUICK=1 "$root/bench/clean.sh" "$build"
	clean_json=$build/clean-quick.json
else
	"$root/bench/clean.sh" "$build"
	clean_json=$root/bench/results/clean.json
fi
exec python3 - "$build" "$out" "$quick" "$clean_json" <<'PY'
import json, os, shutil, statistics, subprocess, sys, tempfile, threading, time

build, out, quick, clean_json = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) if "__file__" in globals() else os.getcwd()
data = os.path.join(os.getcwd(), "build", "bench-compaction")
shutil.rmtree(data, ignore_errors=True)
os.makedirs(data)
bin_ = lambda n: os.path.join(build, "bin", n)
backlog_bytes = (64 if quick else 512) << 20
lat_seconds = 3 if quick else 10
keys, versions = (100000, 10) if quick else (1000000, 10)

def loadavg():
    return float(open("/proc/loadavg").read().split()[0])

class Broker:
    def __init__(self, *flags):
        self.err = open(os.path.join(data, "broker.err"), "a")
        self.p = subprocess.Popen([bin_("synclogd"), "--data-dir", os.path.join(data, "d"), "--listen", "127.0.0.1:0",
                                   "--metrics", "off", "--segment-bytes", str(64 << 20)] + list(flags),
                                  stdout=subprocess.PIPE, stderr=self.err, text=True)
        line = self.p.stdout.readline().strip()
        if not line.startswith("synclogd ready on "):
            raise SystemExit("synclogd did not start: " + line)
        self.addr = line.rsplit(" ", 1)[1]
    def cli(self, *args, check=True):
        r = subprocess.run([bin_("synclog"), "--broker", self.addr] + list(args), capture_output=True, text=True)
        if check and r.returncode != 0:
            raise SystemExit("synclog %s: %s" % (" ".join(args), r.stderr.strip()))
        return r.stdout
    def bench(self, *args):
        r = subprocess.run([bin_("synclog-bench")] + list(args[:1]) + ["--broker", self.addr] + list(args[1:]),
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit("synclog-bench %s: %s" % (" ".join(args), r.stderr.strip() or r.stdout.strip()))
        return json.loads(r.stdout)
    def stop(self):
        self.p.terminate()
        self.p.wait()

def describe_bytes(b, topic):
    return sum(json.loads(l)["bytes"] for l in b.cli("--json", "topic", "describe", topic).splitlines())

result = {"load_avg_start": loadavg(), "cpus": os.cpu_count()}
result["cleaner_vs_fio"] = json.load(open(clean_json))

# ---- 2. produce latency with the cleaner idle, unthrottled, throttled ----
b = Broker()
b.cli("topic", "create", "backlog", "--partitions", "1", "--compact")
count = backlog_bytes // 130
b.bench("produce", "--topic", "backlog", "--count", str(count), "--record-bytes", "100", "--key-bytes", "8",
        "--acks", "written")
b.stop()
latency = {}
for case, flags in (("idle", []), ("unthrottled", ["--cleaner-bytes-per-s", "0"]), ("default_throttle", [])):
    b = Broker(*flags)
    stop = threading.Event()
    cleans = []
    def clean_loop():
        while not stop.is_set():
            t0 = time.time()
            b.cli("topic", "compact", "backlog", "--wait")
            cleans.append(time.time() - t0)
    th = None
    if case != "idle":
        th = threading.Thread(target=clean_loop)
        th.start()
        time.sleep(0.5)
    load = loadavg()
    r = b.bench("latency", "--topic", "lat_" + case, "--create", "--rate", "20000", "--duration-s", str(lat_seconds),
                "--warmup-s", "1", "--record-bytes", "100", "--acks", "written")
    stop.set()
    if th:
        th.join()
    b.stop()
    latency[case] = {"ack_p50_us": r["ack_latency"]["p50_us"], "ack_p99_us": r["ack_latency"]["p99_us"],
                     "ack_p999_us": r["ack_latency"].get("p999_us"), "e2e_p99_us": r["e2e_latency"]["p99_us"],
                     "acked": r["acked"], "cleans_during_run": len(cleans), "load_avg": load}
    print("latency %-16s ack p99 %8.0f us  e2e p99 %8.0f us  cleans %d  load %.1f" % (
        case, latency[case]["ack_p99_us"], latency[case]["e2e_p99_us"], len(cleans), load), flush=True)
for case in ("unthrottled", "default_throttle"):
    latency[case]["ack_p99_vs_idle"] = round(latency[case]["ack_p99_us"] / latency["idle"]["ack_p99_us"], 2)
result["produce_latency_20k"] = latency
shutil.rmtree(os.path.join(data, "d"))

# ---- 3. 1 million keys x 10 versions ----
b = Broker()
b.cli("topic", "create", "states", "--partitions", "1", "--compact")
n = keys * versions
p = b.bench("produce", "--topic", "states", "--count", str(n), "--record-bytes", "100", "--key-bytes", "8",
            "--key-space", str(keys), "--versioned", "--acks", "written")
before = describe_bytes(b, "states")
replay_before = b.bench("replay", "--topic", "states", "--count", str(n))
t0 = time.time()
c = [json.loads(l) for l in b.cli("--json", "topic", "compact", "states", "--wait").splitlines()]
clean_s = time.time() - t0
after = describe_bytes(b, "states")
replay_after = b.bench("replay", "--topic", "states", "--count", str(keys))
b.stop()
result["keys_x_versions"] = {
    "keys": keys, "versions": versions, "records": n, "bytes_before": before, "bytes_after": after,
    "records_removed": sum(x["records_removed"] for x in c), "clean_s": round(clean_s, 2),
    "clean_duration_ms": sum(x["duration_ms"] for x in c),
    "replay_before_s": replay_before.get("seconds"), "replay_before_records_per_s": replay_before.get("records_per_s"),
    "replay_after_s": replay_after.get("seconds"), "replay_after_records_per_s": replay_after.get("records_per_s"),
    "replay_after_records": replay_after.get("records")}
print("1M x 10: %d -> %d bytes, clean %.1f s, replay %.2f s -> %.2f s" % (
    before, after, clean_s, replay_before.get("seconds", 0), replay_after.get("seconds", 0)), flush=True)
result["load_avg_end"] = loadavg()
shutil.rmtree(data, ignore_errors=True)
json.dump(result, open(out, "w"), indent=1)
print("wrote", out)
PY
