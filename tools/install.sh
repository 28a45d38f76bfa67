#!/bin/bash
# Install synclog from a build directory: the two programs, the client library as one static archive (the client
# and the wire codec it needs: zstd and protobuf-c, no SQLite or jansson), the sync library (the applier and its
# stores) as a second archive, their headers, and a pkg-config file for each, so a C program builds with
#   cc app.c $(pkg-config --cflags --libs synclog)           # producer, fetcher, group consumer, admin
#   cc app.c $(pkg-config --cflags --libs synclog-sync)      # plus the applier (SQLite, jansson)
# Headers keep their repository paths under include/synclog/, plus include/synclog/synclog.h for the client.
# Also the manual pages (built from tools/man/*.scd), the systemd unit tools/synclogd.service, and the example
# config tools/synclogd.conf: as PREFIX/etc/synclog/synclogd.conf when there is none yet (an existing one is the
# operator's and is left alone), and always under PREFIX/share/doc/synclog/.
# Every file put down is listed in PREFIX/share/synclog/install-manifest, which tools/uninstall.sh (make
# uninstall) reads to remove exactly those.
# Usage: tools/install.sh BUILD_DIR PREFIX   (DESTDIR is honoured, as packagers expect)
set -euo pipefail
build=${1:?build directory}
prefix=${2:?prefix}
dest=${DESTDIR:-}${prefix}
version=$(sed -n 's/^#define SL_VERSION "\(.*\)"/\1/p' "$build/gen/proto/version.h" 2>/dev/null || true)
version=${version:-0.0.0-unknown}
manifest_rel=share/synclog/install-manifest
manifest=()

# new_dirs REL: remember the directories above PREFIX/REL that do not exist yet (uninstall removes only those).
new_dirs() {
	local d
	d=$(dirname "$1")
	while [ "$d" != . ] && [ ! -d "$dest/$d" ]; do
		manifest+=("d $d")
		d=$(dirname "$d")
	done
}

# put MODE SRC REL: install SRC as PREFIX/REL and remember it.
put() {
	new_dirs "$3"
	install -D -m "$1" "$2" "$dest/$3"
	manifest+=("f $3")
}

inc=include/synclog
# The wire codec's CRC32C uses ISA-L when the build found it (Makefile, HAVE_ISAL).
isal_libs=
if nm "$build/lib/libsynclog_proto.a" 2>/dev/null | grep -c " U crc32_iscsi" >/dev/null; then isal_libs=-lisal; fi
put 0755 "$build/bin/synclogd" bin/synclogd
put 0755 "$build/bin/synclog" bin/synclog
# One client archive: a user links -lsynclog, not our internal split into client and protocol libraries.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && ar x "$OLDPWD/$build/lib/libsynclog.a" && ar x "$OLDPWD/$build/lib/libsynclog_proto.a" &&
	ar rcs libsynclog.a ./*.o)
put 0644 "$tmp/libsynclog.a" lib/libsynclog.a
put 0644 "$build/lib/libsynclog_sync.a" lib/libsynclog_sync.a
for h in consumer/client/synclog.h consumer/sync/apply.h consumer/sync/record_input.h proto/batch.h proto/frame.h \
	proto/limits.h proto/base/duration.h; do
	put 0644 "$h" "$inc/$h"
done
printf '/* The synclog client library (installed wrapper). */\n#include "consumer/client/synclog.h"\n' >"$tmp/synclog.h"
put 0644 "$tmp/synclog.h" "$inc/synclog.h"
# Static libraries: their dependencies go in Requires (not .private), so a plain `pkg-config --libs` links.
cat >"$tmp/synclog.pc" <<PC
prefix=$prefix
includedir=\${prefix}/include/synclog
libdir=\${prefix}/lib

Name: synclog
Description: Client library of the synclog broker and of Kafka clusters: producer, fetcher, group consumer, admin
Version: $version
# rdkafka: the Kafka transport (kafka:// brokers) is librdkafka's producer, consumer and Admin API.
Requires: libzstd libprotobuf-c libssl libcrypto rdkafka
Cflags: -I\${includedir}
Libs: -L\${libdir} -lsynclog -lpthread $isal_libs
PC
cat >"$tmp/synclog-sync.pc" <<PC
prefix=$prefix
includedir=\${prefix}/include/synclog
libdir=\${prefix}/lib

Name: synclog-sync
Description: Sync layer of synclog: the applier and its target stores, on the client library
Version: $version
Requires: synclog sqlite3 jansson libpq libxxhash
Cflags: -I\${includedir}
Libs: -L\${libdir} -lsynclog_sync
PC
put 0644 "$tmp/synclog.pc" lib/pkgconfig/synclog.pc
put 0644 "$tmp/synclog-sync.pc" lib/pkgconfig/synclog-sync.pc

# Manual pages, by section.
for page in "$build"/man/*.[0-9]; do
	[ -e "$page" ] || { echo "install: no manual pages in $build/man: run make first" >&2; exit 1; }
	name=$(basename "$page")
	put 0644 "$page" "share/man/man${name##*.}/$name"
done

# The systemd unit, with this prefix's paths; systemd reads PREFIX/lib/systemd/system for /usr and /usr/local.
sed -e "s|@PREFIX@|$prefix|g" -e "s|@SYSCONFDIR@|$prefix/etc|g" tools/synclogd.service >"$tmp/synclogd.service"
put 0644 "$tmp/synclogd.service" lib/systemd/system/synclogd.service

# The example config: documentation always, the live config only when there is none.
put 0644 tools/synclogd.conf share/doc/synclog/synclogd.conf
if [ -e "$dest/etc/synclog/synclogd.conf" ]; then
	echo "kept the existing $dest/etc/synclog/synclogd.conf (the example is in $dest/share/doc/synclog/)"
else
	new_dirs etc/synclog/synclogd.conf
	install -D -m 0644 tools/synclogd.conf "$dest/etc/synclog/synclogd.conf"
	manifest+=("c etc/synclog/synclogd.conf")
fi

# The manifest lists itself last, so that uninstall removes it after everything else.
new_dirs "$manifest_rel"
manifest+=("f $manifest_rel")
mkdir -p "$(dirname "$dest/$manifest_rel")"
{
	echo "# What synclog $version installed under $prefix: f a file, c the config (removed only while unchanged),"
	echo "# d a directory install created (removed when empty)"
	printf '%s\n' "${manifest[@]}"
} >"$dest/$manifest_rel"
echo "installed synclog $version into $dest"
