/* A fetch's plan on the broker's loop (sl_log_locate_cached) never reads an index or waits on a header: a sealed
 * segment whose index is not loaded since the open says -EWOULDBLOCK and names the segment, the warm-up job
 * (sl_log_warm_prepare/run/finish, the run on any thread) loads the index and reads the headers, and then the same
 * locate is answered from memory with the span sl_log_locate gives. A warm-up whose index files went away meanwhile
 * (retention, the cleaner) says -ESTALE and leaves the segment as it was. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log_test_util.h"

#define BATCH_COUNT   60
#define BATCH_RECORDS 20
#define VALUE_BYTES   200 /* about 4.5 KiB per batch: 14 batches per 64 KiB segment */

/* Fill a log of several sealed segments, then open it again: no sealed segment's index is in memory. */
static void fill_and_reopen(struct lt_fixture *fx)
{
	assert_int_equal(lt_fixture_open(fx), 0);
	for (int k = 0; k < BATCH_COUNT; k++) {
		struct lt_batch_spec s = {.seed = (uint64_t)k + 1,
		                          .record_count = BATCH_RECORDS,
		                          .value_bytes = VALUE_BYTES,
		                          .timestamp_ms = 1700000000000ll + k};
		assert_int_equal(lt_append_spec(fx, NULL, &s, SL_DURABILITY_WRITTEN, NULL, NULL), 0);
	}
	assert_int_equal(lt_fixture_close(fx), 0);
	assert_int_equal(lt_fixture_open(fx), 0);
}

static void test_cold_locate_is_warmed_then_answered_from_memory(void **state)
{
	struct lt_fixture *fx = *state;
	fill_and_reopen(fx);
	/* An offset inside each sealed segment (all but the last, the active one): its first, then a few in. */
	struct lt_segment *segs;
	size_t seg_count;
	assert_int_equal(lt_segments_list(fx->dir, &segs, &seg_count), 0);
	assert_true(seg_count >= 4);
	int64_t offsets[8];
	size_t n = 0;
	for (size_t s = 0; s + 1 < seg_count && n < 8; s++)
		offsets[n++] = segs[s].base_offset + (int64_t)(s % 2) * (BATCH_RECORDS + 3);
	free(segs);
	for (size_t i = 0; i < n; i++) {
		struct sl_log_span cold, warm, want;
		assert_int_equal(sl_log_locate_cached(fx->log, offsets[i], 16 * 1024, &cold), -EWOULDBLOCK);
		assert_non_null(cold.seg);
		assert_int_equal(cold.first_offset, offsets[i]);
		struct sl_log_warm_job job;
		assert_int_equal(sl_log_warm_prepare(fx->log, &cold, 16 * 1024, &job), 0);
		sl_log_warm_run(&job);
		assert_int_equal(sl_log_warm_finish(fx->log, &job), 0);
		assert_int_equal(sl_log_locate_cached(fx->log, offsets[i], 16 * 1024, &warm), 0);
		assert_int_equal(sl_log_locate(fx->log, offsets[i], 16 * 1024, &want), 0);
		assert_true(warm.seg == want.seg && warm.pos == want.pos && warm.len == want.len);
		assert_int_equal(warm.first_offset, want.first_offset);
		assert_int_equal(warm.next_offset, want.next_offset);
		assert_true(warm.first_offset <= offsets[i] && offsets[i] < warm.next_offset);
	}
}

static void test_warm_up_of_removed_index_says_estale(void **state)
{
	struct lt_fixture *fx = *state;
	fill_and_reopen(fx);
	struct sl_log_span cold;
	assert_int_equal(sl_log_locate_cached(fx->log, 5, 16 * 1024, &cold), -EWOULDBLOCK);
	struct sl_log_warm_job job;
	assert_int_equal(sl_log_warm_prepare(fx->log, &cold, 16 * 1024, &job), 0);
	/* The index files go between prepare and run, as when retention removes the segment. */
	char path[PATH_MAX];
	const char *exts[] = {".index", ".timeindex"};
	for (int e = 0; e < 2; e++) {
		snprintf(path, sizeof(path), "%s/00000000000000000000%s", fx->dir, exts[e]);
		char moved[PATH_MAX + 8];
		snprintf(moved, sizeof(moved), "%s.away", path);
		assert_int_equal(rename(path, moved), 0);
	}
	sl_log_warm_run(&job);
	assert_int_equal(sl_log_warm_finish(fx->log, &job), -ESTALE);
	assert_int_equal(sl_log_locate_cached(fx->log, 5, 16 * 1024, &cold), -EWOULDBLOCK);
	/* Back in place, so that the log closes as it opened. */
	for (int e = 0; e < 2; e++) {
		snprintf(path, sizeof(path), "%s/00000000000000000000%s", fx->dir, exts[e]);
		char moved[PATH_MAX + 8];
		snprintf(moved, sizeof(moved), "%s.away", path);
		assert_int_equal(rename(moved, path), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_cold_locate_is_warmed_then_answered_from_memory, lt_fixture_setup,
	                                        lt_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_warm_up_of_removed_index_says_estale, lt_fixture_setup,
	                                        lt_fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
