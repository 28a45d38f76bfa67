#!/usr/bin/env bash
# Run a noisy step of `make test` (apt, the compiler) with its output in a log: print one line saying what runs
# and how it ended; on failure also the end of the log and where the whole of it is.
# Usage: tools/run-quiet.sh "WHAT" LOG COMMAND [ARGS...]
set -uo pipefail
what=$1
log=$2
shift 2
mkdir -p "$(dirname "$log")"
start=$(date +%s)
printf '%s ... ' "$what"
if "$@" >"$log" 2>&1; then
	echo "ok ($(($(date +%s) - start)) s)"
	exit 0
else
	rc=$?
	echo "FAILED (exit $rc); the last lines of $log:"
	tail -n 40 "$log" | sed 's/^/    /'
	exit "$rc"
fi
