/* Durations as people type them (proto/base/duration.c): the short form (30s, 10m, 2h, 7d, 1h30m, 500ms) and ISO
 * 8601 through one parser, what each refuses, and the way back for tables (3m2s). ISO 8601 on its own is tested
 * in test_offset_reset.c, where --by-duration first needed it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "proto/base/duration.h"

static int64_t ms_of(const char *s)
{
	int64_t v = -1;

	if (sl_duration_parse(s, &v) != 0)
		fail_msg("'%s' was refused", s);
	return v;
}

static void short_form_units(void **state)
{
	assert_int_equal(ms_of("500ms"), 500);
	assert_int_equal(ms_of("30s"), 30000);
	assert_int_equal(ms_of("10m"), 600000);
	assert_int_equal(ms_of("2h"), 7200000);
	assert_int_equal(ms_of("7d"), 604800000);
	assert_int_equal(ms_of("2w"), 1209600000);
	assert_int_equal(ms_of("0s"), 0);
}

static void short_form_groups_add_up_largest_first(void **state)
{
	assert_int_equal(ms_of("1h30m"), 5400000);
	assert_int_equal(ms_of("1d2h3m4s5ms"), 93784005);
	assert_int_equal(ms_of("1m500ms"), 60500);
}

static void iso8601_goes_through_the_same_parser(void **state)
{
	assert_int_equal(ms_of("PT30M"), 1800000);
	assert_int_equal(ms_of("P1DT2H"), 93600000);
	assert_int_equal(ms_of("PT1.5S"), 1500);
	assert_int_equal(ms_of("p7d"), 604800000);
}

static void malformed_durations_are_refused(void **state)
{
	static const char *bad[] = {"",
	                            "10",
	                            "m",
	                            "10x",
	                            "-5s",
	                            "1.5h",
	                            "10m1h",
	                            "1s1s",
	                            "1y",
	                            "1M",
	                            "10 m",
	                            "5s ",
	                            "P",
	                            "PT",
	                            "P1M",
	                            "s10",
	                            "1ms1s",
	                            "99999999999999999999d",
	                            "106751991167301d"};
	int64_t v;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (sl_duration_parse(bad[i], &v) != -EINVAL)
			fail_msg("'%s' was accepted as %lld ms", bad[i], (long long)v);
}

static void format_shows_the_two_largest_units(void **state)
{
	static const struct {
		int64_t ms;
		const char *text;
	} cases[] = {{0, "0s"},          {850, "850ms"},    {1000, "1s"},      {1500, "1.5s"},  {9999, "9.9s"},
	             {10500, "10s"},     {62000, "1m2s"},   {182000, "3m2s"},  {3600000, "1h"}, {3720000, "1h2m"},
	             {97200000, "1d3h"}, {604800000, "7d"}, {-62000, "-1m2s"}, {1050, "1s"}};
	char buf[SL_DURATION_TEXT_BYTES];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sl_duration_format(cases[i].ms, buf, sizeof(buf));
		if (strcmp(buf, cases[i].text) != 0)
			fail_msg("%lld ms formatted as '%s', expected '%s'", (long long)cases[i].ms, buf,
			         cases[i].text);
	}
	sl_duration_format(INT64_MAX, buf, sizeof(buf));
	assert_true(strlen(buf) < SL_DURATION_TEXT_BYTES - 1);
	sl_duration_format(INT64_MIN, buf, sizeof(buf));
	assert_true(buf[0] == '-');
}

static void formatted_durations_parse_back(void **state)
{
	static const int64_t values[] = {850, 62000, 3720000, 97200000, 604800000};
	char buf[SL_DURATION_TEXT_BYTES];

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		sl_duration_format(values[i], buf, sizeof(buf));
		assert_int_equal(ms_of(buf), values[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(short_form_units),
	        cmocka_unit_test(short_form_groups_add_up_largest_first),
	        cmocka_unit_test(iso8601_goes_through_the_same_parser),
	        cmocka_unit_test(malformed_durations_are_refused),
	        cmocka_unit_test(format_shows_the_two_largest_units),
	        cmocka_unit_test(formatted_durations_parse_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
