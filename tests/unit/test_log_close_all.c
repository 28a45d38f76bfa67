/* sl_log_close_all closes many logs of one ring as sl_log_close closes one: their queued appends finish, each
 * leaves its clean-shutdown marker, and the next open of each is a clean open that finds every record. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log_test_util.h"

#define LOG_COUNT        10
#define BATCHES_PER_LOG  40 /* enough 64 KiB segments to roll: sealed and active segments are both closed */
#define BATCH_RECORDS    20
#define BATCH_VALUE_SIZE 200

struct many {
	char root[PATH_MAX];
	struct sl_ring ring;
	struct sl_log *logs[LOG_COUNT];
	struct sl_log_config cfg;
	struct sl_batch_builder b;
	struct lt_append *appends; /* LOG_COUNT * BATCHES_PER_LOG, alive until their callbacks ran */
};

static int many_setup(void **state)
{
	struct many *m = calloc(1, sizeof(*m));
	if (m == NULL || lt_tmpdir_make(m->root, sizeof(m->root)) != 0 || sl_ring_init(&m->ring, 0) != 0 ||
	    sl_batch_builder_init(&m->b, LT_BUILDER_BYTES_MAX) != 0)
		return -1;
	m->appends = calloc(LOG_COUNT * BATCHES_PER_LOG, sizeof(*m->appends));
	sl_log_config_default(&m->cfg);
	m->cfg.segment_bytes_max = LT_SEGMENT_BYTES_MAX;
	*state = m;
	return m->appends ? 0 : -1;
}

static int many_teardown(void **state)
{
	struct many *m = *state;
	for (int i = 0; i < LOG_COUNT; i++)
		if (m->logs[i])
			sl_log_close(m->logs[i]);
	for (int i = 0; i < LOG_COUNT * BATCHES_PER_LOG; i++)
		free(m->appends[i].a.batch);
	free(m->appends);
	sl_batch_builder_free(&m->b);
	sl_ring_close(&m->ring);
	sl_fs_rm_rf(m->root);
	free(m);
	return 0;
}

static void open_all(struct many *m)
{
	char dir[PATH_MAX], err[512];
	for (int i = 0; i < LOG_COUNT; i++) {
		snprintf(dir, sizeof(dir), "%s/p%d", m->root, i);
		assert_int_equal(sl_log_open(&m->ring, dir, &m->cfg, &m->logs[i], err, sizeof(err)), 0);
	}
}

static void test_close_all_finishes_queued_appends_and_leaves_clean_logs(void **state)
{
	struct many *m = *state;
	struct lt_acks acks = {0};
	int errors[LOG_COUNT];
	char path[PATH_MAX];

	open_all(m);
	/* Queue every batch of every log without waiting: close_all must finish them. */
	for (int i = 0; i < LOG_COUNT; i++)
		for (int k = 0; k < BATCHES_PER_LOG; k++) {
			struct lt_append *la = &m->appends[i * BATCHES_PER_LOG + k];
			struct lt_batch_spec s = {.seed = (uint64_t)(i * 1000 + k + 1),
			                          .record_count = BATCH_RECORDS,
			                          .value_bytes = BATCH_VALUE_SIZE,
			                          .timestamp_ms = 1700000000000ll + k};
			const uint8_t *p;
			size_t len;
			assert_int_equal(lt_batch_build(&m->b, &s, &p, &len), 0);
			uint8_t *copy = malloc(len);
			assert_non_null(copy);
			memcpy(copy, p, len);
			lt_append_init(la, &acks, copy, len, SL_DURABILITY_WRITTEN);
			int rc;
			while ((rc = sl_log_append(m->logs[i], &la->a)) == -EAGAIN)
				assert_true(sl_ring_wait(&m->ring) >= 0);
			assert_int_equal(rc, 0);
			la->queued = 1;
		}
	assert_true(sl_ring_submit(&m->ring) >= 0);
	assert_int_equal(sl_log_close_all(m->logs, LOG_COUNT, 4, errors), 0);
	for (int i = 0; i < LOG_COUNT; i++) {
		assert_int_equal(errors[i], 0);
		m->logs[i] = NULL;
		snprintf(path, sizeof(path), "%s/p%d/%s", m->root, i, LT_CLEAN_MARKER);
		assert_true(lt_file_exists(path));
	}
	for (int k = 0; k < LOG_COUNT * BATCHES_PER_LOG; k++) {
		assert_true(m->appends[k].done);
		assert_int_equal(m->appends[k].status, 0);
	}
	open_all(m);
	for (int i = 0; i < LOG_COUNT; i++) {
		struct sl_log_stats st;
		struct lt_scan scan;
		sl_log_get_stats(m->logs[i], &st);
		assert_true(st.clean_open);
		assert_true(st.segment_count > 1);
		assert_int_equal(sl_log_next_offset(m->logs[i]), BATCHES_PER_LOG * BATCH_RECORDS);
		assert_int_equal(lt_log_scan(m->logs[i], &scan), 0);
		assert_int_equal(scan.count, BATCHES_PER_LOG);
		lt_scan_free(&scan);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_close_all_finishes_queued_appends_and_leaves_clean_logs,
	                                        many_setup, many_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
