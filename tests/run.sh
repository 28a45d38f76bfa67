#!/usr/bin/env bash
# Runs every test binary of a build directory (unit tests, cmocka with TAP output) and every integration test
# script, and ends with the line "N passed, N failed". Exit status 0 only when nothing failed.
set -u
build=${1:-build/release}
passed=0
failed=0
failed_names=()
export CMOCKA_MESSAGE_OUTPUT=TAP
for t in "$build"/tests/test_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	out=$(mktemp)
	start=$(date +%s)
	"$t" >"$out" 2>&1
	rc=$?
	ok=$(grep -c '^ok ' "$out")
	bad=$(grep -c '^not ok ' "$out")
	if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
		bad=1 # crashed or failed outside a test case
	fi
	passed=$((passed + ok))
	failed=$((failed + bad))
	echo "$name: $ok passed, $bad failed ($(($(date +%s) - start)) s)"
	if [ "$bad" -ne 0 ]; then
		failed_names+=("$name")
		sed 's/^/    /' "$out" | tail -n 40
	fi
	rm -f "$out"
done
# Fuzzers: a bounded run each; a crash or sanitizer report fails it.
for f in "$build"/fuzz/fuzz_*; do
	[ -x "$f" ] || continue
	name=$(basename "$f")
	corpus=$(mktemp -d)
	# Seeds (tests/fuzz/seeds/NAME/) start the search from valid messages; new inputs go to the fresh corpus.
	seeds=()
	[ -d "tests/fuzz/seeds/$name" ] && seeds=("tests/fuzz/seeds/$name")
	if out=$("$f" -max_total_time="${FUZZ_SECONDS:-20}" -rss_limit_mb=2048 "$corpus" "${seeds[@]}" 2>&1); then
		passed=$((passed + 1))
		echo "$name: passed ($(echo "$out" | grep -o 'Done [0-9]* runs' | tail -n 1))"
	else
		failed=$((failed + 1))
		failed_names+=("$name")
		echo "$name: FAILED"
		echo "$out" | sed 's/^/    /' | tail -n 40
	fi
	rm -rf "$corpus"
done
# Integration tests: TEST_JOBS at a time (default 2). Most of their time is waiting on real processes (a broker's
# start, a group's rebalance, a server's recovery), not CPU, so two at once roughly halve the wall time on two cores;
# each test has its own temporary directory and port-0 listeners, so they do not share anything. Results are printed
# in the tests' order as they finish. TEST_JOBS=1 runs them one after the other.
jobs=${TEST_JOBS:-2}
results=$(mktemp -d)
tests=()
for t in tests/integration/test_*.sh; do
	[ -x "$t" ] && tests+=("$t")
done
report() { # report INDEX: print the result of tests[INDEX] and count it
	local name
	name=$(basename "${tests[$1]}" .sh)
	if [ "$(cat "$results/$1.rc")" = 0 ]; then
		passed=$((passed + 1))
		echo "$name: passed"
	else
		failed=$((failed + 1))
		failed_names+=("$name")
		echo "$name: FAILED"
		sed 's/^/    /' "$results/$1.out" | tail -n 40
	fi
}
next_report=0
running=0
for i in "${!tests[@]}"; do
	if [ "$running" -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
	(
		"${tests[$i]}" "$build" >"$results/$i.out" 2>&1
		echo $? >"$results/$i.rc.tmp"
		mv "$results/$i.rc.tmp" "$results/$i.rc"
	) &
	running=$((running + 1))
	while [ "$next_report" -lt "${#tests[@]}" ] && [ -e "$results/$next_report.rc" ]; do
		report "$next_report"
		next_report=$((next_report + 1))
	done
done
wait
while [ "$next_report" -lt "${#tests[@]}" ]; do
	report "$next_report"
	next_report=$((next_report + 1))
done
rm -rf "$results"
[ ${#failed_names[@]} -eq 0 ] || echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
