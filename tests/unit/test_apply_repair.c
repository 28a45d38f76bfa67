/* Tests of the applier's rules for origin=repair (apply.h rule 4a): a repair record replaces a row of the same
 * version, so a value that drifted at an equal version heals; it never replaces a newer row; a repair delete at the
 * stored version removes an extra row. */
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
	return at_setup(state, 1);
}

static void repair_replaces_a_row_of_the_same_version(void **state)
{
	struct at_env *e = *state;
	struct at_row row;
	int64_t off;

	at_upsert(e->src, 0, "k", 4, "\"drifted\"");
	off = at_upsert(e->src, 0, "k", 4, "\"from the source\"");
	at_origin_set(e->src, 0, off, SL_ORIGIN_REPAIR);
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "k", &row), 1);
	assert_string_equal(row.value, "\"from the source\"");
	assert_int_equal(row.version, 4);
	assert_int_equal(at_counters(e).applied, 2);
	assert_int_equal(at_counters(e).conflicts, 0);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM entities WHERE key = 'k' AND origin = 'repair'"), 1);
}

static void repair_never_replaces_a_newer_row(void **state)
{
	struct at_env *e = *state;
	struct at_row row;
	int64_t off;

	at_upsert(e->src, 0, "k", 9, "\"newer\"");
	off = at_upsert(e->src, 0, "k", 8, "\"repair of an older read\"");
	at_origin_set(e->src, 0, off, SL_ORIGIN_REPAIR);
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "k", &row), 1);
	assert_string_equal(row.value, "\"newer\"");
	assert_int_equal(at_counters(e).stale, 1);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM stale_events WHERE stored_version = 9"
	                                 " AND incoming_version = 8"),
	                 1);
}

static void repair_delete_at_the_stored_version_removes_an_extra_row(void **state)
{
	struct at_env *e = *state;
	struct at_row row;
	int64_t off;

	at_upsert(e->src, 0, "extra", 2, "\"only in the target\"");
	off = at_delete(e->src, 0, "extra", 2);
	at_origin_set(e->src, 0, off, SL_ORIGIN_REPAIR);
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "extra", &row), 1);
	assert_int_equal(row.deleted, 1);
	assert_int_equal(row.version, 2);
	assert_int_equal(at_counters(e).deleted, 1);
}

static void repair_of_a_missing_key_applies(void **state)
{
	struct at_env *e = *state;
	struct at_row row;
	int64_t off;

	off = at_upsert(e->src, 0, "missing", 3, "\"v3\"");
	at_origin_set(e->src, 0, off, SL_ORIGIN_REPAIR);
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "missing", &row), 1);
	assert_int_equal(row.version, 3);
	assert_int_equal(at_counters(e).applied, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(repair_replaces_a_row_of_the_same_version, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(repair_never_replaces_a_newer_row, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(repair_delete_at_the_stored_version_removes_an_extra_row, setup,
	                                        at_teardown),
	        cmocka_unit_test_setup_teardown(repair_of_a_missing_key_applies, setup, at_teardown),
	};

	return AT_RUN_ALL_PATHS(tests);
}
