/* The health states of a group partition on a Kafka cluster, judged client-side from one snapshot
 * (consumer/client/kafka_health.c): one test per rule, in the rules' order, and the thresholds it reads. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "consumer/client/transport.h"

#define NOW    1800000000000LL
#define STALL  60000LL
#define LAGGED 10000LL /* sl_kafka_health_lagging_ms(60 s): 10 ticks of 1 s */

static enum sl_kafka_health judge(int64_t log_start, int64_t committed, int64_t lag, int64_t lag_ms, bool members_known,
                                  uint32_t members, int64_t *since, int64_t *lost)
{
	struct sl_kafka_health_input in = {
	        .log_start = log_start,
	        .committed = committed,
	        .lag = lag,
	        .lag_ms = lag_ms,
	        .members_known = members_known,
	        .members = members,
	        .stall_after_ms = STALL,
	        .now_ms = NOW,
	};
	return sl_kafka_health_judge(&in, since, lost);
}

/* Rule 1: a commit below the log start is lost, whatever else holds, with the records removed counted. */
static void commit_below_the_log_start_is_lost(void **state)
{
	int64_t since, lost;

	(void)state;
	assert_int_equal(judge(500, 200, 0, 0, true, 1, &since, &lost), SL_KAFKA_HEALTH_LOST);
	assert_int_equal(lost, 300);
	assert_int_equal(since, 0);
	assert_int_equal(judge(500, 200, 40, 90000, true, 0, &since, &lost), SL_KAFKA_HEALTH_LOST);
	/* Nothing committed is never lost: a new group starts at the log start. */
	assert_int_equal(judge(500, -1, 0, 0, true, 0, &since, &lost), SL_KAFKA_HEALTH_IDLE);
	assert_int_equal(judge(500, 500, 0, 0, true, 0, &since, &lost), SL_KAFKA_HEALTH_IDLE);
	assert_int_equal(lost, 0);
}

/* Rule 2: nothing waits, idle, even with no member and an old commit. */
static void nothing_waiting_is_idle(void **state)
{
	int64_t since, lost;

	(void)state;
	assert_int_equal(judge(0, 100, 0, 0, true, 0, &since, &lost), SL_KAFKA_HEALTH_IDLE);
	assert_int_equal(judge(0, 100, 0, 0, false, 0, &since, &lost), SL_KAFKA_HEALTH_IDLE);
}

/* Rule 3: records wait and the group has no live member: stopped, however young the records. */
static void records_waiting_without_a_member_is_stopped(void **state)
{
	int64_t since, lost;

	(void)state;
	assert_int_equal(judge(0, 100, 5, 1, true, 0, &since, &lost), SL_KAFKA_HEALTH_STOPPED);
	assert_int_equal(judge(0, 100, 5, 3 * STALL, true, 0, &since, &lost), SL_KAFKA_HEALTH_STOPPED);
	/* Members unknown (no DescribeGroups): never stopped, judged by age. */
	assert_int_equal(judge(0, 100, 5, 1, false, 0, &since, &lost), SL_KAFKA_HEALTH_OK);
}

/* Rule 4: the oldest waiting record is stall-after old: stalled since its timestamp + stall-after. */
static void oldest_record_waiting_stall_after_is_stalled(void **state)
{
	int64_t since, lost;

	(void)state;
	assert_int_equal(judge(0, 100, 5, STALL, true, 2, &since, &lost), SL_KAFKA_HEALTH_STALLED);
	assert_int_equal(since, NOW);
	assert_int_equal(judge(0, 100, 5, STALL + 30000, false, 0, &since, &lost), SL_KAFKA_HEALTH_STALLED);
	assert_int_equal(since, NOW - 30000);
}

/* Rule 5: older than the window's span but younger than stall-after: lagging since timestamp + span. */
static void oldest_record_older_than_the_window_is_lagging(void **state)
{
	int64_t since, lost;

	(void)state;
	assert_int_equal(sl_kafka_health_lagging_ms(STALL), LAGGED);
	assert_int_equal(judge(0, 100, 5, LAGGED + 1, true, 1, &since, &lost), SL_KAFKA_HEALTH_LAGGING);
	assert_int_equal(since, NOW - 1);
	assert_int_equal(judge(0, 100, 5, STALL - 1, true, 1, &since, &lost), SL_KAFKA_HEALTH_LAGGING);
}

/* Rule 6: records wait for no longer than the span: ok, with no since. */
static void young_waiting_records_are_ok(void **state)
{
	int64_t since, lost;

	(void)state;
	assert_int_equal(judge(0, 100, 5000, LAGGED, true, 1, &since, &lost), SL_KAFKA_HEALTH_OK);
	assert_int_equal(since, 0);
	assert_int_equal(judge(0, 100, 5, 0, true, 1, &since, &lost), SL_KAFKA_HEALTH_OK);
}

/* The span follows the broker's tick (stall-after / 4, 100 ms to 1 s) and never reaches stall-after. */
static void lagging_span_stays_below_stall_after(void **state)
{
	(void)state;
	assert_int_equal(sl_kafka_health_lagging_ms(3600000), 10000);
	assert_int_equal(sl_kafka_health_lagging_ms(2000), 1000);
	assert_int_equal(sl_kafka_health_lagging_ms(100), 50);
	for (int64_t s = 100; s <= 600000; s += 97)
		assert_true(sl_kafka_health_lagging_ms(s) < s);
}

/* Names as synclogd's, and back. */
static void names_round_trip(void **state)
{
	(void)state;
	for (int h = SL_KAFKA_HEALTH_IDLE; h <= SL_KAFKA_HEALTH_LOST; h++)
		assert_int_equal(sl_kafka_health_of_name(sl_kafka_health_name((enum sl_kafka_health)h)), h);
	assert_string_equal(sl_kafka_health_name(SL_KAFKA_HEALTH_STALLED), "stalled");
	assert_int_equal(sl_kafka_health_of_name(""), SL_KAFKA_HEALTH_IDLE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(commit_below_the_log_start_is_lost),
	        cmocka_unit_test(nothing_waiting_is_idle),
	        cmocka_unit_test(records_waiting_without_a_member_is_stopped),
	        cmocka_unit_test(oldest_record_waiting_stall_after_is_stalled),
	        cmocka_unit_test(oldest_record_older_than_the_window_is_lagging),
	        cmocka_unit_test(young_waiting_records_are_ok),
	        cmocka_unit_test(lagging_span_stays_below_stall_after),
	        cmocka_unit_test(names_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
