/* synclog-bench list-time: fetch-by-timestamp latency. --count ListOffsets requests by timestamp, one at a time on
 * one connection, each for every partition of the topic, at timestamps spread uniformly (a fixed pseudo-random
 * sequence) over [--from-ms, --to-ms]: the span the log's records were written in, which the script noted. The
 * first request asks for --from-ms itself, so that it lands in the oldest segment, and is reported apart: on a
 * broker just started with the page cache dropped, it is the one that reads that segment's time index from disk. For
 * the log-size curve (bench/curve_logsize.sh): the cost must not grow with the sealed data beyond the index reads a
 * lookup needs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/base/clock.h"
#include "bench/loadgen/loadgen.h"

int loadgen_list_time(const struct loadgen_options *o)
{
	struct sl_topic_config config;
	struct sl_partition_info *parts = NULL;
	struct hist *lat = malloc(sizeof(*lat));
	uint32_t *ids = NULL, n = 0;
	int64_t *offsets = NULL, first_ns = 0, start, end;
	uint64_t x = 0x2545f4914f6cdd1dull, asked = 0, at_end = 0;
	struct sl_conn *c;
	char err[SL_ERROR_BYTES] = "";
	FILE *out;
	int rc;

	if (lat == NULL)
		return -ENOMEM;
	hist_init(lat);
	rc = sl_conn_new(&c, o->broker, "synclog-bench-list-time");
	if (rc != 0) {
		fprintf(stderr, "synclog-bench: bad broker address %s\n", o->broker);
		free(lat);
		return rc;
	}
	rc = sl_topic_describe(c, o->topic, &config, &parts, &n);
	if (rc != 0)
		snprintf(err, sizeof(err), "describe %s: %s", o->topic, sl_conn_error(c));
	if (rc == 0) {
		ids = calloc(n, sizeof(*ids));
		offsets = calloc(n, sizeof(*offsets));
		if (ids == NULL || offsets == NULL)
			rc = -ENOMEM;
		for (uint32_t i = 0; rc == 0 && i < n; i++)
			ids[i] = parts[i].partition;
	}
	start = sl_clock_mono_ns();
	for (uint64_t i = 0; rc == 0 && i < o->count; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int64_t span = o->to_ms > o->from_ms ? o->to_ms - o->from_ms : 0;
		int64_t ts = o->from_ms + (span > 0 && i > 0 ? (int64_t)(x % (uint64_t)(span + 1)) : 0);
		int64_t t0 = sl_clock_mono_ns();

		rc = sl_offsets_list(c, o->topic, SL_OFFSET_TIMESTAMP, ts, ids, n, offsets);
		int64_t took = sl_clock_mono_ns() - t0;
		if (rc != 0) {
			snprintf(err, sizeof(err), "list offsets at %lld ms: %s", (long long)ts, sl_conn_error(c));
			break;
		}
		if (i == 0)
			first_ns = took;
		else
			hist_add(lat, (uint64_t)took);
		asked++;
		for (uint32_t p = 0; p < n; p++)
			at_end += offsets[p] == parts[p].next_offset;
	}
	end = sl_clock_mono_ns();
	out = loadgen_out_open(o);
	if (out != NULL) {
		loadgen_print_header(out, o);
		fprintf(out,
		        ",\"from_ms\":%lld,\"to_ms\":%lld,\"requests\":%llu,\"partitions_per_request\":%u,"
		        "\"answers_at_log_end\":%llu,\"seconds\":%.6f,\"first_us\":%.1f,\"latency\":{",
		        (long long)o->from_ms, (long long)o->to_ms, (unsigned long long)asked, n,
		        (unsigned long long)at_end, (double)(end - start) / 1e9, (double)first_ns / 1e3);
		hist_print_json(out, lat);
		fputs("},", out);
		loadgen_print_error_end(out, rc != 0 ? err : NULL);
		loadgen_out_close(o, out);
	}
	if (rc != 0)
		fprintf(stderr, "synclog-bench: list-time: %s\n", err);
	free(parts);
	free(ids);
	free(offsets);
	free(lat);
	sl_conn_free(c);
	return rc;
}
