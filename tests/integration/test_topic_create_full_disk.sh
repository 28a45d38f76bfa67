#!/usr/bin/env bash
# Topic create on a full disk says NOT_ENOUGH_SPACE (it said "Input/output error" or STORAGE_ERROR), and a create
# that cannot open every partition leaves nothing behind: no folder under topics/ or scratch/, no topic listed.
# Before the fix, a topic whose partitions ran out of inodes was reported created, with unavailable partitions.
# Needs root to mount a small tmpfs (like tests/unit/test_log_disk_full.c); skipped otherwise.
set -euo pipefail
BUILD=${1:-build/release}
. tests/integration/lib.sh

mnt="$TMP/mnt"
mkdir -p "$mnt"
if [ "$(id -u)" -ne 0 ] || ! mount -t tmpfs -o size=4m,nr_inodes=140 tmpfs "$mnt" 2>/dev/null; then
	echo "skipped: needs root and a tmpfs mount"
	exit 0
fi
trap 'stop_broker_hard; umount "$mnt" 2>/dev/null; rm -rf "$TMP"' EXIT
data="$mnt/data"
start_broker "$data"
"$SYNCLOG" topic create small --partitions 2 >/dev/null || fail "create small"
printf 'k\tv\n' | "$SYNCLOG" produce small --acks fsync >/dev/null || fail "produce to small"

# 100 partitions need about 400 inodes; the file system has 140: the folders fit, the segment files do not.
rc=0
"$SYNCLOG" topic create wide --partitions 100 >"$TMP/out" 2>"$TMP/err" || rc=$?
[ "$rc" -eq 1 ] || fail "create wide exited $rc, want 1: $(cat "$TMP/out" "$TMP/err")"
grep -q NOT_ENOUGH_SPACE "$TMP/err" || fail "create wide said: $(cat "$TMP/err")"
grep -q "nothing was created" "$TMP/err" || fail "create wide said: $(cat "$TMP/err")"
[ "$(ls -A "$data/topics")" = small ] || fail "topics/ holds: $(ls -A "$data/topics")"
[ -z "$(ls -A "$data/scratch")" ] || fail "scratch/ holds: $(ls -A "$data/scratch")"
"$SYNCLOG" topic list | grep -q wide && fail "wide is listed"

# Out of blocks: the same code.
dd if=/dev/zero of="$mnt/filler" bs=64k 2>/dev/null || true
rc=0
"$SYNCLOG" topic create x --partitions 1 2>"$TMP/err" >/dev/null || rc=$?
[ "$rc" -eq 1 ] && grep -q NOT_ENOUGH_SPACE "$TMP/err" || fail "create on a full disk: exit $rc: $(cat "$TMP/err")"
rm -f "$mnt/filler"

# With room again, creates work and nothing was lost.
"$SYNCLOG" topic create wide2 --partitions 10 >/dev/null || fail "create wide2 after space came back"
printf 'k2\tv2\n' | "$SYNCLOG" produce wide2 --acks fsync >/dev/null || fail "produce to wide2"
"$SYNCLOG" consume small --from earliest | grep -q "k	v" || fail "small lost its record"
stop_broker
echo ok
