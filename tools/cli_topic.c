/* `synclog topic create|list|describe`: topic administration, one request each, printed as a text table or as one
 * JSON object per line. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/client/synclog.h"
#include "tools/cli.h"

static const struct cli_command topic_command = {
        .name = "topic",
        .usage = "usage: synclog topic create NAME --partitions N [--retention-ms MS] [--retention-bytes B] "
                 "[--compact]\n"
                 "       synclog topic list\n"
                 "       synclog topic describe NAME\n"
                 "       synclog topic delete NAME\n",
};

static const struct cli_command delete_command = {
        .name = "topic delete",
        .usage = "usage: synclog topic delete NAME\n"
                 "\n"
                 "Delete a topic and every record in it. Groups keep their committed offsets for it until deleted.\n"
                 "Prints `deleted topic NAME`, or {\"deleted\":NAME} with --json.\n",
};

static const struct cli_command create_command = {
        .name = "topic create",
        .usage = "usage: synclog topic create NAME --partitions N [--retention-ms MS] [--retention-bytes B] "
                 "[--compact]\n"
                 "\n"
                 "Create a topic of N partitions.\n"
                 "  --partitions N       number of partitions (records of one key always go to the same one)\n"
                 "  --retention-ms MS    delete segments whose records are all older than MS; -1 keeps forever "
                 "(default)\n"
                 "  --retention-bytes B  keep at most about B bytes per partition; -1: no limit (default)\n"
                 "  --compact            keep the newest version of each key when compacting\n"
                 "Prints `created topic NAME with N partitions`, or {\"created\":NAME,\"partitions\":N} with --json.\n",
};

static const struct cli_command list_command = {
        .name = "topic list",
        .usage = "usage: synclog topic list\n"
                 "\n"
                 "List the topics: name, partitions, retention and compaction. With --json, one object per topic:\n"
                 "{\"topic\":T,\"partitions\":N,\"retention_ms\":MS,\"retention_bytes\":B,\"compact\":false}\n",
};

static const struct cli_command describe_command = {
        .name = "topic describe",
        .usage = "usage: synclog topic describe NAME\n"
                 "\n"
                 "Per partition: earliest offset, next offset, bytes stored, segment count. With --json, one object "
                 "per\n"
                 "partition: "
                 "{\"topic\":T,\"partition\":P,\"earliest_offset\":E,\"next_offset\":N,\"bytes\":B,\"segments\":S}\n"
                 "(plus \"error\" and \"error_message\" for a partition that failed to open; the command then exits "
                 "1).\n",
};

/* Topic names are [A-Za-z0-9._-] (the broker refuses others), so they print into JSON as they are; anything else
 * goes through the escaper anyway. */
static void json_name(const char *name)
{
	sl_json_print_string(stdout, name, strlen(name));
}

static int topic_create(const struct cli *cli, int argc, char **argv)
{
	struct sl_topic_config cfg = {.retention_ms = -1, .retention_bytes = -1};
	const char *name = NULL, *value;
	uint64_t partitions = 0;
	struct sl_conn *c;
	int rc;

	for (int i = 0; i < argc; i++) {
		if ((rc = cli_flag(argc, argv, &i, "--partitions", &value)) != 0) {
			if (rc < 0 || cli_parse_u64(value, 1000000, &partitions) != 0 || partitions == 0)
				return cli_usage_error(&create_command, "--partitions needs a number of at least 1");
		} else if ((rc = cli_flag(argc, argv, &i, "--retention-ms", &value)) != 0) {
			if (rc < 0 || cli_parse_i64(value, -1, INT64_MAX, &cfg.retention_ms) != 0 ||
			    cfg.retention_ms == 0)
				return cli_usage_error(&create_command,
				                       "--retention-ms needs milliseconds (at least 1), or -1 to keep "
				                       "records forever");
		} else if ((rc = cli_flag(argc, argv, &i, "--retention-bytes", &value)) != 0) {
			if (rc < 0 || cli_parse_i64(value, -1, INT64_MAX, &cfg.retention_bytes) != 0 ||
			    cfg.retention_bytes == 0)
				return cli_usage_error(
				        &create_command,
				        "--retention-bytes needs bytes (at least 1), or -1 for no limit");
		} else if (strcmp(argv[i], "--compact") == 0) {
			cfg.compact = true;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			return cli_usage_error(&create_command, "unknown flag '%s'", argv[i]);
		} else if (name == NULL) {
			name = argv[i];
		} else {
			return cli_usage_error(&create_command, "unexpected argument '%s'", argv[i]);
		}
	}
	if (name == NULL)
		return cli_usage_error(&create_command, "the topic NAME is required");
	if (strlen(name) > SL_TOPIC_NAME_BYTES_MAX)
		return cli_usage_error(&create_command, "topic name longer than %d characters",
		                       SL_TOPIC_NAME_BYTES_MAX);
	if (partitions == 0)
		return cli_usage_error(&create_command, "--partitions N is required");
	snprintf(cfg.name, sizeof(cfg.name), "%s", name);
	cfg.partitions = (uint32_t)partitions;
	c = cli_connect(cli, &create_command, "synclog-cli");
	if (c == NULL)
		return CLI_EXIT_FAIL;
	rc = sl_topic_create(c, &cfg);
	if (rc != 0) {
		rc = cli_fail(&create_command, "%s", sl_conn_error(c));
	} else {
		if (cli->json) {
			fputs("{\"created\":", stdout);
			json_name(cfg.name);
			printf(",\"partitions\":%u}\n", cfg.partitions);
		} else
			printf("created topic %s with %u partitions\n", cfg.name, cfg.partitions);
		rc = CLI_EXIT_OK;
	}
	sl_conn_free(c);
	return rc;
}

static int topic_list(const struct cli *cli, int argc, char **argv)
{
	struct sl_topic_config *topics;
	struct sl_conn *c;
	uint32_t count;
	int rc;

	if (argc > 0)
		return cli_usage_error(&list_command, "unexpected argument '%s'", argv[0]);
	c = cli_connect(cli, &list_command, "synclog-cli");
	if (c == NULL)
		return CLI_EXIT_FAIL;
	rc = sl_topic_list(c, &topics, &count);
	if (rc != 0) {
		rc = cli_fail(&list_command, "%s", sl_conn_error(c));
		sl_conn_free(c);
		return rc;
	}
	if (!cli->json)
		printf("%-32s %10s %14s %16s %7s\n", "TOPIC", "PARTITIONS", "RETENTION_MS", "RETENTION_BYTES",
		       "COMPACT");
	for (uint32_t i = 0; i < count; i++) {
		const struct sl_topic_config *t = &topics[i];

		if (cli->json) {
			fputs("{\"topic\":", stdout);
			json_name(t->name);
			printf(",\"partitions\":%u,\"retention_ms\":%" PRId64 ",\"retention_bytes\":%" PRId64
			       ",\"compact\":%s}\n",
			       t->partitions, t->retention_ms, t->retention_bytes, t->compact ? "true" : "false");
		} else {
			printf("%-32s %10u %14" PRId64 " %16" PRId64 " %7s\n", t->name, t->partitions, t->retention_ms,
			       t->retention_bytes, t->compact ? "yes" : "no");
		}
	}
	free(topics);
	sl_conn_free(c);
	return CLI_EXIT_OK;
}

static int topic_describe(const struct cli *cli, int argc, char **argv)
{
	struct sl_topic_config cfg;
	struct sl_partition_info *parts;
	struct sl_conn *c;
	const char *name = NULL;
	uint32_t count, unavailable = 0;
	int rc;

	for (int i = 0; i < argc; i++) {
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			return cli_usage_error(&describe_command, "unknown flag '%s'", argv[i]);
		if (name != NULL)
			return cli_usage_error(&describe_command, "unexpected argument '%s'", argv[i]);
		name = argv[i];
	}
	if (name == NULL)
		return cli_usage_error(&describe_command, "the topic NAME is required");
	c = cli_connect(cli, &describe_command, "synclog-cli");
	if (c == NULL)
		return CLI_EXIT_FAIL;
	rc = sl_topic_describe(c, name, &cfg, &parts, &count);
	if (rc != 0) {
		rc = cli_fail(&describe_command, "%s", sl_conn_error(c));
		sl_conn_free(c);
		return rc;
	}
	if (!cli->json) {
		printf("topic %s: %u partitions, retention_ms %" PRId64 ", retention_bytes %" PRId64 ", compact %s\n",
		       cfg.name, cfg.partitions, cfg.retention_ms, cfg.retention_bytes, cfg.compact ? "yes" : "no");
		printf("%9s %16s %16s %14s %8s\n", "PARTITION", "EARLIEST_OFFSET", "NEXT_OFFSET", "BYTES", "SEGMENTS");
	}
	for (uint32_t i = 0; i < count; i++) {
		const struct sl_partition_info *p = &parts[i];

		unavailable += p->error != 0;
		if (cli->json) {
			fputs("{\"topic\":", stdout);
			json_name(cfg.name);
			printf(",\"partition\":%u,\"earliest_offset\":%" PRId64 ",\"next_offset\":%" PRId64
			       ",\"bytes\":%" PRIu64 ",\"segments\":%u",
			       p->partition, p->earliest_offset, p->next_offset, p->bytes, p->segments);
			if (p->error != 0) {
				printf(",\"error\":\"%s\",\"error_message\":", sl_error_name(p->error));
				sl_json_print_string(stdout, p->error_message, strlen(p->error_message));
			}
			fputs("}\n", stdout);
		} else if (p->error != 0) {
			printf("%9u unavailable: %s: %s\n", p->partition, sl_error_name(p->error), p->error_message);
		} else {
			printf("%9u %16" PRId64 " %16" PRId64 " %14" PRIu64 " %8u\n", p->partition, p->earliest_offset,
			       p->next_offset, p->bytes, p->segments);
		}
	}
	free(parts);
	sl_conn_free(c);
	if (unavailable > 0)
		return cli_fail(&describe_command,
		                "%u partition(s) of topic '%s' failed to open: an operator must repair them (see the "
		                "broker's log)",
		                unavailable, name);
	return CLI_EXIT_OK;
}

static int topic_delete(const struct cli *cli, int argc, char **argv)
{
	const char *name = NULL;
	for (int i = 0; i < argc; i++) {
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			return cli_usage_error(&delete_command, "unknown flag '%s'", argv[i]);
		if (name != NULL)
			return cli_usage_error(&delete_command, "unexpected argument '%s'", argv[i]);
		name = argv[i];
	}
	if (name == NULL)
		return cli_usage_error(&delete_command, "the topic NAME is required");
	struct sl_conn *c = cli_connect(cli, &delete_command, "synclog-cli");
	if (c == NULL)
		return CLI_EXIT_FAIL;
	int rc = sl_topic_delete(c, name);
	if (rc != 0) {
		rc = cli_fail(&delete_command, "%s", sl_conn_error(c));
	} else {
		if (cli->json) {
			fputs("{\"deleted\":", stdout);
			json_name(name);
			fputs("}\n", stdout);
		} else {
			printf("deleted topic %s\n", name);
		}
		rc = CLI_EXIT_OK;
	}
	sl_conn_free(c);
	return rc;
}

int cli_topic(const struct cli *cli, int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
	        {"create", &create_command, topic_create},
	        {"list", &list_command, topic_list},
	        {"describe", &describe_command, topic_describe},
	        {"delete", &delete_command, topic_delete},
	};
	return cli_subcommand_run(&topic_command, subs, (int)(sizeof(subs) / sizeof(subs[0])), cli, argc, argv);
}
