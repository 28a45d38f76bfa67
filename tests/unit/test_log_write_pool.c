/* The partition log's pool of write ops grows with the appends in flight instead of being allocated whole at open:
 * an idle log holds none (10,000 idle partitions used to hold 1.1 MiB of RSS each), a window of appends finds an op
 * for every append, and the pool never grows past the log's in-flight bound (rounded up to a chunk). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/storage/log_impl.h"
#include "log_test_util.h"

/* Not a multiple of SL_WRITE_OPS_CHUNK, so the bound's rounding is exercised. */
#define WINDOW_APPENDS 40
#define BURSTS         3

static struct lt_fixture *fixture(void **state)
{
	return *state;
}

static void test_idle_log_holds_no_write_ops(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct lt_batch_spec s = {.seed = 1, .record_count = 4, .value_bytes = 100, .timestamp_ms = 1700000000000ll};

	assert_int_equal(lt_fixture_open(fx), 0);
	assert_int_equal((fx->log->op_chunk_count * SL_WRITE_OPS_CHUNK), 0);
	assert_null(fx->log->free_ops);
	/* One append takes one chunk; a reopened log (idle again) holds none. */
	assert_int_equal(lt_append_spec(fx, NULL, &s, SL_DURABILITY_WRITTEN, NULL, NULL), 0);
	assert_int_equal((fx->log->op_chunk_count * SL_WRITE_OPS_CHUNK), SL_WRITE_OPS_CHUNK);
	assert_int_equal(lt_fixture_close(fx), 0);
	assert_int_equal(lt_fixture_open(fx), 0);
	assert_int_equal((fx->log->op_chunk_count * SL_WRITE_OPS_CHUNK), 0);
}

static void test_window_of_appends_finds_an_op_each_within_the_bound(void **state)
{
	struct lt_fixture *fx = fixture(state);
	struct lt_append *v = calloc(WINDOW_APPENDS * 2, sizeof(*v));
	struct lt_acks acks = {0};
	uint32_t bound = (WINDOW_APPENDS + SL_WRITE_OPS_CHUNK - 1) / SL_WRITE_OPS_CHUNK * SL_WRITE_OPS_CHUNK;

	assert_non_null(v);
	fx->cfg.inflight_appends_max = WINDOW_APPENDS;
	assert_int_equal(lt_fixture_open(fx), 0);
	for (int burst = 0; burst < BURSTS; burst++) {
		size_t queued = 0;

		/* Queue until the log pushes back, without reaping: every append is unwritten at once. */
		for (; queued < WINDOW_APPENDS * 2; queued++) {
			struct lt_batch_spec s = {.seed = (uint64_t)(burst * 1000 + (int)queued),
			                          .record_count = 2,
			                          .value_bytes = 64,
			                          .timestamp_ms = 1700000000000ll};
			const uint8_t *p;
			size_t len;

			assert_int_equal(lt_batch_build(&fx->builder, &s, &p, &len), 0);
			uint8_t *copy = malloc(len);
			assert_non_null(copy);
			memcpy(copy, p, len);
			lt_append_init(&v[queued], &acks, copy, len, SL_DURABILITY_WRITTEN);
			int rc = sl_log_append(fx->log, &v[queued].a);
			if (rc == -EAGAIN) {
				free(copy);
				break;
			}
			assert_int_equal(rc, 0);
			v[queued].queued = 1;
			assert_true((fx->log->op_chunk_count * SL_WRITE_OPS_CHUNK) >= fx->log->unwritten_count);
		}
		assert_int_equal(queued, WINDOW_APPENDS);
		assert_true((fx->log->op_chunk_count * SL_WRITE_OPS_CHUNK) >= WINDOW_APPENDS);
		assert_true((fx->log->op_chunk_count * SL_WRITE_OPS_CHUNK) <= bound);
		assert_int_equal(sl_ring_submit(&fx->ring) >= 0, 1);
		assert_int_equal(lt_wait_idle(&fx->ring, fx->log), 0);
		for (size_t i = 0; i < queued; i++) {
			assert_true(v[i].done);
			assert_int_equal(v[i].status, 0);
			free(v[i].a.batch);
		}
		memset(v, 0, WINDOW_APPENDS * 2 * sizeof(*v));
		/* Kept for the next burst, not grown again. */
		assert_true((fx->log->op_chunk_count * SL_WRITE_OPS_CHUNK) <= bound);
	}
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_idle_log_holds_no_write_ops, lt_fixture_setup,
	                                        lt_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_window_of_appends_finds_an_op_each_within_the_bound,
	                                        lt_fixture_setup, lt_fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
