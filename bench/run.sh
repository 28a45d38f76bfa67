#!/usr/bin/env bash
# make bench: every benchmark in one run. BENCH_QUICK=1 (make bench-quick) runs the short versions.
set -euo pipefail
build=${1:-build/release}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	STORAGE_BENCH_QUICK=1 bench/storage.sh "$build"
else
	bench/storage.sh "$build"
fi
