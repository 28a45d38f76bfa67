/* The health states of a group's partitions on a Kafka cluster, judged by the client from one snapshot (the log
 * start and end from ListOffsets, the committed offset, the age of the oldest unconsumed record, the live members
 * from DescribeGroups). synclogd judges the same states itself from a window of samples (broker/group_health.c);
 * a Kafka cluster keeps no such history, so the rules below read what one look can tell. Pure: no I/O.
 *
 * RULES (in this order, the first that holds; tests/unit/test_kafka_group_health.c has one test each)
 *   1. lost     something is committed and it is below the log start: retention removed the records between
 *               (records_lost = log start - committed). Since: unknown (0).
 *   2. idle     nothing waits (lag 0).
 *   3. stopped  the group has no live member (known from DescribeGroups) and records wait. Since: unknown (0).
 *   4. stalled  the oldest waiting record has waited stall_after or longer: nothing was committed past it in that
 *               time, whatever the members do. Since: its timestamp + stall_after.
 *   5. lagging  the oldest waiting record has waited longer than the span synclogd watches for a growing lag
 *               (SL_KAFKA_HEALTH_WINDOW ticks of min(1 s, stall_after / 4), at most stall_after / 2): the group
 *               has not caught up over that span. Since: its timestamp + that span.
 *   6. ok       records wait, for less than that span.
 * Unknown members (a cluster that does not answer DescribeGroups) never make a group stopped: rules 4 to 6 judge
 * it by the age of its records alone.
 *
 * How this differs from the broker's windowed judgement: the broker sees commits move or stand still over time;
 * a snapshot sees only how long the oldest record has waited. A group that commits steadily but is further behind
 * than stall_after is `stalled` here and `lagging` on synclogd; a group whose lag grows fast but whose oldest record
 * is younger than the span is `ok` here. */
#include <string.h>

#include "consumer/client/transport.h"

static const char *const health_names[] = {"idle", "ok", "lagging", "stopped", "stalled", "lost"};

int64_t sl_kafka_health_lagging_ms(int64_t stall_after_ms)
{
	int64_t tick = stall_after_ms / 4;
	if (tick > 1000)
		tick = 1000;
	if (tick < 100)
		tick = 100;
	int64_t span = tick * SL_KAFKA_HEALTH_WINDOW;
	return span > stall_after_ms / 2 ? stall_after_ms / 2 : span;
}

enum sl_kafka_health sl_kafka_health_judge(const struct sl_kafka_health_input *in, int64_t *since_ms_out,
                                           int64_t *records_lost_out)
{
	int64_t lagging_ms = sl_kafka_health_lagging_ms(in->stall_after_ms);
	int64_t oldest_ms = in->now_ms - in->lag_ms; /* the timestamp of the oldest waiting record */

	*since_ms_out = 0;
	*records_lost_out = 0;
	if (in->committed >= 0 && in->committed < in->log_start) {
		*records_lost_out = in->log_start - in->committed;
		return SL_KAFKA_HEALTH_LOST;
	}
	if (in->lag <= 0)
		return SL_KAFKA_HEALTH_IDLE;
	if (in->members_known && in->members == 0)
		return SL_KAFKA_HEALTH_STOPPED;
	if (in->lag_ms >= in->stall_after_ms) {
		*since_ms_out = oldest_ms + in->stall_after_ms;
		return SL_KAFKA_HEALTH_STALLED;
	}
	if (in->lag_ms > lagging_ms) {
		*since_ms_out = oldest_ms + lagging_ms;
		return SL_KAFKA_HEALTH_LAGGING;
	}
	return SL_KAFKA_HEALTH_OK;
}

const char *sl_kafka_health_name(enum sl_kafka_health h)
{
	return (unsigned)h < sizeof(health_names) / sizeof(health_names[0]) ? health_names[h] : "unknown";
}

enum sl_kafka_health sl_kafka_health_of_name(const char *name)
{
	for (unsigned i = 0; i < sizeof(health_names) / sizeof(health_names[0]); i++)
		if (strcmp(name, health_names[i]) == 0)
			return (enum sl_kafka_health)i;
	return SL_KAFKA_HEALTH_IDLE;
}
