#!/usr/bin/env bash
# The storage benchmark: synclog's partition log against fio (io_uring engine, buffered, same block size, same
# iodepth, same fdatasync cadence, same filesystem) in interleaved rounds, then the reopen after kill -9. Writes
# bench/results/storage.json and prints a table; bench/README.md says what is measured and why.
#
# Usage: bench/storage.sh [BUILD_DIR]          (default build/release; `make bench` runs it)
#   STORAGE_BENCH_QUICK=1     small sizes, under a minute: tests this script; figures go to BUILD_DIR instead
#   STORAGE_BENCH_ROUNDS=N    rounds of each case (default 5; at least 3 for a median with a spread)
#   STORAGE_BENCH_FIO_SYNC=auto|option|iolog   how fio paces its fdatasyncs (auto: option from fio 3.38 on)
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_paths "${1:-}" storage-bench
bin=$build/bin/storage-bench
if ! command -v fio >/dev/null 2>&1; then
	echo "storage.sh: fio is missing: run tools/install-deps.sh bench" >&2
	exit 1
fi

quick=${STORAGE_BENCH_QUICK:-0}
rounds=${STORAGE_BENCH_ROUNDS:-5}
inflight=16
record_bytes=1024
batch_sizes="65536 1048576"
levels="written fsync"
if [ "$quick" = 1 ]; then
	bytes=$((128 << 20))
	sealed=$((256 << 20))
	tail=$((16 << 20))
	out=$build/storage-quick.json
else
	bytes=$((2 << 30))
	sealed=$((10 << 30))
	tail=$((100 << 20))
	out=$root/bench/results/storage.json
fi

# Both tools write under the repository, so both measure the same filesystem; the directory is ours alone.
data=$root/build/bench-data
runs=$data/runs
rm -rf "$data"
mkdir -p "$runs" "$(dirname "$out")"
cleanup() { rm -rf "$data"; }
trap cleanup EXIT

need=$((sealed + tail + 2 * bytes + (1 << 30)))
avail=$(df -P -B1 "$data" | awk 'NR == 2 { print $4 }')
if [ "$avail" -lt "$need" ]; then
	echo "storage.sh: $((need >> 30)) GiB free needed under $data, $((avail >> 30)) GiB available" >&2
	exit 1
fi

# fio before 3.38 issues an fdatasync into every free queue slot once the count is reached (its check runs
# until the first fdatasync completes), so at iodepth 16 --fdatasync=N syncs far more often than every N
# writes. Those versions replay an iolog that holds one datasync after every N writes instead.
fio_version=$(fio --version)
ver=${fio_version#fio-}
major=${ver%%.*}
minor=${ver#*.}
minor=${minor%%[!0-9]*}
fio_sync=${STORAGE_BENCH_FIO_SYNC:-auto}
if [ "$fio_sync" = auto ]; then
	if [ "$major" -gt 3 ] || { [ "$major" -eq 3 ] && [ "${minor:-0}" -ge 38 ]; }; then
		fio_sync=option
	else
		fio_sync=iolog
	fi
fi

# The dirty pages of one run must not be written back during the next, and deleting them must not either
# (the filesystem may be mounted with discard): flush, delete, flush.
settle() {
	sync
	rm -rf "$@"
	sync
}

# Right before each run of either tool: warm 2 MiB blocks of guest memory for its page cache (the reason is at
# cmd_warm_memory in storage_bench.c: on a VM that reports free memory to its host, cold blocks cost 4x).
warm() { "$bin" warm-memory --bytes $((bytes * 5 / 4)); }

# Progress lines only; the report reads fio's JSON properly.
fio_mb_per_s() {
	awk '/"write" : \{/ { w = 1 } w && /"bw_bytes"/ { gsub(/[^0-9]/, "", $3); print $3 / 1e6; exit }' "$1"
}

json_int() { sed -n "s/^ *\"$2\": *\([0-9]*\).*/\1/p" "$1"; }

run_synclog() { # batch_bytes level round
	local file=$runs/synclog-$1-$2-$3.json
	warm
	"$bin" append --dir "$data/log" --bytes "$bytes" --batch-bytes "$1" --record-bytes $record_bytes \
		--level "$2" --inflight $inflight --json "$file"
	settle "$data/log"
}

run_fio() { # batch_bytes level round
	local file=$runs/fio-$1-$2-$3.json bl count n synclog_json args
	read -r bl _ < <("$bin" batch-size --batch-bytes "$1" --record-bytes $record_bytes)
	count=$(((bytes + bl - 1) / bl))
	mkdir -p "$data/fio"
	args=(--name="fio-$1-$2" --ioengine=io_uring --iodepth="$inflight" --fallocate=none --output-format=json
		--output="$file")
	if [ "$2" = fsync ]; then
		# The cadence of synclog's latest run of this case (this round's, or the previous round's when fio
		# goes first): batches per fdatasync, rounded.
		synclog_json=$runs/synclog-$1-fsync-$3.json
		[ -f "$synclog_json" ] || synclog_json=$runs/synclog-$1-fsync-$(($3 - 1)).json
		n=$(json_int "$synclog_json" fdatasync_every_n)
		if [ "$fio_sync" = option ]; then
			args+=(--rw=write --bs="$bl" --size=$((count * bl)) --directory="$data/fio" --fdatasync="$n")
		else
			awk -v f="$data/fio/baseline.0" -v bs="$bl" -v count="$count" -v n="$n" 'BEGIN {
				print "fio version 2 iolog"; print f " add"; print f " open"
				for (i = 0; i < count; i++) {
					print f " write " i * bs " " bs
					if ((i + 1) % n == 0) print f " datasync 0 0"
				}
			}' >"$data/fio.iolog"
			args+=(--read_iolog="$data/fio.iolog")
		fi
	else
		args+=(--rw=write --bs="$bl" --size=$((count * bl)) --directory="$data/fio")
	fi
	warm
	fio "${args[@]}" >/dev/null
	printf 'fio      %-7s batch %7s B x %6s: %8.1f MB/s%s\n' "$2" "$bl" "$count" "$(fio_mb_per_s "$file")" \
		"$([ "$2" = fsync ] && echo ", fdatasync every $n writes ($fio_sync)")"
	settle "$data/fio" "$data/fio.iolog"
}

start=$(date +%s)
echo "storage bench: $((bytes >> 20)) MiB per run, $rounds rounds, window $inflight, $fio_version, data in $data"

# Rounds outermost, so slow drift of the machine spreads over every case; inside a case, synclog and fio
# alternate which goes first. The fsync fio run takes its cadence from synclog's latest run of the case.
for round in $(seq 1 "$rounds"); do
	echo "round $round/$rounds"
	for bs in $batch_sizes; do
		for level in $levels; do
			if [ $((round % 2)) -eq 1 ]; then
				run_synclog "$bs" "$level" "$round"
				run_fio "$bs" "$level" "$round"
			else
				run_fio "$bs" "$level" "$round"
				run_synclog "$bs" "$level" "$round"
			fi
		done
	done
done

echo "reopen after kill -9: $((sealed >> 20)) MiB sealed, $((tail >> 20)) MiB tail"
"$bin" reopen --dir "$data/reopen" --reopen-sealed-bytes "$sealed" --reopen-tail-bytes "$tail" \
	--batch-bytes 1048576 --record-bytes $record_bytes --inflight $inflight --rounds "$rounds" \
	--json "$runs/reopen.json"
settle "$data/reopen"

"$bin" report --runs "$runs" --json "$out"
echo "storage bench took $(($(date +%s) - start)) s"
