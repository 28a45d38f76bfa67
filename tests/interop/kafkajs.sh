#!/usr/bin/env bash
# kafkajs (npm) against the Kafka listener: produce (acks=-1, keys, headers, none and gzip), a consumer group with
# commits and two members, admin create/metadata/offsets/delete. Not in `make test`: it needs npm's registry, which
# CI may not reach. Run by hand or by `make test-interop`; when npm cannot install kafkajs it says so and exits 2.
# Usage: tests/interop/kafkajs.sh BUILD_DIR (binaries in BUILD_DIR/bin).
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/../integration/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
command -v npm >/dev/null && command -v node >/dev/null || {
	echo "kafkajs: node and npm are not installed (apt-get install nodejs npm)" >&2
	exit 2
}
# kafkajs goes into a temporary directory, never into the tree.
if ! (cd "$TMP" && timeout 120 npm install --no-audit --no-fund --loglevel=error kafkajs@2 >"$TMP/npm.log" 2>&1); then
	echo "kafkajs: npm could not install kafkajs (is the npm registry reachable?): $(tail -3 "$TMP/npm.log")" >&2
	exit 2
fi
start_broker "$TMP/data" --kafka-listen 127.0.0.1:0
NODE_PATH="$TMP/node_modules" timeout 180 node "$here/kafkajs.js" "$KAFKA_BROKER" || {
	echo "--- broker log ---" >&2
	grep kafka "$TMP/broker.err" | tail -20 >&2
	fail "kafkajs against the Kafka listener"
}
stop_broker
echo ok
