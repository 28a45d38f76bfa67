#!/usr/bin/env bash
# make bench-scale: issue 21's benchmarks one after the other, each runnable alone (bench/README.md, "Scale"):
#   cold_replay, replay_interference, many_groups, offered_load, timeline, curve_partitions, curve_connections,
#   curve_groups, curve_logsize. BENCH_QUICK=1 (make bench-scale-quick) runs their smoke modes (a few minutes);
#   BENCH_SCALE_ONLY="name ..." runs only those. Each writes bench/results/NAME.json and NAME.png (smoke mode:
#   BUILD_DIR/bench-quick/). Full runs take about an hour and up to 60% of the free disk (curve_logsize); run them on
#   a quiet machine: each records the load average and says when it was above 0.5.
set -euo pipefail
build=${1:-build/release}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
all="cold_replay replay_interference many_groups offered_load timeline curve_partitions curve_connections
	curve_groups curve_logsize"
failed=()
start=$(date +%s)
for b in ${BENCH_SCALE_ONLY:-$all}; do
	echo "== $b"
	if ! "bench/$b.sh" "$build"; then
		failed+=("$b")
	fi
done
echo "bench-scale took $(($(date +%s) - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
	echo "bench-scale: failed: ${failed[*]}" >&2
	exit 1
fi
