/* synclog-bench idle: open --connections connections to the broker, each saying Hello as every client does, and
 * hold them without a request until SIGTERM or SIGINT (or for --duration-s). The cost of a connection that does
 * nothing, for the connection curve (bench/curve_connections.sh): the broker's memory per idle connection and
 * what thousands of them do to everyone else's latency. Writes its JSON object once every connection is open, so
 * a script can measure the broker while they are held. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "proto/base/clock.h"
#include "bench/loadgen/loadgen.h"

/* Room for this process's own descriptors besides the connections. */
#define IDLE_SPARE_FDS 64

/* The soft descriptor limit raised to what the connections need, within the hard limit. */
static int fd_limit_raise(uint64_t need, char *err, size_t err_bytes)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -errno;
	if (rl.rlim_cur >= need)
		return 0;
	if (rl.rlim_max < need) {
		snprintf(err, err_bytes, "%llu connections need %llu descriptors, the hard limit is %llu (ulimit -Hn)",
		         (unsigned long long)(need - IDLE_SPARE_FDS), (unsigned long long)need,
		         (unsigned long long)rl.rlim_max);
		return -EMFILE;
	}
	rl.rlim_cur = need;
	return setrlimit(RLIMIT_NOFILE, &rl) == 0 ? 0 : -errno;
}

int loadgen_idle(const struct loadgen_options *o)
{
	struct sl_conn **conns = calloc(o->connections, sizeof(*conns));
	char err[SL_ERROR_BYTES] = "";
	uint32_t opened = 0;
	sigset_t stop;
	int64_t start, end;
	FILE *out;
	int rc;

	if (conns == NULL)
		return -ENOMEM;
	/* Blocked before anything else, so a SIGTERM from a script that saw the JSON is never lost. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	rc = fd_limit_raise((uint64_t)o->connections + IDLE_SPARE_FDS, err, sizeof(err));
	start = sl_clock_mono_ns();
	for (; rc == 0 && opened < o->connections; opened++) {
		rc = sl_conn_new(&conns[opened], o->broker, "synclog-bench-idle");
		if (rc == 0 && (rc = sl_conn_connect(conns[opened])) != 0)
			snprintf(err, sizeof(err), "connection %u: %s", opened + 1, sl_conn_error(conns[opened]));
		if (rc != 0)
			break;
	}
	end = sl_clock_mono_ns();
	out = loadgen_out_open(o);
	if (out != NULL) {
		loadgen_print_header(out, o);
		fprintf(out, ",\"connections\":%u,\"opened\":%u,\"open_seconds\":%.3f,\"error\":", o->connections,
		        opened, (double)(end - start) / 1e9);
		if (rc != 0)
			sl_json_print_string(out, err, strlen(err));
		else
			fputs("null", out);
		fputs("}\n", out);
		loadgen_out_close(o, out);
	}
	if (rc != 0) {
		fprintf(stderr, "synclog-bench: idle: %s\n", err);
	} else if (o->duration_set) {
		struct timespec ts = {.tv_sec = (time_t)o->duration_s,
		                      .tv_nsec = (long)((o->duration_s - (double)(time_t)o->duration_s) * 1e9)};
		sigtimedwait(&stop, NULL, &ts);
	} else {
		int sig;
		sigwait(&stop, &sig);
	}
	for (uint32_t i = 0; i < o->connections; i++)
		sl_conn_free(conns[i]);
	free(conns);
	return rc;
}
