#!/bin/sh
# Prints synclog's version for the build: `git describe` of the checkout (a release tag such as v0.3.0, then the
# commits since it and the commit, and "-dirty" for uncommitted changes), or 0.0.0-N-gHASH while no tag exists,
# or 0.0.0-unknown outside a git checkout.
# The Makefile writes it into build/*/gen/proto/version.h; synclog --version, synclogd --version, the broker's
# Hello and synclog.pc all show it.
cd "$(dirname "$0")/.." || exit 1
if v=$(git describe --tags --dirty --match 'v[0-9]*' 2>/dev/null); then
	echo "${v#v}"
elif hash=$(git rev-parse --short HEAD 2>/dev/null); then
	dirty=
	git diff --quiet HEAD -- 2>/dev/null || dirty=-dirty
	echo "0.0.0-$(git rev-list --count HEAD)-g$hash$dirty"
else
	echo 0.0.0-unknown
fi
