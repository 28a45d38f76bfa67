/* `synclog group list|describe|delete`: what an operator sees of consumer groups (members, committed offsets, lag
 * in records and in time, last commit) and how a finished target's group is removed. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "consumer/client/synclog.h"
#include "tools/cli.h"

static const struct cli_command group_command = {
        .name = "group",
        .usage = "usage: synclog group list\n"
                 "       synclog group describe GROUP\n"
                 "       synclog group delete GROUP [--force]\n",
};

static const struct cli_command list_command = {
        .name = "group list",
        .usage = "usage: synclog group list\n"
                 "\n"
                 "List the consumer groups: name, live members, generation. With --json, one object per group:\n"
                 "{\"group\":G,\"members\":N,\"generation\":N}\n",
};

static const struct cli_command describe_command = {
        .name = "group describe",
        .usage =
                "usage: synclog group describe GROUP\n"
                "\n"
                "Per partition of every topic the group commits to or subscribes to: the committed offset (-1: none),\n"
                "the next offset (log end), the lag in records (from the log start when nothing is committed), the\n"
                "lag in time (now minus the timestamp of the oldest unconsumed record, 0s when caught up; 3m2s in\n"
                "the table), the member it is assigned to, and the last commit time. With --json, one object per\n"
                "partition, raw numbers:\n"
                "{\"group\":G,\"topic\":T,\"partition\":P,\"committed\":C,\"next_offset\":N,\"lag\":L,\"lag_ms\":MS,\n"
                " \"member\":\"ID\" or null,\"last_commit_ms\":T,\"at_risk\":null or \"why\"}  (last_commit_ms 0: never"
                " committed)\n"
                "at_risk (a WARNING line after the table): retention keeps records past the topic's retention\n"
                "only for this group (retain.for.groups), or on a compacted topic the lag in time is 80% or more\n"
                "of delete.retention.ms, so a replay from earliest by this group would miss deletes.\n"
                "Exits 1 when the group does not exist.\n",
};

static const struct cli_command delete_command = {
        .name = "group delete",
        .usage = "usage: synclog group delete GROUP [--force]\n"
                 "\n"
                 "Delete a group and its committed offsets. Refused (exit 1) while the group has live members, unless\n"
                 "--force, which also removes them (they join again as new members of a new group, if they run on).\n"
                 "Prints `deleted group G`, or {\"deleted\":G} with --json.\n",
};

static void json_string(const char *s)
{
	sl_json_print_string(stdout, s, strlen(s));
}

static int group_list(const struct cli *cli, int argc, char **argv)
{
	struct sl_group_summary *groups;
	struct sl_conn *c;
	uint32_t count;
	int rc;

	if (argc > 0)
		return cli_usage_error(&list_command, "unexpected argument '%s'", argv[0]);
	c = cli_connect(cli, &list_command, "synclog-cli");
	if (c == NULL)
		return CLI_EXIT_FAIL;
	rc = sl_group_list(c, &groups, &count);
	if (rc != 0) {
		rc = cli_fail(&list_command, "%s", sl_conn_error(c));
		sl_conn_free(c);
		return rc;
	}
	if (!cli->json)
		printf("%-32s %8s %10s\n", "GROUP", "MEMBERS", "GENERATION");
	for (uint32_t i = 0; i < count; i++) {
		if (cli->json) {
			fputs("{\"group\":", stdout);
			json_string(groups[i].group);
			printf(",\"members\":%u,\"generation\":%d}\n", groups[i].members, groups[i].generation);
		} else {
			printf("%-32s %8u %10d\n", groups[i].group, groups[i].members, groups[i].generation);
		}
	}
	free(groups);
	sl_conn_free(c);
	return CLI_EXIT_OK;
}

static void lag_print_json(const char *group, const struct sl_group_lag *p)
{
	fputs("{\"group\":", stdout);
	json_string(group);
	fputs(",\"topic\":", stdout);
	json_string(p->topic);
	printf(",\"partition\":%u,\"committed\":%" PRId64 ",\"next_offset\":%" PRId64 ",\"lag\":%" PRId64
	       ",\"lag_ms\":%" PRId64 ",\"member\":",
	       p->partition, p->committed, p->next_offset, p->lag, p->lag_ms);
	if (p->member_id[0] != '\0')
		json_string(p->member_id);
	else
		fputs("null", stdout);
	printf(",\"last_commit_ms\":%" PRId64 ",\"at_risk\":", p->last_commit_ms);
	if (p->at_risk[0] != '\0')
		json_string(p->at_risk);
	else
		fputs("null", stdout);
	fputs("}\n", stdout);
}

static int group_describe(const struct cli *cli, int argc, char **argv)
{
	struct sl_group_description *d;
	struct sl_conn *c;
	const char *name = NULL;
	int rc;

	for (int i = 0; i < argc; i++) {
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			return cli_usage_error(&describe_command, "unknown flag '%s'", argv[i]);
		if (name != NULL)
			return cli_usage_error(&describe_command, "unexpected argument '%s'", argv[i]);
		name = argv[i];
	}
	if (name == NULL)
		return cli_usage_error(&describe_command, "the GROUP is required");
	c = cli_connect(cli, &describe_command, "synclog-cli");
	if (c == NULL)
		return CLI_EXIT_FAIL;
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
		if (d->members_unknown) /* a Kafka cluster that does not answer DescribeGroups */
			printf("group %s: members unknown (the cluster does not describe groups)\n", d->group);
		else if (d->generation < 0) /* a Kafka cluster: its Admin API does not give the generation */
			printf("group %s: %u live member%s\n", d->group, d->member_count,
			       d->member_count == 1 ? "" : "s");
		else
			printf("group %s: generation %d, %u live member%s\n", d->group, d->generation, d->member_count,
			       d->member_count == 1 ? "" : "s");
		/* The member id, of variable length, comes last so that the columns stay aligned. */
		printf("%-24s %9s %12s %12s %10s %10s %-24s %s\n", "TOPIC", "PARTITION", "COMMITTED", "NEXT_OFFSET",
		       "LAG", "LAG_TIME", "LAST_COMMIT", "MEMBER");
	}
	for (uint32_t i = 0; i < d->partition_count; i++) {
		const struct sl_group_lag *p = &d->partitions[i];
		char when[40], lag_time[SL_DURATION_TEXT_BYTES];

		if (cli->json) {
			lag_print_json(d->group, p);
			continue;
		}
		cli_time_format(p->last_commit_ms, when, sizeof(when));
		sl_duration_format(p->lag_ms, lag_time, sizeof(lag_time)); /* 3m2s: people read this column */
		printf("%-24s %9u %12" PRId64 " %12" PRId64 " %10" PRId64 " %10s %-24s %s\n", p->topic, p->partition,
		       p->committed, p->next_offset, p->lag, lag_time, when,
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
		else if (argv[i][0] == '-' && argv[i][1] != '\0')
			return cli_usage_error(&delete_command, "unknown flag '%s'", argv[i]);
		else if (name != NULL)
			return cli_usage_error(&delete_command, "unexpected argument '%s'", argv[i]);
		else
			name = argv[i];
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
		if (cli->json) {
			fputs("{\"deleted\":", stdout);
			json_string(name);
			fputs("}\n", stdout);
		} else {
			printf("deleted group %s\n", name);
		}
		rc = CLI_EXIT_OK;
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
	};
	return cli_subcommand_run(&group_command, subs, (int)(sizeof(subs) / sizeof(subs[0])), cli, argc, argv);
}
