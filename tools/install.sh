#!/bin/bash
# Install synclog from a build directory: the two programs, the client library as one static archive (the client
# and the wire codec it needs), its headers, and a pkg-config file, so a C program builds against it with
#   cc app.c $(pkg-config --cflags --libs synclog)
# Usage: tools/install.sh BUILD_DIR PREFIX   (DESTDIR is honoured, as packagers expect)
set -euo pipefail
build=${1:?build directory}
prefix=${2:?prefix}
dest=${DESTDIR:-}${prefix}
version=$(sed -n 's/^#define SL_VERSION "\(.*\)"/\1/p' consumer/synclog.h)
version=${version:-0.1.0}

install -d "$dest/bin" "$dest/lib/pkgconfig" "$dest/include/synclog/proto"
install -m 0755 "$build/bin/synclogd" "$build/bin/synclog" "$dest/bin/"
# One archive: a user links -lsynclog, not our internal split into client and protocol libraries.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && ar x "$OLDPWD/$build/lib/libsynclog.a" && ar x "$OLDPWD/$build/lib/libsynclog_proto.a" &&
	ar rcs libsynclog.a ./*.o)
install -m 0644 "$tmp/libsynclog.a" "$dest/lib/"
install -m 0644 consumer/synclog.h consumer/apply.h "$dest/include/synclog/"
install -m 0644 proto/batch.h proto/frame.h "$dest/include/synclog/proto/"
# Static library: its dependencies go in Requires (not .private), so a plain `pkg-config --libs` links.
cat >"$dest/lib/pkgconfig/synclog.pc" <<PC
prefix=$prefix
includedir=\${prefix}/include/synclog
libdir=\${prefix}/lib

Name: synclog
Description: Client library of the synclog broker: producer, fetcher, group consumer, applier
Version: $version
Requires: libzstd libprotobuf-c sqlite3 jansson
Cflags: -I\${includedir}
Libs: -L\${libdir} -lsynclog -lpthread
PC
echo "installed synclog into $dest"
