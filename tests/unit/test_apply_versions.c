/* Tests of the applier's version rule (consumer/apply.c over the SQLite store): per key a higher version applies,
 * a lower one is stale (not applied, one stale_events row, counted), an equal one is a duplicate, and a record
 * without a version applies in log order while keeping the last version the source gave. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "tests/unit/apply_test_util.h"

static int setup(void **state)
{
	return at_setup(state, 2);
}

static void counters_expect(struct at_env *e, uint64_t applied, uint64_t stale, uint64_t duplicate, uint64_t deleted,
                            uint64_t dead)
{
	struct sl_apply_counters c;

	sl_apply_counters_get(e->engine, &c);
	assert_int_equal(c.applied, applied);
	assert_int_equal(c.stale, stale);
	assert_int_equal(c.duplicate, duplicate);
	assert_int_equal(c.deleted, deleted);
	assert_int_equal(c.dead_lettered, dead);
}

static void higher_version_applies(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	at_upsert(e->src, 0, "k", 1, "{\"s\":1}");
	at_upsert(e->src, 0, "k", 2, "{\"s\":2}");
	at_upsert(e->src, 0, "k", 7, "{\"s\":7}");
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "k", &row), 1);
	assert_int_equal(row.version, 7);
	assert_string_equal(row.value, "{\"s\":7}");
	assert_int_equal(row.deleted, 0);
	assert_int_equal(row.offset, 2);
	counters_expect(e, 3, 0, 0, 0, 0);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM stale_events"), 0);
}

static void lower_version_is_stale_and_logged(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	at_upsert(e->src, 1, "cust-1", 5, "{\"email\":\"new\"}");
	at_upsert(e->src, 1, "cust-1", 3, "{\"email\":\"old\"}");
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "cust-1", &row), 1);
	assert_int_equal(row.version, 5);
	assert_string_equal(row.value, "{\"email\":\"new\"}");
	counters_expect(e, 1, 1, 0, 0, 0);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM stale_events"), 1);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM stale_events WHERE key = 'cust-1' AND stored_version = 5"
	                                 " AND incoming_version = 3 AND topic = 'orders' AND \"partition\" = 1"
	                                 " AND \"offset\" = 1 AND seen_at_ms = 1704067200000"),
	                 1);
}

static void stale_across_batches_and_restarts(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	at_upsert(e->src, 0, "k", 10, "10");
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	at_upsert(e->src, 0, "k", 9, "9");
	assert_int_equal(at_restart(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "k", &row), 1);
	assert_int_equal(row.version, 10);
	counters_expect(e, 0, 1, 0, 0, 0);
}

/* Equal version, equal value (the same JSON written another way too); a different value is a conflict
 * (test_apply_conflicts.c). */
static void equal_version_is_duplicate(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	at_upsert(e->src, 0, "k", 4, "\"first\"");
	at_upsert(e->src, 0, "k", 4, " \"first\" ");
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "k", &row), 1);
	assert_string_equal(row.value, "\"first\"");
	counters_expect(e, 1, 0, 1, 0, 0);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM stale_events"), 0);
}

static void unversioned_records_apply_in_log_order(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	at_upsert(e->src, 0, "u", SL_VERSION_NONE, "1");
	at_upsert(e->src, 0, "u", SL_VERSION_NONE, "2");
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "u", &row), 1);
	assert_string_equal(row.value, "2");
	assert_int_equal(row.version, 0); /* a new row written without a version */
	counters_expect(e, 2, 0, 0, 0, 0);
}

static void unversioned_keeps_the_last_version_given(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	at_upsert(e->src, 0, "m", 5, "\"v5\"");
	at_upsert(e->src, 0, "m", SL_VERSION_NONE, "\"later, no version\"");
	at_upsert(e->src, 0, "m", 4, "\"v4\"");
	at_upsert(e->src, 0, "m", 6, "\"v6\"");
	assert_int_equal(at_engine_start(e), 0);
	/* One record per batch: each rule also holds across transactions. */
	e->src->batch_records_max = 1;
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "m", &row), 1);
	assert_int_equal(row.version, 6);
	assert_string_equal(row.value, "\"v6\"");
	counters_expect(e, 3, 1, 0, 0, 0);
	assert_int_equal(at_query_int(e, "SELECT stored_version FROM stale_events WHERE key = 'm'"), 5);
}

static void offsets_and_counts_are_stored_with_the_data(void **state)
{
	struct at_env *e = *state;

	at_upsert(e->src, 0, "a", 1, "1");
	at_upsert(e->src, 0, "a", 1, "1");
	at_upsert(e->src, 1, "b", 2, "2");
	at_upsert(e->src, 1, "b", 1, "1");
	at_delete(e->src, 1, "b", 3);
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_query_int(e, "SELECT next_offset FROM synclog_offsets WHERE \"group\" = 'target-a' AND"
	                                 " topic = 'orders' AND \"partition\" = 0"),
	                 2);
	assert_int_equal(at_query_int(e, "SELECT next_offset FROM synclog_offsets WHERE \"partition\" = 1"), 3);
	assert_int_equal(at_query_int(e, "SELECT applied * 1000 + duplicate FROM synclog_offsets WHERE"
	                                 " \"partition\" = 0"),
	                 1001);
	assert_int_equal(at_query_int(e, "SELECT applied * 100 + stale * 10 + deleted FROM synclog_offsets WHERE"
	                                 " \"partition\" = 1"),
	                 111);
	assert_int_equal(sl_apply_position_get(e->engine, AT_TOPIC, 1), 3);
	assert_int_equal(sl_apply_position_get(e->engine, AT_TOPIC, 3), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(higher_version_applies, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(lower_version_is_stale_and_logged, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(stale_across_batches_and_restarts, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(equal_version_is_duplicate, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(unversioned_records_apply_in_log_order, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(unversioned_keeps_the_last_version_given, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(offsets_and_counts_are_stored_with_the_data, setup, at_teardown),
	};

	return AT_RUN_ALL_PATHS(tests);
}
