#!/usr/bin/env bash
# Issue 14's offset reset adoption against PostgreSQL: test_apply_reset.sh with its target in a PostgreSQL server of its
# own (SL_APPLY_TARGET in apply_lib.sh, the server from pg_lib.sh); `synclog offsets reset --execute` moves it too.
SL_APPLY_TARGET=postgresql exec "$(dirname "$0")/test_apply_reset.sh" "$@"
