#!/bin/bash
# Remove what tools/install.sh put under PREFIX, and nothing else: the files its manifest
# (PREFIX/share/synclog/install-manifest) lists, then the directories install created, when they are empty. The
# config PREFIX/etc/synclog/synclogd.conf is removed only while it is still the example install put there; an
# edited one is the operator's and stays. Data directories (such as /var/lib/synclog) are never touched.
# Usage: tools/uninstall.sh PREFIX   (DESTDIR is honoured)
set -euo pipefail
prefix=${1:?prefix}
dest=${DESTDIR:-}${prefix}
manifest=$dest/share/synclog/install-manifest
if [ ! -f "$manifest" ]; then
	echo "uninstall: $manifest not found: synclog is not installed under $dest" >&2
	exit 1
fi
example=$dest/share/doc/synclog/synclogd.conf
removed=0
dirs=()
# The config first: whether it is unchanged is decided against the example, which goes with the other files.
while read -r kind rel; do
	[ "$kind" = c ] || continue
	if [ -f "$dest/$rel" ] && [ -f "$example" ] && ! cmp -s "$dest/$rel" "$example"; then
		echo "kept $dest/$rel: it was changed since install"
	elif [ -e "$dest/$rel" ]; then
		rm -f "$dest/$rel"
		removed=$((removed + 1))
	fi
done <"$manifest"
while read -r kind rel; do
	case $kind in
	f)
		if [ -e "$dest/$rel" ] && [ "$dest/$rel" != "$manifest" ]; then
			rm -f "$dest/$rel"
			removed=$((removed + 1))
		fi
		;;
	d) dirs+=("$rel") ;;
	esac
done <"$manifest"
rm -f "$manifest"
# Deepest first; a directory that still holds something (a kept config, files of another package) stays.
if [ ${#dirs[@]} -gt 0 ]; then
	while read -r rel; do
		rmdir "$dest/$rel" 2>/dev/null || true
	done < <(printf '%s\n' "${dirs[@]}" | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-)
fi
echo "removed $((removed + 1)) files of synclog from $dest"
