#!/bin/bash
# Install synclog from a build directory: the two programs, the client library as one static archive (the client
# and the wire codec it needs: zstd and protobuf-c, no SQLite or jansson), the sync library (the applier and its
# stores) as a second archive, their headers, and a pkg-config file for each, so a C program builds with
#   cc app.c $(pkg-config --cflags --libs synclog)           # producer, fetcher, group consumer, admin
#   cc app.c $(pkg-config --cflags --libs synclog-sync)      # plus the applier (SQLite, jansson)
# Headers keep their repository paths under include/synclog/, plus include/synclog/synclog.h for the client.
# Usage: tools/install.sh BUILD_DIR PREFIX   (DESTDIR is honoured, as packagers expect)
set -euo pipefail
build=${1:?build directory}
prefix=${2:?prefix}
dest=${DESTDIR:-}${prefix}
version=$(sed -n 's/^#define SL_VERSION "\(.*\)"/\1/p' consumer/client/synclog.h)
version=${version:-0.1.0}

inc="$dest/include/synclog"
install -d "$dest/bin" "$dest/lib/pkgconfig" "$inc/proto" "$inc/consumer/client" "$inc/consumer/sync"
install -m 0755 "$build/bin/synclogd" "$build/bin/synclog" "$dest/bin/"
# One client archive: a user links -lsynclog, not our internal split into client and protocol libraries.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && ar x "$OLDPWD/$build/lib/libsynclog.a" && ar x "$OLDPWD/$build/lib/libsynclog_proto.a" &&
	ar rcs libsynclog.a ./*.o)
install -m 0644 "$tmp/libsynclog.a" "$build/lib/libsynclog_sync.a" "$dest/lib/"
install -m 0644 consumer/client/synclog.h "$inc/consumer/client/"
install -m 0644 consumer/sync/apply.h consumer/sync/record_input.h "$inc/consumer/sync/"
install -m 0644 proto/batch.h proto/frame.h proto/limits.h "$inc/proto/"
printf '/* The synclog client library (installed wrapper). */\n#include "consumer/client/synclog.h"\n' >"$inc/synclog.h"
# Static libraries: their dependencies go in Requires (not .private), so a plain `pkg-config --libs` links.
cat >"$dest/lib/pkgconfig/synclog.pc" <<PC
prefix=$prefix
includedir=\${prefix}/include/synclog
libdir=\${prefix}/lib

Name: synclog
Description: Client library of the synclog broker: producer, fetcher, group consumer, admin
Version: $version
Requires: libzstd libprotobuf-c
Cflags: -I\${includedir}
Libs: -L\${libdir} -lsynclog -lpthread
PC
cat >"$dest/lib/pkgconfig/synclog-sync.pc" <<PC
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
echo "installed synclog into $dest"
