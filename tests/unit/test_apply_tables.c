/* Tests of entity tables and the topics that feed them (issue 11, "Data safety"): a database records which topic
 * feeds each table, opening a table for a second topic is refused before anything is written, one database can
 * hold one table per topic, and a version 1 database is claimed by the topic its rows name. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/base/fs.h"
#include "consumer/client/synclog.h"
#include "consumer/sync/apply.h"
#include "tests/unit/log_test_util.h"

struct env {
	char dir[256];
	char path[300];
	char err[SL_ERROR_BYTES];
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	if (e == NULL || lt_tmpdir_make(e->dir, sizeof(e->dir)) != 0)
		return -1;
	snprintf(e->path, sizeof(e->path), "%s/t.db", e->dir);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	sl_fs_rm_rf(e->dir);
	free(e);
	return 0;
}

static int open_for(struct env *e, const char *table, const char *topic, struct sl_apply_sqlite **db)
{
	struct sl_apply_sqlite_options o = {.path = e->path, .table = table, .topic = topic};

	return sl_apply_sqlite_open_table(db, &o, e->err, sizeof(e->err));
}

static int64_t query_int(struct env *e, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;

	assert_int_equal(sqlite3_open(e->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void second_topic_into_a_claimed_table_is_refused(void **state)
{
	struct env *e = *state;
	struct sl_apply_sqlite *db;

	assert_int_equal(open_for(e, NULL, "orders", &db), 0);
	sl_apply_sqlite_close(db);
	assert_int_equal(open_for(e, NULL, "orders", &db), 0);
	sl_apply_sqlite_close(db);
	assert_int_equal(open_for(e, NULL, "customers", &db), -EEXIST);
	assert_null(db);
	assert_non_null(strstr(e->err, "table 'entities' is fed by topic 'orders'"));
	assert_non_null(strstr(e->err, "--table"));
	assert_int_equal(query_int(e, "SELECT count(*) FROM synclog_tables"), 1);
}

static void one_table_per_topic_in_one_database(void **state)
{
	struct env *e = *state;
	struct sl_apply_sqlite *a, *b;

	assert_int_equal(open_for(e, NULL, "orders", &a), 0);
	assert_int_equal(open_for(e, "customers", "customers", &b), 0);
	sl_apply_sqlite_close(a);
	sl_apply_sqlite_close(b);
	assert_int_equal(query_int(e, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'customers'"),
	                 1);
	assert_int_equal(query_int(e, "SELECT count(*) FROM synclog_tables WHERE name = 'customers' AND topic ="
	                              " 'customers'"),
	                 1);
	/* A purge opens without a topic and claims nothing. */
	assert_int_equal(open_for(e, "customers", NULL, &b), 0);
	sl_apply_sqlite_close(b);
	assert_int_equal(query_int(e, "SELECT count(*) FROM synclog_tables"), 2);
}

static void version_1_table_is_claimed_by_the_topic_of_its_rows(void **state)
{
	struct env *e = *state;
	struct sl_apply_sqlite *db;
	sqlite3 *raw;

	assert_int_equal(sqlite3_open(e->path, &raw), SQLITE_OK);
	assert_int_equal(
	        sqlite3_exec(raw,
	                     "CREATE TABLE entities (key TEXT PRIMARY KEY, version INTEGER NOT NULL, value TEXT,"
	                     " deleted INTEGER NOT NULL, deleted_at_ms INTEGER, origin TEXT, topic TEXT,"
	                     " \"partition\" INTEGER, \"offset\" INTEGER, applied_at_ms INTEGER) WITHOUT ROWID;"
	                     "INSERT INTO entities VALUES ('k', 1, '1', 0, NULL, 'live', 'orders', 0, 0, 0);"
	                     "PRAGMA user_version = 1;",
	                     NULL, NULL, NULL),
	        SQLITE_OK);
	sqlite3_close(raw);
	assert_int_equal(open_for(e, NULL, "customers", &db), -EEXIST);
	assert_non_null(strstr(e->err, "fed by topic 'orders'"));
	assert_int_equal(open_for(e, NULL, "orders", &db), 0);
	sl_apply_sqlite_close(db);
	assert_int_equal(query_int(e, "PRAGMA user_version"), 2);
	assert_int_equal(query_int(e, "SELECT count(*) FROM synclog_tables WHERE topic = 'orders'"), 1);
}

static void bad_table_names_are_refused(void **state)
{
	struct env *e = *state;
	struct sl_apply_sqlite *db;
	static const char *const bad[] = {"",
	                                  "1abc",
	                                  "a-b",
	                                  "a b",
	                                  "x\"y",
	                                  "conflicts",
	                                  "stale_events",
	                                  "synclog_x",
	                                  "sqlite_seq",
	                                  "a234567890123456789012345678901234567890123456789012345678901234"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(open_for(e, bad[i], "t", &db), -EINVAL);
		assert_non_null(strstr(e->err, "table name"));
	}
	assert_int_equal(sl_apply_sqlite_table_check("Orders_2"), 0);
	assert_int_equal(sl_apply_sqlite_table_check("_x"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(second_topic_into_a_claimed_table_is_refused, setup, teardown),
	        cmocka_unit_test_setup_teardown(one_table_per_topic_in_one_database, setup, teardown),
	        cmocka_unit_test_setup_teardown(version_1_table_is_claimed_by_the_topic_of_its_rows, setup, teardown),
	        cmocka_unit_test_setup_teardown(bad_table_names_are_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
