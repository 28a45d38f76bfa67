/* Tests of poison records and failures in the applier: a record the target rejects is retried with backoff, then
 * dead-lettered with its error and offset, and the records after it are applied; a dead-letter sink or a store
 * that fails rolls the transaction back and retries it, and after the bound stops without committing anything
 * past the failure. Nothing is dropped silently and nothing is applied twice. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/apply_test_util.h"

static int setup(void **state)
{
	return at_setup(state, 1);
}

static void three_records_with_poison_in_the_middle(struct at_env *e)
{
	at_upsert(e->src, 0, "k1", 1, "{\"ok\":1}");
	at_upsert(e->src, 0, "bad", 1, "this is not JSON");
	at_upsert(e->src, 0, "k2", 1, "{\"ok\":2}");
}

static void rejected_value_is_dead_lettered_after_retries(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	three_records_with_poison_in_the_middle(e);
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(e->sink.count, 1);
	assert_int_equal(e->sink.dead[0].offset, 1);
	assert_int_equal(e->sink.dead[0].partition, 0);
	assert_string_equal(e->sink.dead[0].key, "bad");
	assert_non_null(strstr(e->sink.dead[0].error, "not JSON"));
	assert_non_null(strstr(e->sink.dead[0].error, "4 times"));
	/* 3 retries, 10 + 20 + 40 ms of backoff. */
	assert_int_equal(e->clock.sleeps, 3);
	assert_int_equal(e->clock.slept_ms, 70);
	assert_int_equal(at_counters(e).dead_lettered, 1);
	assert_int_equal(at_counters(e).applied, 2);
	assert_int_equal(at_row_get(e, "bad", &row), 0);
	assert_int_equal(at_row_get(e, "k2", &row), 1);
	assert_int_equal(at_query_int(e, "SELECT next_offset * 10 + dead_lettered FROM synclog_offsets"), 31);
}

static void record_without_key_is_dead_lettered_at_once(void **state)
{
	struct at_env *e = *state;

	at_upsert(e->src, 0, NULL, 1, "{}");
	at_upsert(e->src, 0, "k", 1, "{}");
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(e->sink.count, 1);
	assert_non_null(strstr(e->sink.dead[0].error, "no key"));
	assert_int_equal(e->clock.sleeps, 0);
	assert_int_equal(at_counters(e).applied, 1);
}

static void key_that_is_not_text_is_dead_lettered(void **state)
{
	struct at_env *e = *state;

	at_upsert(e->src, 0, "caf\xc3", 1, "{}");
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(e->sink.count, 1);
	assert_non_null(strstr(e->sink.dead[0].error, "not UTF-8"));
}

static void rejection_that_clears_is_applied_without_dead_letter(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	at_upsert(e->src, 0, "k", 1, "{}");
	e->faults = (struct at_faults){.op = "upsert", .after = 0, .times = 2, .rc = SL_APPLY_REJECTED};
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(e->sink.calls, 0);
	assert_int_equal(e->clock.sleeps, 2);
	assert_int_equal(at_row_get(e, "k", &row), 1);
}

static void failing_dead_letter_sink_commits_nothing_past_the_poison(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	three_records_with_poison_in_the_middle(e);
	e->sink.fail_rc = -ETIMEDOUT;
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 20), -ETIMEDOUT);
	assert_non_null(strstr(sl_apply_error(e->engine), "could not dead-letter"));
	/* k1 shared the poison's transaction: rolled back with it, nothing stored, no offset moved. */
	assert_int_equal(at_row_get(e, "k1", &row), 0);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM synclog_offsets"), 0);
	/* The broker is back: everything lands, once. */
	e->sink.fail_rc = 0;
	assert_int_equal(at_restart(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(e->sink.count, 1);
	assert_int_equal(at_stored_totals(e).applied, 2);
	assert_int_equal(at_stored_totals(e).dead_lettered, 1);
}

static void store_failure_rolls_back_and_retries_the_batch(void **state)
{
	struct at_env *e = *state;
	struct at_row row;
	char key[16];

	for (int i = 0; i < 30; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		at_upsert(e->src, 0, key, 1, "{}");
	}
	e->faults = (struct at_faults){.op = "upsert", .after = 17, .times = 1, .rc = -EIO};
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(e->src->seeks, 2); /* the start, and after the rollback */
	assert_int_equal(at_counters(e).applied, 30);
	assert_int_equal(at_stored_totals(e).applied, 30);
	assert_int_equal(at_row_get(e, "k29", &row), 1);
}

static void failed_seek_after_a_rollback_is_retried_before_any_fetch(void **state)
{
	struct at_env *e = *state;

	for (int v = 1; v <= 10; v++)
		at_upsert(e->src, 0, "k", v, "{}");
	e->src->batch_records_max = 4;
	e->faults = (struct at_faults){.op = "upsert", .after = 6, .times = 1, .rc = -EIO};
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(sl_apply_poll(e->engine), 4);
	/* The rollback's seek fails: the source still stands after the rolled-back records. */
	e->src->seek_failures = 1;
	assert_int_equal(sl_apply_poll(e->engine), 0);
	assert_int_equal(e->src->seeks, 2);
	/* The next poll seeks again before fetching, so nothing is skipped. */
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(e->src->seeks, 3);
	assert_int_equal(at_stored_totals(e).applied, 10);
	assert_int_equal(at_query_int(e, "SELECT version FROM entities WHERE key = 'k'"), 10);
	/* A source that cannot seek at all stops the applier. */
	e->src->seek_failures = 100;
	e->faults = (struct at_faults){.op = "upsert", .after = 0, .times = 1, .rc = -EIO};
	at_upsert(e->src, 0, "k", 11, "{}");
	assert_int_equal(sl_apply_poll(e->engine), 0);
	assert_int_equal(sl_apply_poll(e->engine), -EIO);
}

static void commit_failure_is_retried(void **state)
{
	struct at_env *e = *state;

	at_upsert(e->src, 0, "k", 1, "{}");
	e->faults = (struct at_faults){.op = "commit", .after = 0, .times = 3, .rc = -EBUSY};
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_stored_totals(e).applied, 1);
	assert_int_equal(at_counters(e).applied, 1);
}

static void store_that_keeps_failing_stops_the_applier(void **state)
{
	struct at_env *e = *state;

	at_upsert(e->src, 0, "k", 1, "{}");
	e->faults = (struct at_faults){.op = "upsert", .after = 0, .times = 1000, .rc = -ENOSPC};
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 20), -ENOSPC);
	assert_int_equal(e->sink.calls, 0); /* a failing store is not a poison record */
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM synclog_offsets"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(rejected_value_is_dead_lettered_after_retries, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(record_without_key_is_dead_lettered_at_once, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(key_that_is_not_text_is_dead_lettered, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(rejection_that_clears_is_applied_without_dead_letter, setup,
	                                        at_teardown),
	        cmocka_unit_test_setup_teardown(failing_dead_letter_sink_commits_nothing_past_the_poison, setup,
	                                        at_teardown),
	        cmocka_unit_test_setup_teardown(store_failure_rolls_back_and_retries_the_batch, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(failed_seek_after_a_rollback_is_retried_before_any_fetch, setup,
	                                        at_teardown),
	        cmocka_unit_test_setup_teardown(commit_failure_is_retried, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(store_that_keeps_failing_stops_the_applier, setup, at_teardown),
	};

	return AT_RUN_ALL_PATHS(tests);
}
