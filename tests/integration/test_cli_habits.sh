#!/usr/bin/env bash
# The habits users bring from kcat, rpk and the nats CLI: --version; a usage error is one line and a pointer to
# --help; consume --from -N, @EPOCH_MS and @-DURATION; --format templates that show a delete as a delete;
# topic create --if-not-exists, --segment-bytes/--segment-ms kept with the topic (and acting: small segments roll,
# also after a restart), --compact refused; plurals; human sizes and durations in tables and raw numbers in
# --json; no terminal codes in a pipe; --timeout against a port that never answers; offsets reset from Kafka's
# headerless CSV.
# Usage: tests/integration/test_cli_habits.sh BUILD_DIR.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"
S=$SYNCLOG

# ---- version, usage errors ----
expect_exit 0 "$S" --version
grep -Eq '^synclog [0-9]+\.[0-9]+\.[0-9]+' "$TMP/out" || fail "--version: $(cat "$TMP/out")"
v=$(cat "$TMP/out")
expect_exit 0 "$S" version
[ "$(cat "$TMP/out")" = "$v" ] || fail "synclog version differs from --version"
[ "${v#synclog }" = "$("$SYNCLOGD" --version | sed 's/^synclogd //')" ] || fail "synclog and synclogd versions differ"
expect_exit 2 "$S" topic create x --partitions zero
[ "$(wc -l <"$TMP/err")" -eq 2 ] || fail "a usage error is more than two lines: $(cat "$TMP/err")"
grep -qx "try 'synclog topic create --help'" "$TMP/err" || fail "no pointer to --help: $(cat "$TMP/err")"
expect_exit 2 "$S" frobnicate
grep -qx "try 'synclog --help'" "$TMP/err" || fail "unknown command: $(cat "$TMP/err")"

start_broker "$TMP/data"

# ---- topics: plurals, --if-not-exists, --compact, segment settings ----
expect_exit 0 "$S" topic create one --partitions 1
[ "$(cat "$TMP/out")" = "created topic one with 1 partition" ] || fail "singular: $(cat "$TMP/out")"
expect_exit 0 "$S" topic create one --partitions 4 --if-not-exists
[ "$(cat "$TMP/out")" = "topic one exists with 1 partition" ] || fail "--if-not-exists: $(cat "$TMP/out")"
expect_exit 0 "$S" --json topic create one --partitions 1 --if-not-exists
[ "$(cat "$TMP/out")" = '{"exists":"one","partitions":1}' ] || fail "--if-not-exists --json: $(cat "$TMP/out")"
expect_exit 1 "$S" topic create one --partitions 1
expect_exit 0 "$S" topic create compacted --partitions 1 --compact
expect_exit 0 "$S" topic describe compacted
sed -n 2p "$TMP/out" | grep -q '^compacted: the newest version of each key stays; tombstones stay 1d' ||
	fail "--compact: $(cat "$TMP/out")"
expect_exit 0 "$S" topic create small --partitions 1 --segment-bytes 1048576 --segment-ms 1h --retention-ms 2d
expect_exit 2 "$S" topic create tiny --partitions 1 --segment-bytes 65536
expect_exit 2 "$S" topic create tiny --partitions 1 --segment-ms 10ms
expect_exit 0 "$S" topic describe small
head -1 "$TMP/out" | grep -q 'topic small: 1 partition; retention 2d, no size limit; segments roll at 1.0 MiB or after 1h' ||
	fail "describe header: $(head -1 "$TMP/out")"
expect_exit 0 "$S" --json topic list
python3 - "$TMP/out" <<'PY' || fail "topic list --json: $(cat "$TMP/out")"
import json, sys
t = {r["topic"]: r for r in map(json.loads, open(sys.argv[1]))}
assert t["small"]["segment_bytes"] == 1048576 and t["small"]["segment_ms"] == 3600000, t["small"]
assert t["small"]["retention_ms"] == 172800000, t["small"]
assert t["one"]["segment_bytes"] == 1073741824 and t["one"]["segment_ms"] == 604800000, t["one"]
PY
seq 1 25000 | awk '{printf "k%d\t%0200d\n", $1, $1}' >"$TMP/big.tsv"
expect_exit 0 "$S" produce small <"$TMP/big.tsv"
segments() { "$S" --json topic describe small | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["segments"])'; }
[ "$(segments)" -ge 5 ] || fail "1 MiB segments did not roll: $(segments) segments for 5 MiB"
stop_broker
start_broker "$TMP/data"
before=$(segments)
expect_exit 0 "$S" produce small <"$TMP/big.tsv"
[ "$(segments)" -ge $((before + 5)) ] || fail "after a restart the topic's segment size was not kept: $before -> $(segments)"

# ---- human tables, raw JSON, no terminal codes ----
expect_exit 0 "$S" topic list
grep -Eq '^small +1 +2d +none +1\.0 MiB +1h$' "$TMP/out" || fail "topic list table: $(cat "$TMP/out")"
printf 'a\t1\n' | "$S" produce one >/dev/null
expect_exit 0 "$S" consume one --group g
expect_exit 0 "$S" group describe g
grep -Eq '^one +0 +1 +1 +0 +0s ' "$TMP/out" || fail "group describe lag time: $(cat "$TMP/out")"
for cmd in "topic list" "topic describe small" "group describe g" "consume one" "group list"; do
	# shellcheck disable=SC2086
	NO_COLOR= "$S" $cmd >"$TMP/plain" 2>&1
	if grep -q $'\033' "$TMP/plain"; then fail "terminal codes in the output of $cmd"; fi
done

# ---- produce plurals, consume --from forms, --format ----
cat >"$TMP/ev.jsonl" <<'EOF'
{"key": "cust-1", "version": 1, "value": {"status": "trial"}}
{"key": "cust-1", "version": 2, "op": "delete", "idempotency_key": "evt-2"}
{"key": "tab\tkey", "version": 3, "value": "two\nlines"}
EOF
expect_exit 0 "$S" topic create ev --partitions 1
printf 'x\t1\n' >"$TMP/one.tsv"
expect_exit 0 "$S" produce ev <"$TMP/one.tsv"
[ "$(cat "$TMP/out")" = "produced 1 record" ] || fail "singular record: $(cat "$TMP/out")"
expect_exit 0 "$S" produce ev --input json <"$TMP/ev.jsonl"
[ "$(cat "$TMP/out")" = "produced 3 records" ] || fail "plural records: $(cat "$TMP/out")"
expect_exit 0 "$S" consume ev --from -2
[ "$(cut -f2 "$TMP/out" | tr '\n' ' ')" = "2 3 " ] || fail "--from -2: $(cat "$TMP/out")"
[ "$(tail -1 "$TMP/out")" = "$(printf '0\t3\ttab\\tkey\t"two\\nlines"')" ] || fail "TSV escaping: $(tail -1 "$TMP/out")"
expect_exit 0 "$S" consume ev --from -100
[ "$(wc -l <"$TMP/out")" -eq 4 ] || fail "--from -100 on 4 records printed $(wc -l <"$TMP/out")"
expect_exit 0 "$S" consume ev --from @-1h
[ "$(wc -l <"$TMP/out")" -eq 4 ] || fail "--from @-1h printed $(wc -l <"$TMP/out")"
expect_exit 0 "$S" consume ev --from "@$(($(date +%s) + 3600))000"
[ ! -s "$TMP/out" ] || fail "--from @EPOCH_MS in the future printed something"
expect_exit 0 "$S" consume ev --from 1 --format '%o %k %O v%v [%h] %S|%s\n'
cat >"$TMP/want" <<'EOF'
1 cust-1 upsert v1 [version=1,op=upsert,origin=live] 18|{"status":"trial"}
2 cust-1 delete v2 [version=2,op=delete,origin=live,idempotency_key=evt-2] -1|
EOF
printf '3 tab\tkey upsert v3 [version=3,op=upsert,origin=live] 12|"two\\nlines"\n' >>"$TMP/want"
cmp -s "$TMP/want" "$TMP/out" || fail "--format: $(cat "$TMP/out")"
expect_exit 2 "$S" consume ev --format '%z'
expect_exit 2 "$S" --json consume ev --format '%k\n'
expect_exit 2 "$S" consume ev --from -x

# ---- --timeout: a port that accepts and never answers ----
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)
' >"$TMP/silent.port" &
silent=$!
for _ in $(seq 1 100); do [ -s "$TMP/silent.port" ] && break; sleep 0.05; done
rc=0
timeout 25 "$S" --broker "127.0.0.1:$(cat "$TMP/silent.port")" --timeout 1s topic list >"$TMP/out" 2>"$TMP/err" || rc=$?
kill "$silent"
[ "$rc" -eq 1 ] || fail "--timeout 1s against a silent port: exit $rc (124: it hung) $(cat "$TMP/err")"
grep -q 'did not answer within 1000 ms' "$TMP/err" || fail "--timeout message: $(cat "$TMP/err")"
expect_exit 2 "$S" --timeout soon topic list

# ---- offsets reset from Kafka's headerless CSV ----
printf 'ev,0,2\n' >"$TMP/kafka.csv"
expect_exit 0 "$S" offsets reset --group kg --from-file "$TMP/kafka.csv" --execute
grep -Eq '^ev +0 +-1 +2$' "$TMP/out" || fail "Kafka CSV reset: $(cat "$TMP/out")"
expect_exit 0 "$S" --json group describe kg
grep -q '"committed":2' "$TMP/out" || fail "Kafka CSV reset was not committed: $(cat "$TMP/out")"

stop_broker
echo ok
