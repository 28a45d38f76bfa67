/* `synclog topic create|list|describe|delete|alter|compact`: topic administration, one request each, printed as a
 * text table or as one JSON object per line. */
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
                 "                         [--compact] [--delete-retention-ms D] [--retain-for-groups]\n"
                 "                         [--replication-factor N]\n"
                 "       synclog topic list\n"
                 "       synclog topic describe NAME\n"
                 "       synclog topic delete NAME\n"
                 "       synclog topic alter NAME --set KEY=VALUE ...\n"
                 "       synclog topic compact NAME [--wait]\n",
};

static const struct cli_command alter_command = {
        .name = "topic alter",
        .usage = "usage: synclog topic alter NAME --set KEY=VALUE [--set KEY=VALUE ...]\n"
                 "\n"
                 "Change settings of a topic: all or none, written with the topic, in effect at once (no restart).\n"
                 "  retention.ms=MS          drop sealed segments whose records are all older; -1 keeps forever\n"
                 "  retention.bytes=B        keep at most about B bytes per partition; -1: no limit\n"
                 "  compact=true|false       keep only the newest version of each key (the cleaner)\n"
                 "  delete.retention.ms=MS   a tombstone stays this long after the cleaner first sees it (and until\n"
                 "                           every group with a commit has read past it); default 86400000. A\n"
                 "                           tombstone the cleaner has seen keeps the horizon it got then\n"
                 "  segment.bytes=B          roll segments past B bytes (1048576 to 2147483647; 0: the broker's)\n"
                 "  segment.ms=MS            roll a segment once its first record is MS old (0: the broker's)\n"
                 "  retain.for.groups=true|false  retention never removes what a group has not consumed\n"
                 "Prints the settings in effect, or one JSON object with --json:\n"
                 "{\"topic\":T,\"retention_ms\":MS,\"retention_bytes\":B,\"compact\":true,\"segment_bytes\":B,"
                 "\"segment_ms\":MS,\"delete_retention_ms\":MS,\"retain_for_groups\":false}\n",
};

static const struct cli_command compact_command = {
        .name = "topic compact",
        .usage = "usage: synclog topic compact NAME [--wait]\n"
                 "\n"
                 "Run the cleaner on every partition of a compacted topic now. The active segments are rolled first,\n"
                 "so everything appended so far is cleaned. Without --wait it returns once scheduled; with --wait it\n"
                 "returns when every partition was cleaned and prints one line per partition:\n"
                 "PARTITION BYTES_BEFORE BYTES_AFTER RECORDS_REMOVED TOMBSTONES_REMOVED DURATION_MS, or with --json\n"
                 "{\"topic\":T,\"partition\":P,\"bytes_before\":B,\"bytes_after\":B,\"records_removed\":N,"
                 "\"tombstones_removed\":N,\"duration_ms\":MS}\n"
                 "Exits 1 when the topic is not compacted or a partition failed (its line says why).\n",
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
                 "                         [--replication-factor N]\n"
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
                 "  --compact            keep only the newest version of each key: the cleaner rewrites sealed\n"
                 "                       segments (see `synclog topic compact`)\n"
                 "  --delete-retention-ms D  compacted topics: a tombstone stays D after the cleaner first sees it,\n"
                 "                       and until every group with a commit has read past it (default 1d)\n"
                 "  --retain-for-groups  retention never removes what a group with a commit has not consumed\n"
                 "  --replication-factor N  on a Kafka cluster (--broker kafka://...): copies of each partition\n"
                 "                       (default: the cluster's default.replication.factor); synclogd, one node,\n"
                 "                       keeps 1\n"
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
                 " \"segment_bytes\":B,\"segment_ms\":MS,\"delete_retention_ms\":MS,\"retain_for_groups\":false}\n"
                 " (-1: no limit)\n",
};

static const struct cli_command describe_command = {
        .name = "topic describe",
        .usage =
                "usage: synclog topic describe NAME\n"
                "\n"
                "The topic's settings (retention, segment size and age), then per partition: earliest offset, next\n"
                "offset, bytes stored, segment count. With --json, one object per partition, raw numbers:\n"
                "{\"topic\":T,\"partition\":P,\"earliest_offset\":E,\"next_offset\":N,\"bytes\":B,\"segments\":S,\n"
                " \"dirty_ratio\":R,\"last_clean_ms\":T,\"tombstones_kept\":N,\"cleaner_error\":null}\n"
                "(plus \"error\" and \"error_message\" for a partition that failed to open; the command then exits "
                "1).\n"
                "A compacted topic's table adds its dirty ratio (sealed bytes not cleaned yet over all sealed bytes),\n"
                "the last clean (- when none since the broker started) and the tombstones the last clean kept.\n",
};

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
		cli_json_string(cfg.name);
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
	struct sl_topic_setting settings[2];
	char delete_retention[24];
	uint32_t setting_count = 0;
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
		} else if ((rc = cli_flag(argc, argv, &i, "--delete-retention-ms", &value)) != 0) {
			int64_t ms;
			if (rc < 0 || cli_parse_duration_ms(value, &ms) != 0 || ms < 0)
				return cli_usage_error(&create_command,
				                       "--delete-retention-ms needs milliseconds (0 or "
				                       "more) or a duration such as 1d");
			snprintf(delete_retention, sizeof(delete_retention), "%lld", (long long)ms);
			settings[setting_count++] = (struct sl_topic_setting){"delete.retention.ms", delete_retention};
		} else if (strcmp(argv[i], "--retain-for-groups") == 0) {
			settings[setting_count++] = (struct sl_topic_setting){"retain.for.groups", "true"};
		} else if ((rc = cli_flag(argc, argv, &i, "--replication-factor", &value)) != 0) {
			if (rc < 0 || cli_parse_u64(value, 32767, &u) != 0 || u == 0)
				return cli_usage_error(&create_command,
				                       "--replication-factor needs a number of at least 1");
			if (u > 1 && !sl_broker_is_kafka(cli->broker))
				return cli_usage_error(
				        &create_command,
				        "--replication-factor %llu: synclogd is one node and keeps one copy; "
				        "replicas are for a Kafka cluster (--broker kafka://...)",
				        (unsigned long long)u);
			cfg.replication_factor = (int32_t)u;
		} else if (cli_operand(&create_command, argv[i], &name) != 0) {
			return CLI_EXIT_USAGE;
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
	rc = sl_topic_create_settings(c, &cfg, settings, setting_count);
	if (rc == -EEXIST && if_not_exists) {
		rc = create_exists(cli, c, cfg.name);
	} else if (rc != 0) {
		rc = cli_fail(&create_command, "%s", sl_conn_error(c));
	} else {
		if (cli->json) {
			fputs("{\"created\":", stdout);
			cli_json_string(cfg.name);
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
			cli_json_string(t->name);
			printf(",\"partitions\":%u,\"retention_ms\":%" PRId64 ",\"retention_bytes\":%" PRId64
			       ",\"compact\":%s,\"segment_bytes\":%" PRId64 ",\"segment_ms\":%" PRId64
			       ",\"delete_retention_ms\":%" PRId64 ",\"retain_for_groups\":%s",
			       t->partitions, t->retention_ms, t->retention_bytes, t->compact ? "true" : "false",
			       t->segment_bytes, t->segment_ms, t->delete_retention_ms,
			       t->retain_for_groups ? "true" : "false");
			/* A Kafka cluster's topic: its replicas, and whether it described the settings above. */
			if (t->replication_factor > 0)
				printf(",\"replication_factor\":%d", t->replication_factor);
			if (t->settings_unknown)
				fputs(",\"settings_unknown\":true", stdout);
			fputs("}\n", stdout);
			continue;
		}
		if (t->settings_unknown) {
			/* A Kafka cluster that does not describe its topics' configs (no controller). */
			printf("%-32s %10u %10s %10s %10s %10s\n", t->name, t->partitions, "?", "?", "?", "?");
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
		if (cli_operand(&describe_command, argv[i], &name) != 0)
			return CLI_EXIT_USAGE;
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
		if (cfg.settings_unknown)
			printf("topic %s: %u partition%s; settings unknown (the Kafka cluster did not describe them)\n",
			       cfg.name, cfg.partitions, cli_plural(cfg.partitions));
		else
			printf("topic %s: %u partition%s; retention %s, %s%s%s; segments roll at %s or after %s\n",
			       cfg.name, cfg.partitions, cli_plural(cfg.partitions), retention,
			       cfg.retention_bytes < 0 ? "no size limit" : max_bytes,
			       cfg.retention_bytes < 0 ? "" : " per partition",
			       cfg.retain_for_groups ? " (kept until every group consumed it)" : "", segment, age);
		if (cfg.compact) {
			char horizon[SL_DURATION_TEXT_BYTES];
			sl_duration_format(cfg.delete_retention_ms, horizon, sizeof(horizon));
			printf("compacted: the newest version of each key stays; tombstones stay %s after the cleaner "
			       "first "
			       "sees them, and until every group with a commit has read past them\n",
			       horizon);
		}
		printf("%9s %16s %16s %10s %8s", "PARTITION", "EARLIEST_OFFSET", "NEXT_OFFSET", "BYTES", "SEGMENTS");
		if (cfg.compact)
			printf(" %11s %24s %15s", "DIRTY_RATIO", "LAST_CLEAN", "TOMBSTONES_KEPT");
		putchar('\n');
	}
	for (uint32_t i = 0; i < count; i++) {
		const struct sl_partition_info *p = &parts[i];

		unavailable += p->error != 0;
		if (cli->json) {
			fputs("{\"topic\":", stdout);
			cli_json_string(cfg.name);
			printf(",\"partition\":%u,\"earliest_offset\":%" PRId64 ",\"next_offset\":%" PRId64,
			       p->partition, p->earliest_offset, p->next_offset);
			/* A Kafka cluster keeps its partitions' sizes to itself. */
			if (p->size_unknown)
				fputs(",\"bytes\":null,\"segments\":null", stdout);
			else
				printf(",\"bytes\":%" PRIu64 ",\"segments\":%u", p->bytes, p->segments);
			printf(",\"dirty_ratio\":%.3f,\"last_clean_ms\":%" PRId64 ",\"tombstones_kept\":%" PRIu64
			       ",\"cleaner_error\":",
			       p->dirty_ratio, p->last_clean_ms, p->tombstones_kept);
			if (p->cleaner_error[0])
				cli_json_string(p->cleaner_error);
			else
				fputs("null", stdout);
			if (p->error != 0) {
				printf(",\"error\":\"%s\",\"error_message\":", sl_error_name(p->error));
				cli_json_string(p->error_message);
			}
			fputs("}\n", stdout);
		} else if (p->error != 0) {
			printf("%9u unavailable: %s: %s\n", p->partition, sl_error_name(p->error), p->error_message);
		} else {
			char bytes[CLI_BYTES_TEXT], segments[16];

			cli_bytes_format(p->bytes, bytes, sizeof(bytes));
			snprintf(segments, sizeof(segments), "%u", p->segments);
			printf("%9u %16" PRId64 " %16" PRId64 " %10s %8s", p->partition, p->earliest_offset,
			       p->next_offset, p->size_unknown ? "-" : bytes, p->size_unknown ? "-" : segments);
			if (cfg.compact) {
				char when[40];
				cli_time_format(p->last_clean_ms, when, sizeof(when));
				printf(" %11.3f %24s %15" PRIu64, p->dirty_ratio, when, p->tombstones_kept);
				if (p->cleaner_error[0])
					printf("  last clean failed: %s", p->cleaner_error);
			}
			putchar('\n');
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
		if (cli_operand(&delete_command, argv[i], &name) != 0)
			return CLI_EXIT_USAGE;
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
		rc = cli_print_done(cli, "deleted", "topic", name);
	}
	sl_conn_free(c);
	return rc;
}

/* The settings of a topic as alter prints them. */
static void print_settings(const struct cli *cli, const struct sl_topic_config *t)
{
	if (cli->json) {
		fputs("{\"topic\":", stdout);
		cli_json_string(t->name);
		printf(",\"retention_ms\":%" PRId64 ",\"retention_bytes\":%" PRId64 ",\"compact\":%s,"
		       "\"segment_bytes\":%" PRId64 ",\"segment_ms\":%" PRId64 ",\"delete_retention_ms\":%" PRId64
		       ",\"retain_for_groups\":%s}\n",
		       t->retention_ms, t->retention_bytes, t->compact ? "true" : "false", t->segment_bytes,
		       t->segment_ms, t->delete_retention_ms, t->retain_for_groups ? "true" : "false");
	} else {
		printf("topic %s: retention.ms=%" PRId64 " retention.bytes=%" PRId64
		       " compact=%s segment.bytes=%" PRId64 " segment.ms=%" PRId64 " delete.retention.ms=%" PRId64
		       " retain.for.groups=%s\n",
		       t->name, t->retention_ms, t->retention_bytes, t->compact ? "true" : "false", t->segment_bytes,
		       t->segment_ms, t->delete_retention_ms, t->retain_for_groups ? "true" : "false");
	}
}

/* The most settings one alter takes: every key once, a few times over. */
#define ALTER_SETTINGS_MAX 32

static int topic_alter(const struct cli *cli, int argc, char **argv)
{
	const char *name = NULL, *value;
	struct sl_topic_setting settings[ALTER_SETTINGS_MAX];
	char *copies[ALTER_SETTINGS_MAX];
	uint32_t count = 0;
	int rc;

	for (int i = 0; i < argc; i++) {
		if ((rc = cli_flag(argc, argv, &i, "--set", &value)) != 0) {
			const char *eq = rc > 0 ? strchr(value, '=') : NULL;
			if (eq == NULL || eq == value)
				return cli_usage_error(&alter_command,
				                       "--set needs KEY=VALUE (e.g. --set compact=true)");
			if (count == ALTER_SETTINGS_MAX)
				return cli_usage_error(&alter_command, "at most %d --set at once", ALTER_SETTINGS_MAX);
			settings[count].value = eq + 1;
			settings[count].key = copies[count] = strndup(value, (size_t)(eq - value));
			if (copies[count] == NULL)
				return cli_fail(&alter_command, "out of memory");
			count++;
		} else if ((rc = cli_operand(&alter_command, argv[i], &name)) != 0) {
			goto out;
		}
	}
	if (name == NULL || count == 0) {
		rc = cli_usage_error(&alter_command,
		                     name == NULL ? "the topic NAME is required" : "give at least one --set KEY=VALUE");
		goto out;
	}
	struct sl_conn *c = cli_connect(cli, &alter_command, "synclog-cli");
	if (c == NULL) {
		rc = CLI_EXIT_FAIL;
		goto out;
	}
	struct sl_topic_config cfg;
	rc = sl_topic_alter(c, name, settings, count, &cfg);
	if (rc != 0) {
		rc = cli_fail(&alter_command, "%s", sl_conn_error(c));
	} else {
		print_settings(cli, &cfg);
		rc = CLI_EXIT_OK;
	}
	sl_conn_free(c);
out:
	for (uint32_t i = 0; i < count; i++)
		free(copies[i]);
	return rc;
}

/* A compaction of a large topic takes minutes; an hour bounds a broker that never answers. */
#define COMPACT_WAIT_TIMEOUT_MS (3600u * 1000)

static int topic_compact(const struct cli *cli, int argc, char **argv)
{
	const char *name = NULL;
	bool wait = false;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--wait") == 0)
			wait = true;
		else if (cli_operand(&compact_command, argv[i], &name) != 0)
			return CLI_EXIT_USAGE;
	}
	if (name == NULL)
		return cli_usage_error(&compact_command, "the topic NAME is required");
	struct sl_conn *c = cli_connect(cli, &compact_command, "synclog-cli");
	if (c == NULL)
		return CLI_EXIT_FAIL;
	if (wait)
		sl_conn_set_timeout(c, COMPACT_WAIT_TIMEOUT_MS);
	struct sl_compact_result *res = NULL;
	uint32_t count = 0;
	int rc = sl_topic_compact(c, name, wait, &res, &count);
	if (rc != 0 && res == NULL) {
		rc = cli_fail(&compact_command, "%s", sl_conn_error(c));
		sl_conn_free(c);
		return rc;
	}
	if (!wait) {
		if (cli->json) {
			fputs("{\"topic\":", stdout);
			cli_json_string(name);
			fputs(",\"scheduled\":true}\n", stdout);
		} else {
			printf("compaction of topic %s scheduled\n", name);
		}
	} else if (!cli->json) {
		printf("%9s %14s %14s %15s %18s %11s\n", "PARTITION", "BYTES_BEFORE", "BYTES_AFTER", "RECORDS_REMOVED",
		       "TOMBSTONES_REMOVED", "DURATION_MS");
	}
	for (uint32_t i = 0; i < count; i++) {
		const struct sl_compact_result *r = &res[i];
		if (cli->json) {
			fputs("{\"topic\":", stdout);
			cli_json_string(name);
			printf(",\"partition\":%u,\"bytes_before\":%" PRIu64 ",\"bytes_after\":%" PRIu64
			       ",\"records_removed\":%" PRIu64 ",\"tombstones_removed\":%" PRIu64
			       ",\"duration_ms\":%" PRId64,
			       r->partition, r->bytes_before, r->bytes_after, r->records_removed, r->tombstones_removed,
			       r->duration_ms);
			if (r->error != 0) {
				printf(",\"error\":\"%s\",\"error_message\":", sl_error_name(r->error));
				cli_json_string(r->error_message);
			}
			fputs("}\n", stdout);
		} else if (r->error != 0) {
			printf("%9u failed: %s: %s\n", r->partition, sl_error_name(r->error), r->error_message);
		} else {
			printf("%9u %14" PRIu64 " %14" PRIu64 " %15" PRIu64 " %18" PRIu64 " %11" PRId64 "\n",
			       r->partition, r->bytes_before, r->bytes_after, r->records_removed, r->tombstones_removed,
			       r->duration_ms);
		}
	}
	free(res);
	if (rc != 0)
		rc = cli_fail(&compact_command, "%s", sl_conn_error(c));
	sl_conn_free(c);
	return rc == 0 ? CLI_EXIT_OK : rc;
}

int cli_topic(const struct cli *cli, int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
	        {"create", &create_command, topic_create},       {"list", &list_command, topic_list},
	        {"describe", &describe_command, topic_describe}, {"delete", &delete_command, topic_delete},
	        {"alter", &alter_command, topic_alter},          {"compact", &compact_command, topic_compact},
	};
	return cli_subcommand_run(&topic_command, subs, (int)(sizeof(subs) / sizeof(subs[0])), cli, argc, argv);
}
