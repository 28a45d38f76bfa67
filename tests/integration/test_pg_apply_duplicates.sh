#!/usr/bin/env bash
# acceptance 3, events delivered twice, against PostgreSQL: test_apply_duplicates.sh with its target in a PostgreSQL server of its own
# (SL_APPLY_TARGET in apply_lib.sh, the server from pg_lib.sh).
SL_APPLY_TARGET=postgresql exec "$(dirname "$0")/test_apply_duplicates.sh" "$@"
