/* What a delete does to the target's row (apply --on-delete) and when a deleted row may be purged: hide keeps the
 * value, erase-value clears it at once, archive copies the live row to entities_archive first; in every mode the
 * deleted row keeps its version, so a late lower version stays stale. A store that follows the log keeps a
 * deleted row past its retention while the source says the log still holds the delete, purges it once the log
 * does not, and purges by time alone when the source says the topic keeps deletes by retention only. Run over
 * SQLite and PostgreSQL. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/apply_test_util.h"

#define RETENTION_MS 10000

/* The "log" the test source answers tombstone_in_log from. */
static int log_answer;     /* 0: answer with log_present; else return it (-ENOTSUP, -EIO) */
static bool log_present;   /* the delete is still in the log */
static uint32_t log_asked; /* questions asked */
static struct sl_apply_source_ops source_ops;

static int tombstone_in_log(void *src, const char *topic, uint32_t partition, int64_t offset, bool *present_out)
{
	log_asked++;
	if (log_answer != 0)
		return log_answer;
	*present_out = log_present;
	return 0;
}

/* The real store (no fault wrapper) with the delete mode, and the fake source that answers about the log. */
static void use(struct at_env *e, enum sl_apply_on_delete mode, bool follow_log)
{
	assert_int_equal(at_use_deletes(e, mode, follow_log), 0);
	source_ops = *e->source.ops;
	source_ops.tombstone_in_log = tombstone_in_log;
	e->source.ops = &source_ops;
	log_answer = 0;
	log_present = true;
	log_asked = 0;
}

static int setup(void **state)
{
	return at_setup_retention(state, 1, RETENTION_MS);
}

static void hide_keeps_the_value(void **state)
{
	struct at_env *e = *state;
	struct at_row row;
	use(e, SL_APPLY_ON_DELETE_HIDE, false);
	at_upsert(e->src, 0, "c", 1, "{\"email\":\"a@b\"}");
	at_delete(e->src, 0, "c", 2);
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "c", &row), 1);
	assert_int_equal(row.deleted, 1);
	assert_string_equal(row.value, "{\"email\":\"a@b\"}");
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM entities_archive"), 0);
}

static void erase_value_clears_it_and_keeps_the_version(void **state)
{
	struct at_env *e = *state;
	struct at_row row;
	use(e, SL_APPLY_ON_DELETE_ERASE_VALUE, false);
	at_upsert(e->src, 0, "c", 1, "{\"email\":\"a@b\"}");
	at_delete(e->src, 0, "c", 3);
	at_upsert(e->src, 0, "c", 2, "{\"email\":\"late\"}"); /* stale: must not bring the value back */
	at_delete(e->src, 0, "new", 1);                       /* a key never seen: a tombstone row */
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "c", &row), 1);
	assert_int_equal(row.deleted, 1);
	assert_int_equal(row.version, 3);
	assert_true(row.value_null);
	assert_int_equal(at_counters(e).stale, 1);
	assert_int_equal(at_row_get(e, "new", &row), 1);
	assert_true(row.deleted == 1 && row.value_null);
}

static void archive_copies_the_live_row_first(void **state)
{
	struct at_env *e = *state;
	struct at_row row;
	use(e, SL_APPLY_ON_DELETE_ARCHIVE, false);
	at_upsert(e->src, 0, "c", 1, "{\"email\":\"a@b\"}");
	int64_t del = at_delete(e->src, 0, "c", 2);
	at_delete(e->src, 0, "c", 3);     /* already deleted: nothing more to archive */
	at_delete(e->src, 0, "never", 1); /* no row: nothing to archive */
	at_add(e->src, 0, "u", SL_VERSION_NONE, SL_OP_UPSERT, "\"x\"", NULL);
	at_add(e->src, 0, "u", SL_VERSION_NONE, SL_OP_DELETE, NULL, NULL); /* unversioned delete: archived too */
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "c", &row), 1);
	assert_true(row.deleted == 1 && row.value_null);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM entities_archive"), 2);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM entities_archive WHERE key = 'c' AND version = 1 AND"
	                                 " value = '{\"email\":\"a@b\"}' AND deleted_version = 2"),
	                 1);
	assert_int_equal(at_query_int(e, "SELECT deleted_offset FROM entities_archive WHERE key = 'c'"), del);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM entities_archive WHERE key = 'u' AND value = '\"x\"'"),
	                 1);
}

static void archive_copies_a_row_stored_by_an_earlier_transaction(void **state)
{
	struct at_env *e = *state;
	struct at_row row;
	use(e, SL_APPLY_ON_DELETE_ARCHIVE, false);
	at_upsert(e->src, 0, "c", 1, "{\"email\":\"a@b\"}");
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	int64_t del = at_delete(e->src, 0, "c", 2);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "c", &row), 1);
	assert_true(row.deleted == 1 && row.value_null && row.version == 2);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM entities_archive WHERE key = 'c' AND version = 1 AND"
	                                 " value = '{\"email\":\"a@b\"}' AND deleted_version = 2 AND \"offset\" = 0"),
	                 1);
	assert_int_equal(at_query_int(e, "SELECT deleted_offset FROM entities_archive"), del);
}

static void deleted_row_waits_for_the_log(void **state)
{
	struct at_env *e = *state;
	struct at_row row;
	struct sl_apply_purge_counts counts;
	use(e, SL_APPLY_ON_DELETE_HIDE, true);
	at_upsert(e->src, 0, "c", 1, "\"v1\"");
	at_delete(e->src, 0, "c", 2);
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);

	/* Before the retention: not even asked. */
	assert_int_equal(sl_apply_purge(e->engine, &counts), 0);
	assert_int_equal(log_asked, 0);
	assert_int_equal(at_row_get(e, "c", &row), 1);

	/* Past the retention, the log still holds the delete: kept. A broker that cannot answer: kept too. */
	e->clock.now_ms += RETENTION_MS + 1;
	assert_int_equal(sl_apply_purge(e->engine, &counts), 0);
	assert_int_equal(log_asked, 1);
	assert_int_equal(counts.tombstones, 0);
	assert_int_equal(at_row_get(e, "c", &row), 1);
	log_answer = -EIO;
	assert_int_equal(sl_apply_purge(e->engine, &counts), 0);
	assert_int_equal(at_row_get(e, "c", &row), 1);

	/* The cleaner removed it from the log: the row goes. */
	log_answer = 0;
	log_present = false;
	assert_int_equal(sl_apply_purge(e->engine, &counts), 0);
	assert_int_equal(counts.tombstones, 1);
	assert_int_equal(at_row_get(e, "c", &row), 0);
}

static void deleted_row_goes_by_time_when_the_topic_is_not_compacted(void **state)
{
	struct at_env *e = *state;
	struct at_row row;
	struct sl_apply_purge_counts counts;
	use(e, SL_APPLY_ON_DELETE_ERASE_VALUE, true);
	log_answer = -ENOTSUP;
	at_upsert(e->src, 0, "c", 1, "\"v1\"");
	at_delete(e->src, 0, "c", 2);
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	e->clock.now_ms += RETENTION_MS - 1;
	assert_int_equal(sl_apply_purge(e->engine, &counts), 0);
	assert_int_equal(at_row_get(e, "c", &row), 1);
	e->clock.now_ms += 2;
	assert_int_equal(sl_apply_purge(e->engine, &counts), 0);
	assert_int_equal(counts.tombstones, 1);
	assert_int_equal(at_row_get(e, "c", &row), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(hide_keeps_the_value, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(erase_value_clears_it_and_keeps_the_version, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(archive_copies_the_live_row_first, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(archive_copies_a_row_stored_by_an_earlier_transaction, setup,
	                                        at_teardown),
	        cmocka_unit_test_setup_teardown(deleted_row_waits_for_the_log, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(deleted_row_goes_by_time_when_the_topic_is_not_compacted, setup,
	                                        at_teardown),
	};
	return AT_RUN_BOTH_STORES(tests);
}
