#!/usr/bin/env bash
# `make install` puts down the programs, libraries, headers, pkg-config files, manual pages, the systemd unit (with
# the prefix's paths) and the example config, and `make uninstall` removes exactly that: a prefix that held
# other files keeps them, a config the operator edited is kept, and nothing of synclog is left otherwise.
# Usage: tests/integration/test_install_uninstall.sh BUILD_DIR.
set -euo pipefail
BUILD=${1:-build/release}
. "$(dirname "$0")/lib.sh"

prefix=$TMP/prefix
mkdir -p "$prefix/bin" "$prefix/share/man/man1"
echo "not ours" >"$prefix/bin/other-tool"
echo "not ours" >"$prefix/share/man/man1/other-tool.1"
(cd "$TMP" && find prefix | sort) >"$TMP/before"

tools/install.sh "$BUILD" "$prefix" >/dev/null
for f in bin/synclogd bin/synclog lib/libsynclog.a lib/libsynclog_sync.a lib/pkgconfig/synclog.pc \
	include/synclog/synclog.h include/synclog/proto/base/duration.h share/man/man1/synclog.1 \
	share/man/man1/synclog-apply.1 share/man/man8/synclogd.8 share/man/man7/synclog-troubleshooting.7 \
	lib/systemd/system/synclogd.service etc/synclog/synclogd.conf share/doc/synclog/synclogd.conf; do
	[ -e "$prefix/$f" ] || fail "install did not create $f"
done
for page in tools/man/*.scd; do
	name=$(basename "$page" .scd)
	[ -e "$prefix/share/man/man${name##*.}/$name" ] || fail "manual page $name not installed"
done
# One version everywhere: the programs and the pkg-config files (git describe at build time).
v=$("$prefix/bin/synclog" --version | sed 's/^synclog //')
[ "$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --modversion synclog)" = "$v" ] ||
	fail "synclog.pc version differs from synclog --version ($v)"
[ "$("$prefix/bin/synclogd" --version)" = "synclogd $v" ] || fail "synclogd --version differs"
grep -q "^ExecStart=$prefix/bin/synclogd --config $prefix/etc/synclog/synclogd.conf" \
	"$prefix/lib/systemd/system/synclogd.service" || fail "the unit does not run the installed broker with its config"
grep -q '@PREFIX@\|@SYSCONFDIR@' "$prefix/lib/systemd/system/synclogd.service" && fail "placeholders left in the unit"
# The installed pages are man pages, and the config is one the installed broker accepts.
MANPATH=$prefix/share/man man -P cat synclogd 2>/dev/null | grep -q 'DATA DIRECTORY' || fail "man synclogd does not show"
"$prefix/bin/synclogd" --config "$prefix/etc/synclog/synclogd.conf" --data-dir "$TMP/data" --listen 127.0.0.1:0 \
	--metrics off >"$TMP/ready" 2>"$TMP/log" &
pid=$!
for _ in $(seq 1 100); do grep -q '^synclogd ready' "$TMP/ready" && break; sleep 0.05; done
kill -TERM $pid
wait $pid || fail "the broker with the example config: $(cat "$TMP/log")"
grep -q "config=$prefix/etc/synclog/synclogd.conf" "$TMP/log" || fail "start event lacks the config: $(cat "$TMP/log")"

# Uninstall after an untouched install: only the other files are left.
tools/uninstall.sh "$prefix" >/dev/null
(cd "$TMP" && find prefix | sort) >"$TMP/after"
diff "$TMP/before" "$TMP/after" >"$TMP/diff" || fail "uninstall left or removed: $(cat "$TMP/diff")"

# An edited config survives uninstall; the rest goes.
tools/install.sh "$BUILD" "$prefix" >/dev/null
echo '# edited' >>"$prefix/etc/synclog/synclogd.conf"
tools/uninstall.sh "$prefix" >"$TMP/out"
grep -q 'kept .*synclogd.conf' "$TMP/out" || fail "uninstall did not say it kept the edited config: $(cat "$TMP/out")"
[ -f "$prefix/etc/synclog/synclogd.conf" ] || fail "the edited config was removed"
left=$(cd "$prefix" && find . -type f | sort | tr '\n' ' ')
[ "$left" = "./bin/other-tool ./etc/synclog/synclogd.conf ./share/man/man1/other-tool.1 " ] ||
	fail "after uninstall with an edited config: $left"
# A second install keeps the operator's config and says so.
tools/install.sh "$BUILD" "$prefix" >"$TMP/out"
grep -q 'kept the existing' "$TMP/out" || fail "install overwrote or ignored an existing config: $(cat "$TMP/out")"
grep -q '# edited' "$prefix/etc/synclog/synclogd.conf" || fail "install replaced the operator's config"
tools/uninstall.sh "$prefix" >/dev/null
[ -f "$prefix/etc/synclog/synclogd.conf" ] || fail "uninstall removed a config install did not put down"
echo "ok: install put down every file and uninstall removed exactly those"
