/* `synclog consume TOPIC`: print a topic's records from a starting point, up to the log end as it was at the start
 * or, with --follow, until interrupted. Reading only: no group, no committed offsets. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "consumer/synclog.h"
#include "tools/cli.h"

static const struct cli_command consume_command = {
        .name = "consume",
        .usage = "usage: synclog consume TOPIC [--from earliest|latest|OFFSET|@ISO8601] [--partition P] [--max N]\n"
                 "                             [--follow]\n"
                 "\n"
                 "Print the records of a topic, one per line.\n"
                 "  --from earliest   from the oldest record kept (default)\n"
                 "  --from latest     only records written after the start\n"
                 "  --from OFFSET     from this offset in every partition read\n"
                 "  --from @TIME      from the first record at or after TIME, ISO 8601 (2024-05-01T12:00:00Z;\n"
                 "                    UTC when no zone is given)\n"
                 "  --partition P     only partition P\n"
                 "  --max N           stop after N records\n"
                 "  --follow          wait for new records until interrupted (SIGINT/SIGTERM, then exit 0); without "
                 "it,\n"
                 "                    stop at the end of the log as it was at the start\n"
                 "Text: PARTITION<TAB>OFFSET<TAB>KEY<TAB>VALUE (a null key or value prints as nothing). --json:\n"
                 "{\"partition\":P,\"offset\":O,\"key\":K,\"value\":V,\"version\":N,\"op\":\"upsert\",\"origin\":"
                 "\"live\",\n"
                 " \"timestamp_ms\":T,\"idempotency_key\":I}: the value as JSON when it is valid JSON, else as a "
                 "string,\n"
                 "null for a delete; version and idempotency_key null when the record has none.\n"
                 "Records of one partition come in offset order; partitions are interleaved.\n",
};

struct consume_args {
	const char *topic;
	enum sl_from from;
	int64_t from_offset;
	int64_t from_timestamp_ms;
	int32_t partition;
	uint64_t max;
	bool follow;
};

static int from_parse(const char *value, struct consume_args *a)
{
	if (strcmp(value, "earliest") == 0) {
		a->from = SL_FROM_EARLIEST;
	} else if (strcmp(value, "latest") == 0) {
		a->from = SL_FROM_LATEST;
	} else if (value[0] == '@') {
		if (sl_time_parse_iso8601(value + 1, &a->from_timestamp_ms) != 0)
			return cli_usage_error(&consume_command,
			                       "--from @TIME needs an ISO 8601 time such as @2024-05-01T12:00:00Z, not "
			                       "'%s'",
			                       value);
		a->from = SL_FROM_TIMESTAMP;
	} else if (cli_parse_i64(value, 0, INT64_MAX, &a->from_offset) == 0) {
		a->from = SL_FROM_OFFSET;
	} else {
		return cli_usage_error(&consume_command,
		                       "--from must be earliest, latest, an offset (0 or more) or @TIME, not '%s'",
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
		} else if (strcmp(argv[i], "--follow") == 0) {
			a->follow = true;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			return cli_usage_error(&consume_command, "unknown flag '%s'", argv[i]);
		} else if (a->topic == NULL) {
			a->topic = argv[i];
		} else {
			return cli_usage_error(&consume_command, "unexpected argument '%s'", argv[i]);
		}
	}
	if (a->topic == NULL)
		return cli_usage_error(&consume_command, "the TOPIC is required");
	return CLI_EXIT_OK;
}

int cli_consume(const struct cli *cli, int argc, char **argv)
{
	struct consume_args a = {.from = SL_FROM_EARLIEST, .partition = -1, .max = UINT64_MAX};
	struct sl_fetcher_options o;
	struct sl_fetcher *f;
	char err[SL_ERROR_BYTES];
	uint64_t printed = 0;
	int rc;

	if (cli_wants_help(argc, argv))
		return cli_help(&consume_command);
	rc = args_parse(argc, argv, &a);
	if (rc != CLI_EXIT_OK)
		return rc;
	sl_fetcher_options_init(&o);
	o.broker = cli->broker;
	o.client_id = "synclog-consume";
	o.topic = a.topic;
	o.partition = a.partition;
	o.from = a.from;
	o.from_offset = a.from_offset;
	o.from_timestamp_ms = a.from_timestamp_ms;
	o.stop_at_end = !a.follow;
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
			if (cli->json)
				sl_record_print_json(stdout, partition, &r);
			else
				sl_record_print_text(stdout, partition, &r);
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
			fprintf(stderr,
			        "synclog consume: %llu records were deleted by retention before they could be read\n",
			        (unsigned long long)sl_fetcher_skipped(f));
		rc = CLI_EXIT_OK;
	}
	sl_fetcher_free(f);
	return rc;
}
