#!/usr/bin/env bash
# The bounded soak of `make test`: 90 s of random produce, fetch, long polls, group traffic, topic churn and slow
# or vanishing clients against one broker (--memory-max 128M, 1,024 descriptors), RSS and descriptors sampled;
# fails if either passes its bound, descriptors leak, the memory accounting is not back to 0, or an acknowledged
# record or commit is missing. `make soak DURATION=1h` runs the same longer, with kill -9 of the broker at random
# moments (tests/integration/soak.py).
set -euo pipefail
build=${1:-build/release}
exec python3 tests/integration/soak.py "$build" --duration "${SOAK_DURATION:-90s}"
