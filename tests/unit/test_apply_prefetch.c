/* Tests of the applier's batch path (apply.h, "Batches"): with a store that prefetches, every transaction begins
 * with a prefetch of exactly the records it applies; a write the database refuses at commit makes the engine apply
 * the same records again in halves down to one at a time, so that only the refused record is dead-lettered and
 * the rest applied (a dead letter the refused chunk sent is not sent again), and batches resume afterwards. Run over
 * every path: the outcome is the same whichever way the store works. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tests/unit/apply_test_util.h"

/* Whether the store of this run prefetches (the wrapper's pretence over SQLite, or PostgreSQL). */
static bool prefetching(void)
{
	return at_path == AT_PATH_PREFETCH || at_path == AT_PATH_POSTGRESQL;
}

static int setup(void **state)
{
	return at_setup(state, 2);
}

static void keys_add(struct at_env *e, uint32_t partition, const char *prefix, int first, int count, int64_t version)
{
	char key[32];

	for (int i = first; i < first + count; i++) {
		snprintf(key, sizeof(key), "%s%d", prefix, i);
		at_upsert(e->src, partition, key, version, "{}");
	}
}

static void refused_write_is_dead_lettered_alone_and_the_rest_applied(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	keys_add(e, 0, "a", 0, 5, 1);
	at_upsert(e->src, 0, "bad", 1, "{\"x\":1}");
	keys_add(e, 0, "a", 5, 5, 1);
	keys_add(e, 1, "b", 0, 4, 1);
	e->refuse_key = "bad";
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(e->sink.count, 1);
	assert_string_equal(e->sink.dead[0].key, "bad");
	assert_int_equal(e->sink.dead[0].offset, 5);
	assert_non_null(strstr(e->sink.dead[0].error, "refused by a constraint"));
	assert_int_equal(at_counters(e).applied, 14);
	assert_int_equal(at_counters(e).dead_lettered, 1);
	assert_int_equal(at_stored_totals(e).applied, 14);
	assert_int_equal(at_stored_totals(e).dead_lettered, 1);
	assert_int_equal(at_row_get(e, "bad", &row), 0);
	assert_int_equal(at_row_get(e, "a9", &row), 1);
	assert_int_equal(at_row_get(e, "b3", &row), 1);
	if (prefetching()) {
		/* The 15 of the first batch refused, then 0-6 and 3-5 (offsets of partition 0); 3, 4 and 5 alone. */
		assert_int_equal(e->prefetch.refused_commits, 3);
		assert_int_equal(e->prefetch.direct_records, 3);
	}
}

static void refused_record_is_found_by_halves(void **state)
{
	struct at_env *e = *state;

	e->src->batch_records_max = 64;
	keys_add(e, 0, "a", 0, 37, 1);
	at_upsert(e->src, 0, "bad", 1, "{}"); /* offset 37 */
	keys_add(e, 0, "a", 37, 26, 1);
	keys_add(e, 0, "z", 0, 10, 1); /* the next batch */
	e->refuse_key = "bad";
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 40), 0);
	assert_int_equal(e->sink.count, 1);
	assert_int_equal(e->sink.dead[0].offset, 37);
	assert_int_equal(at_stored_totals(e).applied, 73);
	assert_int_equal(at_stored_totals(e).dead_lettered, 1);
	assert_int_equal(at_counters(e).applied, 73);
	if (prefetching()) {
		/* Refused: 0-63, 32-63, 32-47, 32-39, 36-39, 36-37; then 36 and 37 alone, without prefetch. The search
		 * is no failure of the store: it never waited, however long it took. */
		assert_int_equal(e->prefetch.refused_commits, 6);
		assert_int_equal(e->prefetch.direct_records, 2);
		assert_int_equal(e->clock.sleeps, 3); /* the dead letter's retries only */
	}
}

static void each_transaction_prefetches_the_records_it_applies(void **state)
{
	struct at_env *e = *state;

	keys_add(e, 0, "a", 0, 4, 1);
	at_upsert(e->src, 0, NULL, 1, "{}"); /* no key: set aside and dead-lettered in the same transaction */
	keys_add(e, 0, "a", 4, 5, 1);
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_counters(e).applied, 9);
	assert_int_equal(at_counters(e).dead_lettered, 1);
	if (prefetching()) {
		/* One transaction for the batch, the dead letter included: all 10 prefetched once. */
		assert_int_equal(e->prefetch.calls, 1);
		assert_int_equal(e->prefetch.records, 10);
	}
}

static void chunks_hold_at_most_transaction_records_max(void **state)
{
	struct at_env *e = *state;

	e->options.transaction_records_max = 7;
	keys_add(e, 0, "a", 0, 20, 1);
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(sl_apply_poll(e->engine), 20);
	assert_int_equal(at_stored_totals(e).applied, 20);
	if (prefetching()) {
		assert_int_equal(e->prefetch.calls, 3);
		assert_int_equal(e->prefetch.records, 20);
	}
}

static void every_refused_record_is_found_across_chunks(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	e->options.transaction_records_max = 5;
	keys_add(e, 0, "a", 0, 3, 1);
	at_upsert(e->src, 0, "bad", 1, "{}");
	keys_add(e, 0, "a", 3, 8, 1);
	at_upsert(e->src, 0, "bad", 2, "{}");
	keys_add(e, 1, "b", 0, 6, 1);
	e->refuse_key = "bad";
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 20), 0);
	assert_int_equal(e->sink.count, 2);
	assert_int_equal(e->sink.dead[0].offset, 3);
	assert_int_equal(e->sink.dead[1].offset, 12);
	assert_int_equal(at_stored_totals(e).applied, 17);
	assert_int_equal(at_stored_totals(e).dead_lettered, 2);
	assert_int_equal(at_row_get(e, "a10", &row), 1);
	assert_int_equal(at_query_int(e, "SELECT sum(next_offset) FROM synclog_offsets"), 19);
}

static void dead_letter_of_a_refused_chunk_is_not_sent_again_by_the_search(void **state)
{
	struct at_env *e = *state;

	keys_add(e, 0, "a", 0, 4, 1);
	at_upsert(e->src, 0, "poison", 1, "not json"); /* offset 4: refused when called, dead-lettered at once */
	keys_add(e, 0, "a", 4, 4, 1);
	at_upsert(e->src, 0, "bad", 1, "{}"); /* offset 9: refused only at commit */
	keys_add(e, 0, "a", 8, 4, 1);
	e->refuse_key = "bad";
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 20), 0);
	/* One letter each: the poison's, durable before the refused commit, is not sent by the search again. */
	assert_int_equal(e->sink.count, 2);
	assert_string_equal(e->sink.dead[0].key, "poison");
	assert_int_equal(e->sink.dead[0].offset, 4);
	assert_string_equal(e->sink.dead[1].key, "bad");
	assert_int_equal(e->sink.dead[1].offset, 9);
	assert_int_equal(at_stored_totals(e).applied, 12);
	assert_int_equal(at_stored_totals(e).dead_lettered, 2);
	assert_int_equal(at_counters(e).dead_lettered, 2);
	if (prefetching()) {
		/* The poison's three retries in the first pass, the refused record's three alone; none for the poison
		 * in the halves. */
		assert_int_equal(e->clock.sleeps, 6);
		assert_true(e->prefetch.refused_commits >= 2);
	}
}

static void failed_prefetch_rolls_back_and_retries(void **state)
{
	struct at_env *e = *state;

	keys_add(e, 0, "a", 0, 6, 1);
	e->faults = (struct at_faults){.op = "prefetch", .after = 0, .times = 2, .rc = -EIO};
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_stored_totals(e).applied, 6);
	assert_int_equal(at_counters(e).applied, 6);
	if (prefetching())
		assert_int_equal(e->src->seeks, 3); /* the start and after each failure */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(refused_write_is_dead_lettered_alone_and_the_rest_applied, setup,
	                                        at_teardown),
	        cmocka_unit_test_setup_teardown(refused_record_is_found_by_halves, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(each_transaction_prefetches_the_records_it_applies, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(chunks_hold_at_most_transaction_records_max, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(every_refused_record_is_found_across_chunks, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(dead_letter_of_a_refused_chunk_is_not_sent_again_by_the_search, setup,
	                                        at_teardown),
	        cmocka_unit_test_setup_teardown(failed_prefetch_rolls_back_and_retries, setup, at_teardown),
	};

	return AT_RUN_ALL_PATHS(tests);
}
