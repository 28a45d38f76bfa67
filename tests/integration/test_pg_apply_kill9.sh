#!/usr/bin/env bash
# acceptance 5, the applier killed with -9 in 20 rounds, against PostgreSQL: test_apply_kill9.sh with its target in a PostgreSQL server of its own
# (SL_APPLY_TARGET in apply_lib.sh, the server from pg_lib.sh).
SL_APPLY_TARGET=postgresql exec "$(dirname "$0")/test_apply_kill9.sh" "$@"
