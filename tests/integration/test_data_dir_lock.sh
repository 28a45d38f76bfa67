#!/usr/bin/env bash
# A second synclogd (or `--repair`) on a data directory that a running broker holds is refused at once with the
# holder's pid, and the first broker keeps every record it acknowledged: before the lock, the second broker came
# up on the same segment files and an acknowledged record was silently replaced.
set -euo pipefail
BUILD=${1:-build/release}
. tests/integration/lib.sh

data="$TMP/data"
start_broker "$data"
first=$BROKER_PID
"$SYNCLOG" topic create t --partitions 1 >/dev/null
printf 'k1\tfirst\nk2\tsecond\n' | "$SYNCLOG" produce t --acks fsync >/dev/null

rc=0
err=$(timeout 10 "$SYNCLOGD" --data-dir "$data" --listen 127.0.0.1:0 --metrics off 2>&1 >/dev/null) || rc=$?
[ "$rc" -eq 1 ] || fail "second synclogd exited $rc, want 1"
echo "$err" | grep -q "another synclogd (pid $first) is using $data" || fail "second synclogd said: $err"

rc=0
err=$(timeout 10 "$SYNCLOGD" --data-dir "$data" --repair 2>&1 >/dev/null) || rc=$?
[ "$rc" -eq 1 ] || fail "--repair on a held data dir exited $rc, want 1"
echo "$err" | grep -q "another synclogd (pid $first)" || fail "--repair said: $err"

# The first broker still serves both acknowledged records, and keeps appending after them.
printf 'k3\tthird\n' | "$SYNCLOG" produce t --acks fsync >/dev/null
got=$("$SYNCLOG" consume t --from earliest | cut -f2-)
want=$(printf '0\tk1\tfirst\n1\tk2\tsecond\n2\tk3\tthird')
[ "$got" = "$want" ] || fail "after the refused second broker the log reads: $got"

# Once the first broker has stopped, the lock is free again and a restart sees all three records.
stop_broker
start_broker "$data"
got=$("$SYNCLOG" consume t --from earliest | wc -l)
[ "$got" -eq 3 ] || fail "after restart: $got records, want 3"
stop_broker
