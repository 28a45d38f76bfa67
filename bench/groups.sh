#!/usr/bin/env bash
# The consumer-group benchmark. Writes bench/results/groups.json and prints a table. What it measures, on one
# broker over loopback, one client process at a time (bench/groups/groups_bench.c does each measurement):
#   produce  10 million records of 100 bytes (16-byte distinct keys, 84-byte values, no compression) into 8
#            partitions with the library's producer at acks fsync, defaults otherwise: the backlog, and the produce
#            throughput of the same run (records/s, MB/s of key and value bytes, timed to the last acknowledgement).
#   replay   a new group (one member, start earliest, stop at the log end) reads the whole backlog through
#            sl_consumer_poll, 4096 records per call, looking at every value; timed from subscribe to the last
#            record, commits included (auto-commit every 5 s and at close). Three runs with three new groups; the
#            backlog was just written, so its segments are in the page cache (a replay from disk would be bound by
#            the disk, not by synclog).
#   commits  one member of a topic of 1,000 partitions (all assigned to it) commits synchronously in a loop for
#            5 s, each commit waiting for the broker's fsync: with all 1,000 partitions in every commit (the cost of
#            a consumer of many partitions), and with one partition per commit (the per-request floor). Reports
#            commits/s, offsets/s and the latency percentiles.
#
# Usage: bench/groups.sh [BUILD_DIR]        (default build/release; `make bench` runs it)
#   GROUPS_BENCH_QUICK=1    1 million records and 2 s of commits, about 15 s: tests this script; the figures go
#                           to BUILD_DIR/groups-quick.json instead
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_paths "${1:-}" groups-bench synclogd synclog
bench=$build/bin/groups-bench

quick=${GROUPS_BENCH_QUICK:-0}
if [ "$quick" = 1 ]; then
	records=1000000
	commit_seconds=2
	out=$build/groups-quick.json
else
	records=10000000
	commit_seconds=5
	out=$root/bench/results/groups.json
fi
key_bytes=16
value_bytes=84
replay_partitions=8
commit_partitions=1000
replay_runs=3

data=$root/build/bench-data-groups
rm -rf "$data"
mkdir -p "$data" "$(dirname "$out")"
broker_pid=
cleanup() {
	broker_kill
	rm -rf "$data"
}
trap cleanup EXIT

# The backlog as stored (batch headers and record framing included) is about 1.3 times the payload.
need=$((records * (key_bytes + value_bytes) * 2 + (512 << 20)))
avail=$(df -P -B1 "$data" | awk 'NR == 2 { print $4 }')
if [ "$avail" -lt "$need" ]; then
	echo "groups.sh: $((need >> 20)) MiB free needed under $data, $((avail >> 20)) MiB available" >&2
	exit 1
fi

bench_synclogd "$data"
broker=$native
"$build/bin/synclog" --broker "$broker" topic create backlog --partitions "$replay_partitions" >/dev/null
"$build/bin/synclog" --broker "$broker" topic create commits --partitions "$commit_partitions" >/dev/null

runs=$data/runs.jsonl
load_max=0
note_load() {
	local l
	l=$(cut -d' ' -f1 /proc/loadavg)
	load_max=$(awk -v a="$load_max" -v b="$l" 'BEGIN { print (b > a ? b : a) }')
}

echo "groups.sh: producing $records records of $((key_bytes + value_bytes)) bytes" \
	"into $replay_partitions partitions" >&2
note_load
"$bench" produce --broker "$broker" --topic backlog --records "$records" --key-bytes "$key_bytes" \
	--value-bytes "$value_bytes" >>"$runs"
for i in $(seq 1 "$replay_runs"); do
	echo "groups.sh: replay $i of $replay_runs" >&2
	note_load
	"$bench" replay --broker "$broker" --topic backlog --group "replay-$i" >>"$runs"
done
for scope in all one; do
	echo "groups.sh: $commit_seconds s of commits of $scope of $commit_partitions partitions each" >&2
	note_load
	"$bench" commits --broker "$broker" --topic commits --group "commits-$scope" --seconds "$commit_seconds" \
		--scope "$scope" >>"$runs"
done
kill -TERM "$broker_pid"
wait "$broker_pid" || {
	echo "groups.sh: the broker exited $? on SIGTERM" >&2
	exit 1
}
broker_pid=

python3 - "$runs" "$out" "$load_max" "$quick" <<'PY'
import json, os, platform, statistics, sys, time

runs = [json.loads(l) for l in open(sys.argv[1])]
out, load_max, quick = sys.argv[2], float(sys.argv[3]), sys.argv[4] == "1"
produce = next(r for r in runs if r["mode"] == "produce")
replays = [r for r in runs if r["mode"] == "replay"]
commits = {r["scope"]: r for r in runs if r["mode"] == "commits"}


def spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


for r in replays:
    if r["records"] != produce["records"]:
        sys.exit("groups.sh: a replay read %d records of %d" % (r["records"], produce["records"]))
replay = {
    "records": produce["records"],
    "records_per_s": spread([r["records_per_s"] for r in replays]),
    "mb_per_s": spread([r["mb_per_s"] for r in replays]),
    "seconds": spread([r["seconds"] for r in replays]),
    "cpu_s": spread([r["cpu_s"] for r in replays]),
    "join_ms": spread([r["join_ms"] for r in replays]),
    "runs": replays,
}
doc = {
    "benchmark": "groups",
    "quick": quick,
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "loadavg_1m_max": load_max},
    "workload": {
        "record_bytes": produce["record_bytes"],
        "key_bytes": 16,
        "value_bytes": produce["record_bytes"] - 16,
        "codec": "none",
        "backlog_partitions": 8,
        "note": "one broker, one client process at a time, loopback; the backlog is replayed right after it was "
                "written, so its segments are in the page cache",
    },
    "produce": produce,
    "replay": replay,
    "replay_over_produce": round(replay["records_per_s"]["median"] / produce["records_per_s"], 2),
    "commits": {"partitions": 1000, "all_partitions_per_commit": commits["all"],
                "one_partition_per_commit": commits["one"]},
}
with open(out, "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
m = lambda v: "%.2f M" % (v / 1e6)
print("%-42s %14s %10s" % ("consumer groups (%s records of %d B)" % (format(produce["records"], ","),
                                                                      produce["record_bytes"]), "records/s", "MB/s"))
print("%-42s %14s %10.1f" % ("produce (acks fsync, no compression)", m(produce["records_per_s"]),
                              produce["mb_per_s"]))
print("%-42s %14s %10.1f" % ("replay from the start, new group (median)", m(replay["records_per_s"]["median"]),
                              replay["mb_per_s"]["median"]))
print("replay / produce: %.2f" % doc["replay_over_produce"])
for scope, label in (("all", "all 1,000 partitions per commit"), ("one", "one partition per commit")):
    c = commits[scope]
    print("commits, %-33s %9.0f commits/s %10.0f offsets/s  p50 %d us  p99 %d us" % (
        label, c["commits_per_s"], c["offsets_per_s"], c["latency_us"]["p50"], c["latency_us"]["p99"]))
print("written to %s" % out)
PY
