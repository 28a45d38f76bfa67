/* Tests of the SQLite source (consumer/sync/source_sqlite.c): rows in byte order of their key's text (an INTEGER key
 * too), bounds, the value as a JSON object of the other columns in table order or one column's text, the deleted
 * column, bad rows with their rowid and reason, a long indexed scan issued again without losing or repeating a row,
 * and clear errors for a missing table or column. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/client/synclog.h"
#include "consumer/sync/source.h"
#include "tests/unit/source_test_util.h"

static int setup(void **state)
{
	return st_file_setup(state, "src.db");
}

static void exec_sql(struct st_file_env *e, const char *sql)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(e->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static int open_table(struct st_file_env *e, const char *table, const char *value_col)
{
	struct sl_source_columns c = {.value = value_col};

	snprintf(e->spec, sizeof(e->spec), "sqlite:%s:%s", e->path, table);
	return sl_source_open(&e->src, e->spec, &c, e->err, sizeof(e->err));
}

static void integer_keys_come_in_the_order_of_their_text(void **state)
{
	struct st_file_env *e = *state;

	exec_sql(e, "CREATE TABLE t (key INTEGER PRIMARY KEY, version INTEGER, v TEXT);"
	            "INSERT INTO t VALUES (9, 1, 'nine'), (10, 1, 'ten'), (100, 1, 'hundred'), (2, 1, 'two');");
	assert_int_equal(open_table(e, "t", NULL), 0);
	st_scan(&e->src, NULL, NULL);
	st_expect_keys(&e->src, (const char *const[]){"10", "100", "2", "9"}, 4);
	assert_int_equal(e->src.ops->count(e->src.ctx), 4);
}

static void bounds_take_rows_after_one_key_up_to_another(void **state)
{
	struct st_file_env *e = *state;
	struct sl_source_row r;

	exec_sql(e, "CREATE TABLE t (key TEXT PRIMARY KEY, version INTEGER, v TEXT);"
	            "INSERT INTO t VALUES ('a', 1, 'x'), ('b', 1, 'x'), ('c', 1, 'x'), ('d', 1, 'x'), ('e', 1, 'x');");
	assert_int_equal(open_table(e, "t", "v"), 0);
	st_scan(&e->src, "b", "d");
	r = st_next_row(&e->src);
	st_key_equal(&r, "c");
	r = st_next_row(&e->src);
	st_key_equal(&r, "d");
	assert_int_equal(e->src.ops->next(e->src.ctx, &r), 0);
}

static void value_is_a_json_object_of_the_other_columns(void **state)
{
	struct st_file_env *e = *state;
	struct sl_source_row r;
	const char *want = "{\"name\":\"Ann \\\"A\\\"\\n\",\"score\":0.1,\"n\":7,\"none\":null}";

	exec_sql(e,
	         "CREATE TABLE t (name TEXT, key TEXT PRIMARY KEY, score REAL, version INTEGER, n INTEGER, none TEXT,"
	         " deleted INTEGER);"
	         "INSERT INTO t VALUES ('Ann \"A\"' || char(10), 'k1', 0.1, 3, 7, NULL, 0);"
	         "INSERT INTO t VALUES ('Bob', 'k2', 1.5, 4, 1, 'x', 1);");
	assert_int_equal(open_table(e, "t", NULL), 0);
	st_scan(&e->src, NULL, NULL);
	r = st_next_row(&e->src);
	assert_int_equal(r.version, 3);
	assert_false(r.deleted);
	assert_int_equal(r.value_len, strlen(want));
	assert_memory_equal(r.value, want, r.value_len);
	r = st_next_row(&e->src);
	assert_true(r.deleted);
	assert_null(r.value);
	assert_int_equal(r.version, 4);
}

static void value_column_gives_its_text(void **state)
{
	struct st_file_env *e = *state;
	struct sl_source_row r;

	exec_sql(e, "CREATE TABLE t (key TEXT PRIMARY KEY, version INTEGER, body TEXT, other TEXT);"
	            "INSERT INTO t VALUES ('k', '12', 'raw text, not JSON', 'ignored');");
	assert_int_equal(open_table(e, "t", "body"), 0);
	st_scan(&e->src, NULL, NULL);
	r = st_next_row(&e->src);
	assert_int_equal(r.version, 12);
	assert_int_equal(r.value_len, strlen("raw text, not JSON"));
	assert_memory_equal(r.value, "raw text, not JSON", r.value_len);
}

static void bad_rows_say_where_and_why(void **state)
{
	struct st_file_env *e = *state;
	struct sl_source_row r;

	exec_sql(e, "CREATE TABLE t (key TEXT, version, v BLOB);"
	            "INSERT INTO t VALUES (NULL, 1, 'a');"    /* rowid 1: no key */
	            "INSERT INTO t VALUES ('b', 'x1', 'b');"  /* rowid 2: version not an integer */
	            "INSERT INTO t VALUES ('c', NULL, 'c');"  /* rowid 3: no version */
	            "INSERT INTO t VALUES ('d', 1.5, 'd');"   /* rowid 4: a real */
	            "INSERT INTO t VALUES ('e', 2, x'00ff');" /* rowid 5: a BLOB in the value object */
	            "INSERT INTO t VALUES ('f', 3, 'fine');");
	assert_int_equal(open_table(e, "t", NULL), 0);
	assert_string_equal(e->src.position_name, "rowid");
	st_scan(&e->src, NULL, NULL);
	r = st_next_row(&e->src);
	assert_null(r.key);
	assert_int_equal(r.position, 1);
	assert_string_equal(r.bad, "no key");
	r = st_next_row(&e->src);
	assert_int_equal(r.position, 2);
	assert_non_null(strstr(r.bad, "'x1' is not an integer"));
	r = st_next_row(&e->src);
	assert_string_equal(r.bad, "no version");
	r = st_next_row(&e->src);
	assert_non_null(strstr(r.bad, "not an integer"));
	r = st_next_row(&e->src);
	assert_non_null(strstr(r.bad, "BLOB"));
	r = st_next_row(&e->src);
	assert_null(r.bad);
	assert_int_equal(r.version, 3);
}

static void long_indexed_scan_loses_and_repeats_nothing(void **state)
{
	struct st_file_env *e = *state;
	struct sl_source_row r;
	char prev[32] = "", key[32];
	int n = 0;

	exec_sql(e, "CREATE TABLE t (key TEXT PRIMARY KEY, version INTEGER, v TEXT) WITHOUT ROWID;"
	            "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 25000)"
	            " INSERT INTO t SELECT printf('key%06d', i), i, 'v' FROM c;");
	assert_int_equal(open_table(e, "t", "v"), 0);
	assert_string_equal(e->src.position_name, "");
	st_scan(&e->src, NULL, NULL);
	while (e->src.ops->next(e->src.ctx, &r) == 1) {
		snprintf(key, sizeof(key), "%.*s", (int)r.key_len, (const char *)r.key);
		assert_true(strcmp(prev, key) < 0);
		strcpy(prev, key);
		n++;
	}
	assert_int_equal(n, 25000);
}

static void missing_table_or_column_is_a_clear_error(void **state)
{
	struct st_file_env *e = *state;
	struct sl_source_columns c = {.version = "rev"};

	exec_sql(e, "CREATE TABLE t (key TEXT PRIMARY KEY, version INTEGER);");
	assert_int_equal(open_table(e, "nosuch", NULL), -ENOENT);
	assert_non_null(strstr(e->err, "no table 'nosuch'"));
	snprintf(e->spec, sizeof(e->spec), "sqlite:%s:t", e->path);
	assert_int_equal(sl_source_open(&e->src, e->spec, &c, e->err, sizeof(e->err)), -EINVAL);
	assert_non_null(strstr(e->err, "no column 'rev'"));
	assert_non_null(strstr(e->err, "--version"));
	assert_int_equal(sl_source_open(&e->src, "postgres:x", &c, e->err, sizeof(e->err)), -EINVAL);
	assert_int_equal(sl_source_open(&e->src, "sqlite:/no/such/dir/x.db:t", &c, e->err, sizeof(e->err)), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(integer_keys_come_in_the_order_of_their_text, setup, st_file_teardown),
	        cmocka_unit_test_setup_teardown(bounds_take_rows_after_one_key_up_to_another, setup, st_file_teardown),
	        cmocka_unit_test_setup_teardown(value_is_a_json_object_of_the_other_columns, setup, st_file_teardown),
	        cmocka_unit_test_setup_teardown(value_column_gives_its_text, setup, st_file_teardown),
	        cmocka_unit_test_setup_teardown(bad_rows_say_where_and_why, setup, st_file_teardown),
	        cmocka_unit_test_setup_teardown(long_indexed_scan_loses_and_repeats_nothing, setup, st_file_teardown),
	        cmocka_unit_test_setup_teardown(missing_table_or_column_is_a_clear_error, setup, st_file_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
