/* Tests of the applier's conflict rule (apply.h rule 4c): a record at the stored version with a different value
 * is not a duplicate but a conflict, counted apart, not applied, and kept in the conflicts table with both
 * versions, both value digests, its origin and where it sits in the log; the same value written another way is
 * still a duplicate. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/sync/value.h"
#include "tests/unit/apply_test_util.h"

static int setup(void **state)
{
	return at_setup(state, 1);
}

static void different_value_at_equal_version_is_a_conflict(void **state)
{
	struct at_env *e = *state;
	struct at_row row;
	char want[SL_VALUE_DIGEST_HEX_BYTES], sql[256];

	at_upsert(e->src, 0, "cust-1", 3, "{\"email\":\"a@example.com\"}");
	at_upsert(e->src, 0, "cust-1", 3, "{\"email\":\"b@example.com\"}");
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "cust-1", &row), 1);
	assert_string_equal(row.value, "{\"email\":\"a@example.com\"}");
	assert_int_equal(at_counters(e).applied, 1);
	assert_int_equal(at_counters(e).conflicts, 1);
	assert_int_equal(at_counters(e).duplicate, 0);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM conflicts WHERE key = 'cust-1' AND stored_version = 3"
	                                 " AND incoming_version = 3 AND origin = 'live' AND topic = 'orders'"
	                                 " AND \"partition\" = 0 AND \"offset\" = 1"),
	                 1);
	sl_value_digest_hex(sl_value_digest("{\"email\":\"a@example.com\"}", 25), want);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM conflicts WHERE stored_digest = '%s'", want);
	assert_int_equal(at_query_int(e, sql), 1);
	sl_value_digest_hex(sl_value_digest("{\"email\":\"b@example.com\"}", 25), want);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM conflicts WHERE incoming_digest = '%s'", want);
	assert_int_equal(at_query_int(e, sql), 1);
	/* Counted apart, never in the stored duplicate count. */
	assert_int_equal(at_stored_totals(e).duplicate, 0);
}

static void same_json_in_another_order_is_a_duplicate(void **state)
{
	struct at_env *e = *state;

	at_upsert(e->src, 0, "k", 2, "{\"a\":1,\"b\":[1,2]}");
	at_upsert(e->src, 0, "k", 2, "{ \"b\": [1, 2], \"a\": 1 }");
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_counters(e).duplicate, 1);
	assert_int_equal(at_counters(e).conflicts, 0);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM conflicts"), 0);
}

static void delete_at_the_version_of_a_live_row_is_a_conflict(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	at_upsert(e->src, 0, "k", 5, "\"live\"");
	at_delete(e->src, 0, "k", 5);
	at_upsert(e->src, 0, "gone", 2, "\"x\"");
	at_delete(e->src, 0, "gone", 3);
	at_upsert(e->src, 0, "gone", 3, "\"back at the delete's version\"");
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "k", &row), 1);
	assert_int_equal(row.deleted, 0);
	assert_int_equal(at_row_get(e, "gone", &row), 1);
	assert_int_equal(row.deleted, 1);
	assert_int_equal(at_counters(e).conflicts, 2);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM conflicts WHERE key = 'k' AND incoming_digest IS NULL"
	                                 " AND stored_digest IS NOT NULL"),
	                 1);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM conflicts WHERE key = 'gone' AND stored_digest IS NULL"
	                                 " AND incoming_digest IS NOT NULL"),
	                 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(different_value_at_equal_version_is_a_conflict, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(same_json_in_another_order_is_a_duplicate, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(delete_at_the_version_of_a_live_row_is_a_conflict, setup, at_teardown),
	};

	return AT_RUN_ALL_PATHS(tests);
}
