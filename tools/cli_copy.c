/* `synclog copy --from BROKER --to BROKER TOPIC`: copy a topic between synclogd and a Kafka cluster (either way),
 * resumable through a group on the source, with a progress bar on a terminal, ending with per-partition counts
 * and digests of both sides (consumer/sync/copy.h). The migration path from one node to a cluster. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/base/clock.h"
#include "consumer/sync/copy.h"
#include "tools/cli.h"

/* How often a progress line is printed when stderr is not a terminal. */
#define PLAIN_PROGRESS_MS 5000
#define BAR_WIDTH         30

static const struct cli_command copy_command = {
        .name = "copy",
        .usage = "usage: synclog copy --from BROKER --to BROKER TOPIC [--group G] [--to-topic NAME] [--rate N]\n"
                 "\n"
                 "Copy TOPIC from one broker to another, synclogd to a Kafka or Redpanda cluster or back (BROKER\n"
                 "is HOST:PORT or kafka://HOST:PORT,...), with every record's key, value, headers and timestamp,\n"
                 "each in the partition it had, in its order. The destination topic is created with the source's\n"
                 "partitions and settings when it is missing; one with another partition count is refused.\n"
                 "  --from BROKER    the source\n"
                 "  --to BROKER      the destination\n"
                 "  --group G        the group on the source that keeps the copy's progress (default:\n"
                 "                   synclog-copy.TOPIC): offsets and, as their metadata, where the destination\n"
                 "                   stands and the digest so far\n"
                 "  --to-topic NAME  the destination topic's name (default: TOPIC)\n"
                 "  --rate N         produce at most N records per second (default: no limit), so that the\n"
                 "                   migration leaves the destination room for its other work\n"
                 "The copy goes to the end of the source as it was when it started. After a crash, kill -9 or\n"
                 "Ctrl-C, the same command goes on where it stopped and copies no record twice: what a dead run\n"
                 "got into the destination is found there and counted. The copy must be the destination topic's\n"
                 "only writer while it runs. --kafka-config settings apply to whichever side is a Kafka cluster;\n"
                 "--user and the --tls flags to both sides.\n"
                 "At the end the destination is read back. Prints one line per partition:\n"
                 "  partition P: N records, source DIGEST, target DIGEST, ok|DIFFER\n"
                 "and `copied N records (F found after a crash) of TOPIC in S s, X MB/s: the destination matches`,\n"
                 "or with --json one object per partition {\"partition\":P,\"records\":N,\"source_digest\":\"HEX\",\n"
                 "\"target_records\":N,\"target_digest\":\"HEX\",\"match\":true} and one {\"copied\":N,\"found\":F,\n"
                 "\"records\":N,\"bytes\":B,\"seconds\":S,\"match\":true}. Exits 1 when they differ.\n"
                 "Progress goes to stderr: a bar on a terminal, a line every 5 s otherwise, JSON lines with --json.\n",
};

struct show {
	const struct cli *cli;
	bool terminal;
	bool bar_drawn;
	int64_t next_plain_ms;
};

static void progress_cb(const struct sl_copy_progress *p, void *cb_arg)
{
	struct show *s = cb_arg;
	double mb_s = p->bytes_per_s / 1e6;

	if (s->terminal && !s->cli->json) {
		int filled = p->total > 0 ? (int)((double)p->records / (double)p->total * BAR_WIDTH) : 0;
		char bar[BAR_WIDTH + 1];

		filled = filled > BAR_WIDTH ? BAR_WIDTH : filled;
		memset(bar, '#', (size_t)filled);
		memset(bar + filled, '.', (size_t)(BAR_WIDTH - filled));
		bar[BAR_WIDTH] = '\0';
		fprintf(stderr, "\r%s[%s] %llu/%llu records  %.1f MB/s  ETA %s%.0fs   ",
		        p->verifying ? "reading back " : "", bar, (unsigned long long)p->records,
		        (unsigned long long)p->total, mb_s, p->eta_s < 0 ? "?" : "", p->eta_s < 0 ? 0.0 : p->eta_s);
		s->bar_drawn = true;
		return;
	}
	int64_t now = sl_clock_mono_ms();
	if (now < s->next_plain_ms)
		return;
	s->next_plain_ms = now + PLAIN_PROGRESS_MS;
	if (s->cli->json)
		fprintf(stderr,
		        "{\"progress\":{\"records\":%llu,\"total\":%llu,\"bytes\":%llu,\"mb_per_s\":%.1f,\"eta_s\":%."
		        "1f,"
		        "\"verifying\":%s}}\n",
		        (unsigned long long)p->records, (unsigned long long)p->total, (unsigned long long)p->bytes,
		        mb_s, p->eta_s, p->verifying ? "true" : "false");
	else
		fprintf(stderr, "synclog copy: %llu/%llu records, %.1f MB/s, ETA %.0fs%s\n",
		        (unsigned long long)p->records, (unsigned long long)p->total, mb_s,
		        p->eta_s < 0 ? 0.0 : p->eta_s, p->verifying ? " (reading the destination back)" : "");
}

static bool stop_cb(void *cb_arg)
{
	(void)cb_arg;
	return cli_interrupted();
}

static void result_print(const struct cli *cli, const struct sl_copy_result *r, const char *topic)
{
	double mb_s = r->seconds > 0 ? (double)r->bytes / r->seconds / 1e6 : 0;

	for (uint32_t i = 0; i < r->partition_count; i++) {
		const struct sl_copy_partition *p = &r->partitions[i];

		if (cli->json)
			printf("{\"partition\":%u,\"records\":%" PRIu64 ",\"source_digest\":\"%016" PRIx64
			       "\",\"target_records\":%" PRIu64 ",\"target_digest\":\"%016" PRIx64 "\",\"match\":%s}\n",
			       p->partition, p->records, p->source_digest, p->target_records, p->target_digest,
			       p->match ? "true" : "false");
		else if (p->target_records != p->records)
			printf("partition %u: %" PRIu64 " records, source %016" PRIx64 ", target %016" PRIx64
			       " (%" PRIu64 " records), DIFFER\n",
			       p->partition, p->records, p->source_digest, p->target_digest, p->target_records);
		else
			printf("partition %u: %" PRIu64 " records, source %016" PRIx64 ", target %016" PRIx64 ", %s\n",
			       p->partition, p->records, p->source_digest, p->target_digest,
			       p->match ? "ok" : "DIFFER");
	}
	if (cli->json)
		printf("{\"copied\":%" PRIu64 ",\"found\":%" PRIu64 ",\"records\":%" PRIu64 ",\"bytes\":%" PRIu64
		       ",\"seconds\":%.3f,\"match\":%s}\n",
		       r->copied, r->found, r->records, r->bytes, r->seconds, r->match ? "true" : "false");
	else
		printf("copied %" PRIu64 " records (%" PRIu64 " found after a crash) of %s in %.1f s, %.1f MB/s: %s\n",
		       r->copied, r->found, topic, r->seconds, mb_s,
		       r->match ? "the destination matches" : "the destination DIFFERS");
}

int cli_copy(const struct cli *cli, int argc, char **argv)
{
	struct sl_copy_options o;
	struct sl_copy_result r;
	struct show show = {.cli = cli, .terminal = cli_is_terminal(stderr)};
	char err[SL_ERROR_BYTES];
	const char *value;
	int rc;

	if (cli_wants_help(argc, argv))
		return cli_help(&copy_command);
	sl_copy_options_init(&o);
	for (int i = 0; i < argc; i++) {
		if ((rc = cli_flag(argc, argv, &i, "--from", &value)) != 0) {
			if (rc < 0)
				return cli_usage_error(&copy_command, "--from needs a BROKER");
			o.from = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--to-topic", &value)) != 0) {
			if (rc < 0 || value[0] == '\0' || strlen(value) > SL_TOPIC_NAME_BYTES_MAX)
				return cli_usage_error(&copy_command,
				                       "--to-topic needs a topic name of 1 to 200 characters");
			o.to_topic = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--to", &value)) != 0) {
			if (rc < 0)
				return cli_usage_error(&copy_command, "--to needs a BROKER");
			o.to = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--rate", &value)) != 0) {
			if (rc < 0 || cli_parse_u64(value, 1000000000, &o.rate_records_per_s) != 0 ||
			    o.rate_records_per_s == 0)
				return cli_usage_error(&copy_command, "--rate needs records per second (at least 1)");
		} else if ((rc = cli_flag(argc, argv, &i, "--group", &value)) != 0) {
			if (rc < 0 || value[0] == '\0' || strlen(value) > SL_GROUP_NAME_BYTES_MAX)
				return cli_usage_error(&copy_command,
				                       "--group needs a group name of 1 to 200 characters");
			o.group = value;
		} else if (cli_operand(&copy_command, argv[i], &o.topic) != 0) {
			return CLI_EXIT_USAGE;
		}
	}
	if (o.topic == NULL || strlen(o.topic) > SL_TOPIC_NAME_BYTES_MAX)
		return cli_usage_error(&copy_command, "the TOPIC (1 to 200 characters) is required");
	if (o.from == NULL || o.to == NULL)
		return cli_usage_error(&copy_command, "--from BROKER and --to BROKER are both required");
	struct sl_broker_addr addr;
	if (sl_broker_parse(o.from, &addr, err, sizeof(err)) != 0 ||
	    sl_broker_parse(o.to, &addr, err, sizeof(err)) != 0)
		return cli_usage_error(&copy_command, "%s", err);
	if (strcmp(o.from, o.to) == 0 && (o.to_topic == NULL || strcmp(o.to_topic, o.topic) == 0))
		return cli_usage_error(&copy_command, "--from and --to name the same topic: give --to-topic NAME");
	if (!sl_broker_is_kafka(o.from) && !sl_broker_is_kafka(o.to) && cli->kafka.count > 0)
		return cli_usage_error(&copy_command,
		                       "--kafka-config applies to a kafka:// broker, and neither side is one");
	o.kafka_config = &cli->kafka;
	o.security = &cli->security;
	o.io_timeout_ms = cli->timeout_ms;
	o.progress_cb = progress_cb;
	o.stop_cb = stop_cb;
	o.cb_arg = &show;
	cli_signals_install();
	rc = sl_copy_run(&o, &r, err, sizeof(err));
	if (show.bar_drawn)
		fputc('\n', stderr);
	if (rc == 0 || rc == -EBADE)
		result_print(cli, &r, o.topic);
	if (rc == -EINTR)
		rc = cli_fail(&copy_command,
		              "interrupted after %llu records; the progress is kept in group '%s' on the source: run "
		              "the same command to go on",
		              (unsigned long long)r.records, r.group);
	else if (rc != 0)
		rc = cli_fail(&copy_command, "%s%s", err,
		              (r.records > 0 || r.resumed) && rc != -EBADE ? "; run the same command again to go on"
		                                                           : "");
	else
		rc = CLI_EXIT_OK;
	sl_copy_result_free(&r);
	return rc;
}
