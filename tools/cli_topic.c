/* `synclog topic create|list|describe`: topic administration, one request each, printed as a text table or as one
 * JSON object per line. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/client/synclog.h"
#include "tools/cli.h"

static const struct cli_command topic_command = {
        .name = "topic",
        .usage = "usage: synclog topic create NAME --partitions N [--retention-ms D] [--retention-bytes B]\n"
                 "                         [--segment-bytes B] [--segment-ms D] [--if-not-exists]\n"
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
        .usage = "usage: synclog topic create NAME --partitions N [--retention-ms D] [--retention-bytes B]\n"
                 "                         [--segment-bytes B] [--segment-ms D] [--if-not-exists]\n"
                 "\n"
                 "Create a topic of N partitions.\n"
                 "  --partitions N       number of partitions (records of one key always go to the same one)\n"
                 "  --retention-ms D     delete segments whose records are all older than D: milliseconds, or a\n"
                 "                       duration such as 7d or PT12H; -1 keeps forever (default)\n"
                 "  --retention-bytes B  keep at most about B bytes per partition; -1: no limit (default)\n"
                 "  --segment-bytes B    roll a partition's segment past B bytes (1048576 to 2147483647; default:\n"
                 "                       the broker's --segment-bytes, 1 GiB)\n"
                 "  --segment-ms D       roll it once its first record is D old (at least 1s; default: the\n"
                 "                       broker's --segment-ms, 7d)\n"
                 "  --if-not-exists      when the topic exists already, say so and exit 0\n"
                 "  --compact            refused: compaction is not implemented yet (exit 1)\n"
                 "Retention drops whole segments once they are rolled, so a segment's size and age decide how soon\n"
                 "retention acts on a quiet topic. The broker checks both every --retention-check-ms (30 s).\n"
                 "Prints `created topic NAME with N partitions` (`1 partition`), or "
                 "{\"created\":NAME,\"partitions\":N}\n"
                 "with --json; with --if-not-exists and an existing topic, `topic NAME exists with N partitions`, or\n"
                 "{\"exists\":NAME,\"partitions\":N}.\n",
};

static const struct cli_command list_command = {
        .name = "topic list",
        .usage = "usage: synclog topic list\n"
                 "\n"
                 "List the topics: name, partitions, retention by time and size, segment size and age (sizes and\n"
                 "durations for people: 1.0 GiB, 7d, forever). With --json, one object per topic, raw numbers:\n"
                 "{\"topic\":T,\"partitions\":N,\"retention_ms\":MS,\"retention_bytes\":B,\"compact\":false,\n"
                 " \"segment_bytes\":B,\"segment_ms\":MS}  (-1: no limit)\n",
};

static const struct cli_command describe_command = {
        .name = "topic describe",
        .usage = "usage: synclog topic describe NAME\n"
                 "\n"
                 "The topic's settings (retention, segment size and age), then per partition: earliest offset, next\n"
                 "offset, bytes stored, segment count. With --json, one object per partition, raw numbers:\n"
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

/* --if-not-exists met an existing topic: say what is there (its partition count may differ from the one asked). */
static int create_exists(const struct cli *cli, struct sl_conn *c, const char *name)
{
	struct sl_topic_config cfg;
	struct sl_partition_info *parts;
	uint32_t count;

	if (sl_topic_describe(c, name, &cfg, &parts, &count) != 0)
		return cli_fail(&create_command, "%s", sl_conn_error(c));
	free(parts);
	if (cli->json) {
		fputs("{\"exists\":", stdout);
		json_name(cfg.name);
		printf(",\"partitions\":%u}\n", cfg.partitions);
	} else {
		printf("topic %s exists with %u partition%s\n", cfg.name, cfg.partitions, cli_plural(cfg.partitions));
	}
	return CLI_EXIT_OK;
}

/* -1 (no limit) as "forever"/"none", else a duration or size for people. */
static void retention_ms_text(int64_t ms, char *buf, size_t size)
{
	if (ms < 0)
		snprintf(buf, size, "forever");
	else
		sl_duration_format(ms, buf, size);
}

/* A segment age of 0 means the broker never rolls by age. */
static void age_text(int64_t ms, char *buf, size_t size)
{
	if (ms <= 0)
		snprintf(buf, size, "never");
	else
		sl_duration_format(ms, buf, size);
}

static void bytes_text(int64_t bytes, char *buf, size_t size)
{
	if (bytes < 0)
		snprintf(buf, size, "none");
	else
		cli_bytes_format((uint64_t)bytes, buf, size);
}

static int topic_create(const struct cli *cli, int argc, char **argv)
{
	struct sl_topic_config cfg = {.retention_ms = -1, .retention_bytes = -1};
	const char *name = NULL, *value;
	uint64_t partitions = 0, u;
	bool if_not_exists = false;
	struct sl_conn *c;
	int rc;

	for (int i = 0; i < argc; i++) {
		if ((rc = cli_flag(argc, argv, &i, "--partitions", &value)) != 0) {
			if (rc < 0 || cli_parse_u64(value, 1000000, &partitions) != 0 || partitions == 0)
				return cli_usage_error(&create_command, "--partitions needs a number of at least 1");
		} else if ((rc = cli_flag(argc, argv, &i, "--retention-ms", &value)) != 0) {
			if (rc < 0 ||
			    (strcmp(value, "-1") != 0 && cli_parse_duration_ms(value, &cfg.retention_ms) != 0) ||
			    cfg.retention_ms == 0)
				return cli_usage_error(
				        &create_command,
				        "--retention-ms needs milliseconds (at least 1) or a duration such "
				        "as 7d, or -1 to keep records forever");
		} else if ((rc = cli_flag(argc, argv, &i, "--retention-bytes", &value)) != 0) {
			if (rc < 0 || cli_parse_i64(value, -1, INT64_MAX, &cfg.retention_bytes) != 0 ||
			    cfg.retention_bytes == 0)
				return cli_usage_error(
				        &create_command,
				        "--retention-bytes needs bytes (at least 1), or -1 for no limit");
		} else if ((rc = cli_flag(argc, argv, &i, "--segment-bytes", &value)) != 0) {
			if (rc < 0 || cli_parse_u64(value, 0x7fffffff, &u) != 0 || u < 1048576)
				return cli_usage_error(
				        &create_command,
				        "--segment-bytes needs bytes from 1048576 (1 MiB: a batch must fit in a "
				        "segment) to 2147483647");
			cfg.segment_bytes = (int64_t)u;
		} else if ((rc = cli_flag(argc, argv, &i, "--segment-ms", &value)) != 0) {
			if (rc < 0 || cli_parse_duration_ms(value, &cfg.segment_ms) != 0 || cfg.segment_ms < 1000)
				return cli_usage_error(
				        &create_command,
				        "--segment-ms needs a duration of at least 1s: milliseconds, or 10m, "
				        "2h, 7d, PT1H");
		} else if (strcmp(argv[i], "--if-not-exists") == 0) {
			if_not_exists = true;
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
	/* Said before asking the broker (which refuses it too): a flag that is accepted and does nothing would be
	 * worse. */
	if (cfg.compact)
		return cli_fail(&create_command,
		                "--compact: compaction is not implemented yet, so a compacted topic would keep every "
		                "version forever; create the topic without --compact and bound it with --retention-ms "
		                "or --retention-bytes");
	snprintf(cfg.name, sizeof(cfg.name), "%s", name);
	cfg.partitions = (uint32_t)partitions;
	c = cli_connect(cli, &create_command, "synclog-cli");
	if (c == NULL)
		return CLI_EXIT_FAIL;
	rc = sl_topic_create(c, &cfg);
	if (rc == -EEXIST && if_not_exists) {
		rc = create_exists(cli, c, cfg.name);
	} else if (rc != 0) {
		rc = cli_fail(&create_command, "%s", sl_conn_error(c));
	} else {
		if (cli->json) {
			fputs("{\"created\":", stdout);
			json_name(cfg.name);
			printf(",\"partitions\":%u}\n", cfg.partitions);
		} else
			printf("created topic %s with %u partition%s\n", cfg.name, cfg.partitions,
			       cli_plural(cfg.partitions));
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
		printf("%-32s %10s %10s %10s %10s %10s\n", "TOPIC", "PARTITIONS", "RETENTION", "MAX_BYTES", "SEGMENT",
		       "SEGMENT_AGE");
	for (uint32_t i = 0; i < count; i++) {
		const struct sl_topic_config *t = &topics[i];
		char retention[SL_DURATION_TEXT_BYTES], age[SL_DURATION_TEXT_BYTES];
		char max_bytes[CLI_BYTES_TEXT], segment[CLI_BYTES_TEXT];

		if (cli->json) {
			fputs("{\"topic\":", stdout);
			json_name(t->name);
			printf(",\"partitions\":%u,\"retention_ms\":%" PRId64 ",\"retention_bytes\":%" PRId64
			       ",\"compact\":%s,\"segment_bytes\":%" PRId64 ",\"segment_ms\":%" PRId64 "}\n",
			       t->partitions, t->retention_ms, t->retention_bytes, t->compact ? "true" : "false",
			       t->segment_bytes, t->segment_ms);
			continue;
		}
		retention_ms_text(t->retention_ms, retention, sizeof(retention));
		bytes_text(t->retention_bytes, max_bytes, sizeof(max_bytes));
		bytes_text(t->segment_bytes, segment, sizeof(segment));
		age_text(t->segment_ms, age, sizeof(age));
		printf("%-32s %10u %10s %10s %10s %10s\n", t->name, t->partitions, retention, max_bytes, segment, age);
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
		char retention[SL_DURATION_TEXT_BYTES], age[SL_DURATION_TEXT_BYTES];
		char max_bytes[CLI_BYTES_TEXT], segment[CLI_BYTES_TEXT];

		retention_ms_text(cfg.retention_ms, retention, sizeof(retention));
		bytes_text(cfg.retention_bytes, max_bytes, sizeof(max_bytes));
		bytes_text(cfg.segment_bytes, segment, sizeof(segment));
		age_text(cfg.segment_ms, age, sizeof(age));
		printf("topic %s: %u partition%s; retention %s, %s%s; segments roll at %s or after %s\n", cfg.name,
		       cfg.partitions, cli_plural(cfg.partitions), retention,
		       cfg.retention_bytes < 0 ? "no size limit" : max_bytes,
		       cfg.retention_bytes < 0 ? "" : " per partition", segment, age);
		printf("%9s %16s %16s %10s %8s\n", "PARTITION", "EARLIEST_OFFSET", "NEXT_OFFSET", "BYTES", "SEGMENTS");
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
			char bytes[CLI_BYTES_TEXT];

			cli_bytes_format(p->bytes, bytes, sizeof(bytes));
			printf("%9u %16" PRId64 " %16" PRId64 " %10s %8u\n", p->partition, p->earliest_offset,
			       p->next_offset, bytes, p->segments);
		}
	}
	free(parts);
	sl_conn_free(c);
	if (unavailable > 0)
		return cli_fail(&describe_command,
		                "%u partition%s of topic '%s' failed to open: an operator must repair %s (see the "
		                "broker's log and `man synclogd`, REPAIR)",
		                unavailable, cli_plural(unavailable), name, unavailable == 1 ? "it" : "them");
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
