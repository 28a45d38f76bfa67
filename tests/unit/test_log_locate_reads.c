/* A lookup reads batch headers, not whole batches: sl_log_locate (every fetch's plan, on the broker's loop) reads a
 * few KiB from the segment file in a log of 200 KiB batches, not a batch or two, and sl_log_offset_for_time reads
 * those headers plus the one batch whose records it must look at.
 * Measured with the process's read byte count (rchar of /proc/self/io), which counts every read and pread. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log_test_util.h"

#define BATCH_COUNT           24
#define BATCH_RECORDS         100
#define BATCH_VALUE_SIZE      2000 /* about 200 KiB per batch */
/* What a lookup may read: a few refills of 2 * index_interval around the nearest index entries. */
#define LOOKUP_READ_BYTES_MAX (64u * 1024)

static uint64_t rchar(void)
{
	FILE *f = fopen("/proc/self/io", "r");
	char line[128];
	uint64_t v = 0;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "rchar: %lu", &v) == 1)
			break;
	fclose(f);
	return v;
}

static void test_lookups_in_large_batches_read_headers_only(void **state)
{
	struct lt_fixture *fx = *state;
	fx->cfg.segment_bytes_max = 64u << 20;
	fx->cfg.index_interval_bytes = 4096;
	assert_int_equal(lt_fixture_open(fx), 0);
	for (int k = 0; k < BATCH_COUNT; k++) {
		struct lt_batch_spec s = {.seed = (uint64_t)k + 1,
		                          .record_count = BATCH_RECORDS,
		                          .value_bytes = BATCH_VALUE_SIZE,
		                          .timestamp_ms = 1700000000000ll + k * 1000};
		assert_int_equal(lt_append_spec(fx, NULL, &s, SL_DURABILITY_WRITTEN, NULL, NULL), 0);
	}
	for (int k = 1; k < BATCH_COUNT - 1; k += 5) {
		struct sl_log_span span;
		int64_t at;
		uint64_t before = rchar();
		/* An offset inside batch k, a span of about three batches: both ends are looked up. */
		assert_int_equal(sl_log_locate(fx->log, (int64_t)k * BATCH_RECORDS + 7, 3u * 200 * 1024, &span), 0);
		assert_true(rchar() - before <= LOOKUP_READ_BYTES_MAX);
		assert_int_equal(span.first_offset, (int64_t)k * BATCH_RECORDS);
		assert_true(span.len > 200 * 1024);
		before = rchar();
		assert_int_equal(sl_log_offset_for_time(fx->log, 1700000000000ll + k * 1000 + 500, &at), 0);
		assert_true(rchar() - before <= LOOKUP_READ_BYTES_MAX + 210 * 1024);
		assert_true(at >= (int64_t)k * BATCH_RECORDS && at <= (int64_t)(k + 1) * BATCH_RECORDS);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_lookups_in_large_batches_read_headers_only, lt_fixture_setup,
	                                        lt_fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
