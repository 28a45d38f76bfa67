/* The partition log's round trip: batches appended across many segment rolls come back byte for byte after a
 * reopen, reads and lookups from any offset or timestamp agree with a full scan, and retention, rolls by age,
 * push-back and refusals behave as broker/log.h says. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/base/be.h"
#include "proto/base/clock.h"
#include "log_test_util.h"

/* "A few thousand" batches per durability level: at ~3 KiB each that is ~100 segments of 64 KiB. */
#define ROUNDTRIP_BATCH_COUNT 2000
/* Smaller logs for the tests that only need several segments. */
#define SMALL_LOG_BATCH_COUNT 600
/* Random reads, locates and timestamp lookups per test. */
#define LOOKUP_COUNT          600
/* Timestamps of the generated batches start here (2023-11-14), far from 0 and from now. */
#define TIMESTAMP_BASE_MS     1700000000000ll

static struct lt_fixture *fixture(void **state)
{
	return *state;
}

/* Specs of a varied workload: mostly small batches, some with empty values, one in sixteen large (but always far
 * below a segment). Batch j's timestamp is j*10 ms past the base give or take a second, so timestamps go
 * backwards across batches too. */
static struct lt_batch_spec *workload_specs(uint64_t *rng, size_t count, int monotonic_timestamps)
{
	struct lt_batch_spec *specs = calloc(count, sizeof(*specs));

	for (size_t j = 0; specs && j < count; j++) {
		int64_t kind = lt_rand_range(rng, 0, 15);
		int64_t ts = TIMESTAMP_BASE_MS + (int64_t)j * (monotonic_timestamps ? 1000 : 10);

		if (!monotonic_timestamps)
			ts += lt_rand_range(rng, -1000, 1000);
		if (kind == 0)
			lt_spec_random(rng, &specs[j], 4, 6000, ts);
		else if (kind == 1)
			lt_spec_random(rng, &specs[j], 50, 0, ts);
		else
			lt_spec_random(rng, &specs[j], 30, 300, ts);
	}
	return specs;
}

/* Open the fixture's log and append count workload batches at level, in windows of many in flight. */
static void build_log(struct lt_fixture *fx, struct lt_model *m, size_t count, enum sl_durability level, uint64_t seed,
                      int monotonic_timestamps)
{
	uint64_t rng = seed;
	struct lt_batch_spec *specs = workload_specs(&rng, count, monotonic_timestamps);

	assert_non_null(specs);
	if (!fx->log)
		assert_int_equal(lt_fixture_open(fx), 0);
	assert_int_equal(lt_append_specs(fx, m, specs, count, level, NULL, 1), 0);
	free(specs);
}

static void assert_log_matches_model(struct lt_fixture *fx, const struct lt_model *m)
{
	struct lt_scan scan;

	assert_int_equal(lt_log_scan(fx->log, &scan), 0);
	assert_int_equal(lt_model_check_scan(m, &scan), 0);
	lt_scan_free(&scan);
}

static int64_t model_bytes(const struct lt_model *m, size_t from)
{
	int64_t bytes = 0;

	for (size_t i = from; i < m->count; i++)
		bytes += (int64_t)m->batches[i].len;
	return bytes;
}

static int64_t model_next_offset(const struct lt_model *m)
{
	return m->count ? m->batches[m->count - 1].last_offset + 1 : 0;
}

static void roundtrip_at_level(void **state, enum sl_durability level, uint64_t fallback_seed)
{
	struct lt_fixture *fx = fixture(state);
	struct lt_model m = {0};
	struct sl_log_stats st;
	uint64_t rng = lt_seed("roundtrip", fallback_seed);
	struct lt_batch_spec more[20];

	build_log(fx, &m, ROUNDTRIP_BATCH_COUNT, level, rng, 0);
	sl_log_get_stats(fx->log, &st);
	assert_int_equal(st.appended_batch_count, ROUNDTRIP_BATCH_COUNT);
	assert_int_equal(st.next_offset, model_next_offset(&m));
	assert_log_matches_model(fx, &m);

	assert_int_equal(lt_fixture_close(fx), 0);
	assert_int_equal(lt_fixture_open(fx), 0);
	sl_log_get_stats(fx->log, &st);
	assert_true(st.segment_count > 1);
	assert_int_equal(st.start_offset, 0);
	assert_int_equal(st.next_offset, model_next_offset(&m));
	assert_log_matches_model(fx, &m);

	/* The reopened log goes on where it stopped. */
	for (size_t i = 0; i < 20; i++)
		lt_spec_random(&rng, &more[i], 10, 200, TIMESTAMP_BASE_MS);
	assert_int_equal(lt_append_specs(fx, &m, more, 20, level, NULL, 1), 0);
	assert_log_matches_model(fx, &m);
	lt_model_free(&m);
}

static void test_roundtrip_at_durability_none_survives_reopen(void **state)
{
	roundtrip_at_level(state, SL_DURABILITY_NONE, 101);
}

static void test_roundtrip_at_durability_written_survives_reopen(void **state)
{
	roundtrip_at_level(state, SL_DURABILITY_WRITTEN, 102);
}

static void test_roundtrip_at_durability_fsync_survives_reopen(void **state)
{
	roundtrip_at_level(state, SL_DURABILITY_FSYNC, 103);
}

static void test_roundtrip_with_mixed_durability_survives_reopen(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct lt_model m = {0};
	uint64_t rng = lt_seed("mixed durability", 104);
	struct lt_batch_spec *specs = workload_specs(&rng, ROUNDTRIP_BATCH_COUNT, 0);
	enum sl_durability *levels = calloc(ROUNDTRIP_BATCH_COUNT, sizeof(*levels));

	assert_non_null(specs);
	assert_non_null(levels);
	for (size_t i = 0; i < ROUNDTRIP_BATCH_COUNT; i++)
		levels[i] = (enum sl_durability)lt_rand_range(&rng, 0, 2);
	assert_int_equal(lt_fixture_open(fx), 0);
	/* A `none` append may be acknowledged before an earlier `fsync` one: only the offsets must be in order. */
	assert_int_equal(lt_append_specs(fx, &m, specs, ROUNDTRIP_BATCH_COUNT, 0, levels, 0), 0);
	assert_log_matches_model(fx, &m);
	assert_int_equal(lt_fixture_close(fx), 0);
	assert_int_equal(lt_fixture_open(fx), 0);
	assert_log_matches_model(fx, &m);
	free(levels);
	free(specs);
	lt_model_free(&m);
}

static void assert_segments_consistent(struct lt_fixture *fx, const struct lt_model *m)
{
	struct sl_log_stats st;
	struct lt_segment *segs;
	size_t seg_count;

	sl_log_get_stats(fx->log, &st);
	assert_int_equal(lt_segments_list(fx->dir, &segs, &seg_count), 0);
	assert_true(st.segment_count > 1);
	assert_int_equal(st.segment_count, seg_count);
	assert_int_equal(st.start_offset, m->batches[0].base_offset);
	assert_int_equal(st.next_offset, model_next_offset(m));
	assert_int_equal(st.bytes, model_bytes(m, 0));
	for (size_t i = 0; i < seg_count; i++) {
		long b = lt_model_find(m, segs[i].base_offset);

		if (segs[i].file_bytes > (int64_t)fx->cfg.segment_bytes_max)
			fail_msg("segment %s holds %" PRId64 " bytes, over segment_bytes_max %" PRIu64, segs[i].name,
			         segs[i].file_bytes, fx->cfg.segment_bytes_max);
		/* A segment is named by the base offset of its first batch. */
		assert_true(b >= 0);
		assert_int_equal(m->batches[b].base_offset, segs[i].base_offset);
	}
	free(segs);
}

static void test_segments_roll_by_size_and_stats_count_them(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct lt_model m = {0};

	build_log(fx, &m, SMALL_LOG_BATCH_COUNT, SL_DURABILITY_WRITTEN, lt_seed("roll by size", 105), 0);
	assert_segments_consistent(fx, &m);
	assert_int_equal(lt_fixture_close(fx), 0);
	assert_int_equal(lt_fixture_open(fx), 0);
	assert_segments_consistent(fx, &m);
	lt_model_free(&m);
}

/* The segment (index into segs) that holds offset: the last one whose base offset is not above it. */
static size_t segment_holding(const struct lt_segment *segs, size_t count, int64_t offset)
{
	size_t i = 0;

	while (i + 1 < count && segs[i + 1].base_offset <= offset)
		i++;
	return i;
}

/* Index of the scanned batch that ends exactly at byte position end of scan->bytes, or -1. */
static long batch_ending_at(const struct lt_scan *scan, size_t end)
{
	size_t lo = 0, hi = scan->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (scan->batches[mid].at + scan->batches[mid].len < end)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < scan->count && scan->batches[lo].at + scan->batches[lo].len == end ? (long)lo : -1;
}

static int64_t random_offset_in_log(uint64_t *rng, const struct lt_scan *ref, size_t query)
{
	/* Every fourth query aims one past a batch's base offset, so middles of batches are certainly asked. */
	if (query % 4 == 0) {
		const struct lt_scanned_batch *b = &ref->batches[lt_rand_range(rng, 0, (int64_t)ref->count - 1)];

		return b->last_offset > b->base_offset ? b->base_offset + 1 : b->base_offset;
	}
	return lt_rand_range(rng, ref->start_offset, ref->next_offset - 1);
}

static void check_random_reads(struct lt_fixture *fx, uint64_t seed)
{
	static const size_t caps[] = {100, 2048, 8192, 64 * 1024, 300 * 1024};
	uint8_t *buf = malloc(300 * 1024);
	struct lt_scan ref;
	uint64_t rng = seed;
	int mid_batch = 0;

	assert_non_null(buf);
	assert_int_equal(lt_log_scan(fx->log, &ref), 0);
	for (size_t q = 0; q < LOOKUP_COUNT; q++) {
		int64_t offset = random_offset_in_log(&rng, &ref, q);
		size_t cap = caps[lt_rand_range(&rng, 0, 4)];
		long first = lt_scan_find(&ref, offset);
		const struct lt_scanned_batch *fb;
		size_t len = 0;
		int64_t next = -1;
		int rc = sl_log_read(fx->log, offset, buf, cap, &len, &next);
		long last;

		assert_true(first >= 0);
		fb = &ref.batches[first];
		mid_batch += fb->base_offset != offset;
		if (fb->len > cap) {
			if (rc != -ENOBUFS)
				fail_msg("read at %" PRId64
				         " with cap %zu under the first batch's %zu bytes: rc %d, not "
				         "-ENOBUFS",
				         offset, cap, fb->len, rc);
			continue;
		}
		if (rc != 0)
			fail_msg("read at %" PRId64 " cap %zu: rc %d (%s)", offset, cap, rc, strerror(-rc));
		if (len == 0 || len > cap)
			fail_msg("read at %" PRId64 " cap %zu returned %zu bytes", offset, cap, len);
		/* The first batch holds offset (it may start before it), and the rest are the whole batches after it.
		 */
		if (memcmp(buf, ref.bytes + fb->at, len) != 0)
			fail_msg("read at %" PRId64 " returned bytes that differ from the scan's batches from offset "
			         "%" PRId64,
			         offset, fb->base_offset);
		last = batch_ending_at(&ref, fb->at + len);
		if (last < 0)
			fail_msg("read at %" PRId64 " returned %zu bytes, which end inside a batch", offset, len);
		assert_int_equal(next, ref.batches[last].last_offset + 1);
	}
	assert_true(mid_batch > 0);
	lt_scan_free(&ref);
	free(buf);
}

static void test_read_from_random_offsets_returns_whole_batches_from_the_one_holding_it(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct lt_model m = {0};
	uint64_t seed = lt_seed("random reads", 106);

	build_log(fx, &m, ROUNDTRIP_BATCH_COUNT, SL_DURABILITY_WRITTEN, seed, 0);
	check_random_reads(fx, seed + 1);
	assert_int_equal(lt_fixture_close(fx), 0);
	assert_int_equal(lt_fixture_open(fx), 0);
	check_random_reads(fx, seed + 2);
	lt_model_free(&m);
}

static void check_random_locates(struct lt_fixture *fx, uint64_t seed)
{
	static const uint64_t limits[] = {1, 2048, 8192, 64 * 1024, 1024 * 1024};
	struct lt_segment *segs;
	size_t seg_count;
	uint8_t *buf = malloc(LT_SEGMENT_BYTES_MAX + SL_BATCH_BYTES_MAX / 64);
	struct lt_scan ref;
	uint64_t rng = seed;
	struct sl_log_span span;

	assert_non_null(buf);
	assert_int_equal(lt_log_scan(fx->log, &ref), 0);
	assert_int_equal(lt_segments_list(fx->dir, &segs, &seg_count), 0);
	for (size_t q = 0; q < LOOKUP_COUNT; q++) {
		int64_t offset = random_offset_in_log(&rng, &ref, q);
		uint64_t bytes_max = limits[lt_rand_range(&rng, 0, 4)];
		long first = lt_scan_find(&ref, offset);
		const struct lt_scanned_batch *fb = &ref.batches[first];
		size_t seg = segment_holding(segs, seg_count, offset);
		char name[PATH_MAX];
		long last;
		int rc = sl_log_locate(fx->log, offset, bytes_max, &span);

		if (rc != 0)
			fail_msg("locate %" PRId64 ": rc %d (%s)", offset, rc, strerror(-rc));
		assert_int_equal(span.first_offset, fb->base_offset);
		if (span.len < fb->len)
			fail_msg("locate %" PRId64 ": span of %" PRIu64 " bytes, the batch holding it has %zu", offset,
			         span.len, fb->len);
		if (span.len > fb->len && span.len > bytes_max)
			fail_msg("locate %" PRId64 ": span of %" PRIu64 " bytes, over bytes_max %" PRIu64, offset,
			         span.len, bytes_max);
		assert_true(span.len <= LT_SEGMENT_BYTES_MAX);
		/* The span lies in the segment file that holds the offset and holds exactly whole batches. */
		assert_int_equal(lt_fd_basename(span.fd, name, sizeof(name)), 0);
		if (strcmp(name, segs[seg].name) != 0)
			fail_msg("locate %" PRId64 ": span in %s, the offset is in segment %s", offset, name,
			         segs[seg].name);
		assert_int_equal(pread(span.fd, buf, span.len, (off_t)span.pos), (ssize_t)span.len);
		if (memcmp(buf, ref.bytes + fb->at, span.len) != 0)
			fail_msg("locate %" PRId64 ": span bytes differ from the scan's batches from offset %" PRId64,
			         offset, fb->base_offset);
		last = batch_ending_at(&ref, fb->at + span.len);
		assert_true(last >= 0);
		assert_int_equal(span.next_offset, ref.batches[last].last_offset + 1);
	}
	assert_int_equal(sl_log_locate(fx->log, ref.next_offset, 4096, &span), 0);
	assert_int_equal(span.len, 0);
	free(segs);
	lt_scan_free(&ref);
	free(buf);
}

static void test_locate_from_random_offsets_returns_span_of_whole_batches_in_one_segment(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct lt_model m = {0};
	uint64_t seed = lt_seed("random locates", 107);

	build_log(fx, &m, ROUNDTRIP_BATCH_COUNT, SL_DURABILITY_WRITTEN, seed, 0);
	check_random_locates(fx, seed + 1);
	assert_int_equal(lt_fixture_close(fx), 0);
	assert_int_equal(lt_fixture_open(fx), 0);
	check_random_locates(fx, seed + 2);
	lt_model_free(&m);
}

/* Batches far larger than the index interval (20 KiB against 512 bytes), between small ones: a read or locate
 * at any of their offsets returns the whole batch. */
static void test_read_and_locate_return_batches_far_larger_than_the_index_interval(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct lt_model m = {0};
	struct lt_batch_spec specs[24];
	uint8_t *buf = malloc(LT_SEGMENT_BYTES_MAX);
	struct lt_scan ref;

	assert_non_null(buf);
	for (int i = 0; i < 24; i++) {
		specs[i] = (struct lt_batch_spec){.seed = 500u + (unsigned)i, .timestamp_ms = TIMESTAMP_BASE_MS + i};
		specs[i].record_count = i % 2 ? 2 : 3;
		specs[i].value_bytes = i % 2 ? 10000 : 20;
	}
	assert_int_equal(lt_fixture_open(fx), 0);
	assert_int_equal(lt_append_specs(fx, &m, specs, 24, SL_DURABILITY_WRITTEN, NULL, 1), 0);
	assert_int_equal(lt_log_scan(fx->log, &ref), 0);
	for (int64_t offset = 0; offset < sl_log_next_offset(fx->log); offset++) {
		const struct lt_scanned_batch *b = &ref.batches[lt_scan_find(&ref, offset)];
		struct sl_log_span span;
		size_t len = 0;
		int64_t next = -1;
		int rc = sl_log_locate(fx->log, offset, 1, &span);

		if (rc != 0 || span.first_offset != b->base_offset || span.len != b->len)
			fail_msg("locate %" PRId64 " (in a batch of %zu bytes): rc %d, span of %" PRIu64
			         " bytes from %" PRId64,
			         offset, b->len, rc, span.len, span.first_offset);
		rc = sl_log_read(fx->log, offset, buf, b->len, &len, &next);
		if (rc != 0 || len != b->len || memcmp(buf, ref.bytes + b->at, len) != 0)
			fail_msg("read %" PRId64 " (in a batch of %zu bytes): rc %d, %zu bytes", offset, b->len, rc,
			         len);
		assert_int_equal(next, b->last_offset + 1);
	}
	lt_scan_free(&ref);
	free(buf);
	lt_model_free(&m);
}

struct record_time {
	int64_t offset;
	int64_t timestamp_ms;
};

/* The first offset whose record timestamp is >= t, by brute force over every record in offset order. */
static int64_t brute_force_offset_for_time(const struct record_time *r, size_t count, int64_t t, int64_t end)
{
	for (size_t i = 0; i < count; i++)
		if (r[i].timestamp_ms >= t)
			return r[i].offset;
	return end;
}

static void check_offset_for_time(struct lt_fixture *fx, const struct lt_model *m, uint64_t seed)
{
	uint64_t rng = seed;
	size_t count = (size_t)model_next_offset(m);
	struct record_time *r = malloc(count * sizeof(*r));
	int64_t lo = INT64_MAX, hi = INT64_MIN;
	size_t n = 0;

	assert_non_null(r);
	for (size_t b = 0; b < m->count; b++) {
		for (int32_t i = 0; i < m->batches[b].spec.record_count; i++) {
			r[n].offset = m->batches[b].base_offset + i;
			r[n].timestamp_ms = lt_record_timestamp_ms(&m->batches[b].spec, i);
			lo = r[n].timestamp_ms < lo ? r[n].timestamp_ms : lo;
			hi = r[n].timestamp_ms > hi ? r[n].timestamp_ms : hi;
			n++;
		}
	}
	assert_int_equal(n, count);
	for (size_t q = 0; q < LOOKUP_COUNT; q++) {
		int64_t t, got = -1, want;
		int rc;

		/* A third of the queries ask for a record's own timestamp or one past it: the edges of the search. */
		if (q % 3 == 0)
			t = r[lt_rand_range(&rng, 0, (int64_t)count - 1)].timestamp_ms + (int64_t)(q % 2);
		else
			t = lt_rand_range(&rng, lo - 50, hi + 50);
		want = brute_force_offset_for_time(r, count, t, (int64_t)count);
		rc = sl_log_offset_for_time(fx->log, t, &got);
		if (rc != 0 || got != want)
			fail_msg("offset for time %" PRId64 ": rc %d, offset %" PRId64
			         "; the first record at or after it "
			         "is %" PRId64 " (log end %zu)",
			         t, rc, got, want, count);
	}
	free(r);
}

static void test_offset_for_time_matches_brute_force_over_records(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct lt_model m = {0};
	uint64_t seed = lt_seed("offset for time", 108);

	build_log(fx, &m, ROUNDTRIP_BATCH_COUNT, SL_DURABILITY_WRITTEN, seed, 0);
	check_offset_for_time(fx, &m, seed + 1);
	assert_int_equal(lt_fixture_close(fx), 0);
	assert_int_equal(lt_fixture_open(fx), 0);
	check_offset_for_time(fx, &m, seed + 2);
	lt_model_free(&m);
}

static void assert_offset_out_of_range(struct lt_fixture *fx, int64_t offset)
{
	uint8_t buf[4096];
	size_t len = 0;
	int64_t next = -1;
	struct sl_log_span span;
	int rc = sl_log_read(fx->log, offset, buf, sizeof(buf), &len, &next);

	if (rc != -ERANGE)
		fail_msg("read at %" PRId64 " (log %" PRId64 "..%" PRId64 "): rc %d, not -ERANGE", offset,
		         sl_log_start_offset(fx->log), sl_log_next_offset(fx->log), rc);
	rc = sl_log_locate(fx->log, offset, 4096, &span);
	if (rc != -ERANGE)
		fail_msg("locate %" PRId64 " (log %" PRId64 "..%" PRId64 "): rc %d, not -ERANGE", offset,
		         sl_log_start_offset(fx->log), sl_log_next_offset(fx->log), rc);
}

static void test_read_and_locate_outside_the_log_return_erange(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct lt_model m = {0};
	uint32_t dropped = 0;
	int64_t start, next;
	struct sl_log_span span;

	build_log(fx, &m, SMALL_LOG_BATCH_COUNT, SL_DURABILITY_WRITTEN, lt_seed("erange", 109), 0);
	assert_int_equal(lt_wait_idle(&fx->ring, fx->log), 0);
	assert_offset_out_of_range(fx, -1);
	assert_offset_out_of_range(fx, model_next_offset(&m) + 1);
	assert_offset_out_of_range(fx, INT64_MAX);
	/* Drop the oldest segments so the log starts past 0. */
	assert_int_equal(sl_log_retain(fx->log, sl_clock_wall_ms(), -1, model_bytes(&m, 0) / 2, &dropped), 0);
	assert_true(dropped > 0);
	start = sl_log_start_offset(fx->log);
	next = sl_log_next_offset(fx->log);
	assert_true(start > 0);
	assert_offset_out_of_range(fx, 0);
	assert_offset_out_of_range(fx, start - 1);
	assert_offset_out_of_range(fx, next + 1);
	assert_int_equal(sl_log_locate(fx->log, start, 4096, &span), 0);
	assert_int_equal(span.first_offset, start);
	assert_int_equal(sl_log_locate(fx->log, next, 4096, &span), 0);
	assert_int_equal(span.len, 0);
	lt_model_free(&m);
}

/* Bytes of the model's batches in [from, to) offsets. */
static int64_t model_bytes_between(const struct lt_model *m, int64_t from, int64_t to)
{
	int64_t bytes = 0;

	for (size_t i = 0; i < m->count; i++)
		if (m->batches[i].base_offset >= from && m->batches[i].base_offset < to)
			bytes += (int64_t)m->batches[i].len;
	return bytes;
}

static void assert_no_file_of_segment(const char *dir, const struct lt_segment *seg)
{
	char stem[64];
	char path[PATH_MAX];
	static const char *const suffixes[] = {".log", ".index", ".timeindex"};

	snprintf(stem, sizeof(stem), "%.*s", (int)(strlen(seg->name) - 4), seg->name);
	for (size_t i = 0; i < 3; i++) {
		char name[96];

		snprintf(name, sizeof(name), "%s%s", stem, suffixes[i]);
		assert_int_equal(lt_path_join(path, sizeof(path), dir, name), 0);
		if (lt_file_exists(path))
			fail_msg("%s of a dropped segment is still there", path);
	}
}

/* After retention: the log starts at want_start, holds exactly the model's batches from there and is as large as
 * they are. */
static void assert_retained_from(struct lt_fixture *fx, const struct lt_model *m, int64_t want_start)
{
	struct sl_log_stats st;
	struct lt_segment *segs;
	size_t seg_count;

	sl_log_get_stats(fx->log, &st);
	assert_int_equal(st.start_offset, want_start);
	assert_int_equal(st.next_offset, model_next_offset(m));
	assert_int_equal(st.bytes, model_bytes_between(m, want_start, INT64_MAX));
	assert_int_equal(lt_segments_list(fx->dir, &segs, &seg_count), 0);
	assert_int_equal(st.segment_count, seg_count);
	assert_int_equal(segs[0].base_offset, want_start);
	free(segs);
	assert_log_matches_model(fx, m);
}

/* Build a log of several segments for retention and wait until the log is idle: rolled segments are sealed
 * in the background, and retention takes sealed segments only. */
static void build_log_for_retention(struct lt_fixture *fx, struct lt_model *m, uint64_t seed, int monotonic,
                                    struct lt_segment **segs, size_t *seg_count, size_t seg_count_min)
{
	build_log(fx, m, SMALL_LOG_BATCH_COUNT, SL_DURABILITY_WRITTEN, seed, monotonic);
	assert_int_equal(lt_wait_idle(&fx->ring, fx->log), 0);
	assert_int_equal(lt_segments_list(fx->dir, segs, seg_count), 0);
	assert_true(*seg_count >= seg_count_min);
}

static void test_retention_by_bytes_drops_oldest_sealed_segments_never_the_active_one(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct lt_model m = {0};
	struct lt_segment *segs;
	size_t seg_count;
	uint32_t dropped = 99;
	int64_t keep;
	uint64_t rng = lt_seed("retention by bytes", 110);
	struct lt_batch_spec more;

	build_log_for_retention(fx, &m, rng, 0, &segs, &seg_count, 6);
	/* Negative limits mean no retention. */
	assert_int_equal(sl_log_retain(fx->log, sl_clock_wall_ms(), -1, -1, &dropped), 0);
	assert_int_equal(dropped, 0);
	assert_retained_from(fx, &m, 0);

	/* A limit exactly the size of segments 3.. drops segments 0..2 and stops there. */
	keep = model_bytes_between(&m, segs[3].base_offset, INT64_MAX);
	assert_int_equal(sl_log_retain(fx->log, sl_clock_wall_ms(), -1, keep, &dropped), 0);
	assert_int_equal(dropped, 3);
	for (size_t i = 0; i < 3; i++)
		assert_no_file_of_segment(fx->dir, &segs[i]);
	assert_retained_from(fx, &m, segs[3].base_offset);

	/* A limit of 0 drops every sealed segment but never the active one. */
	assert_int_equal(sl_log_retain(fx->log, sl_clock_wall_ms(), -1, 0, &dropped), 0);
	assert_int_equal(dropped, seg_count - 4);
	assert_retained_from(fx, &m, segs[seg_count - 1].base_offset);
	assert_int_equal(sl_log_retain(fx->log, sl_clock_wall_ms(), -1, 0, &dropped), 0);
	assert_int_equal(dropped, 0);

	/* The trimmed log appends, and keeps its new start across a reopen. */
	lt_spec_random(&rng, &more, 10, 100, TIMESTAMP_BASE_MS);
	assert_int_equal(lt_append_spec(fx, &m, &more, SL_DURABILITY_WRITTEN, NULL, NULL), 0);
	assert_int_equal(lt_fixture_close(fx), 0);
	assert_int_equal(lt_fixture_open(fx), 0);
	assert_retained_from(fx, &m, segs[seg_count - 1].base_offset);
	free(segs);
	lt_model_free(&m);
}

/* log.h: "then the oldest sealed segments while the log is larger than retention_bytes". With a limit one byte
 * under the size of segments 1.., dropping segment 0 leaves the log one byte too large, so segment 1 goes too. */
static void test_retention_by_bytes_drops_segments_until_the_log_is_no_larger_than_the_limit(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct lt_model m = {0};
	struct lt_segment *segs;
	size_t seg_count;
	uint32_t dropped = 99;
	int64_t keep;

	build_log_for_retention(fx, &m, lt_seed("retention limit", 114), 0, &segs, &seg_count, 4);
	keep = model_bytes_between(&m, segs[1].base_offset, INT64_MAX) - 1;
	assert_int_equal(sl_log_retain(fx->log, sl_clock_wall_ms(), -1, keep, &dropped), 0);
	if (dropped != 2)
		fail_msg("retention_bytes %" PRId64 ": %" PRIu32 " segments dropped, the log now holds %" PRIu64
		         " bytes; dropping 2 leaves it at %" PRId64,
		         keep, dropped, (uint64_t)model_bytes_between(&m, sl_log_start_offset(fx->log), INT64_MAX),
		         model_bytes_between(&m, segs[2].base_offset, INT64_MAX));
	assert_retained_from(fx, &m, segs[2].base_offset);
	free(segs);
	lt_model_free(&m);
}

static int64_t segment_max_timestamp(const struct lt_scan *scan, int64_t from, int64_t to)
{
	int64_t max = INT64_MIN;

	for (size_t i = 0; i < scan->count; i++)
		if (scan->batches[i].base_offset >= from && scan->batches[i].base_offset < to &&
		    scan->batches[i].max_timestamp > max)
			max = scan->batches[i].max_timestamp;
	return max;
}

static void test_retention_by_time_drops_old_sealed_segments_never_the_active_one(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct lt_model m = {0};
	struct lt_segment *segs;
	size_t seg_count;
	struct lt_scan scan;
	uint32_t dropped = 99;
	int64_t newest_of_1, newest_of_2;

	/* Timestamps a second apart per batch: each segment is newer than the one before. */
	build_log_for_retention(fx, &m, lt_seed("retention by time", 111), 1, &segs, &seg_count, 4);
	assert_int_equal(lt_log_scan(fx->log, &scan), 0);
	newest_of_1 = segment_max_timestamp(&scan, segs[1].base_offset, segs[2].base_offset);
	newest_of_2 = segment_max_timestamp(&scan, segs[2].base_offset, segs[3].base_offset);
	assert_true(newest_of_2 > newest_of_1);

	/* Nothing is older than an hour before the oldest record. */
	assert_int_equal(sl_log_retain(fx->log, TIMESTAMP_BASE_MS, 3600 * 1000, -1, &dropped), 0);
	assert_int_equal(dropped, 0);
	assert_retained_from(fx, &m, 0);

	/* Segments 0 and 1 hold only records older than now - retention; segment 2's newest record is not. */
	assert_int_equal(sl_log_retain(fx->log, newest_of_1 + 1 + 60000, 60000, -1, &dropped), 0);
	assert_int_equal(dropped, 2);
	assert_no_file_of_segment(fx->dir, &segs[0]);
	assert_no_file_of_segment(fx->dir, &segs[1]);
	assert_retained_from(fx, &m, segs[2].base_offset);

	/* Everything is old a year later, yet the active segment stays. */
	assert_int_equal(sl_log_retain(fx->log, newest_of_2 + 365ll * 24 * 3600 * 1000, 60000, -1, &dropped), 0);
	assert_int_equal(dropped, seg_count - 3);
	assert_retained_from(fx, &m, segs[seg_count - 1].base_offset);
	lt_scan_free(&scan);
	free(segs);
	lt_model_free(&m);
}

static void test_maybe_roll_rolls_a_non_empty_active_segment_by_age(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct lt_model m = {0};
	struct sl_log_stats st;
	struct sl_log_span span;
	struct lt_batch_spec s;
	uint64_t rng = lt_seed("roll by age", 112);
	int64_t now = sl_clock_wall_ms();
	int64_t base = -1;
	char name[PATH_MAX], want[64];

	fx->cfg.segment_age_ms_max = 60000;
	assert_int_equal(lt_fixture_open(fx), 0);
	/* An empty active segment never rolls, however old the log. */
	assert_int_equal(sl_log_maybe_roll(fx->log, now + 3600 * 1000), 0);
	sl_log_get_stats(fx->log, &st);
	assert_int_equal(st.segment_count, 1);

	for (int i = 0; i < 3; i++) {
		lt_spec_random(&rng, &s, 5, 100, sl_clock_wall_ms());
		assert_int_equal(lt_append_spec(fx, &m, &s, SL_DURABILITY_WRITTEN, NULL, NULL), 0);
	}
	assert_int_equal(sl_log_maybe_roll(fx->log, now + 1000), 0);
	sl_log_get_stats(fx->log, &st);
	assert_int_equal(st.segment_count, 1);

	assert_int_equal(sl_log_maybe_roll(fx->log, sl_clock_wall_ms() + 60000 + 5000), 0);
	sl_log_get_stats(fx->log, &st);
	assert_int_equal(st.segment_count, 2);
	/* The fresh active segment is empty: it does not roll again. */
	assert_int_equal(sl_log_maybe_roll(fx->log, sl_clock_wall_ms() + 10 * 60000), 0);
	sl_log_get_stats(fx->log, &st);
	assert_int_equal(st.segment_count, 2);

	/* The next batch opens the new segment, named by its base offset. */
	lt_spec_random(&rng, &s, 5, 100, sl_clock_wall_ms());
	assert_int_equal(lt_append_spec(fx, &m, &s, SL_DURABILITY_WRITTEN, &base, NULL), 0);
	assert_int_equal(sl_log_locate(fx->log, base, 1, &span), 0);
	assert_int_equal(span.pos, 0);
	assert_int_equal(lt_fd_basename(span.fd, name, sizeof(name)), 0);
	snprintf(want, sizeof(want), "%" PRId64 ".log", base);
	/* Zero-padded, so strip the padding before comparing. */
	assert_string_equal(name + strspn(name, "0") - (base == 0 ? 1 : 0), want);
	assert_log_matches_model(fx, &m);
	assert_int_equal(lt_fixture_close(fx), 0);
	assert_int_equal(lt_fixture_open(fx), 0);
	sl_log_get_stats(fx->log, &st);
	assert_int_equal(st.segment_count, 2);
	assert_log_matches_model(fx, &m);
	lt_model_free(&m);
}

/* count copies of the batch of s, ready to append at level. */
static struct lt_append *prepare_appends(struct lt_fixture *fx, struct lt_acks *acks, const struct lt_batch_spec *s,
                                         size_t count, enum sl_durability level)
{
	struct lt_append *v = calloc(count, sizeof(*v));
	const uint8_t *p;
	size_t len;

	assert_non_null(v);
	assert_int_equal(lt_batch_build(&fx->builder, s, &p, &len), 0);
	for (size_t i = 0; i < count; i++) {
		uint8_t *copy = malloc(len);

		assert_non_null(copy);
		memcpy(copy, p, len);
		lt_append_init(&v[i], acks, copy, len, level);
	}
	return v;
}

static void free_appends(struct lt_append *v, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(v[i].a.batch);
	free(v);
}

/* Append v[from..count) retrying on -EAGAIN after each sl_ring_wait; then wait for every callback and check the
 * offsets are consecutive and acknowledged in order. */
static void drain_and_check(struct lt_fixture *fx, struct lt_append *v, size_t from, size_t count, int32_t records)
{
	for (size_t i = from; i < count; i++) {
		int rc, waits = 0;

		while ((rc = sl_log_append(fx->log, &v[i].a)) == -EAGAIN) {
			assert_true(++waits < LT_RING_WAITS_MAX);
			assert_true(sl_ring_wait(&fx->ring) >= 0);
		}
		assert_int_equal(rc, 0);
		v[i].queued = 1;
	}
	assert_int_equal(lt_wait_idle(&fx->ring, fx->log), 0);
	for (size_t i = 0; i < count; i++) {
		assert_true(v[i].done);
		assert_int_equal(v[i].status, 0);
		assert_int_equal(v[i].ack_index, i);
		assert_int_equal(v[i].a.base_offset, (int64_t)i * records);
		assert_int_equal(v[i].a.last_offset, (int64_t)(i + 1) * records - 1);
	}
}

static void test_append_says_eagain_when_the_append_window_is_full_and_recovers(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct lt_acks acks = {0};
	struct lt_batch_spec s = {.seed = 7, .record_count = 3, .value_bytes = 100, .timestamp_ms = TIMESTAMP_BASE_MS};
	struct lt_append *v;

	fx->cfg.inflight_appends_max = 4;
	assert_int_equal(lt_fixture_open(fx), 0);
	v = prepare_appends(fx, &acks, &s, 12, SL_DURABILITY_FSYNC);
	/* Nothing is reaped in between, so the window cannot drain. */
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(sl_log_append(fx->log, &v[i].a), 0);
		v[i].queued = 1;
	}
	assert_int_equal(sl_log_append(fx->log, &v[4].a), -EAGAIN);
	assert_int_equal(sl_log_append(fx->log, &v[4].a), -EAGAIN);
	assert_int_equal(lt_wait_idle(&fx->ring, fx->log), 0);
	/* The refused append's callback never runs. */
	assert_false(v[4].done);
	assert_int_equal(acks.count, 4);
	drain_and_check(fx, v, 4, 12, 3);
	free_appends(v, 12);
}

static void test_append_says_eagain_when_the_byte_window_is_full_and_recovers(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct lt_acks acks = {0};
	struct lt_batch_spec s = {.seed = 8, .record_count = 1, .value_bytes = 3000, .timestamp_ms = TIMESTAMP_BASE_MS};
	struct lt_append *v;
	size_t accepted = 0;

	fx->cfg.inflight_bytes_max = 8 * 1024;
	assert_int_equal(lt_fixture_open(fx), 0);
	v = prepare_appends(fx, &acks, &s, 10, SL_DURABILITY_FSYNC);
	while (accepted < 10 && sl_log_append(fx->log, &v[accepted].a) == 0)
		v[accepted++].queued = 1;
	/* Two ~3 KiB batches fit in 8 KiB; a third fits only if the log lets the last one cross the limit. */
	if (accepted < 2 || accepted > 3)
		fail_msg("%zu appends of %zu bytes accepted with inflight_bytes_max 8192", accepted, v[0].a.len);
	assert_int_equal(lt_wait_idle(&fx->ring, fx->log), 0);
	assert_false(v[accepted].done);
	drain_and_check(fx, v, accepted, 10, 1);
	free_appends(v, 10);
}

static void test_appends_queued_in_one_pass_complete_in_order(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct lt_acks acks = {0};
	struct lt_batch_spec s = {.seed = 9, .record_count = 4, .value_bytes = 200, .timestamp_ms = TIMESTAMP_BASE_MS};
	struct lt_append *v;
	struct sl_log_stats st;
	struct lt_scan scan;
	int submitted;

	assert_int_equal(lt_fixture_open(fx), 0);
	v = prepare_appends(fx, &acks, &s, 50, SL_DURABILITY_WRITTEN);
	for (size_t i = 0; i < 50; i++) {
		assert_int_equal(sl_log_append(fx->log, &v[i].a), 0);
		v[i].queued = 1;
	}
	/* Callbacks never run inside the call that queued the work. */
	assert_int_equal(acks.count, 0);
	submitted = sl_ring_submit(&fx->ring);
	assert_true(submitted >= 1);
	drain_and_check(fx, v, 50, 50, 4);
	sl_log_get_stats(fx->log, &st);
	assert_true(st.write_op_count >= 1 && st.write_op_count <= 50);
	assert_int_equal(st.appended_batch_count, 50);
	assert_int_equal(lt_log_scan(fx->log, &scan), 0);
	assert_int_equal(scan.count, 50);
	lt_scan_free(&scan);
	free_appends(v, 50);
}

static void test_fsync_appends_queued_together_share_group_commits(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct lt_acks acks = {0};
	struct lt_batch_spec s = {.seed = 10, .record_count = 2, .value_bytes = 300, .timestamp_ms = TIMESTAMP_BASE_MS};
	struct lt_append *v;
	struct sl_log_stats before, after;

	assert_int_equal(lt_fixture_open(fx), 0);
	sl_log_get_stats(fx->log, &before);
	v = prepare_appends(fx, &acks, &s, 50, SL_DURABILITY_FSYNC);
	for (size_t i = 0; i < 50; i++) {
		assert_int_equal(sl_log_append(fx->log, &v[i].a), 0);
		v[i].queued = 1;
	}
	assert_true(sl_ring_submit(&fx->ring) >= 1);
	drain_and_check(fx, v, 50, 50, 2);
	sl_log_get_stats(fx->log, &after);
	/* While one fdatasync runs the rest wait for the next: a handful of fsyncs, not one per append. */
	if (after.fsync_count - before.fsync_count < 1 || after.fsync_count - before.fsync_count > 25)
		fail_msg("%" PRIu64 " fdatasyncs for 50 fsync appends queued in one pass",
		         after.fsync_count - before.fsync_count);
	free_appends(v, 50);
}

static void test_append_refuses_a_batch_with_an_invalid_header_without_callback(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct lt_acks acks = {0};
	struct lt_batch_spec s = {.seed = 11, .record_count = 5, .value_bytes = 50, .timestamp_ms = TIMESTAMP_BASE_MS};
	struct lt_append *v;
	struct lt_model m = {0};
	struct sl_log_stats before, after;

	assert_int_equal(lt_fixture_open(fx), 0);
	assert_int_equal(lt_append_spec(fx, &m, &s, SL_DURABILITY_WRITTEN, NULL, NULL), 0);
	sl_log_get_stats(fx->log, &before);
	v = prepare_appends(fx, &acks, &s, 3, SL_DURABILITY_WRITTEN);
	v[0].a.batch[16] = 1;                          /* magic 1 */
	sl_store_be32(v[1].a.batch + 57, 0xffffffffu); /* record count -1 */
	sl_store_be32(v[2].a.batch + 8, 10);           /* batch length under the header's 49 */
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(sl_log_append(fx->log, &v[i].a), -EBADMSG);
	assert_int_equal(lt_wait_idle(&fx->ring, fx->log), 0);
	assert_true(sl_ring_wait(&fx->ring) >= 0);
	sl_ring_reap(&fx->ring);
	assert_int_equal(acks.count, 0);
	sl_log_get_stats(fx->log, &after);
	assert_int_equal(after.next_offset, before.next_offset);
	assert_int_equal(after.bytes, before.bytes);
	assert_int_equal(after.appended_batch_count, before.appended_batch_count);
	/* The log goes on at the offset the refused batches did not take. */
	assert_int_equal(lt_append_spec(fx, &m, &s, SL_DURABILITY_WRITTEN, NULL, NULL), 0);
	assert_int_equal(m.batches[1].base_offset, 5);
	assert_log_matches_model(fx, &m);
	free_appends(v, 3);
	lt_model_free(&m);
}

static void test_append_refuses_a_batch_larger_than_a_segment_with_efbig(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct lt_acks acks = {0};
	/* 20 records of 4000 bytes: ~80 KB, over the 64 KiB segment. */
	struct lt_batch_spec big = {.seed = 12, .record_count = 20, .value_bytes = 4000, .timestamp_ms = 1};
	struct lt_batch_spec small = {.seed = 13, .record_count = 2, .value_bytes = 10, .timestamp_ms = 1};
	struct lt_append *v;
	struct lt_model m = {0};

	assert_int_equal(lt_fixture_open(fx), 0);
	v = prepare_appends(fx, &acks, &big, 1, SL_DURABILITY_WRITTEN);
	assert_true(v[0].a.len > LT_SEGMENT_BYTES_MAX);
	assert_int_equal(sl_log_append(fx->log, &v[0].a), -EFBIG);
	assert_int_equal(lt_wait_idle(&fx->ring, fx->log), 0);
	assert_int_equal(acks.count, 0);
	assert_int_equal(sl_log_next_offset(fx->log), 0);
	assert_int_equal(lt_append_spec(fx, &m, &small, SL_DURABILITY_WRITTEN, NULL, NULL), 0);
	assert_int_equal(m.batches[0].base_offset, 0);
	assert_log_matches_model(fx, &m);
	free_appends(v, 1);
	lt_model_free(&m);
}

static void test_clean_close_makes_the_next_open_clean_without_a_scan(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct lt_model m = {0};
	struct sl_log_stats st;

	build_log(fx, &m, SMALL_LOG_BATCH_COUNT, SL_DURABILITY_NONE, lt_seed("clean close", 113), 0);
	assert_int_equal(lt_fixture_close(fx), 0);
	assert_int_equal(lt_fixture_open(fx), 0);
	sl_log_get_stats(fx->log, &st);
	assert_int_equal(st.clean_open, 1);
	if (st.recovered_tail_bytes >= fx->cfg.index_interval_bytes)
		fail_msg("a clean open scanned %" PRIu64 " bytes (index interval %" PRIu32 ")", st.recovered_tail_bytes,
		         fx->cfg.index_interval_bytes);
	assert_int_equal(st.truncated_bytes, 0);
	assert_int_equal(st.appended_batch_count, 0);
	assert_log_matches_model(fx, &m);
	lt_model_free(&m);
}

#define LOG_TEST(fn) cmocka_unit_test_setup_teardown(fn, lt_fixture_setup, lt_fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        LOG_TEST(test_roundtrip_at_durability_none_survives_reopen),
	        LOG_TEST(test_roundtrip_at_durability_written_survives_reopen),
	        LOG_TEST(test_roundtrip_at_durability_fsync_survives_reopen),
	        LOG_TEST(test_roundtrip_with_mixed_durability_survives_reopen),
	        LOG_TEST(test_segments_roll_by_size_and_stats_count_them),
	        LOG_TEST(test_read_from_random_offsets_returns_whole_batches_from_the_one_holding_it),
	        LOG_TEST(test_locate_from_random_offsets_returns_span_of_whole_batches_in_one_segment),
	        LOG_TEST(test_read_and_locate_return_batches_far_larger_than_the_index_interval),
	        LOG_TEST(test_offset_for_time_matches_brute_force_over_records),
	        LOG_TEST(test_read_and_locate_outside_the_log_return_erange),
	        LOG_TEST(test_retention_by_bytes_drops_oldest_sealed_segments_never_the_active_one),
	        LOG_TEST(test_retention_by_bytes_drops_segments_until_the_log_is_no_larger_than_the_limit),
	        LOG_TEST(test_retention_by_time_drops_old_sealed_segments_never_the_active_one),
	        LOG_TEST(test_maybe_roll_rolls_a_non_empty_active_segment_by_age),
	        LOG_TEST(test_append_says_eagain_when_the_append_window_is_full_and_recovers),
	        LOG_TEST(test_append_says_eagain_when_the_byte_window_is_full_and_recovers),
	        LOG_TEST(test_appends_queued_in_one_pass_complete_in_order),
	        LOG_TEST(test_fsync_appends_queued_together_share_group_commits),
	        LOG_TEST(test_append_refuses_a_batch_with_an_invalid_header_without_callback),
	        LOG_TEST(test_append_refuses_a_batch_larger_than_a_segment_with_efbig),
	        LOG_TEST(test_clean_close_makes_the_next_open_clean_without_a_scan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
