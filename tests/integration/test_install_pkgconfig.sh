#!/usr/bin/env bash
# The client library as a user gets it: `tools/install.sh` (what `make install` runs) into a temp prefix, then a
# program built only from the installed header, archive and pkg-config file (consumer/examples/roundtrip.c)
# produces 500 change events at acks fsync against a real broker and reads every one of them back.
# Usage: tests/integration/test_install_pkgconfig.sh BUILD_DIR.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"

prefix=$TMP/prefix
tools/install.sh "$BUILD" "$prefix" >/dev/null
for f in bin/synclogd bin/synclog lib/libsynclog.a include/synclog/synclog.h include/synclog/proto/batch.h \
	lib/pkgconfig/synclog.pc; do
	[ -e "$prefix/$f" ] || fail "install did not create $f"
done

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
cflags=$(pkg-config --cflags synclog) || fail "pkg-config does not know synclog"
libs=$(pkg-config --libs synclog)
# A sanitizer build's archive needs the sanitizer runtime at link time.
san=()
case $BUILD in *san-*) san=(-fsanitize="$(basename "$BUILD" | sed 's/^san-//; s/-/,/g')") ;; esac
# Outside the source tree, so only the installed header can be found.
cp consumer/examples/roundtrip.c "$TMP/app.c"
(cd "$TMP" && gcc -std=c11 -Wall -Wextra -Werror "${san[@]}" app.c $cflags $libs -o app) ||
	fail "the example does not build against the installed library"

start_broker "$TMP/data"
"$prefix/bin/synclog" topic create customers --partitions 3 >/dev/null
"$TMP/app" "$SYNCLOG_BROKER" customers 500 >"$TMP/out" 2>"$TMP/err" || fail "roundtrip failed: $(cat "$TMP/err")"
grep -qx "produced 500 acknowledged, 0 failed" "$TMP/out" || fail "produce: $(cat "$TMP/out")"
grep -qx "consumed 500 records, highest version 500" "$TMP/out" || fail "consume: $(cat "$TMP/out")"
stop_broker
echo "ok: installed library builds a program that produced and consumed 500 records"
