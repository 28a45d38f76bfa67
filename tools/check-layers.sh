#!/usr/bin/env bash
# Checks that includes point downward only (README, "Layout"), so the folders keep showing the architecture:
#   proto/base/ <- proto/ <- broker/storage/ <- broker/ (shard state) <- broker/net/, broker/handlers/, broker/kafka/
#   proto/ <- consumer/client/ <- consumer/sync/ <- tools/
# and that each layer uses only its own packages: the storage engine no libuv, the broker neither libyaml nor libcurl
# (contract files and thin events are the sync layer's), the wire codec and the client
# library no SQLite, jansson or libpq. It reads every #include of every file, and for the storage engine also what
# the compiler pulls in transitively (gcc -M), so a header that drags in <uv.h> is caught too.
# Usage: tools/check-layers.sh GEN_DIR   (exit 1 with one line per violation)
set -uo pipefail
gen=${1:-build/release/gen}
bad=0

# layer glob -> the quoted includes it may use (extended regex on the path)
declare -A allow=(
	[proto/base]='^proto/base/'
	[proto]='^proto/'
	[broker/storage]='^(proto|broker/storage)/'
	[broker]='^(proto|broker)/'
	[broker/net]='^(proto|broker/storage|broker/net)/|^broker/[a-z_]+\.h$'
	[broker/handlers]='^(proto|broker/storage|broker/handlers)/|^broker/[a-z_]+\.h$'
	[broker/kafka]='^(proto|broker/storage|broker/kafka)/|^broker/[a-z_]+\.h$'
	[consumer/client]='^(proto|consumer/client)/'
	[consumer/sync]='^(proto|consumer/client|consumer/sync)/'
	[tools]='^(proto|consumer|tools)/'
)
# layer -> system headers it must not include
declare -A deny=(
	[proto/base]='<((uv|sqlite3|jansson|libpq-fe|liburing|yaml)\.h|curl/)'
	[proto]='<((uv|sqlite3|jansson|libpq-fe|liburing|yaml)\.h|curl/)'
	[broker/storage]='<((uv|sqlite3|jansson|libpq-fe|yaml)\.h|curl/)'
	[broker]='<(yaml\.h|curl/)'
	[broker/handlers]='<(yaml\.h|curl/)'
	[consumer/client]='<((uv|sqlite3|jansson|libpq-fe|liburing|yaml)\.h|curl/)'
)

for layer in "${!allow[@]}"; do
	[ -d "$layer" ] || continue
	for f in "$layer"/*.[ch]; do
		[ -e "$f" ] || continue
		while IFS= read -r inc; do
			[[ $inc =~ ${allow[$layer]} ]] || [[ $inc == */synclog.pb-c.h ]] || {
				echo "layers: $f includes \"$inc\": $layer may include only ${allow[$layer]}"
				bad=1
			}
		done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
		if [ -n "${deny[$layer]:-}" ] && grep -En "^#include ${deny[$layer]}" "$f" >/dev/null; then
			echo "layers: $f includes $(grep -Eo "${deny[$layer]}" "$f" | head -1), which $layer must not use"
			bad=1
		fi
	done
done

# Transitively: nothing the storage engine compiles may pull in libuv.
for f in broker/storage/*.c; do
	if gcc -std=c11 -D_GNU_SOURCE -I. -I"$gen" -M "$f" 2>/dev/null | tr ' \\' '\n\n' | grep -q '/uv\.h$\|/uv/'; then
		echo "layers: $f pulls in libuv through its headers; the storage engine must not"
		bad=1
	fi
done
exit $bad
