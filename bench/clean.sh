#!/usr/bin/env bash
# The cleaner's throughput against the disk: in each round, clean-bench builds a sealed log (1 GiB of 100-byte
# records over 100,000 keys: a clean keeps about 1 in 85) and cleans it once, unthrottled; then, on a log built the
# same way, fio reads the same segment files as many times as the clean read them (psync, 1 MiB, buffered, as the
# cleaner reads) and writes as many bytes as the clean wrote (1 MiB blocks, fsync at the end, as the cleaner's
# fdatasync of each new segment). Both are timed by the wall clock around the whole tool. The figure is MB/s of
# bytes read plus written, its ratio to fio's; target 0.5. Writes bench/results/clean.json.
#
# Usage: bench/clean.sh [BUILD_DIR]     CLEAN_BENCH_QUICK=1: 128 MiB, one round (tests the script)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_paths "${1:-}" clean-bench
bin=$build/bin/clean-bench
command -v fio >/dev/null || { echo "clean.sh: fio is missing: run tools/install-deps.sh bench" >&2; exit 1; }
quick=${CLEAN_BENCH_QUICK:-0}
bytes=$((1 << 30))
rounds=3
out=$root/bench/results/clean.json
if [ "$quick" = 1 ]; then
	bytes=$((128 << 20))
	rounds=1
	out=$build/clean-quick.json
fi
data=$root/build/bench-clean
rm -rf "$data"
mkdir -p "$data" "$(dirname "$out")"
trap 'rm -rf "$data"' EXIT

results=()
for round in $(seq 1 "$rounds"); do
	load=$(cut -d' ' -f1 /proc/loadavg)
	rm -rf "$data/log"
	"$bin" build --dir "$data/log" --bytes "$bytes" >/dev/null
	sync
	clean=$("$bin" clean --dir "$data/log")
	read_bytes=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['bytes_read'])" "$clean")
	written=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['bytes_written'])" "$clean")
	rm -rf "$data/log"
	"$bin" build --dir "$data/log" --bytes "$bytes" >/dev/null
	sync
	files=$(ls "$data"/log/*.log | paste -sd: -)
	total=$(cat "$data"/log/*.log | wc -c)
	loops=$(( (read_bytes + total / 2) / total ))
	t0=$(now_ns)
	fio --name=read --rw=read --bs=1M --ioengine=psync --direct=0 --filename="$files" \
		--file_service_type=sequential --loops="$loops" --output-format=terse >/dev/null
	t1=$(now_ns)
	fio --name=write --rw=write --bs=1M --ioengine=psync --direct=0 --size="$written" \
		--filename="$data/fio.out" --fallocate=none --end_fsync=1 --output-format=terse >/dev/null
	t2=$(now_ns)
	rm -f "$data/fio.out"
	results+=("$(python3 -c "
import json, sys
c = json.loads(sys.argv[1])
fio_s = (int(sys.argv[2]) - int(sys.argv[3])) / 1e9
fio_bytes = int(sys.argv[4]) * int(sys.argv[5]) + int(sys.argv[6])
c['round'] = int(sys.argv[7]); c['load_avg'] = float(sys.argv[8])
c['fio_seconds'] = round(fio_s, 3); c['fio_bytes'] = fio_bytes
c['fio_mb_per_s'] = round(fio_bytes / 1e6 / fio_s, 1)
c['ratio'] = round(c['mb_per_s'] / c['fio_mb_per_s'], 3)
print(json.dumps(c))" "$clean" "$t2" "$t0" "$total" "$loops" "$written" "$round" "$load")")
	echo "round $round: ${results[-1]}"
done
printf '%s\n' "${results[@]}" | python3 -c "
import json, statistics, sys
rows = [json.loads(l) for l in sys.stdin]
s = {'rounds': rows, 'median_cleaner_mb_per_s': statistics.median(r['mb_per_s'] for r in rows),
     'median_fio_mb_per_s': statistics.median(r['fio_mb_per_s'] for r in rows),
     'median_ratio': statistics.median(r['ratio'] for r in rows), 'target_ratio': 0.5}
json.dump(s, open(sys.argv[1], 'w'), indent=1)
print('cleaner %.0f MB/s, fio %.0f MB/s (read + write of the same bytes), ratio %.2f (target 0.5)' % (
    s['median_cleaner_mb_per_s'], s['median_fio_mb_per_s'], s['median_ratio']))" "$out"
