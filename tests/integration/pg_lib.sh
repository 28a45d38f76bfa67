#!/usr/bin/env bash
# A PostgreSQL server of the test's own: initdb into a directory, pg_ctl start listening only on a Unix socket in
# that directory (no TCP port, no system service), stopped by PID at the end. PostgreSQL refuses to run as root:
# as root, initdb and pg_ctl run as the `postgres` user the Debian package creates, in a directory it owns.
#
# Sourced (after lib.sh): pg_start DIR sets PG_DIR, PG_PID, PG_CONNINFO (key=value) and PG_URI (postgresql://),
# and stops the server when the test exits; pg_restart_fast restarts it (pg_ctl restart -m fast); pg_stop;
# pg_sql SCHEMA QUERY prints the rows, columns separated by '|' (NULL as empty).
# Run: tests/integration/pg_lib.sh start DIR [OWNER_PID]   prints the conninfo; tests/integration/pg_lib.sh stop DIR
# (the unit tests of the PostgreSQL store start their server this way; with OWNER_PID a watcher stops the server
# when that process is gone without stopping it, as a test that crashed would leave it).

PG_DIR=
PG_PID=

pg_bindir() {
	local d
	d=$(pg_config --bindir 2>/dev/null)
	[ -x "$d/initdb" ] || d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
	[ -x "$d/initdb" ] || {
		echo "pg_lib: initdb not found: install the Debian package postgresql (tools/install-deps.sh test)" >&2
		return 1
	}
	echo "$d"
}

# pg_as CMD...: run as the postgres user when root.
pg_as() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# The server's options: no TCP, the socket in DIR. fsync off: the tests stop the server cleanly or not at all
# while it writes, and a shared 2-core VM should not wait for the disk on every test commit. PG_DURABLE=1 (the
# benchmark) keeps PostgreSQL's defaults: fsync on, synchronous_commit on, as a user runs it.
pg_options() {
	if [ "${PG_DURABLE:-0}" = 1 ]; then
		echo "-c listen_addresses='' -c unix_socket_directories='$1'"
	else
		echo "-c listen_addresses='' -c unix_socket_directories='$1' -c fsync=off -c full_page_writes=off"
	fi
}

pg_start() {
	local dir=$1 bin
	bin=$(pg_bindir) || return 1
	mkdir -p "$dir"
	if [ "$(id -u)" -eq 0 ]; then
		# The postgres user must reach DIR: let it through the (root-only) directories above.
		local up
		up=$(dirname "$dir")
		while [ "$up" != / ] && [ "$up" != /tmp ]; do
			chmod o+x "$up"
			up=$(dirname "$up")
		done
		chown postgres: "$dir"
	fi
	chmod 700 "$dir"
	pg_as "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 || {
		echo "pg_lib: initdb failed: $(tail -5 "$dir/initdb.log")" >&2
		return 1
	}
	pg_as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$(pg_options "$dir")" -w -t 60 start \
		>"$dir/pg_ctl.log" 2>&1 || {
		echo "pg_lib: the server did not start: $(tail -5 "$dir/server.log" 2>/dev/null)" >&2
		return 1
	}
	PG_DIR=$dir
	PG_PID=$(head -1 "$dir/data/postmaster.pid")
	PG_CONNINFO="host=$dir user=postgres dbname=postgres"
	PG_URI="postgresql://postgres@/postgres?host=$dir"
}

# pg_restart_fast: what an operator's `pg_ctl restart -m fast` does to the connections of the test.
pg_restart_fast() {
	local bin
	bin=$(pg_bindir) || return 1
	pg_as "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -o "$(pg_options "$PG_DIR")" -m fast -w -t 60 \
		restart >>"$PG_DIR/pg_ctl.log" 2>&1 || return 1
	PG_PID=$(head -1 "$PG_DIR/data/postmaster.pid")
}

# pg_stop: SIGINT is PostgreSQL's fast shutdown; after 30 s, SIGKILL.
pg_stop() {
	[ -n "$PG_PID" ] || return 0
	kill -INT "$PG_PID" 2>/dev/null || true
	for _ in $(seq 1 300); do
		kill -0 "$PG_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$PG_PID" 2>/dev/null || true
	PG_PID=
}

# pg_sql SCHEMA QUERY
pg_sql() {
	PGOPTIONS="-c search_path=$1 -c client_min_messages=warning" psql "$PG_CONNINFO" -X -q -At -F '|' \
		-v ON_ERROR_STOP=1 -c "$2"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	case ${1:-} in
	start)
		pg_start "$2"
		if [ -n "${3:-}" ]; then
			# Detached, its output away from the caller's pipe; it stops only this server (the pid its own
			# postmaster.pid still names), and nothing once the server stopped and its directory went.
			setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done
				if [ "$(head -1 "$2/data/postmaster.pid" 2>/dev/null)" = "$3" ]; then
					kill -INT "$3"; sleep 10
					[ "$(head -1 "$2/data/postmaster.pid" 2>/dev/null)" = "$3" ] && kill -KILL "$3"
					rm -rf "$2"
					rmdir "$(dirname "$2")" 2>/dev/null
				fi' watcher "$3" "$2" "$PG_PID" </dev/null >/dev/null 2>&1 &
		fi
		echo "$PG_CONNINFO"
		;;
	stop)
		[ -f "$2/data/postmaster.pid" ] && PG_PID=$(head -1 "$2/data/postmaster.pid")
		pg_stop
		;;
	*)
		echo "usage: pg_lib.sh start|stop DIR" >&2
		exit 2
		;;
	esac
else
	trap 'pg_stop; stop_broker_hard; rm -rf "$TMP"' EXIT
fi
