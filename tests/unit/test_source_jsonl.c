/* Tests of the JSON-lines source (consumer/sync/source_jsonl.c): rows in byte order of their keys whatever the
 * line order, lines without a usable key first with their line numbers, bad lines reported and not fatal, the value
 * as an object of the other members or one member's text, deletes, bounds, and an empty file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/client/synclog.h"
#include "consumer/sync/source.h"
#include "tests/unit/source_test_util.h"

static int setup(void **state)
{
	struct st_file_env *e;

	if (st_file_setup(state, "rows.jsonl") != 0)
		return -1;
	e = *state;
	snprintf(e->spec, sizeof(e->spec), "jsonl:%s", e->path);
	return 0;
}

static int open_file(struct st_file_env *e, const char *text, const char *value_col)
{
	struct sl_source_columns c = {.value = value_col};
	FILE *f = fopen(e->path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return sl_source_open(&e->src, e->spec, &c, e->err, sizeof(e->err));
}

static void rows_come_in_key_order_with_bad_lines_first(void **state)
{
	struct st_file_env *e = *state;
	struct sl_source_row r;

	assert_int_equal(open_file(e,
	                           "{\"key\": \"b\", \"version\": 2, \"name\": \"B\", \"n\": 1}\n"
	                           "\n"
	                           "not json\n"
	                           "{\"key\": \"a\", \"version\": 1, \"name\": \"A\"}\n"
	                           "{\"version\": 1, \"name\": \"no key\"}\n"
	                           "{\"key\": 10, \"version\": \"7\"}\n"
	                           "{\"key\": \"c\", \"version\": 3, \"deleted\": true, \"name\": \"gone\"}\n",
	                           NULL),
	                 0);
	assert_int_equal(e->src.ops->count(e->src.ctx), 6);
	assert_string_equal(e->src.position_name, "line");
	st_scan(&e->src, NULL, NULL);
	r = st_next_row(&e->src);
	assert_int_equal(r.position, 3);
	assert_non_null(strstr(r.bad, "not a JSON object"));
	r = st_next_row(&e->src);
	assert_int_equal(r.position, 5);
	assert_non_null(strstr(r.bad, "no key"));
	r = st_next_row(&e->src);
	st_key_equal(&r, "10");
	assert_int_equal(r.position, 6);
	assert_non_null(strstr(r.bad, "not an integer"));
	r = st_next_row(&e->src);
	st_key_equal(&r, "a");
	assert_int_equal(r.version, 1);
	st_value_equal(&r, "{\"name\":\"A\"}");
	r = st_next_row(&e->src);
	st_key_equal(&r, "b");
	st_value_equal(&r, "{\"name\":\"B\",\"n\":1}");
	r = st_next_row(&e->src);
	st_key_equal(&r, "c");
	assert_true(r.deleted);
	assert_null(r.value);
	assert_int_equal(e->src.ops->next(e->src.ctx, &r), 0);
}

static void value_member_and_bounds(void **state)
{
	struct st_file_env *e = *state;
	struct sl_source_row r;

	assert_int_equal(open_file(e,
	                           "{\"key\": \"c\", \"version\": 1, \"body\": {\"x\": [1, 2]}}\n"
	                           "{\"key\": \"a\", \"version\": 1, \"body\": \"plain\"}\n"
	                           "{\"key\": \"b\", \"version\": 5, \"body\": \"text\"}\n"
	                           "{\"key\": \"b\", \"version\": 6, \"body\": null}\n",
	                           "body"),
	                 0);
	st_scan(&e->src, "a", NULL);
	r = st_next_row(&e->src);
	st_key_equal(&r, "b");
	st_value_equal(&r, "text");
	r = st_next_row(&e->src);
	st_key_equal(&r, "b");
	assert_int_equal(r.version, 6);
	assert_null(r.value);
	r = st_next_row(&e->src);
	st_key_equal(&r, "c");
	st_value_equal(&r, "{\"x\":[1,2]}");
	assert_int_equal(e->src.ops->next(e->src.ctx, &r), 0);
}

static void empty_file_has_no_rows(void **state)
{
	struct st_file_env *e = *state;
	struct sl_source_row r;

	assert_int_equal(open_file(e, "", NULL), 0);
	st_scan(&e->src, NULL, NULL);
	assert_int_equal(e->src.ops->next(e->src.ctx, &r), 0);
	sl_source_close(&e->src);
	assert_int_equal(
	        sl_source_open(&e->src, "jsonl:/no/such/file", &(struct sl_source_columns){0}, e->err, sizeof(e->err)),
	        -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(rows_come_in_key_order_with_bad_lines_first, setup, st_file_teardown),
	        cmocka_unit_test_setup_teardown(value_member_and_bounds, setup, st_file_teardown),
	        cmocka_unit_test_setup_teardown(empty_file_has_no_rows, setup, st_file_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
