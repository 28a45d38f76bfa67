/* Tests of the purged-delete floor (apply.h rule 5): when a tombstone is purged, the version of its delete stays
 * as the key's floor, so a late record at or below it (a backfill of an old snapshot) is stale and cannot bring the
 * key back, while a newer one applies; the floor table stays compact. */
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

/* Apply a delete of key at version, then purge its tombstone. */
static void delete_and_purge(struct at_env *e, const char *key, int64_t version)
{
	struct sl_apply_purge_counts purged;

	at_upsert(e->src, 0, key, version - 1, "\"alive\"");
	at_delete(e->src, 0, key, version);
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	e->clock.now_ms += RETENTION_MS;
	assert_int_equal(sl_apply_purge(e->engine, &purged), 0);
	assert_int_equal(purged.tombstones, 1);
}

static void late_old_version_after_purge_is_stale(void **state)
{
	struct at_env *e = *state;
	struct at_row row;
	int64_t off;

	delete_and_purge(e, "k", 5);
	assert_int_equal(at_row_get(e, "k", &row), 0);
	assert_int_equal(at_query_int(e, "SELECT version FROM synclog_purged WHERE tbl = 'entities' AND key = 'k'"), 5);
	off = at_upsert(e->src, 0, "k", 3, "\"old snapshot\"");
	at_origin_set(e->src, 0, off, SL_ORIGIN_BACKFILL);
	at_upsert(e->src, 0, "k", 5, "\"at the delete's version\"");
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "k", &row), 0);
	assert_int_equal(at_counters(e).stale, 2);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM stale_events WHERE key = 'k' AND stored_version = 5"),
	                 2);
}

static void newer_version_after_purge_applies_and_drops_the_floor(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	delete_and_purge(e, "k", 5);
	at_upsert(e->src, 0, "k", 6, "\"recreated\"");
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "k", &row), 1);
	assert_int_equal(row.version, 6);
	/* The next purge sees the key stored above its floor and drops the floor. */
	assert_int_equal(sl_apply_purge(e->engine, NULL), 0);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM synclog_purged"), 0);
}

static void unversioned_live_record_after_purge_keeps_the_floor_version(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	delete_and_purge(e, "k", 5);
	at_upsert(e->src, 0, "k", SL_VERSION_NONE, "\"no version\"");
	at_upsert(e->src, 0, "k", 4, "\"older than the delete\"");
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "k", &row), 1);
	assert_string_equal(row.value, "\"no version\"");
	assert_int_equal(row.version, 5);
	assert_int_equal(at_counters(e).stale, 1);
}

static void floors_survive_a_restart(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	delete_and_purge(e, "k", 5);
	assert_int_equal(at_restart(e), 0);
	at_upsert(e->src, 0, "k", 2, "\"late\"");
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "k", &row), 0);
	assert_int_equal(at_counters(e).stale, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(late_old_version_after_purge_is_stale, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(newer_version_after_purge_applies_and_drops_the_floor, setup,
	                                        at_teardown),
	        cmocka_unit_test_setup_teardown(unversioned_live_record_after_purge_keeps_the_floor_version, setup,
	                                        at_teardown),
	        cmocka_unit_test_setup_teardown(floors_survive_a_restart, setup, at_teardown),
	};

	return AT_RUN_ALL_PATHS(tests);
}
