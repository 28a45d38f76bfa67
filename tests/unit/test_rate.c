/* Tests of the token bucket (proto/base/rate.h) that paces backfills in the client and the broker's backfill
 * quota: it starts empty, asks to wait exactly as long as a debt takes to pay, keeps no more than its burst, and an
 * unlimited bucket never asks to wait. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "proto/base/rate.h"

#define MS 1000000LL

static void starts_empty_so_the_first_take_waits(void **state)
{
	struct sl_rate r;

	(void)state;
	sl_rate_init(&r, 1000, 1000, 0);
	/* 10 tokens at 1000/s: 10 ms. */
	assert_true(sl_rate_take(&r, 10, 0) >= 10 * MS);
	assert_true(sl_rate_take(&r, 10, 0) >= 20 * MS);
	assert_true(sl_rate_take(&r, 10, 0) < 31 * MS);
}

static void waiting_as_told_moves_at_the_rate(void **state)
{
	struct sl_rate r;
	int64_t now = 0;

	(void)state;
	sl_rate_init(&r, 20000, 2000, 0);
	/* 100,000 records in steps of 37: a caller that waits as told takes 5 s, give or take one step. */
	for (int i = 0; i < 100000 / 37; i++)
		now += sl_rate_take(&r, 37, now);
	assert_true(now >= (int64_t)(100000 / 37 * 37) * 1000000000LL / 20000 - MS);
	assert_true(now <= 5000 * MS + MS);
}

static void idle_time_fills_no_more_than_the_burst(void **state)
{
	struct sl_rate r;

	(void)state;
	sl_rate_init(&r, 100, 50, 0);
	/* An hour idle leaves 50 tokens, not 360,000. */
	assert_int_equal(sl_rate_take(&r, 50, 3600000 * MS), 0);
	assert_true(sl_rate_take(&r, 1, 3600000 * MS) > 0);
}

static void unlimited_never_waits(void **state)
{
	struct sl_rate r;

	(void)state;
	sl_rate_init(&r, 0, 0, 0);
	assert_int_equal(sl_rate_take(&r, 1e12, 0), 0);
}

static void a_clock_going_back_adds_nothing(void **state)
{
	struct sl_rate r;

	(void)state;
	sl_rate_init(&r, 1000, 1000, 500 * MS);
	assert_true(sl_rate_take(&r, 1, 400 * MS) >= 1 * MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(starts_empty_so_the_first_take_waits),
	        cmocka_unit_test(waiting_as_told_moves_at_the_rate),
	        cmocka_unit_test(idle_time_fills_no_more_than_the_burst),
	        cmocka_unit_test(unlimited_never_waits),
	        cmocka_unit_test(a_clock_going_back_adds_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
