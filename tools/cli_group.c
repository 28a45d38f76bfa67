/* `synclog group list|describe|delete|alter`: what an operator sees of consumer groups (members, committed offsets,
 * lag in records and in time, last commit, the health state the broker judges), how a finished target's group is
 * removed, and how a group's health settings are changed. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "consumer/client/synclog.h"
#include "proto/base/duration.h"
#include "tools/cli.h"

/* How the states are judged on a Kafka cluster (consumer/client/kafka_health.c), for list's and describe's help. */
#define KAFKA_HEALTH_HELP                                                                                           \
	"On a kafka:// broker this client judges the states from one look (the cluster keeps no history of\n"       \
	"commits): lost (committed below the log start), idle (nothing waits), stopped (no live member, records\n"  \
	"wait), stalled (the oldest waiting record is stall-after old or older), lagging (it is older than 10 s,\n" \
	"or stall-after/2 when that is shorter), else ok. --stall-after D sets it there (default 60s); a group\n"   \
	"that commits steadily but is more than stall-after behind is stalled here, lagging on synclogd. The\n"     \
	"generation is not shown, and nor are members on a cluster that does not describe groups.\n"

static const struct cli_command group_command = {
        .name = "group",
        .usage = "usage: synclog group list [--stall-after DURATION]\n"
                 "       synclog group describe GROUP [--stall-after DURATION]\n"
                 "       synclog group delete GROUP [--force]\n"
                 "       synclog group alter GROUP [--stall-after DURATION] [--window N]\n",
};

static const struct cli_command list_command = {
        .name = "group list",
        .usage = "usage: synclog group list [--stall-after DURATION]\n"
                 "\n"
                 "List the consumer groups: name, live members, generation, the worst health state of its\n"
                 "partitions (ok, idle, lagging, stalled, stopped, lost; see group describe) and since when, and lag\n"
                 "(records over all partitions, the largest in time). With --json, one object per group:\n"
                 "{\"group\":G,\"members\":N,\"generation\":N,\"state\":S,\"state_since_ms\":T,\"lag\":L,\"lag_ms\":MS}"
                 "\n" KAFKA_HEALTH_HELP,
};

static const struct cli_command describe_command = {
        .name = "group describe",
        .usage =
                "usage: synclog group describe GROUP [--stall-after DURATION]\n"
                "\n"
                "Per partition of every topic the group commits to or subscribes to: the committed offset (-1: none),\n"
                "the next offset (log end), the lag in records (from the log start when nothing is committed), the\n"
                "lag in time (now minus the timestamp of the oldest unconsumed record, 0s when caught up; 3m2s in\n"
                "the table), the member it is assigned to, the last commit time, and the health state the broker\n"
                "judges with since when:\n"
                "  ok       consuming\n"
                "  idle     nothing new to consume (never an alarm)\n"
                "  lagging  the lag grew over the whole window of samples while commits move\n"
                "  stalled  a live member's commits have not moved for stall-after while records wait\n"
                "  stopped  no live member and records have waited for stall-after\n"
                "  lost     retention removed records before the group consumed them (until an offset reset or a\n"
                "           backfill)\n"
                "The text form also lists the members (client id, host) and an applier's counters. With --json, one\n"
                "object per partition, raw numbers:\n"
                "{\"group\":G,\"topic\":T,\"partition\":P,\"committed\":C,\"next_offset\":N,\"lag\":L,\"lag_ms\":MS,\n"
                " \"member\":\"ID\" or null,\"last_commit_ms\":T,\"state\":S,\"state_since_ms\":T,\"records_lost\":N,\n"
                " \"at_risk\":null or \"why\",\"stall_after_ms\":MS}  (last_commit_ms 0: never committed)\n"
                "stall-after is the group's own (group alter), else the recovery.alert.stall_after of the topic's\n"
                "sync contract (a line under the header names such topics), else the broker's --stall-after.\n"
                "at_risk (a WARNING line after the table): retention keeps records past the topic's retention\n"
                "only for this group (retain.for.groups), or on a compacted topic the lag in time is 80% or more\n"
                "of delete.retention.ms, so a replay from earliest by this group would miss deletes.\n"
                "Exits 1 when the group does not exist.\n" KAFKA_HEALTH_HELP,
};

static const struct cli_command delete_command = {
        .name = "group delete",
        .usage = "usage: synclog group delete GROUP [--force]\n"
                 "\n"
                 "Delete a group and its committed offsets. Refused (exit 1) while the group has live members, unless\n"
                 "--force, which also removes them (they join again as new members of a new group, if they run on).\n"
                 "Prints `deleted group G`, or {\"deleted\":G} with --json.\n",
};

static const struct cli_command alter_command = {
        .name = "group alter",
        .usage = "usage: synclog group alter GROUP [--stall-after DURATION] [--window N]\n"
                 "\n"
                 "Set a group's health settings (kept by the broker with the group's offsets):\n"
                 "  --stall-after D   how long commits may stand still while records wait before the group is\n"
                 "                    `stalled` (500ms, 30s, 5m, 2h, 7d or ISO 8601 such as PT1M); 0: the broker's\n"
                 "                    --stall-after\n"
                 "  --window N        samples over which a growing lag makes the group `lagging` (2 to 60); 0: the\n"
                 "                    broker's --health-window\n"
                 "A setting not given is set back to the broker's. Prints `altered group G`.\n"
                 "Refused on a kafka:// broker, which keeps no such settings: there, give --stall-after to group\n"
                 "describe, group list or status, which judge the states client-side.\n",
};

static int group_list(const struct cli *cli, int argc, char **argv)
{
	struct sl_group_summary *groups;
	struct sl_conn *c;
	const char *value;
	int64_t stall_after_ms = 0;
	uint32_t count;
	int rc;

	for (int i = 0; i < argc; i++) {
		if ((rc = cli_flag(argc, argv, &i, "--stall-after", &value)) != 0) {
			if (rc < 0)
				return cli_usage_error(&list_command, "--stall-after needs a duration");
			if (cli_stall_after_parse(cli, &list_command, value, &stall_after_ms) != 0)
				return CLI_EXIT_USAGE;
		} else {
			return cli_usage_error(&list_command, "unexpected argument '%s'", argv[i]);
		}
	}
	c = cli_connect(cli, &list_command, "synclog-cli");
	if (c == NULL)
		return CLI_EXIT_FAIL;
	rc = stall_after_ms > 0 ? sl_conn_set_stall_after(c, stall_after_ms) : 0;
	if (rc == 0)
		rc = sl_group_list(c, &groups, &count);
	if (rc != 0) {
		rc = cli_fail(&list_command, "%s", sl_conn_error(c));
		sl_conn_free(c);
		return rc;
	}
	if (!cli->json)
		printf("%-32s %8s %10s %-8s %-24s %10s %10s\n", "GROUP", "MEMBERS", "GENERATION", "STATE", "SINCE",
		       "LAG", "LAG_MS");
	for (uint32_t i = 0; i < count; i++) {
		const struct sl_group_summary *g = &groups[i];
		char since[40];

		if (cli->json) {
			fputs("{\"group\":", stdout);
			cli_json_string(g->group);
			printf(",\"members\":%u,\"generation\":%d,\"state\":\"%s\",\"state_since_ms\":%" PRId64
			       ",\"lag\":%" PRId64 ",\"lag_ms\":%" PRId64 "}\n",
			       g->members, g->generation, g->state, g->state_since_ms, g->lag, g->lag_ms);
		} else {
			cli_time_format(g->state_since_ms, since, sizeof(since));
			printf("%-32s %8u %10d %-8s %-24s %10" PRId64 " %10" PRId64 "\n", g->group, g->members,
			       g->generation, g->state, since, g->lag, g->lag_ms);
		}
	}
	free(groups);
	sl_conn_free(c);
	return CLI_EXIT_OK;
}

static void lag_print_json(const char *group, const struct sl_group_lag *p)
{
	fputs("{\"group\":", stdout);
	cli_json_string(group);
	fputs(",\"topic\":", stdout);
	cli_json_string(p->topic);
	printf(",\"partition\":%u,\"committed\":%" PRId64 ",\"next_offset\":%" PRId64 ",\"lag\":%" PRId64
	       ",\"lag_ms\":%" PRId64 ",\"member\":",
	       p->partition, p->committed, p->next_offset, p->lag, p->lag_ms);
	if (p->member_id[0] != '\0')
		cli_json_string(p->member_id);
	else
		fputs("null", stdout);
	printf(",\"last_commit_ms\":%" PRId64 ",\"state\":\"%s\",\"state_since_ms\":%" PRId64
	       ",\"records_lost\":%" PRId64 ",\"at_risk\":",
	       p->last_commit_ms, p->state, p->state_since_ms, p->records_lost);
	if (p->at_risk[0] != '\0')
		cli_json_string(p->at_risk);
	else
		fputs("null", stdout);
	printf(",\"stall_after_ms\":%" PRId64 "}\n", p->stall_after_ms);
}

static int group_describe(const struct cli *cli, int argc, char **argv)
{
	struct sl_group_description *d;
	struct sl_conn *c;
	const char *name = NULL, *value;
	int64_t stall_after_ms = 0;
	int rc;

	for (int i = 0; i < argc; i++) {
		if ((rc = cli_flag(argc, argv, &i, "--stall-after", &value)) != 0) {
			if (rc < 0)
				return cli_usage_error(&describe_command, "--stall-after needs a duration");
			if (cli_stall_after_parse(cli, &describe_command, value, &stall_after_ms) != 0)
				return CLI_EXIT_USAGE;
			continue;
		}
		if (cli_operand(&describe_command, argv[i], &name) != 0)
			return CLI_EXIT_USAGE;
	}
	if (name == NULL)
		return cli_usage_error(&describe_command, "the GROUP is required");
	c = cli_connect(cli, &describe_command, "synclog-cli");
	if (c == NULL)
		return CLI_EXIT_FAIL;
	rc = stall_after_ms > 0 ? sl_conn_set_stall_after(c, stall_after_ms) : 0;
	if (rc == 0)
		rc = sl_group_describe(c, name, &d);
	if (rc != 0) {
		if (rc == -ENOENT)
			rc = cli_fail(&describe_command, "unknown group '%s': `synclog group list` shows the groups",
			              name);
		else
			rc = cli_fail(&describe_command, "%s", sl_conn_error(c));
		sl_conn_free(c);
		return rc;
	}
	if (!cli->json) {
		if (d->generation >= 0)
			printf("group %s: generation %d, %u live member%s, state %s (stall-after %" PRId64
			       " ms, window %u)\n",
			       d->group, d->generation, d->member_count, d->member_count == 1 ? "" : "s", d->state,
			       d->stall_after_ms, d->window);
		else if (d->members_unknown) /* a Kafka cluster that does not answer DescribeGroups */
			printf("group %s: members unknown (the cluster does not describe groups), state %s "
			       "(stall-after %" PRId64 " ms, judged by this client)\n",
			       d->group, d->state, d->stall_after_ms);
		else /* a Kafka cluster: its Admin API gives no generation, and the states are judged here */
			printf("group %s: %u live member%s, state %s (stall-after %" PRId64
			       " ms, judged by this client)\n",
			       d->group, d->member_count, d->member_count == 1 ? "" : "s", d->state, d->stall_after_ms);
		/* Topics whose sync contract sets the stall-after of their partitions (rows come topic by topic). */
		for (uint32_t i = 0; i < d->partition_count; i++) {
			const struct sl_group_lag *p = &d->partitions[i];

			if (p->stall_after_ms > 0 && p->stall_after_ms != d->stall_after_ms &&
			    (i == 0 || strcmp(p->topic, d->partitions[i - 1].topic) != 0))
				printf("topic %s: stall-after %" PRId64
				       " ms (its sync contract's recovery.alert.stall_after)\n",
				       p->topic, p->stall_after_ms);
		}
		for (uint32_t i = 0; i < d->member_count; i++)
			printf("member %s: client %s, host %s, %u partition%s\n", d->members[i].member_id,
			       d->members[i].client_id, d->members[i].client_host[0] ? d->members[i].client_host : "-",
			       d->members[i].partition_count, d->members[i].partition_count == 1 ? "" : "s");
		if (d->applier.reported_ms > 0)
			printf("applier %s: applied %llu stale %llu duplicate %llu deleted %llu dead_lettered %llu\n",
			       d->applier.target[0] ? d->applier.target : "-", (unsigned long long)d->applier.applied,
			       (unsigned long long)d->applier.stale, (unsigned long long)d->applier.duplicate,
			       (unsigned long long)d->applier.deleted, (unsigned long long)d->applier.dead_lettered);
		/* The member id, of variable length, comes last so that the columns stay aligned. */
		printf("%-24s %9s %12s %12s %10s %10s %-8s %-24s %-24s %s\n", "TOPIC", "PARTITION", "COMMITTED",
		       "NEXT_OFFSET", "LAG", "LAG_TIME", "STATE", "SINCE", "LAST_COMMIT", "MEMBER");
	}
	for (uint32_t i = 0; i < d->partition_count; i++) {
		const struct sl_group_lag *p = &d->partitions[i];
		char when[40], lag_time[SL_DURATION_TEXT_BYTES];

		if (cli->json) {
			lag_print_json(d->group, p);
			continue;
		}
		char since[40];

		cli_time_format(p->last_commit_ms, when, sizeof(when));
		cli_time_format(p->state_since_ms, since, sizeof(since));
		sl_duration_format(p->lag_ms, lag_time, sizeof(lag_time)); /* 3m2s: people read this column */
		printf("%-24s %9u %12" PRId64 " %12" PRId64 " %10" PRId64 " %10s %-8s %-24s %-24s %s\n", p->topic,
		       p->partition, p->committed, p->next_offset, p->lag, lag_time, p->state, since, when,
		       p->member_id[0] != '\0' ? p->member_id : "-");
	}
	/* Warnings after the table, one line each, so that they are read and the columns stay aligned. */
	for (uint32_t i = 0; !cli->json && i < d->partition_count; i++)
		if (d->partitions[i].at_risk[0] != '\0')
			printf("WARNING %s/%u at risk: %s\n", d->partitions[i].topic, d->partitions[i].partition,
			       d->partitions[i].at_risk);
	sl_group_description_free(d);
	sl_conn_free(c);
	return CLI_EXIT_OK;
}

static int group_delete(const struct cli *cli, int argc, char **argv)
{
	struct sl_conn *c;
	const char *name = NULL;
	bool force = false;
	int rc;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--force") == 0)
			force = true;
		else if (cli_operand(&delete_command, argv[i], &name) != 0)
			return CLI_EXIT_USAGE;
	}
	if (name == NULL)
		return cli_usage_error(&delete_command, "the GROUP is required");
	c = cli_connect(cli, &delete_command, "synclog-cli");
	if (c == NULL)
		return CLI_EXIT_FAIL;
	rc = sl_group_delete(c, name, force);
	if (rc == -ENOENT) {
		rc = cli_fail(&delete_command, "unknown group '%s': `synclog group list` shows the groups", name);
	} else if (rc != 0) {
		rc = cli_fail(&delete_command, "%s", sl_conn_error(c));
	} else {
		rc = cli_print_done(cli, "deleted", "group", name);
	}
	sl_conn_free(c);
	return rc;
}

static int group_alter(const struct cli *cli, int argc, char **argv)
{
	struct sl_conn *c;
	const char *name = NULL, *value;
	int64_t stall_after_ms = 0, window = 0;
	int rc;

	for (int i = 0; i < argc; i++) {
		if ((rc = cli_flag(argc, argv, &i, "--stall-after", &value)) != 0) {
			if (rc < 0 || (strcmp(value, "0") != 0 && sl_duration_parse(value, &stall_after_ms) != 0) ||
			    (stall_after_ms != 0 && stall_after_ms < 100))
				return cli_usage_error(
				        &alter_command,
				        "--stall-after needs a duration of at least 100ms (30s, 5m, PT1M) or 0");
		} else if ((rc = cli_flag(argc, argv, &i, "--window", &value)) != 0) {
			if (rc < 0 || cli_parse_i64(value, 0, 60, &window) != 0 || window == 1)
				return cli_usage_error(&alter_command, "--window needs 2 to 60 samples, or 0");
		} else if (cli_operand(&alter_command, argv[i], &name) != 0) {
			return CLI_EXIT_USAGE;
		}
	}
	if (name == NULL)
		return cli_usage_error(&alter_command, "the GROUP is required");
	c = cli_connect(cli, &alter_command, "synclog-cli");
	if (c == NULL)
		return CLI_EXIT_FAIL;
	rc = sl_group_alter(c, name, stall_after_ms, (uint32_t)window);
	if (rc != 0) {
		rc = cli_fail(&alter_command, "%s", sl_conn_error(c));
	} else {
		rc = cli_print_done(cli, "altered", "group", name);
	}
	sl_conn_free(c);
	return rc;
}

int cli_group(const struct cli *cli, int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
	        {"list", &list_command, group_list},
	        {"describe", &describe_command, group_describe},
	        {"delete", &delete_command, group_delete},
	        {"alter", &alter_command, group_alter},
	};
	return cli_subcommand_run(&group_command, subs, (int)(sizeof(subs) / sizeof(subs[0])), cli, argc, argv);
}
