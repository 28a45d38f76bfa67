/* synclog-bench replay: one fetcher reads the topic from the earliest offset to the log end captured at its
 * start, touching every record's key and value as a consumer would, and reports records/s and MB/s. */
#include <errno.h>
#include <string.h>

#include "proto/base/clock.h"
#include "bench/loadgen/loadgen.h"

int loadgen_replay(const struct loadgen_options *o)
{
	struct sl_fetcher_options fo;
	struct sl_fetcher *f;
	struct sl_record r;
	uint64_t records = 0, bytes = 0, fetches = 0, checksum = 0;
	int64_t start, end;
	char err[SL_ERROR_BYTES];
	double cpu0;
	uint32_t partition;
	FILE *out;
	int rc = 0;

	sl_fetcher_options_init(&fo);
	fo.broker = o->broker;
	fo.security = &o->security;
	fo.client_id = "synclog-bench";
	fo.topic = o->topic;
	fo.from = SL_FROM_EARLIEST;
	fo.stop_at_end = true;
	fo.partition_bytes_max = o->fetch_bytes;
	cpu0 = bench_cpu_s();
	start = sl_clock_mono_ns();
	rc = sl_fetcher_new(&f, &fo, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "synclog-bench: fetcher: %s\n", err);
		return rc;
	}
	while (rc == 0 && !sl_fetcher_done(f)) {
		rc = sl_fetcher_fetch(f);
		fetches++;
		if (rc != 0)
			break;
		while ((rc = sl_fetcher_next(f, &partition, &r)) == 1) {
			records++;
			bytes += (uint64_t)(r.value_len > 0 ? r.value_len : 0) + (r.key_len > 0 ? r.key_len : 0);
			/* Read a byte of each value, so the records are looked at as a consumer would. */
			if (r.value_len > 0)
				checksum += r.value[r.value_len - 1];
		}
	}
	end = sl_clock_mono_ns();
	if (rc != 0)
		fprintf(stderr, "synclog-bench: replay: %s\n", sl_fetcher_error(f));
	sl_fetcher_free(f);
	out = loadgen_out_open(o);
	if (out == NULL)
		return -EIO;
	double seconds = (double)(end - start) / 1e9;
	loadgen_print_header(out, o);
	fprintf(out,
	        ",\"records\":%llu,\"expected\":%llu,\"bytes\":%llu,\"fetches\":%llu,\"seconds\":%.6f,"
	        "\"records_per_s\":%.1f,\"mb_per_s\":%.3f,\"cpu_s\":%.3f,\"checksum\":%llu,\"error\":%s}\n",
	        (unsigned long long)records, (unsigned long long)o->count, (unsigned long long)bytes,
	        (unsigned long long)fetches, seconds, (double)records / seconds, (double)bytes / seconds / 1e6,
	        bench_cpu_s() - cpu0, (unsigned long long)checksum, rc != 0 ? "\"replay failed\"" : "null");
	loadgen_out_close(o, out);
	if (rc == 0 && records != o->count) {
		fprintf(stderr, "synclog-bench: replay read %llu records, expected %llu\n", (unsigned long long)records,
		        (unsigned long long)o->count);
		return -EIO;
	}
	return rc;
}
