/* Tests of input line parsing (consumer/record_input.c): KEY<TAB>VALUE lines and JSON objects become the records
 * `synclog produce` sends, and every malformed line is refused with a message saying what is wrong. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "consumer/client/synclog.h"
#include "consumer/sync/record_input.h"

static struct sl_line_parser *tsv, *json;
static struct sl_record r;
static char err[SL_ERROR_BYTES];

static int setup(void **state)
{
	if (sl_line_parser_new(&tsv, SL_INPUT_TSV) != 0 || sl_line_parser_new(&json, SL_INPUT_JSON) != 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	sl_line_parser_free(tsv);
	sl_line_parser_free(json);
	return 0;
}

static int parse(struct sl_line_parser *lp, const char *line)
{
	err[0] = '\0';
	return sl_line_parse(lp, line, strlen(line), SL_ORIGIN_BACKFILL, 1700000000123, &r, err, sizeof(err));
}

static void assert_bytes(const uint8_t *p, int32_t len, const char *expected)
{
	assert_int_equal(len, (int32_t)strlen(expected));
	assert_memory_equal(p, expected, strlen(expected));
}

static void tsv_splits_at_first_tab(void **state)
{
	assert_int_equal(parse(tsv, "user-1\t{\"a\":\t1}\tmore"), 1);
	assert_bytes(r.key, r.key_len, "user-1");
	assert_bytes(r.value, r.value_len, "{\"a\":\t1}\tmore");
	assert_true(r.version == SL_VERSION_NONE);
	assert_int_equal(r.op, SL_OP_UPSERT);
	assert_int_equal(r.origin, SL_ORIGIN_BACKFILL);
	assert_true(r.timestamp_ms == 1700000000123);
	assert_null(r.idempotency_key);
}

static void tsv_keeps_empty_key_and_value(void **state)
{
	assert_int_equal(parse(tsv, "\t"), 1);
	assert_int_equal(r.key_len, 0);
	assert_int_equal(r.value_len, 0);
	assert_non_null(r.key);
}

static void tsv_without_tab_is_refused(void **state)
{
	assert_int_equal(parse(tsv, "no tab here"), -EINVAL);
	assert_non_null(strstr(err, "KEY<TAB>VALUE"));
}

static void tsv_blank_line_is_skipped(void **state)
{
	assert_int_equal(parse(tsv, ""), 0);
}

static void json_reads_every_field(void **state)
{
	assert_int_equal(parse(json, "{\"key\": \"cust-1\", \"value\": {\"status\": \"active\", \"n\": [1, 2]}, "
	                             "\"version\": 42, \"op\": \"upsert\", \"idempotency_key\": \"evt-9\", "
	                             "\"schema_version\": 3}"),
	                 1);
	assert_bytes(r.key, r.key_len, "cust-1");
	assert_bytes(r.value, r.value_len, "{\"status\":\"active\",\"n\":[1,2]}");
	assert_true(r.version == 42);
	assert_int_equal(r.op, SL_OP_UPSERT);
	assert_bytes(r.idempotency_key, r.idempotency_key_len, "evt-9");
	assert_int_equal(r.schema_version, 3);
	assert_int_equal(r.origin, SL_ORIGIN_BACKFILL);
}

static void json_value_keeps_its_spelling(void **state)
{
	/* Stored as written (minified), not re-serialized: 0.1 stays 0.1 and 1.0 stays 1.0. */
	assert_int_equal(parse(json, "{\"key\":\"k\",\"value\":[0.1, 1.0, 1e5, -0, \"a b\\t\"]}"), 1);
	assert_bytes(r.value, r.value_len, "[0.1,1.0,1e5,-0,\"a b\\t\"]");
}

static void json_string_value_is_stored_as_json_text(void **state)
{
	assert_int_equal(parse(json, "{\"key\":\"k\",\"value\":\"hello\"}"), 1);
	assert_bytes(r.value, r.value_len, "\"hello\"");
	assert_int_equal(parse(json, "{\"key\":\"k\",\"value\":17}"), 1);
	assert_bytes(r.value, r.value_len, "17");
}

static void json_upsert_without_value_stores_null_text(void **state)
{
	assert_int_equal(parse(json, "{\"key\":\"k\"}"), 1);
	assert_bytes(r.value, r.value_len, "null");
	assert_int_equal(parse(json, "{\"key\":\"k\",\"value\":null}"), 1);
	assert_bytes(r.value, r.value_len, "null");
}

static void json_delete_is_a_tombstone(void **state)
{
	assert_int_equal(parse(json, "{\"key\":\"k\",\"version\":2,\"op\":\"delete\"}"), 1);
	assert_int_equal(r.op, SL_OP_DELETE);
	assert_null(r.value);
	assert_int_equal(r.value_len, -1);
	assert_int_equal(parse(json, "{\"key\":\"k\",\"op\":\"delete\",\"value\":null}"), 1);
	assert_int_equal(r.value_len, -1);
}

static void json_delete_with_value_is_refused(void **state)
{
	assert_int_equal(parse(json, "{\"key\":\"k\",\"op\":\"delete\",\"value\":{}}"), -EINVAL);
	assert_non_null(strstr(err, "delete"));
}

static void json_refusals_say_what_is_wrong(void **state)
{
	assert_int_equal(parse(json, "{\"value\":1}"), -EINVAL);
	assert_non_null(strstr(err, "\"key\""));
	assert_int_equal(parse(json, "{\"key\":5}"), -EINVAL);
	assert_non_null(strstr(err, "\"key\""));
	assert_int_equal(parse(json, "{\"key\":\"k\",\"version\":\"3\"}"), -EINVAL);
	assert_non_null(strstr(err, "\"version\""));
	assert_int_equal(parse(json, "{\"key\":\"k\",\"version\":1.5}"), -EINVAL);
	assert_int_equal(parse(json, "{\"key\":\"k\",\"op\":\"remove\"}"), -EINVAL);
	assert_non_null(strstr(err, "\"op\""));
	assert_int_equal(parse(json, "{\"key\":\"k\",\"idempotency_key\":7}"), -EINVAL);
	assert_int_equal(parse(json, "{\"key\":\"k\",\"origin\":\"elsewhere\"}"), -EINVAL);
	assert_int_equal(parse(json, "[1,2]"), -EINVAL);
	assert_non_null(strstr(err, "object"));
	assert_int_equal(parse(json, "{\"key\":\"a\",\"key\":\"b\"}"), -EINVAL);
}

/* The line's own fields must be unambiguous, also when a name is spelled with an escape; a value is any JSON,
 * duplicate names included (apply --values json accepts it: the two parsers agree). */
static void json_duplicate_field_is_refused_but_not_inside_the_value(void **state)
{
	assert_int_equal(parse(json, "{\"key\":\"a\",\"k\\u0065y\":\"b\"}"), -EINVAL);
	assert_non_null(strstr(err, "twice"));
	assert_int_equal(parse(json, "{\"key\":\"a\",\"value\":{\"x\":1,\"x\":2}}"), 1);
	assert_bytes(r.value, r.value_len, "{\"x\":1,\"x\":2}");
	assert_true(sl_json_valid(r.value, (size_t)r.value_len));
}

/* jansson alone would load {"key":"k","value":1<NUL>}: a raw NUL is skipped after a number. */
static void json_raw_nul_byte_is_refused(void **state)
{
	static const char line[] = "{\"key\":\"k\",\"value\":1\0}";

	assert_int_equal(sl_line_parse(json, line, sizeof(line) - 1, SL_ORIGIN_LIVE, 1, &r, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "NUL"));
}

static void json_syntax_error_names_the_column(void **state)
{
	assert_int_equal(parse(json, "{\"key\": \"k\", \"value\": }"), -EINVAL);
	assert_non_null(strstr(err, "column"));
	assert_int_equal(parse(json, "{\"key\":\"k\"} trailing"), -EINVAL);
}

static void json_null_fields_count_as_absent(void **state)
{
	assert_int_equal(parse(json, "{\"key\":\"k\",\"version\":null,\"op\":null,\"idempotency_key\":null}"), 1);
	assert_true(r.version == SL_VERSION_NONE);
	assert_int_equal(r.op, SL_OP_UPSERT);
	assert_null(r.idempotency_key);
}

static void json_origin_overrides_the_flag(void **state)
{
	assert_int_equal(parse(json, "{\"key\":\"k\",\"origin\":\"repair\"}"), 1);
	assert_int_equal(r.origin, SL_ORIGIN_REPAIR);
}

static void json_unknown_members_are_ignored(void **state)
{
	assert_int_equal(parse(json, "{\"key\":\"k\",\"value\":1,\"trace\":\"x\"}"), 1);
	assert_bytes(r.value, r.value_len, "1");
}

static void json_key_may_hold_escapes_and_nul(void **state)
{
	assert_int_equal(parse(json, "{\"key\":\"a\\u0000b\\n\",\"value\":1}"), 1);
	assert_int_equal(r.key_len, 4);
	assert_memory_equal(r.key, "a\0b\n", 4);
}

static void json_blank_line_is_skipped(void **state)
{
	assert_int_equal(parse(json, "   \t"), 0);
	assert_int_equal(parse(json, ""), 0);
}

static void json_record_stays_valid_until_next_parse(void **state)
{
	struct sl_record first;

	assert_int_equal(parse(json, "{\"key\":\"first\",\"value\":[1]}"), 1);
	first = r;
	assert_bytes(first.key, first.key_len, "first");
	assert_bytes(first.value, first.value_len, "[1]");
	assert_int_equal(parse(json, "{\"key\":\"second\",\"value\":[2,3]}"), 1);
	assert_bytes(r.key, r.key_len, "second");
	assert_bytes(r.value, r.value_len, "[2,3]");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(tsv_splits_at_first_tab),
	        cmocka_unit_test(tsv_keeps_empty_key_and_value),
	        cmocka_unit_test(tsv_without_tab_is_refused),
	        cmocka_unit_test(tsv_blank_line_is_skipped),
	        cmocka_unit_test(json_reads_every_field),
	        cmocka_unit_test(json_value_keeps_its_spelling),
	        cmocka_unit_test(json_string_value_is_stored_as_json_text),
	        cmocka_unit_test(json_upsert_without_value_stores_null_text),
	        cmocka_unit_test(json_delete_is_a_tombstone),
	        cmocka_unit_test(json_delete_with_value_is_refused),
	        cmocka_unit_test(json_refusals_say_what_is_wrong),
	        cmocka_unit_test(json_duplicate_field_is_refused_but_not_inside_the_value),
	        cmocka_unit_test(json_raw_nul_byte_is_refused),
	        cmocka_unit_test(json_syntax_error_names_the_column),
	        cmocka_unit_test(json_null_fields_count_as_absent),
	        cmocka_unit_test(json_origin_overrides_the_flag),
	        cmocka_unit_test(json_unknown_members_are_ignored),
	        cmocka_unit_test(json_key_may_hold_escapes_and_nul),
	        cmocka_unit_test(json_blank_line_is_skipped),
	        cmocka_unit_test(json_record_stays_valid_until_next_parse),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
