/* `synclog produce TOPIC`: records from stdin, one per line, through the idempotent producer. Bad lines are reported
 * with their number and skipped; after the first record the broker refuses, nothing more is read, so that the
 * acknowledged records of a partition are always the first ones sent to it. Ends with `produced N records`. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto/base/clock.h"
#include "consumer/client/synclog.h"
#include "consumer/sync/record_input.h"
#include "tools/cli.h"
#include "tools/line_reader.h"

/* Longer lines are reported and skipped without being held: the broker's frame limit, which no record exceeds. */
#define LINE_BYTES_MAX (16u << 20)

static const struct cli_command produce_command = {
        .name = "produce",
        .usage =
                "usage: synclog produce TOPIC [--acks none|written|fsync] [--origin live|backfill|repair]\n"
                "                             [--input tsv|json] [--compression none|zstd]\n"
                "\n"
                "Append the records read from stdin, one per line.\n"
                "  --input tsv     KEY<TAB>VALUE (default); the value is everything after the first tab\n"
                "  --input json    {\"key\": \"...\", \"value\": any JSON, \"version\": N, \"op\": "
                "\"upsert\"|\"delete\"|\"changed\",\n"
                "                   \"idempotency_key\": \"...\", \"schema_version\": N, \"origin_system\": \"...\",\n"
                "                   \"changed_at_ms\": MS}; key required; the value is stored as its JSON text\n"
                "  --acks LEVEL    when the broker acknowledges: fsync (default, on disk), written (in the page "
                "cache),\n"
                "                  none (validated and queued)\n"
                "  --origin O      origin of every record: live (default), backfill or repair\n"
                "  --compression C compress batches: none (default) or zstd\n"
                "Blank lines are skipped. A line that cannot be parsed is reported on stderr with its number and not\n"
                "sent. Prints `produced N records` (or {\"produced\": N}), N counting acknowledged records; exits 1 if "
                "a\n"
                "line was bad or a record was not acknowledged.\n",
};

struct produce_state {
	uint64_t acknowledged;
	uint64_t failed;
	uint64_t first_failed_line;
	char first_failure[SL_ERROR_BYTES];
};

static void delivered_cb(void *opaque, const struct sl_delivery *d, void *cb_arg)
{
	struct produce_state *st = cb_arg;

	if (d->status == 0) {
		st->acknowledged++;
		return;
	}
	if (st->failed++ == 0) {
		st->first_failed_line = (uint64_t)(uintptr_t)opaque;
		snprintf(st->first_failure, sizeof(st->first_failure), "%s", d->error);
	}
}

struct produce_args {
	const char *topic;
	enum sl_acks acks;
	enum sl_origin origin;
	enum sl_input_format input;
	int codec;
};

static int args_parse(int argc, char **argv, struct produce_args *a)
{
	const char *value;
	int rc;

	for (int i = 0; i < argc; i++) {
		if ((rc = cli_flag(argc, argv, &i, "--acks", &value)) != 0) {
			if (rc < 0 || cli_parse_acks(value, &a->acks) != 0)
				return cli_usage_error(&produce_command, "--acks must be none, written or fsync");
		} else if ((rc = cli_flag(argc, argv, &i, "--origin", &value)) != 0) {
			if (rc < 0 || sl_origin_parse(value, strlen(value), &a->origin) != 0)
				return cli_usage_error(&produce_command, "--origin must be live, backfill or repair");
		} else if ((rc = cli_flag(argc, argv, &i, "--input", &value)) != 0) {
			if (rc > 0 && strcmp(value, "tsv") == 0)
				a->input = SL_INPUT_TSV;
			else if (rc > 0 && strcmp(value, "json") == 0)
				a->input = SL_INPUT_JSON;
			else
				return cli_usage_error(&produce_command, "--input must be tsv or json");
		} else if ((rc = cli_flag(argc, argv, &i, "--compression", &value)) != 0) {
			if (rc > 0 && strcmp(value, "none") == 0)
				a->codec = SL_BATCH_CODEC_NONE;
			else if (rc > 0 && strcmp(value, "zstd") == 0)
				a->codec = SL_BATCH_CODEC_ZSTD;
			else
				return cli_usage_error(&produce_command, "--compression must be none or zstd");
		} else if (cli_operand(&produce_command, argv[i], &a->topic) != 0) {
			return CLI_EXIT_USAGE;
		}
	}
	if (a->topic == NULL)
		return cli_usage_error(&produce_command, "the TOPIC is required");
	return CLI_EXIT_OK;
}

/* Wait until stdin has data or the producer has work; read stdin when it is ready. Returns 0, -EINTR, -EIO. */
static int wait_input(struct sl_producer *p, struct line_reader *lr)
{
	struct pollfd fds[2] = {{.fd = lr->fd, .events = POLLIN}};
	int n = 1 + sl_producer_pollfd(p, &fds[1]);
	int rc = poll(fds, (nfds_t)n, sl_producer_timeout_ms(p));

	if (rc < 0)
		return errno == EINTR ? -EINTR : -EIO;
	if (rc == 0 || (n == 2 && fds[1].revents != 0)) {
		rc = sl_producer_poll(p, 0);
		if (rc < 0)
			return rc;
	}
	if (fds[0].revents != 0)
		return line_reader_fill(lr);
	return 0;
}

struct input_counts {
	uint64_t sent;
	uint64_t bad;
	uint64_t first_bad_line;
};

static void bad_line(struct input_counts *in, uint64_t line_number, const char *why)
{
	fprintf(stderr, "synclog produce: line %llu: %s; the line was not sent\n", (unsigned long long)line_number,
	        why);
	if (in->bad++ == 0)
		in->first_bad_line = line_number;
}

/* Read, parse and send until the input ends, a record fails or a signal arrives. Returns 0, or -1 after an
 * operating error (reading stdin, out of memory, the producer giving up) was printed. */
static int produce_lines(struct sl_producer *p, struct sl_line_parser *lp, const struct produce_args *a,
                         const struct produce_state *st, struct input_counts *in)
{
	struct line_reader lr;
	char err[SL_ERROR_BYTES];
	int failure = 0;

	if (line_reader_init(&lr, STDIN_FILENO, LINE_BYTES_MAX) != 0) {
		cli_fail(&produce_command, "out of memory");
		return -1;
	}
	while (st->failed == 0 && !cli_interrupted() && failure == 0) {
		struct sl_record r;
		const char *line;
		size_t len;
		int rc = line_reader_next(&lr, &line, &len);

		if (rc == 0)
			break;
		if (rc == -EAGAIN) {
			rc = wait_input(p, &lr);
			if (rc < 0 && rc != -EINTR) {
				cli_fail(&produce_command, "reading stdin failed: %s", strerror(-rc));
				failure = -1;
			}
			continue;
		}
		if (rc == -E2BIG) {
			bad_line(in, lr.line_number, "longer than 16 MiB");
			continue;
		}
		rc = sl_line_parse(lp, line, len, a->origin, sl_clock_wall_ms(), &r, err, sizeof(err));
		if (rc == -ENOMEM) {
			cli_fail(&produce_command, "out of memory parsing line %llu",
			         (unsigned long long)lr.line_number);
			failure = -1;
			continue;
		}
		if (rc < 0)
			bad_line(in, lr.line_number, err);
		if (rc <= 0)
			continue;
		rc = sl_producer_send(p, SL_PARTITION_ANY, &r, (void *)(uintptr_t)lr.line_number);
		if (rc == -EMSGSIZE || rc == -EINVAL) {
			bad_line(in, lr.line_number, sl_producer_error(p));
		} else if (rc == 0) {
			in->sent++;
		} else if (rc != -EINTR) {
			/* -EINTR: the record was not taken, and the loop ends on the flag. */
			cli_fail(&produce_command, "line %llu: %s", (unsigned long long)lr.line_number,
			         sl_producer_error(p));
			failure = -1;
		}
	}
	line_reader_free(&lr);
	return failure;
}

int cli_produce(const struct cli *cli, int argc, char **argv)
{
	struct produce_args a = {.acks = SL_ACKS_FSYNC, .origin = SL_ORIGIN_LIVE, .input = SL_INPUT_TSV};
	struct produce_state st = {0};
	struct input_counts in = {0};
	struct sl_producer_options o;
	struct sl_line_parser *lp;
	struct sl_producer *p;
	char err[SL_ERROR_BYTES];
	int rc, flush_rc, exit_code = CLI_EXIT_OK;

	if (cli_wants_help(argc, argv))
		return cli_help(&produce_command);
	rc = args_parse(argc, argv, &a);
	if (rc != CLI_EXIT_OK)
		return rc;
	if (sl_line_parser_new(&lp, a.input) != 0)
		return cli_fail(&produce_command, "out of memory");
	sl_producer_options_init(&o);
	o.broker = cli->broker;
	o.kafka_config = &cli->kafka;
	o.security = &cli->security;
	o.client_id = "synclog-produce";
	o.topic = a.topic;
	o.acks = a.acks;
	o.codec = a.codec;
	/* --origin backfill counts against the broker's backfill quota like `synclog backfill` does. */
	o.backfill = a.origin == SL_ORIGIN_BACKFILL;
	o.delivery_cb = delivered_cb;
	o.delivery_cb_arg = &st;
	if (cli->timeout_ms > 0)
		o.io_timeout_ms = cli->timeout_ms;
	rc = sl_producer_new(&p, &o, err, sizeof(err));
	if (rc != 0) {
		exit_code = cli_fail(&produce_command, "%s", err);
		goto print;
	}
	cli_signals_install();
	rc = produce_lines(p, lp, &a, &st, &in);
	if (rc != 0)
		exit_code = CLI_EXIT_FAIL;
	/* Everything sent is waited for, even after a signal: the count printed must be the truth. The delivery
	 * timeout bounds the wait. */
	while ((flush_rc = sl_producer_flush(p, -1)) == -EINTR)
		;
	sl_producer_free(p);
	if (st.failed > 0)
		exit_code = cli_fail(&produce_command, "line %llu: %s; %llu record%s not acknowledged",
		                     (unsigned long long)st.first_failed_line, st.first_failure,
		                     (unsigned long long)st.failed, cli_plural(st.failed));
	else if (in.bad > 0)
		exit_code = cli_fail(&produce_command,
		                     "%llu line%s could not be parsed and %s not sent (first: line "
		                     "%llu); fix them and send them again",
		                     (unsigned long long)in.bad, cli_plural(in.bad), in.bad == 1 ? "was" : "were",
		                     (unsigned long long)in.first_bad_line);
	(void)flush_rc;
print:
	sl_line_parser_free(lp);
	/* Spelled as in the contract, space included. */
	if (cli->json)
		printf("{\"produced\": %llu}\n", (unsigned long long)st.acknowledged);
	else
		printf("produced %llu record%s\n", (unsigned long long)st.acknowledged, cli_plural(st.acknowledged));
	return exit_code;
}
