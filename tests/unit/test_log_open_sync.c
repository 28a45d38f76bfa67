/* Opening with defer_open_sync leaves the directory fsync of open (the clean-shutdown marker's removal, a new log's
 * first segment) to sl_log_open_sync_all, which does those of many logs together: every log it ran on takes
 * appends afterwards, the marker is gone, logs without a deferred fsync are left alone, and a reopen after a crash
 * finds what was appended. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/storage/log_impl.h"
#include "log_test_util.h"

#define LOG_COUNT 12

struct many {
	char root[PATH_MAX];
	struct sl_ring ring;
	struct sl_log *logs[LOG_COUNT];
	struct sl_log_config cfg;
	struct sl_batch_builder b;
};

static int many_setup(void **state)
{
	struct many *m = calloc(1, sizeof(*m));
	if (m == NULL || lt_tmpdir_make(m->root, sizeof(m->root)) != 0 || sl_ring_init(&m->ring, 0) != 0 ||
	    sl_batch_builder_init(&m->b, LT_BUILDER_BYTES_MAX) != 0)
		return -1;
	sl_log_config_default(&m->cfg);
	m->cfg.segment_bytes_max = LT_SEGMENT_BYTES_MAX;
	*state = m;
	return 0;
}

static int many_teardown(void **state)
{
	struct many *m = *state;
	for (int i = 0; i < LOG_COUNT; i++)
		if (m->logs[i])
			sl_log_close(m->logs[i]);
	sl_batch_builder_free(&m->b);
	sl_ring_close(&m->ring);
	sl_fs_rm_rf(m->root);
	free(m);
	return 0;
}

static void open_all(struct many *m, int defer)
{
	char dir[PATH_MAX], err[512];
	struct sl_log_config cfg = m->cfg;
	cfg.defer_open_sync = defer;
	for (int i = 0; i < LOG_COUNT; i++) {
		snprintf(dir, sizeof(dir), "%s/p%d", m->root, i);
		assert_int_equal(sl_log_open(&m->ring, dir, &cfg, &m->logs[i], err, sizeof(err)), 0);
	}
}

static void append_one(struct many *m, struct sl_log *log, uint64_t seed)
{
	struct lt_batch_spec s = {.seed = seed, .record_count = 3, .value_bytes = 50, .timestamp_ms = 1700000000000ll};
	struct lt_acks acks = {0};
	struct lt_append la;
	const uint8_t *p;
	size_t len;

	assert_int_equal(lt_batch_build(&m->b, &s, &p, &len), 0);
	uint8_t *copy = malloc(len);
	assert_non_null(copy);
	memcpy(copy, p, len);
	lt_append_init(&la, &acks, copy, len, SL_DURABILITY_FSYNC);
	assert_int_equal(lt_append_wait(&m->ring, log, &la), 0);
	free(copy);
}

static void test_deferred_new_logs_take_appends_after_open_sync_all(void **state)
{
	struct many *m = *state;
	int errors[LOG_COUNT];

	open_all(m, 1);
	for (int i = 0; i < LOG_COUNT; i++)
		assert_true(m->logs[i]->open_sync_pending);
	assert_int_equal(sl_log_open_sync_all(m->logs, LOG_COUNT, 4, errors), 0);
	for (int i = 0; i < LOG_COUNT; i++) {
		assert_false(m->logs[i]->open_sync_pending);
		assert_int_equal(errors[i], 0);
		append_one(m, m->logs[i], (uint64_t)i + 1);
	}
}

static void test_deferred_clean_reopen_removes_the_marker_and_keeps_the_data(void **state)
{
	struct many *m = *state;
	char path[PATH_MAX];

	open_all(m, 0);
	for (int i = 0; i < LOG_COUNT; i++) {
		append_one(m, m->logs[i], (uint64_t)i + 100);
		assert_int_equal(sl_log_close(m->logs[i]), 0);
		m->logs[i] = NULL;
	}
	open_all(m, 1);
	for (int i = 0; i < LOG_COUNT; i++) {
		snprintf(path, sizeof(path), "%s/p%d/%s", m->root, i, LT_CLEAN_MARKER);
		assert_false(lt_file_exists(path)); /* unlinked at open; only its fsync waits */
		assert_true(m->logs[i]->open_sync_pending);
	}
	/* One thread, more logs than threads, and the NULL errors array: all the same. */
	assert_int_equal(sl_log_open_sync_all(m->logs, LOG_COUNT, 1, NULL), 0);
	for (int i = 0; i < LOG_COUNT; i++) {
		assert_int_equal(sl_log_next_offset(m->logs[i]), 3);
		append_one(m, m->logs[i], (uint64_t)i + 200);
		assert_int_equal(sl_log_next_offset(m->logs[i]), 6);
	}
}

static void test_logs_without_a_deferred_fsync_are_skipped(void **state)
{
	struct many *m = *state;
	int errors[LOG_COUNT];

	open_all(m, 0);
	for (int i = 0; i < LOG_COUNT; i++) {
		assert_false(m->logs[i]->open_sync_pending);
		errors[i] = -1;
	}
	assert_int_equal(sl_log_open_sync_all(m->logs, LOG_COUNT, 8, errors), 0);
	for (int i = 0; i < LOG_COUNT; i++)
		assert_int_equal(errors[i], 0);
	assert_int_equal(sl_log_open_sync_all(m->logs, 0, 8, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_deferred_new_logs_take_appends_after_open_sync_all, many_setup,
	                                        many_teardown),
	        cmocka_unit_test_setup_teardown(test_deferred_clean_reopen_removes_the_marker_and_keeps_the_data,
	                                        many_setup, many_teardown),
	        cmocka_unit_test_setup_teardown(test_logs_without_a_deferred_fsync_are_skipped, many_setup,
	                                        many_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
