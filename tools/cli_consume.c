/* `synclog consume TOPIC`: print a topic's records from a starting point, up to the log end as it was at the start
 * or, with --follow, until interrupted. Without --group it only reads; with --group it is a member of that
 * consumer group: it reads the partitions the broker assigns to it, from the group's committed offsets, and
 * commits what it printed as it goes (at-least-once: a record is committed only after its line was written). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "consumer/client/synclog.h"
#include "proto/base/clock.h"
#include "tools/cli.h"
#include "tools/cli_record_format.h"

static const struct cli_command consume_command = {
        .name = "consume",
        .usage = "usage: synclog consume TOPIC [--from earliest|latest|OFFSET|-N|@TIME] [--partition P] [--max N]\n"
                 "                             [--follow] [--skip-lost] [--format TEMPLATE]\n"
                 "       synclog consume TOPIC --group G [--from ...] [--max N] [--follow] [--session-timeout-ms MS]\n"
                 "                             [--commit-interval-ms MS] [--format TEMPLATE] [--allow-gap]\n"
                 "\n"
                 "Print the records of a topic, one per line.\n"
                 "  --from earliest   from the oldest record kept (default)\n"
                 "  --from latest     only records written after the start\n"
                 "  --from OFFSET     from this offset in every partition read\n"
                 "  --from -N         the last N records of every partition read (fewer when it holds fewer)\n"
                 "  --from @TIME      from the first record at or after TIME: ISO 8601 (@2024-05-01T12:00:00Z; UTC\n"
                 "                    when no zone is given), epoch milliseconds (@1714564800000), or a duration\n"
                 "                    ago (@-10m, @-2h, @-PT30M)\n"
                 "  --partition P     only partition P\n"
                 "  --max N           stop after N records\n"
                 "  --follow          wait for new records until interrupted (SIGINT/SIGTERM, then exit 0); without "
                 "it,\n"
                 "                    stop at the end of the log as it was at the start\n"
                 "  --skip-lost       go on past offsets lost to disk damage (cut out by synclogd --repair),\n"
                 "                    counting them on stderr; without it, reaching them is an error (exit 1)\n"
                 "  --format T        print each record with template T instead, kcat-like: %k key, %s value,\n"
                 "                    %t topic, %p partition, %o offset, %T timestamp ms, %v version, %O op\n"
                 "                    (upsert or delete), %r origin, %i idempotency key, %h all sync headers\n"
                 "                    (version=3,op=delete,origin=live), %K %S key and value lengths (-1: null),\n"
                 "                    %% a percent; \\n \\t \\r \\\\ escapes. Nothing is added: end T with \\n.\n"
                 "                    Example: --format '%k %O v%v\\n'\n"
                 "Text: PARTITION<TAB>OFFSET<TAB>KEY<TAB>VALUE (a null key or value prints as nothing; a tab,\n"
                 "newline or carriage return inside a key or value prints as \\t, \\n, \\r). --json:\n"
                 "{\"partition\":P,\"offset\":O,\"key\":K,\"value\":V,\"version\":N,\"op\":\"upsert\",\"origin\":"
                 "\"live\",\n"
                 " \"timestamp_ms\":T,\"idempotency_key\":I}: the value as JSON when it is valid JSON, else as a "
                 "string,\n"
                 "null for a delete; version and idempotency_key null when the record has none.\n"
                 "Records of one partition come in offset order; partitions are interleaved.\n"
                 "\n"
                 "With --group G, read as a member of consumer group G: only the partitions the broker assigns to\n"
                 "this member, each from the group's committed offset (--from then says where a partition with no\n"
                 "commit starts), committing the offsets of the printed records every --commit-interval-ms\n"
                 "(milliseconds or a duration; default 1000) and at the end. Members of one group share the\n"
                 "partitions; when one stops or misses its session timeout (--session-timeout-ms, default the\n"
                 "broker's 10 s; 1000 to 300000 ms, or 1s to 5m), its partitions move to the others, which read\n"
                 "them from the last commit: a record may be printed twice across members, never skipped. A\n"
                 "commit the group refuses (this member was replaced) is reported on stderr. --partition cannot be\n"
                 "used with --group.\n"
                 "When retention removed records before the group read them (its commit is behind the log start, or\n"
                 "a new group reading from the earliest record starts after some expired), it says how many and exits\n"
                 "1 without reading or committing, unless --allow-gap: then it reads on from the earliest record and\n"
                 "the broker shows the group as `lost` until an offset reset or a backfill.\n",
};

struct consume_args {
	const char *topic;
	enum sl_from from;
	int64_t from_offset;
	int64_t from_timestamp_ms;
	int32_t partition;
	uint64_t max;
	bool follow;
	const char *group;
	uint64_t session_timeout_ms;
	uint64_t commit_interval_ms;
	bool allow_gap;
	bool skip_lost;
	struct cli_record_format *format; /* --format */
};

/* One record, in the output the flags asked for. */
static void record_print(const struct cli *cli, const struct consume_args *a, uint32_t partition,
                         const struct sl_record *r)
{
	if (a->format != NULL)
		cli_record_format_print(a->format, stdout, a->topic, partition, r);
	else if (cli->json)
		sl_record_print_json(stdout, partition, r);
	else
		sl_record_print_text(stdout, partition, r);
}

static int from_parse(const char *value, struct consume_args *a)
{
	if (strcmp(value, "earliest") == 0) {
		a->from = SL_FROM_EARLIEST;
	} else if (strcmp(value, "latest") == 0) {
		a->from = SL_FROM_LATEST;
	} else if (value[0] == '@') {
		if (sl_time_parse(value + 1, sl_clock_wall_ms(), &a->from_timestamp_ms) != 0)
			return cli_usage_error(&consume_command,
			                       "--from @TIME needs an ISO 8601 time (@2024-05-01T12:00:00Z), epoch "
			                       "milliseconds (@1714564800000) or a duration ago (@-10m), not '%s'",
			                       value);
		a->from = SL_FROM_TIMESTAMP;
	} else if (value[0] == '-' && cli_parse_i64(value + 1, 0, INT64_MAX, &a->from_offset) == 0) {
		a->from = SL_FROM_BEFORE_END;
	} else if (cli_parse_i64(value, 0, INT64_MAX, &a->from_offset) == 0) {
		a->from = SL_FROM_OFFSET;
	} else {
		return cli_usage_error(&consume_command,
		                       "--from must be earliest, latest, an offset (0 or more), -N or @TIME, not '%s'",
		                       value);
	}
	return CLI_EXIT_OK;
}

static int args_parse(int argc, char **argv, struct consume_args *a)
{
	const char *value;
	uint64_t u;
	int rc;

	for (int i = 0; i < argc; i++) {
		if ((rc = cli_flag(argc, argv, &i, "--from", &value)) != 0) {
			if (rc < 0)
				return cli_usage_error(&consume_command, "--from needs a value");
			rc = from_parse(value, a);
			if (rc != CLI_EXIT_OK)
				return rc;
		} else if ((rc = cli_flag(argc, argv, &i, "--partition", &value)) != 0) {
			if (rc < 0 || cli_parse_u64(value, INT32_MAX, &u) != 0)
				return cli_usage_error(&consume_command, "--partition needs a partition number");
			a->partition = (int32_t)u;
		} else if ((rc = cli_flag(argc, argv, &i, "--max", &value)) != 0) {
			if (rc < 0 || cli_parse_u64(value, UINT64_MAX, &a->max) != 0)
				return cli_usage_error(&consume_command, "--max needs a number of records");
		} else if (strcmp(argv[i], "--allow-gap") == 0) {
			a->allow_gap = true;
		} else if ((rc = cli_flag(argc, argv, &i, "--group", &value)) != 0) {
			if (rc < 0 || value[0] == '\0')
				return cli_usage_error(&consume_command, "--group needs a group name");
			a->group = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--session-timeout-ms", &value)) != 0) {
			int64_t ms;

			if (rc < 0 || cli_parse_duration_ms(value, &ms) != 0 || ms < 1000 || ms > 300000)
				return cli_usage_error(
				        &consume_command,
				        "--session-timeout-ms needs 1000 to 300000 milliseconds, or 1s to 5m");
			a->session_timeout_ms = (uint64_t)ms;
		} else if ((rc = cli_flag(argc, argv, &i, "--commit-interval-ms", &value)) != 0) {
			int64_t ms;

			if (rc < 0 || cli_parse_duration_ms(value, &ms) != 0 || ms > 3600000)
				return cli_usage_error(
				        &consume_command,
				        "--commit-interval-ms needs milliseconds or a duration up to 1h (0: "
				        "after every batch printed)");
			a->commit_interval_ms = (uint64_t)ms;
		} else if ((rc = cli_flag(argc, argv, &i, "--format", &value)) != 0) {
			char err[256];

			if (rc < 0)
				return cli_usage_error(&consume_command,
				                       "--format needs a template such as '%%k %%s\\n'");
			cli_record_format_free(a->format);
			if (cli_record_format_new(&a->format, value, err, sizeof(err)) != 0)
				return cli_usage_error(&consume_command, "--format: %s", err);
		} else if (strcmp(argv[i], "--follow") == 0) {
			a->follow = true;
		} else if (strcmp(argv[i], "--skip-lost") == 0) {
			a->skip_lost = true;
		} else if (cli_operand(&consume_command, argv[i], &a->topic) != 0) {
			return CLI_EXIT_USAGE;
		}
	}
	if (a->topic == NULL)
		return cli_usage_error(&consume_command, "the TOPIC is required");
	if (a->group != NULL && a->partition >= 0)
		return cli_usage_error(&consume_command,
		                       "--partition cannot be used with --group: the group assigns the partitions");
	if (a->group == NULL && a->allow_gap)
		return cli_usage_error(&consume_command, "--allow-gap needs --group");
	if (a->group != NULL && a->skip_lost)
		return cli_usage_error(&consume_command, "--skip-lost is for reading without --group");
	if (a->group == NULL && (a->session_timeout_ms != 0 || a->commit_interval_ms != UINT64_MAX))
		return cli_usage_error(&consume_command, "--session-timeout-ms and --commit-interval-ms need --group");
	return CLI_EXIT_OK;
}

/* Partitions given up without their progress committed are read again by their next owner: say so. */
static void rebalance_cb(struct sl_consumer *c, enum sl_consumer_change change,
                         const struct sl_consumer_partition *partitions, uint32_t count, void *cb_arg)
{
	(void)cb_arg;
	if (change != SL_CONSUMER_REVOKED)
		return;
	for (uint32_t i = 0; i < count; i++)
		if (!partitions[i].committed)
			fprintf(stderr,
			        "synclog consume: warning: topic %s partition %u given up at offset %lld without a "
			        "commit "
			        "(%s): its next owner reads it again from the last commit\n",
			        partitions[i].topic, partitions[i].partition, (long long)partitions[i].offset,
			        sl_consumer_error(c)[0] != '\0' ? sl_consumer_error(c) : "the group moved on");
}

/* Refuse to read past records retention removed before the group read them, unless --allow-gap: say how many.
 * Returns CLI_EXIT_OK to go on. */
static int gap_check(const struct consume_args *a, struct sl_consumer *c, uint64_t *reported)
{
	struct sl_consumer_stats st;

	sl_consumer_stats_get(c, &st);
	if (st.records_lost <= *reported)
		return CLI_EXIT_OK;
	*reported = st.records_lost;
	if (a->allow_gap) {
		fprintf(stderr,
		        "synclog consume: warning: %llu records of topic '%s' were removed by retention before group "
		        "%s "
		        "read them; reading on from the earliest record (--allow-gap)\n",
		        (unsigned long long)st.records_lost, a->topic, a->group);
		return CLI_EXIT_OK;
	}
	return cli_fail(&consume_command,
	                "%llu records of topic '%s' were removed by retention before group %s read them: pass "
	                "--allow-gap to read on from the earliest record, or reset the group's offsets",
	                (unsigned long long)st.records_lost, a->topic, a->group);
}

/* Records asked per poll: enough to amortise the call, few enough that --max stops exactly (every record handed
 * out counts as consumed). */
#define GROUP_POLL_RECORDS_MAX 1024

static int consume_group(const struct cli *cli, const struct consume_args *a)
{
	static struct sl_consumer_record records[GROUP_POLL_RECORDS_MAX];
	struct sl_consumer_options o;
	struct sl_consumer_stats st;
	struct sl_consumer *c;
	const char *topics[1] = {a->topic};
	char err[SL_ERROR_BYTES], client_id[64];
	uint64_t printed = 0;
	int rc = 0;

	sl_consumer_options_init(&o);
	o.broker = cli->broker;
	o.kafka_config = &cli->kafka;
	o.security = &cli->security;
	/* The process id in the member id tells an operator which process holds which partitions. */
	snprintf(client_id, sizeof(client_id), "synclog-consume-%ld", (long)getpid());
	o.client_id = client_id;
	o.group = a->group;
	o.topics = topics;
	o.topic_count = 1;
	o.start = a->from;
	o.start_offset = a->from_offset;
	o.start_timestamp_ms = a->from_timestamp_ms;
	o.session_timeout_ms = (uint32_t)a->session_timeout_ms;
	o.auto_commit_interval_ms = a->commit_interval_ms == UINT64_MAX ? 1000 : (uint32_t)a->commit_interval_ms;
	o.stop_at_end = !a->follow;
	o.rebalance_cb = rebalance_cb;
	if (cli->timeout_ms > 0)
		o.io_timeout_ms = cli->timeout_ms;
	cli_signals_install();
	rc = sl_consumer_subscribe(&c, &o, err, sizeof(err));
	if (rc == -EINTR && cli_interrupted())
		return CLI_EXIT_OK; /* stopped while joining (a forming group waits): nothing was read */
	if (rc != 0)
		return cli_fail(&consume_command, "%s", err);
	uint64_t lost_reported = 0;
	if ((rc = gap_check(a, c, &lost_reported)) != CLI_EXIT_OK) {
		sl_consumer_leave(c); /* nothing read, nothing committed */
		sl_consumer_free(c);
		return rc;
	}
	while (printed < a->max && !sl_consumer_done(c) && !cli_interrupted()) {
		uint64_t want = a->max - printed;
		int n = sl_consumer_poll(c, 1000, records,
		                         want < GROUP_POLL_RECORDS_MAX ? (uint32_t)want : GROUP_POLL_RECORDS_MAX);

		if (n == -EINTR)
			continue;
		if (n < 0) {
			rc = cli_fail(&consume_command, "%s", sl_consumer_error(c));
			break;
		}
		for (int i = 0; i < n; i++)
			record_print(cli, a, records[i].partition, &records[i].record);
		printed += (uint64_t)n;
		if (gap_check(a, c, &lost_reported) != CLI_EXIT_OK) {
			/* A rebalance gave this member a partition retention cut: stop before the next poll commits. */
			fflush(stdout);
			sl_consumer_leave(c);
			sl_consumer_free(c);
			return CLI_EXIT_FAIL;
		}
		/* Written out before the next poll, which may commit them. */
		if (fflush(stdout) != 0) {
			rc = cli_fail(&consume_command, "writing the output failed: %s", strerror(errno));
			sl_consumer_free(c); /* not committed: the group reads them again */
			return rc;
		}
	}
	if (rc == 0) {
		rc = sl_consumer_close(c);
		if (rc == -ESTALE || rc == -EIDRM) {
			fprintf(stderr, "synclog consume: warning: the last commit was refused: %s\n",
			        sl_consumer_error(c));
			rc = 0;
		} else if (rc != 0) {
			rc = cli_fail(&consume_command, "the last commit failed: %s", sl_consumer_error(c));
		}
	}
	sl_consumer_stats_get(c, &st);
	if (st.skipped > 0)
		fprintf(stderr, "synclog consume: %llu record%s deleted by retention before %s could be read\n",
		        (unsigned long long)st.skipped, st.skipped == 1 ? " was" : "s were",
		        st.skipped == 1 ? "it" : "they");
	sl_consumer_free(c);
	return rc;
}

static int consume_topic(const struct cli *cli, const struct consume_args *a);

int cli_consume(const struct cli *cli, int argc, char **argv)
{
	struct consume_args a = {
	        .from = SL_FROM_EARLIEST, .partition = -1, .max = UINT64_MAX, .commit_interval_ms = UINT64_MAX};
	int rc;

	if (cli_wants_help(argc, argv))
		return cli_help(&consume_command);
	rc = args_parse(argc, argv, &a);
	if (rc == CLI_EXIT_OK && a.format != NULL && cli->json)
		rc = cli_usage_error(&consume_command, "--format and --json each choose the output: give one");
	if (rc == CLI_EXIT_OK)
		rc = a.group != NULL ? consume_group(cli, &a) : consume_topic(cli, &a);
	cli_record_format_free(a.format);
	return rc;
}

/* Without a group: every partition (or --partition), from --from, no commits. */
static int consume_topic(const struct cli *cli, const struct consume_args *ap)
{
	struct consume_args a = *ap;
	struct sl_fetcher_options o;
	struct sl_fetcher *f;
	char err[SL_ERROR_BYTES];
	uint64_t printed = 0;
	int rc;

	sl_fetcher_options_init(&o);
	o.broker = cli->broker;
	o.kafka_config = &cli->kafka;
	o.security = &cli->security;
	o.client_id = "synclog-consume";
	o.topic = a.topic;
	o.partition = a.partition;
	o.from = a.from;
	o.from_offset = a.from_offset;
	o.from_timestamp_ms = a.from_timestamp_ms;
	o.stop_at_end = !a.follow;
	o.skip_lost = a.skip_lost;
	if (cli->timeout_ms > 0)
		o.io_timeout_ms = cli->timeout_ms;
	rc = sl_fetcher_new(&f, &o, err, sizeof(err));
	if (rc != 0)
		return cli_fail(&consume_command, "%s", err);
	cli_signals_install();
	rc = 0;
	while (printed < a.max && !sl_fetcher_done(f) && !cli_interrupted()) {
		uint32_t partition;
		struct sl_record r;

		rc = sl_fetcher_fetch(f);
		if (rc == -EINTR) {
			rc = 0;
			continue;
		}
		if (rc != 0)
			break;
		while (printed < a.max && (rc = sl_fetcher_next(f, &partition, &r)) == 1) {
			record_print(cli, &a, partition, &r);
			printed++;
		}
		if (rc < 0)
			break;
		rc = 0;
		/* Once per answer, so that a follower's lines show up as they arrive. */
		if (fflush(stdout) != 0) {
			sl_fetcher_free(f);
			return cli_fail(&consume_command, "writing the output failed: %s", strerror(errno));
		}
	}
	if (rc != 0) {
		rc = cli_fail(&consume_command, "%s", sl_fetcher_error(f));
	} else {
		if (sl_fetcher_skipped(f) > 0)
			fprintf(stderr, "synclog consume: %llu record%s deleted by retention before %s could be read\n",
			        (unsigned long long)sl_fetcher_skipped(f),
			        sl_fetcher_skipped(f) == 1 ? " was" : "s were",
			        sl_fetcher_skipped(f) == 1 ? "it" : "they");
		if (sl_fetcher_lost(f) > 0)
			fprintf(stderr, "synclog consume: skipped %llu offsets lost to disk damage\n",
			        (unsigned long long)sl_fetcher_lost(f));
		rc = CLI_EXIT_OK;
	}
	sl_fetcher_free(f);
	return rc;
}
