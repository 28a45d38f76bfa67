/* synclog-bench handshake: how many new connections a second a client gets through everything a connection does
 * before its first request: TCP connect, the TLS handshake (with --tls-ca), Hello, and SCRAM-SHA-256 (with
 * --user). One connection at a time, each closed before the next, as a fleet of short-lived tools would; the
 * connection object (and its TLS context) is reused, as a client that reconnects does. Reports connections/s, the
 * latency of each, and this process's CPU seconds (SCRAM's 4096 PBKDF2 iterations are the client's work). */
#include <errno.h>
#include <string.h>

#include "proto/base/clock.h"
#include "bench/loadgen/loadgen.h"

int loadgen_handshake(const struct loadgen_options *o)
{
	struct sl_conn *c;
	static struct hist lat; /* 34 KiB of buckets: not on the stack */
	uint64_t done = 0;
	int64_t start, end;
	double cpu0;
	FILE *out;
	int rc;

	hist_init(&lat);
	rc = sl_conn_new(&c, o->broker, "synclog-bench");
	if (rc != 0) {
		fprintf(stderr, "synclog-bench: bad broker address %s\n", o->broker);
		return rc;
	}
	rc = sl_conn_set_security(c, &o->security);
	if (rc != 0) {
		fprintf(stderr, "synclog-bench: %s\n", sl_conn_error(c));
		sl_conn_free(c);
		return rc;
	}
	cpu0 = bench_cpu_s();
	start = sl_clock_mono_ns();
	for (uint64_t i = 0; i < o->count; i++) {
		int64_t t0 = sl_clock_mono_ns();

		rc = sl_conn_connect(c);
		if (rc != 0) {
			fprintf(stderr, "synclog-bench: connection %llu: %s\n", (unsigned long long)i,
			        sl_conn_error(c));
			break;
		}
		hist_add(&lat, (uint64_t)(sl_clock_mono_ns() - t0));
		sl_conn_close(c);
		done++;
	}
	end = sl_clock_mono_ns();
	double cpu = bench_cpu_s() - cpu0;
	sl_conn_free(c);
	out = loadgen_out_open(o);
	if (out == NULL)
		return -EIO;
	double seconds = (double)(end - start) / 1e9;
	loadgen_print_header(out, o);
	fprintf(out,
	        ",\"tls\":%s,\"scram\":%s,\"connections\":%llu,\"seconds\":%.6f,\"connections_per_s\":%.1f,"
	        "\"client_cpu_s\":%.3f,\"latency\":{",
	        o->security.tls ? "true" : "false", o->security.user ? "true" : "false", (unsigned long long)done,
	        seconds, seconds > 0 ? (double)done / seconds : 0, cpu);
	hist_print_json(out, &lat);
	fputs("}}\n", out);
	loadgen_out_close(o, out);
	return rc;
}
