/* Tests of deletes in the applier: a delete marks the row deleted with its version and time and keeps the value
 * until purge; a later upsert with a lower version is stale and does not bring it back, a higher one does; purge
 * removes tombstones only after the retention window, by a direct purge and by a polling applier. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "tests/unit/apply_test_util.h"

#define RETENTION_MS 10000

static int setup(void **state)
{
	return at_setup_retention(state, 1, RETENTION_MS);
}

static void delete_marks_the_row_with_version_and_time(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	at_upsert(e->src, 0, "c", 1, "{\"status\":\"active\"}");
	at_delete(e->src, 0, "c", 2);
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "c", &row), 1);
	assert_int_equal(row.deleted, 1);
	assert_int_equal(row.version, 2);
	assert_int_equal(row.deleted_at_ms, AT_CLOCK_START_MS);
	assert_string_equal(row.value, "{\"status\":\"active\"}"); /* soft: kept until purged */
	assert_int_equal(at_counters(e).applied, 1);
	assert_int_equal(at_counters(e).deleted, 1);
}

static void stale_upsert_does_not_resurrect(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	at_upsert(e->src, 0, "c", 1, "\"v1\"");
	at_delete(e->src, 0, "c", 3);
	at_upsert(e->src, 0, "c", 2, "\"v2 arriving late\"");
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "c", &row), 1);
	assert_int_equal(row.deleted, 1);
	assert_int_equal(row.version, 3);
	assert_int_equal(at_counters(e).stale, 1);
	assert_int_equal(at_query_int(e, "SELECT stored_version * 10 + incoming_version FROM stale_events"), 32);
}

static void newer_upsert_brings_the_row_back(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	at_delete(e->src, 0, "c", 3);
	at_upsert(e->src, 0, "c", 4, "\"v4\"");
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "c", &row), 1);
	assert_int_equal(row.deleted, 0);
	assert_int_equal(row.deleted_at_ms, -1);
	assert_string_equal(row.value, "\"v4\"");
}

static void delete_of_an_unknown_key_leaves_a_tombstone(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	at_delete(e->src, 0, "ghost", 8);
	at_upsert(e->src, 0, "ghost", 7, "\"older than the delete\"");
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "ghost", &row), 1);
	assert_int_equal(row.deleted, 1);
	assert_true(row.value_null);
	assert_int_equal(at_counters(e).deleted, 1);
	assert_int_equal(at_counters(e).stale, 1);
}

static void duplicate_delete_keeps_the_first_deletion_time(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	at_delete(e->src, 0, "d", 2);
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	e->clock.now_ms += 5000;
	at_delete(e->src, 0, "d", 2);
	at_delete(e->src, 0, "d", 3);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "d", &row), 1);
	assert_int_equal(row.version, 3);
	assert_int_equal(row.deleted_at_ms, AT_CLOCK_START_MS);
	assert_int_equal(at_counters(e).duplicate, 1);
	assert_int_equal(at_counters(e).deleted, 2);
}

static void purge_removes_tombstones_only_after_the_window(void **state)
{
	struct at_env *e = *state;
	struct sl_apply_purge_counts purged;
	struct at_row row;

	at_delete(e->src, 0, "gone", 2);
	at_upsert(e->src, 0, "kept", 1, "1");
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	e->clock.now_ms += RETENTION_MS - 1;
	assert_int_equal(sl_apply_purge(e->engine, &purged), 0);
	assert_int_equal(purged.tombstones, 0);
	assert_int_equal(at_row_get(e, "gone", &row), 1);
	e->clock.now_ms += 1;
	assert_int_equal(sl_apply_store_purge(&e->store, e->clock.now_ms, RETENTION_MS, &purged), 0);
	assert_int_equal(purged.tombstones, 1);
	assert_int_equal(at_row_get(e, "gone", &row), 0);
	assert_int_equal(at_row_get(e, "kept", &row), 1);
}

static void polling_applier_purges_when_due(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	at_upsert(e->src, 0, "x", 1, "1");
	at_delete(e->src, 0, "x", 2);
	at_upsert(e->src, 0, "x", 1, "1");
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM stale_events"), 1);
	/* The purge interval is half the retention (5 s); after the retention the next poll purges. */
	e->clock.now_ms += RETENTION_MS;
	assert_int_equal(sl_apply_poll(e->engine), 0);
	assert_int_equal(at_row_get(e, "x", &row), 0);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM stale_events"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(delete_marks_the_row_with_version_and_time, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(stale_upsert_does_not_resurrect, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(newer_upsert_brings_the_row_back, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(delete_of_an_unknown_key_leaves_a_tombstone, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(duplicate_delete_keeps_the_first_deletion_time, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(purge_removes_tombstones_only_after_the_window, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(polling_applier_purges_when_due, setup, at_teardown),
	};

	return AT_RUN_ALL_PATHS(tests);
}
