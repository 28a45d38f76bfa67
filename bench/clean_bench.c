/* clean-bench: the cleaner's throughput on the storage engine alone, for bench/clean.sh. `build` writes a partition
 * log of --bytes of records over --keys keys (records of 16-byte keys and --record-bytes values, batches of
 * --batch-records, in order: the last record of a key wins, so a clean keeps about keys of them) and seals it;
 * `clean` runs one unthrottled clean of it and prints one JSON object: bytes read and written, seconds, MB/s of
 * read plus written, records removed, the bytes before and after, and the names of the segment files the clean
 * read (what fio reads in the same run). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/storage/cleaner.h"
#include "broker/storage/log.h"
#include "proto/base/clock.h"
#include "proto/batch.h"

struct options {
	const char *command, *dir;
	uint64_t bytes, keys, record_bytes, batch_records, segment_bytes;
};

static const char usage[] =
        "usage: clean-bench build|clean --dir DIR [--bytes N] [--keys N] [--record-bytes N]\n"
        "                   [--batch-records N] [--segment-bytes N]\n"
        "  build   write a sealed log of --bytes (1073741824) over --keys keys (100000), values of\n"
        "          --record-bytes (100), --batch-records per batch (500), --segment-bytes\n"
        "          segments (268435456)\n"
        "  clean   clean it once, unthrottled; print one JSON object\n";

static int wait_cb_done;
static void append_cb(struct sl_append *a, int status)
{
	wait_cb_done = status == 0 ? 1 : status;
}

static int open_log(const struct options *o, struct sl_ring *ring, struct sl_log **log)
{
	struct sl_log_config cfg;
	char err[512];
	sl_log_config_default(&cfg);
	cfg.segment_bytes_max = o->segment_bytes;
	int rc = sl_ring_init(ring, 0);
	if (rc == 0)
		rc = sl_log_open(ring, o->dir, &cfg, log, err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "clean-bench: cannot open %s: %s %s\n", o->dir, strerror(-rc), err);
	return rc;
}

static int build(const struct options *o)
{
	struct sl_ring ring;
	struct sl_log *log;
	int rc = open_log(o, &ring, &log);
	if (rc < 0)
		return 1;
	struct sl_batch_builder b;
	rc = sl_batch_builder_init(&b, 8u << 20);
	uint8_t *value = calloc(1, o->record_bytes);
	if (rc < 0 || value == NULL)
		return 1;
	uint64_t written = 0, n = 0;
	while (rc == 0 && written < o->bytes) {
		sl_batch_builder_reset(&b);
		int64_t now = sl_clock_wall_ms();
		for (uint64_t i = 0; i < o->batch_records; i++, n++) {
			char key[17];
			snprintf(key, sizeof(key), "%016" PRIu64, n % o->keys);
			memcpy(value, &n, sizeof(n) < o->record_bytes ? sizeof(n) : o->record_bytes);
			struct sl_record r = {.timestamp_ms = now,
			                      .key = (const uint8_t *)key,
			                      .key_len = 16,
			                      .value = value,
			                      .value_len = (int32_t)o->record_bytes,
			                      .version = SL_VERSION_NONE};
			rc = sl_batch_builder_add(&b, &r);
			if (rc < 0)
				break;
		}
		const uint8_t *batch;
		size_t len;
		if (rc == 0)
			rc = sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, &batch, &len);
		struct sl_append a = {
		        .batch = (uint8_t *)batch, .len = len, .level = SL_DURABILITY_WRITTEN, .cb = append_cb};
		wait_cb_done = 0;
		if (rc == 0)
			rc = sl_log_append(log, &a);
		while (rc == 0 && wait_cb_done == 0)
			rc = sl_ring_wait(&ring) < 0 ? -EIO : 0;
		if (rc == 0 && wait_cb_done < 0)
			rc = wait_cb_done;
		written += len;
	}
	if (rc == 0)
		rc = sl_log_roll_now(log);
	while (rc == 0 && !sl_log_idle(log))
		rc = sl_ring_wait(&ring) < 0 ? -EIO : 0;
	int crc = sl_log_close(log);
	sl_ring_close(&ring);
	sl_batch_builder_free(&b);
	free(value);
	if (rc < 0 || crc < 0) {
		fprintf(stderr, "clean-bench: build failed: %s\n", strerror(-(rc < 0 ? rc : crc)));
		return 1;
	}
	printf("{\"records\":%" PRIu64 ",\"bytes\":%" PRIu64 "}\n", n, written);
	return 0;
}

static int clean(const struct options *o)
{
	struct sl_ring ring;
	struct sl_log *log;
	if (open_log(o, &ring, &log) < 0)
		return 1;
	struct sl_clean_params p = {.now_ms = sl_clock_wall_ms(),
	                            .delete_retention_ms = SL_CLEAN_DELETE_RETENTION_MS_DEFAULT,
	                            .groups_min_committed = INT64_MAX,
	                            .map_bytes_max = SL_CLEAN_MAP_BYTES_DEFAULT};
	struct sl_clean_job *job;
	int rc = sl_clean_prepare(log, &p, &job);
	if (rc < 0) {
		fprintf(stderr, "clean-bench: nothing to clean: %s\n", strerror(-rc));
		return 1;
	}
	int64_t t0 = sl_clock_mono_ns();
	rc = sl_clean_run(job);
	double seconds = (double)(sl_clock_mono_ns() - t0) / 1e9;
	if (rc < 0)
		fprintf(stderr, "clean-bench: clean failed: %s\n", job->error);
	const struct sl_clean_stats *s = &job->stats;
	printf("{\"seconds\":%.3f,\"bytes_read\":%" PRIu64 ",\"bytes_written\":%" PRIu64 ",\"mb_per_s\":%.1f,"
	       "\"bytes_before\":%" PRIu64 ",\"bytes_after\":%" PRIu64 ",\"records_read\":%" PRIu64
	       ",\"records_removed\":%" PRIu64 ",\"keys\":%" PRIu64 ",\"segments_before\":%u,\"segments_after\":%u}\n",
	       seconds, s->bytes_read, s->bytes_written, (double)(s->bytes_read + s->bytes_written) / 1e6 / seconds,
	       s->bytes_before, s->bytes_after, s->records_read, s->records_removed, s->keys, s->segments_before,
	       s->segments_after);
	sl_clean_finish(job);
	sl_clean_job_free(job);
	sl_log_close(log);
	sl_ring_close(&ring);
	return rc < 0;
}

static int parse(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = {.bytes = 1ull << 30,
	                    .keys = 100000,
	                    .record_bytes = 100,
	                    .batch_records = 500,
	                    .segment_bytes = 256u << 20};
	if (argc < 2 || strcmp(argv[1], "--help") == 0) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	o.command = argv[1];
	for (int i = 2; i + 1 < argc; i += 2) {
		uint64_t *v = strcmp(argv[i], "--bytes") == 0           ? &o.bytes
		              : strcmp(argv[i], "--keys") == 0          ? &o.keys
		              : strcmp(argv[i], "--record-bytes") == 0  ? &o.record_bytes
		              : strcmp(argv[i], "--batch-records") == 0 ? &o.batch_records
		              : strcmp(argv[i], "--segment-bytes") == 0 ? &o.segment_bytes
		                                                        : NULL;
		if (strcmp(argv[i], "--dir") == 0)
			o.dir = argv[i + 1];
		else if (v == NULL || parse(argv[i + 1], v) < 0) {
			fprintf(stderr, "clean-bench: bad argument %s %s\n%s", argv[i], argv[i + 1], usage);
			return 2;
		}
	}
	if (o.dir == NULL || o.keys == 0 || o.record_bytes < 8 || o.batch_records == 0) {
		fputs(usage, stderr);
		return 2;
	}
	if (strcmp(o.command, "build") == 0)
		return build(&o);
	if (strcmp(o.command, "clean") == 0)
		return clean(&o);
	fputs(usage, stderr);
	return 2;
}
