/* Partition logs within a bounded number of descriptors (broker/storage/files.h): thirty logs share a budget of
 * 24 descriptors while they are appended to, rolled, read back, closed and opened again (cleanly and after a
 * crash), every byte where it belongs; idle logs' files are closed and opened again on use; a pinned span keeps its
 * segment's file open and out of retention's reach until it is unpinned. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/storage/files.h"
#include "log_test_util.h"

#define LOG_COUNT     30
#define FDS_MAX       24
#define SEGMENT_BYTES (16u * 1024)
#define ROUNDS        6
#define BATCHES_ROUND 3

static struct lt_fixture *fixture(void **state)
{
	return *state;
}

static int fds_in_use(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (d == NULL)
		return -1;
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n - 3; /* ".", ".." and the one opendir holds */
}

struct logs {
	struct sl_files files;
	struct sl_log *log[LOG_COUNT];
	struct lt_model model[LOG_COUNT];
	char dir[LOG_COUNT][PATH_MAX];
	int baseline_fds;
};

static void open_all(struct lt_fixture *fx, struct logs *l)
{
	for (int i = 0; i < LOG_COUNT; i++) {
		int rc = sl_log_open(&fx->ring, l->dir[i], &fx->cfg, &l->log[i], fx->err, sizeof(fx->err));

		if (rc != 0)
			fail_msg("open %s: %d (%s)", l->dir[i], rc, fx->err);
		assert_true(l->files.fds_open <= FDS_MAX);
		assert_true(fds_in_use() <= l->baseline_fds + FDS_MAX);
	}
}

static void close_all(struct logs *l)
{
	for (int i = 0; i < LOG_COUNT; i++) {
		assert_int_equal(sl_log_close(l->log[i]), 0);
		l->log[i] = NULL;
	}
	assert_int_equal(l->files.fds_open, 0);
}

static void check_all(struct logs *l)
{
	for (int i = 0; i < LOG_COUNT; i++) {
		struct lt_scan scan;

		assert_int_equal(lt_log_scan(l->log[i], &scan), 0);
		assert_int_equal(lt_model_check_scan(&l->model[i], &scan), 0);
		lt_scan_free(&scan);
		assert_true(l->files.fds_open <= FDS_MAX);
		assert_true(fds_in_use() <= l->baseline_fds + FDS_MAX);
	}
}

static void append_one(struct lt_fixture *fx, struct logs *l, int i, uint64_t *rng)
{
	struct lt_batch_spec s;
	struct lt_append la;
	struct lt_acks acks = {0};
	const uint8_t *bytes;
	size_t len;
	uint8_t *copy;

	lt_spec_random(rng, &s, 8, 1500, 1700000000000ll);
	assert_int_equal(lt_batch_build(&fx->builder, &s, &bytes, &len), 0);
	copy = malloc(len);
	assert_non_null(copy);
	memcpy(copy, bytes, len);
	lt_append_init(&la, &acks, copy, len, SL_DURABILITY_FSYNC);
	assert_int_equal(lt_append_wait(&fx->ring, l->log[i], &la), 0);
	assert_int_equal(lt_model_push(&l->model[i], &s, bytes, len, la.a.base_offset, la.a.last_offset), 0);
	free(copy);
}

static void logs_setup(struct lt_fixture *fx, struct logs *l)
{
	memset(l, 0, sizeof(*l));
	sl_files_init(&l->files, FDS_MAX);
	fx->cfg.files = &l->files;
	fx->cfg.segment_bytes_max = SEGMENT_BYTES;
	for (int i = 0; i < LOG_COUNT; i++) {
		char name[16];

		snprintf(name, sizeof(name), "p%d", i);
		assert_int_equal(lt_path_join(l->dir[i], sizeof(l->dir[i]), fx->root, name), 0);
	}
	l->baseline_fds = fds_in_use();
}

static void logs_free(struct lt_fixture *fx, struct logs *l)
{
	for (int i = 0; i < LOG_COUNT; i++)
		lt_model_free(&l->model[i]);
	fx->cfg.files = NULL;
}

static void test_thirty_logs_live_within_twenty_four_descriptors(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct logs l;
	uint64_t rng = lt_seed("files budget", 601);

	logs_setup(fx, &l);
	open_all(fx, &l);
	for (int round = 0; round < ROUNDS; round++) {
		for (int i = 0; i < LOG_COUNT; i++) {
			for (int b = 0; b < BATCHES_ROUND; b++)
				append_one(fx, &l, i, &rng);
			assert_true(l.files.fds_open <= FDS_MAX);
			assert_true(fds_in_use() <= l.baseline_fds + FDS_MAX);
		}
	}
	/* Several segments each: sealed ones are read through their own entries. */
	struct sl_log_stats st;
	sl_log_get_stats(l.log[0], &st);
	assert_true(st.segment_count >= 3);
	check_all(&l);
	print_message("%" PRIu64 " entries closed to make room, %d descriptors at most\n", l.files.closed_count,
	              FDS_MAX);
	assert_true(l.files.closed_count > LOG_COUNT);
	assert_int_equal(l.files.over_budget_count, 0);
	close_all(&l);

	/* Opened again after a clean close, then after a crash (no marker): recovery stays within the budget too. */
	open_all(fx, &l);
	check_all(&l);
	close_all(&l);
	for (int i = 0; i < LOG_COUNT; i++) {
		char marker[PATH_MAX];

		assert_int_equal(lt_path_join(marker, sizeof(marker), l.dir[i], LT_CLEAN_MARKER), 0);
		assert_int_equal(unlink(marker), 0);
	}
	open_all(fx, &l);
	check_all(&l);
	for (int i = 0; i < LOG_COUNT; i++)
		append_one(fx, &l, i, &rng);
	check_all(&l);
	close_all(&l);
	logs_free(fx, &l);
}

static void test_a_pinned_span_keeps_its_file_open_and_out_of_retention(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct logs l;
	struct sl_log_span span;
	struct lt_segment *segs;
	size_t seg_count;
	char name[256];
	uint32_t dropped;
	uint64_t rng = lt_seed("files pin", 602);

	logs_setup(fx, &l);
	open_all(fx, &l);
	for (int round = 0; round < ROUNDS; round++)
		for (int i = 0; i < LOG_COUNT; i++)
			for (int b = 0; b < BATCHES_ROUND; b++)
				append_one(fx, &l, i, &rng);
	assert_int_equal(lt_segments_list(l.dir[0], &segs, &seg_count), 0);
	assert_true(seg_count >= 3);

	/* The oldest segment of log 0 located; every other log read (its file is closed to make room); pinned: the
	 * file is open again and stays open while every other log is read again. */
	assert_int_equal(sl_log_locate(l.log[0], l.model[0].batches[0].base_offset, 1, &span), 0);
	for (int round = 0; round < 2; round++) {
		if (round == 1)
			assert_int_equal(sl_log_span_pin(l.log[0], &span), 0);
		for (int i = 1; i < LOG_COUNT; i++) {
			struct lt_scan scan;

			assert_int_equal(lt_log_scan(l.log[i], &scan), 0);
			lt_scan_free(&scan);
		}
	}
	assert_int_equal(lt_fd_basename(span.fd, name, sizeof(name)), 0);
	assert_string_equal(name, segs[0].name);
	{
		uint8_t *buf = malloc(span.len);

		assert_non_null(buf);
		assert_int_equal(pread(span.fd, buf, span.len, (off_t)span.pos), (ssize_t)span.len);
		assert_int_equal(lt_batch_check_stored(buf, l.model[0].batches[0].len, l.model[0].batches[0].bytes,
		                                       l.model[0].batches[0].len, l.model[0].batches[0].base_offset),
		                 0);
		free(buf);
	}
	/* Retention does not drop a pinned segment; once unpinned it does. */
	assert_int_equal(sl_log_retain(l.log[0], 1700000000000ll, -1, 0, &dropped), 0);
	assert_int_equal(dropped, 0);
	sl_log_span_unpin(l.log[0], &span);
	assert_int_equal(sl_log_retain(l.log[0], 1700000000000ll, -1, 0, &dropped), 0);
	assert_true(dropped > 0);
	free(segs);
	close_all(&l);
	logs_free(fx, &l);
}

#define LOG_TEST(fn) cmocka_unit_test_setup_teardown(fn, lt_fixture_setup, lt_fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        LOG_TEST(test_thirty_logs_live_within_twenty_four_descriptors),
	        LOG_TEST(test_a_pinned_span_keeps_its_file_open_and_out_of_retention),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
