/* Tests of record output (consumer/record_output.c, consumer/json_text.c): the text and JSON lines `synclog
 * consume` prints, JSON values passed through minified, everything else escaped into valid one-line JSON. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/client/synclog.h"

/* Run print into a memory stream and return what it wrote (static buffer). */
static char out_text[4096];

static FILE *open_out(void)
{
	FILE *f = fmemopen(out_text, sizeof(out_text), "w");

	assert_non_null(f);
	memset(out_text, 0, sizeof(out_text));
	return f;
}

static const char *close_out(FILE *f)
{
	fclose(f);
	return out_text;
}

static struct sl_record record(const char *key, const char *value)
{
	struct sl_record r = {
	        .offset = 42,
	        .timestamp_ms = 1700000000000,
	        .key = (const uint8_t *)key,
	        .key_len = key ? (int32_t)strlen(key) : -1,
	        .value = (const uint8_t *)value,
	        .value_len = value ? (int32_t)strlen(value) : -1,
	        .version = SL_VERSION_NONE,
	        .op = SL_OP_UPSERT,
	        .origin = SL_ORIGIN_LIVE,
	};
	return r;
}

static const char *value_json(const char *bytes, size_t len)
{
	FILE *f = open_out();

	assert_int_equal(sl_json_print_value(f, bytes, len), 0);
	return close_out(f);
}

static const char *string_json(const char *bytes, size_t len)
{
	FILE *f = open_out();

	assert_int_equal(sl_json_print_string(f, bytes, len), 0);
	return close_out(f);
}

static void json_validity_follows_rfc8259(void **state)
{
	static const char *valid[] = {"0",
	                              "-1.5e+3",
	                              "\"x\"",
	                              "true",
	                              "null",
	                              "[]",
	                              "{}",
	                              " [1 , {\"a\" : [null]}] ",
	                              "\"\\u00e9\\n\"",
	                              "\"caf\xc3\xa9\""};
	static const char *invalid[] = {"",        "01",    "1.",      "+1",      ".5",       "tru",      "[1,]",
	                                "{\"a\"}", "{a:1}", "\"\\x\"", "[1] [2]", "\"a\nb\"", "\"\xff\"", "nul"};

	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
		assert_true(sl_json_valid(valid[i], strlen(valid[i])));
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
		assert_false(sl_json_valid(invalid[i], strlen(invalid[i])));
}

static void json_nesting_beyond_bound_is_not_json(void **state)
{
	/* jansson's bound: 2048 open arrays are JSON, 2049 are not. */
	static char deep[2 * 2049];

	memset(deep, '[', 2049);
	memset(deep + 2049, ']', 2049);
	assert_false(sl_json_valid(deep, sizeof(deep)));
	memset(deep, '[', 2048);
	memset(deep + 2048, ']', 2048);
	assert_true(sl_json_valid(deep, 2 * 2048));
}

static void value_that_is_json_prints_minified(void **state)
{
	const char *v = "{ \"a\" : [1, 2],\n \"b\": \"x y\" }";

	assert_string_equal(value_json(v, strlen(v)), "{\"a\":[1,2],\"b\":\"x y\"}");
}

static void value_that_is_not_json_prints_as_string(void **state)
{
	assert_string_equal(value_json("hello world", 11), "\"hello world\"");
	assert_string_equal(value_json("", 0), "\"\"");
}

static void string_escapes_quotes_controls_and_bad_utf8(void **state)
{
	assert_string_equal(string_json("a\"b\\c\nd\te\x01", 10), "\"a\\\"b\\\\c\\nd\\te\\u0001\"");
	/* Valid UTF-8 passes through; a byte that is not UTF-8 becomes its code point. */
	assert_string_equal(string_json("caf\xc3\xa9", 5), "\"caf\xc3\xa9\"");
	assert_string_equal(string_json("\xff\xc3", 2), "\"\\u00ff\\u00c3\"");
	assert_string_equal(string_json("a\0b", 3), "\"a\\u0000b\"");
}

static void text_line_is_partition_offset_key_value(void **state)
{
	struct sl_record r = record("user-1", "v with space");
	FILE *f = open_out();

	assert_int_equal(sl_record_print_text(f, 3, &r), 0);
	assert_string_equal(close_out(f), "3\t42\tuser-1\tv with space\n");
}

static void text_line_prints_null_as_nothing(void **state)
{
	struct sl_record r = record(NULL, NULL);
	FILE *f = open_out();

	sl_record_print_text(f, 0, &r);
	assert_string_equal(close_out(f), "0\t42\t\t\n");
}

static void json_line_has_every_field(void **state)
{
	struct sl_record r = record("cust-1", "{\"status\": \"active\"}");
	FILE *f = open_out();

	r.version = 7;
	r.origin = SL_ORIGIN_BACKFILL;
	r.idempotency_key = (const uint8_t *)"evt-1";
	r.idempotency_key_len = 5;
	assert_int_equal(sl_record_print_json(f, 2, &r), 0);
	assert_string_equal(close_out(f), "{\"partition\":2,\"offset\":42,\"key\":\"cust-1\",\"value\":{\"status\":"
	                                  "\"active\"},\"version\":7,\"op\":\"upsert\",\"origin\":\"backfill\","
	                                  "\"timestamp_ms\":1700000000000,\"idempotency_key\":\"evt-1\"}\n");
}

static void json_line_of_tombstone_has_null_value(void **state)
{
	struct sl_record r = record("cust-1", NULL);
	FILE *f = open_out();

	r.op = SL_OP_DELETE;
	r.version = 3;
	r.schema_version = 2;
	sl_record_print_json(f, 0, &r);
	assert_string_equal(close_out(f), "{\"partition\":0,\"offset\":42,\"key\":\"cust-1\",\"value\":null,"
	                                  "\"version\":3,\"op\":\"delete\",\"origin\":\"live\",\"timestamp_ms\":"
	                                  "1700000000000,\"idempotency_key\":null,\"schema_version\":2}\n");
}

static void text_line_escapes_tabs_and_newlines(void **state)
{
	struct sl_record r = record("a\tb", "line1\nline2\r\t{\"q\":\"x\\\"y\"}");
	FILE *f = open_out();

	sl_record_print_text(f, 2, &r);
	/* One line of four fields; the backslash of the JSON escape stays as it was. */
	assert_string_equal(close_out(f), "2\t42\ta\\tb\tline1\\nline2\\r\\t{\"q\":\"x\\\"y\"}\n");
}

static void json_line_of_plain_value_quotes_it(void **state)
{
	struct sl_record r = record("k", "plain text");
	FILE *f = open_out();

	sl_record_print_json(f, 1, &r);
	assert_non_null(strstr(close_out(f), "\"value\":\"plain text\",\"version\":null,"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(json_validity_follows_rfc8259),
	        cmocka_unit_test(json_nesting_beyond_bound_is_not_json),
	        cmocka_unit_test(value_that_is_json_prints_minified),
	        cmocka_unit_test(value_that_is_not_json_prints_as_string),
	        cmocka_unit_test(string_escapes_quotes_controls_and_bad_utf8),
	        cmocka_unit_test(text_line_is_partition_offset_key_value),
	        cmocka_unit_test(text_line_prints_null_as_nothing),
	        cmocka_unit_test(text_line_escapes_tabs_and_newlines),
	        cmocka_unit_test(json_line_has_every_field),
	        cmocka_unit_test(json_line_of_tombstone_has_null_value),
	        cmocka_unit_test(json_line_of_plain_value_quotes_it),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
