/* Tests of the applier's rules for backfill records (apply.h rules 4 and 6): a versioned backfill record is
 * ordered by its version like any other (an old snapshot never overwrites a newer live row, and a later live event
 * wins); an unversioned origin=backfill record applies only when the key is absent, and is stale otherwise. */
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

static int64_t backfill(struct at_env *e, const char *key, int64_t version, const char *value)
{
	int64_t off = at_upsert(e->src, 0, key, version, value);

	at_origin_set(e->src, 0, off, SL_ORIGIN_BACKFILL);
	return off;
}

static void unversioned_backfill_fills_an_absent_key_only(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	at_upsert(e->src, 0, "live", 7, "\"newer live row\"");
	backfill(e, "live", SL_VERSION_NONE, "\"old snapshot, no version\"");
	backfill(e, "absent", SL_VERSION_NONE, "\"only the snapshot knows it\"");
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "live", &row), 1);
	assert_string_equal(row.value, "\"newer live row\"");
	assert_int_equal(row.version, 7);
	assert_int_equal(at_row_get(e, "absent", &row), 1);
	assert_string_equal(row.value, "\"only the snapshot knows it\"");
	assert_int_equal(at_counters(e).applied, 2);
	assert_int_equal(at_counters(e).stale, 1);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM stale_events WHERE key = 'live' AND stored_version = 7"
	                                 " AND incoming_version = 0"),
	                 1);
}

static void unversioned_backfill_does_not_bring_back_a_deleted_key(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	at_delete(e->src, 0, "d", 4);
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	/* Also once its tombstone is purged. */
	e->clock.now_ms += RETENTION_MS;
	assert_int_equal(sl_apply_purge(e->engine, NULL), 0);
	assert_int_equal(at_row_get(e, "d", &row), 0);
	backfill(e, "d", SL_VERSION_NONE, "\"resurrected?\"");
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "d", &row), 0);
	assert_int_equal(at_counters(e).stale, 1);
}

static void old_backfill_never_overwrites_a_newer_live_row(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	at_upsert(e->src, 0, "k", 10, "\"live v10\"");
	backfill(e, "k", 6, "\"snapshot v6\"");
	backfill(e, "n", 6, "\"snapshot v6\"");
	at_upsert(e->src, 0, "n", 11, "\"live v11 after the backfill\"");
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "k", &row), 1);
	assert_string_equal(row.value, "\"live v10\"");
	assert_int_equal(at_row_get(e, "n", &row), 1);
	assert_string_equal(row.value, "\"live v11 after the backfill\"");
	assert_int_equal(at_counters(e).stale, 1);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM entities WHERE origin = 'backfill'"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(unversioned_backfill_fills_an_absent_key_only, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(unversioned_backfill_does_not_bring_back_a_deleted_key, setup,
	                                        at_teardown),
	        cmocka_unit_test_setup_teardown(old_backfill_never_overwrites_a_newer_live_row, setup, at_teardown),
	};

	return AT_RUN_ALL_PATHS(tests);
}
