/* The cleaner's property: for random change streams over a few hundred keys (versions in order and out of order,
 * exact duplicates, deletes, unversioned keys), a replay of the compacted log from its start reaches the state a
 * replay of the whole history reaches, deletes included, with every surviving record at its original offset;
 * repeated cleans over new and old segments keep it; and once tombstones expire, deleted keys are absent.
 * Sizes: 12 seeds of 3,000 + 1,500 + 500 records over 300 keys, 16 KiB segments: about 2 s. */
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

#include "clean_test_util.h"

#define SEEDS         12
#define KEYS          300
#define SEGMENT_BYTES (16u * 1024)

static void check_state(struct lt_fixture *fx, const struct ct_stream *s, size_t count, int deleted_absent)
{
	struct ct_state *want = malloc(sizeof(*want)), *got = malloc(sizeof(*got));
	assert_non_null(want);
	assert_non_null(got);
	ct_state_of_stream(s, count, want);
	assert_int_equal(ct_state_of_log(fx->log, s, got), 0);
	assert_int_equal(ct_state_compare(want, got, deleted_absent), 0);
	free(want);
	free(got);
}

static uint64_t log_bytes(struct lt_fixture *fx)
{
	struct sl_log_stats st;
	sl_log_get_stats(fx->log, &st);
	return st.bytes;
}

static void test_compacted_replay_equals_history(void **state)
{
	struct lt_fixture *fx = *state;
	fx->cfg.segment_bytes_max = SEGMENT_BYTES;
	uint64_t seed0 = lt_seed("compacted_replay_equals_history", 0x5eed01);
	for (int round = 0; round < SEEDS; round++) {
		uint64_t rng = seed0 + (uint64_t)round * 7919;
		struct ct_stream *s = calloc(1, sizeof(*s));
		assert_non_null(s);
		sl_fs_rm_rf(fx->dir);
		assert_int_equal(lt_fixture_open(fx), 0);

		assert_int_equal(ct_stream_gen(&rng, s, 3000, KEYS), 0);
		assert_int_equal(ct_append(fx, &rng, s, 0, s->count), 0);
		assert_int_equal(ct_roll_and_seal(fx), 0);
		uint64_t before = log_bytes(fx);
		struct sl_clean_params p;
		struct sl_clean_stats st;
		ct_params(&p);
		assert_int_equal(ct_clean(fx, &p, &st), 0);
		assert_true(st.records_removed > 0);
		assert_true(log_bytes(fx) < before);
		check_state(fx, s, s->count, 0);
		assert_true(sl_clean_dirty_ratio(fx->log, NULL, NULL) == 0.0);

		/* New sealed segments after clean ones: both are cleaned together. */
		size_t from = s->count;
		assert_int_equal(ct_stream_gen(&rng, s, 1500, KEYS), 0);
		assert_int_equal(ct_append(fx, &rng, s, from, s->count), 0);
		assert_int_equal(ct_roll_and_seal(fx), 0);
		assert_true(sl_clean_dirty_ratio(fx->log, NULL, NULL) > 0.0);
		assert_int_equal(ct_clean(fx, &p, &st), 0);
		check_state(fx, s, s->count, 0);

		/* Records still in the active segment are not cleaned but decide what the sealed ones keep. */
		from = s->count;
		assert_int_equal(ct_stream_gen(&rng, s, 500, KEYS), 0);
		assert_int_equal(ct_append(fx, &rng, s, from, s->count), 0);
		assert_int_equal(ct_clean(fx, &p, &st), 0);
		check_state(fx, s, s->count, 0);

		/* The compacted set survives a clean close and reopen. */
		assert_int_equal(lt_fixture_close(fx), 0);
		assert_int_equal(lt_fixture_open(fx), 0);
		check_state(fx, s, s->count, 0);
		assert_int_equal(lt_fixture_close(fx), 0);
		ct_stream_free(s);
		free(s);
	}
}

static void test_expired_tombstones_leave_deleted_keys_absent(void **state)
{
	struct lt_fixture *fx = *state;
	fx->cfg.segment_bytes_max = SEGMENT_BYTES;
	uint64_t seed0 = lt_seed("expired_tombstones_leave_deleted_keys_absent", 0x5eed02);
	for (int round = 0; round < SEEDS; round++) {
		uint64_t rng = seed0 + (uint64_t)round * 104729;
		struct ct_stream *s = calloc(1, sizeof(*s));
		assert_non_null(s);
		sl_fs_rm_rf(fx->dir);
		assert_int_equal(lt_fixture_open(fx), 0);
		assert_int_equal(ct_stream_gen(&rng, s, 3000, KEYS), 0);
		assert_int_equal(ct_append(fx, &rng, s, 0, s->count), 0);
		assert_int_equal(ct_roll_and_seal(fx), 0);

		/* First clean: the tombstones get their horizon a day from now and stay. */
		struct sl_clean_params p;
		struct sl_clean_stats st;
		ct_params(&p);
		assert_int_equal(ct_clean(fx, &p, &st), 0);
		assert_true(st.tombstones_kept > 0);
		assert_int_equal(st.tombstones_removed, 0);
		assert_true(st.next_horizon_ms > p.now_ms);
		check_state(fx, s, s->count, 0);

		/* A clean after the horizon removes them, with whatever else their key kept. */
		p.now_ms += SL_CLEAN_DELETE_RETENTION_MS_DEFAULT + 1;
		assert_int_equal(ct_clean(fx, &p, &st), 0);
		assert_true(st.tombstones_removed > 0);
		assert_int_equal(st.tombstones_kept, 0);
		check_state(fx, s, s->count, 1);
		assert_int_equal(lt_fixture_close(fx), 0);
		ct_stream_free(s);
		free(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_compacted_replay_equals_history, lt_fixture_setup,
	                                        lt_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_expired_tombstones_leave_deleted_keys_absent, lt_fixture_setup,
	                                        lt_fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
