#!/usr/bin/env bash
# acceptance 4, soft deletes and their purge, against PostgreSQL: test_apply_delete_purge.sh with its target in a PostgreSQL server of its own
# (SL_APPLY_TARGET in apply_lib.sh, the server from pg_lib.sh).
SL_APPLY_TARGET=postgresql exec "$(dirname "$0")/test_apply_delete_purge.sh" "$@"
