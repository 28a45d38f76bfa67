/* Tests of ISO 8601 parsing (consumer/iso8601.c), which `consume --from @TIME` resolves through ListOffsets. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>

#include "consumer/client/synclog.h"

static int64_t ms(const char *s)
{
	int64_t v = -1;

	assert_int_equal(sl_time_parse_iso8601(s, &v), 0);
	return v;
}

static void utc_times_are_epoch_milliseconds(void **state)
{
	assert_true(ms("1970-01-01T00:00:00Z") == 0);
	assert_true(ms("2024-05-01T12:00:00Z") == 1714564800000);
	assert_true(ms("2024-05-01T12:00:00.123Z") == 1714564800123);
	assert_true(ms("2024-05-01T12:00:00.1239Z") == 1714564800123);
	assert_true(ms("2000-02-29T23:59:59Z") == 951868799000);
}

static void missing_parts_default_to_zero_utc(void **state)
{
	assert_true(ms("2024-05-01") == 1714521600000);
	assert_true(ms("2024-05-01T12:00") == 1714564800000);
	assert_true(ms("2024-05-01 12:00:00") == 1714564800000);
	assert_true(ms("2024-05-01T12:00:00") == 1714564800000);
}

static void zones_shift_to_utc(void **state)
{
	assert_true(ms("2024-05-01T14:00:00+02:00") == 1714564800000);
	assert_true(ms("2024-05-01T14:00:00+0200") == 1714564800000);
	assert_true(ms("2024-05-01T14:00:00+02") == 1714564800000);
	assert_true(ms("2024-05-01T07:30:00-04:30") == 1714564800000);
}

static void before_the_epoch_is_negative(void **state)
{
	assert_true(ms("1969-12-31T23:59:59Z") == -1000);
}

static void malformed_times_are_refused(void **state)
{
	static const char *bad[] = {"",
	                            "2024",
	                            "2024-13-01",
	                            "2024-02-30",
	                            "2023-02-29",
	                            "2024-05-01T25:00:00Z",
	                            "2024-05-01T12:60",
	                            "2024-05-01T12:00:00.Z",
	                            "2024-05-01T12:00:00+2",
	                            "2024-05-01T12:00:00Zjunk",
	                            "yesterday",
	                            "2024/05/01"};
	int64_t v;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(sl_time_parse_iso8601(bad[i], &v), -EINVAL);
}

/* sl_time_parse: what --from @TIME and --to-datetime take, beyond ISO 8601. */
static void epoch_milliseconds_and_durations_ago(void **state)
{
	const int64_t now = 1714564800000; /* 2024-05-01T12:00:00Z */
	int64_t v;

	assert_int_equal(sl_time_parse("1714564800123", now, &v), 0);
	assert_int_equal(v, 1714564800123);
	assert_int_equal(sl_time_parse("-10m", now, &v), 0);
	assert_int_equal(v, now - 600000);
	assert_int_equal(sl_time_parse("-PT2H", now, &v), 0);
	assert_int_equal(v, now - 7200000);
	assert_int_equal(sl_time_parse("-0s", now, &v), 0);
	assert_int_equal(v, now);
	assert_int_equal(sl_time_parse("2024-05-01T12:00:00Z", now, &v), 0);
	assert_int_equal(v, now);
	assert_int_equal(sl_time_parse("", now, &v), -EINVAL);
	assert_int_equal(sl_time_parse("-", now, &v), -EINVAL);
	assert_int_equal(sl_time_parse("-10", now, &v), -EINVAL); /* a duration needs its unit */
	assert_int_equal(sl_time_parse("+10m", now, &v), -EINVAL);
	assert_int_equal(sl_time_parse("99999999999999999999", now, &v), -EINVAL);
	assert_int_equal(sl_time_parse("-100000d", now, &v), -EINVAL); /* before the epoch */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(utc_times_are_epoch_milliseconds),
	        cmocka_unit_test(missing_parts_default_to_zero_utc),
	        cmocka_unit_test(zones_shift_to_utc),
	        cmocka_unit_test(before_the_epoch_is_negative),
	        cmocka_unit_test(malformed_times_are_refused),
	        cmocka_unit_test(epoch_milliseconds_and_durations_ago),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
