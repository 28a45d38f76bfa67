#!/usr/bin/env bash
# Topic names cannot reach the broker's scratch state: names starting with '.' are refused, and creating or
# deleting a topic whose name looks like an old scratch folder never touches another topic's records. Before the
# fix, a topic named '.deleting-t' or '.creating-t' was accepted, and the broker removed it at the next start or
# at the next create/delete of 't', losing acknowledged records.
set -euo pipefail
BUILD=${1:-build/release}
. tests/integration/lib.sh

data="$TMP/data"
start_broker "$data"
for name in .deleting-t .creating-t .hidden; do
	rc=0
	"$SYNCLOG" topic create "$name" --partitions 1 2>"$TMP/err" >/dev/null || rc=$?
	[ "$rc" -eq 1 ] || fail "topic create $name exited $rc, want 1"
	grep -q "invalid topic name" "$TMP/err" || fail "topic create $name said: $(cat "$TMP/err")"
done

# Scratch folders are no longer under topics/: create and delete t around a live topic u.
"$SYNCLOG" topic create u --partitions 1 >/dev/null
printf 'k\tkept\n' | "$SYNCLOG" produce u --acks fsync >/dev/null
"$SYNCLOG" topic create t --partitions 1 >/dev/null
"$SYNCLOG" topic delete t >/dev/null
"$SYNCLOG" topic create t --partitions 1 >/dev/null
[ -z "$(ls -A "$data/topics" | grep '^\.' || true)" ] || fail "dot folders under topics/: $(ls -A "$data/topics")"
[ -d "$data/scratch" ] || fail "no scratch folder in $data"

# A folder an older version left under topics/ with a scratch-like name is never deleted at start: it may be a
# topic. Here it is a real one (its topic.json names it), and it must open with its records.
stop_broker
mkdir -p "$data/topics/.creating-u"
cp -r "$data/topics/u/0" "$data/topics/.creating-u/0"
sed 's/"name": "u"/"name": ".creating-u"/' "$data/topics/u/topic.json" >"$data/topics/.creating-u/topic.json"
start_broker "$data"
"$SYNCLOG" consume u --from earliest | grep -q kept || fail "topic u lost its record"
"$SYNCLOG" consume .creating-u --from earliest | grep -q kept || fail "the old dot-named topic did not open"
stop_broker
[ -d "$data/topics/.creating-u" ] || fail "the old dot-named topic folder was removed"
