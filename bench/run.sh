#!/usr/bin/env bash
# make bench: every benchmark in one run. BENCH_QUICK=1 (make bench-quick) runs the short versions.
#   1. bench/storage.sh: the storage engine against fio (bench/results/storage.json)
#   2. bench/compare.sh: synclog against Redis Streams, NATS JetStream and the disk, W1-W6, and issue 3's broker
#      matrix (bench/results/latest.{json,md,png}, bench/results/broker.json)
#   3. bench/groups.sh: group replay and commit cost (bench/results/groups.json)
#   4. bench/apply.sh: apply throughput into SQLite (bench/results/apply.json)
#   5. bench/compaction.sh: the cleaner against fio, produce latency while it runs, a 1M keys x 10 versions topic
#      (bench/results/clean.json, compaction.json)
#   then bench/sync.sh, bench/kafka.sh and bench/security.sh (TLS against plaintext, handshakes per second)
#   6. bench/sync.sh: backfill against produce, live latency beside a backfill, reconcile against a bare scan
#      (bench/results/sync.json)
#   7. bench/kafka.sh: the Kafka listener with librdkafka against the native one (bench/results/kafka.json)
#   8. bench/clusters.sh: the applier through the librdkafka transport against the native one, and copy in MB/s
#      (bench/results/clusters.json)
#   9. bench/scrape.sh: a /metrics scrape of 10,000 partitions and 1,000 groups, and produce latency during scrapes
#      (bench/results/scrape.json)
#  10. bench/pg_apply.sh: apply throughput into PostgreSQL against its floor (bench/results/pg_apply.json)
#  11. bench/pg_reconcile.sh: reconcile PostgreSQL to PostgreSQL against a bare scan (bench/results/pg_reconcile.json)
#  12. bench/console.sh: the console's API on 10,000 partitions and 1,000 groups, the loop time of each request,
#      and produce latency while a console polls (bench/results/console.json)
set -euo pipefail
build=${1:-build/release}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$(date +%s)
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	STORAGE_BENCH_QUICK=1 bench/storage.sh "$build"
	BENCH_QUICK=1 bench/compare.sh "$build"
else
	bench/storage.sh "$build"
	bench/compare.sh "$build"
fi

# Consumer groups (replay of a 10-million-record backlog, commits with 1,000 partitions) and the SQLite applier;
# both honour BENCH_QUICK themselves.
GROUPS_BENCH_QUICK=${BENCH_QUICK:-0} bench/groups.sh "$build"
bench/apply.sh "$build"
COMPACTION_BENCH_QUICK=${BENCH_QUICK:-0} bench/compaction.sh "$build"
bench/sync.sh "$build"
# The Kafka listener: librdkafka against our client, produce and replay (bench/results/kafka.json).
KAFKA_BENCH_QUICK=${BENCH_QUICK:-0} bench/kafka.sh "$build"
# The sync tools on a Kafka cluster: apply through librdkafka against native, copy MB/s (bench/results/clusters.json).
CLUSTERS_BENCH_QUICK=${BENCH_QUICK:-0} bench/clusters.sh "$build"
# TLS against plaintext, and new authenticated connections per second (bench/results/security.json).
SECURITY_BENCH_QUICK=${BENCH_QUICK:-0} bench/security.sh "$build"
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	PARTITIONS=1000 GROUP_COUNT=100 SCRAPES=5 RECORDS=2000 bench/scrape.sh "$build" >/dev/null
else
	bench/scrape.sh "$build"
fi
# PostgreSQL: apply against its floor, reconcile against a bare scan (bench/results/pg_*.json).
bench/pg_apply.sh "$build"
bench/pg_reconcile.sh "$build"
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	PARTITIONS=1000 GROUP_COUNT=100 REQUESTS=5 RECORDS=2000 bench/console.sh "$build" >/dev/null
else
	bench/console.sh "$build"
fi

echo "make bench took $(($(date +%s) - start)) s"
