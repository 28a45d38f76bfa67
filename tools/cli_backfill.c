/* `synclog backfill TOPIC --source SRC`: produce a source's rows as origin=backfill records with their own
 * versions, in key order and in chunks, resumable after a crash or Ctrl-C, at a bounded rate (consumer/sync/
 * backfill.h). Shows progress (a bar on a terminal, a line every 5 s otherwise, JSON lines with --json) on stderr
 * and ends with `backfilled R rows, acknowledged A, skipped S, checksum HEX`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/base/clock.h"
#include "consumer/client/synclog.h"
#include "consumer/sync/backfill.h"
#include "consumer/sync/source.h"
#include "tools/cli.h"

/* How often a progress line is printed when stderr is not a terminal: often enough for a log, rare enough to read. */
#define PLAIN_PROGRESS_MS 5000
/* The most rows a chunk may have: a chunk is held in memory twice (one being acknowledged, one being sent). */
#define CHUNK_ROWS_MAX    1000000
#define BAR_WIDTH         30

static const struct cli_command backfill_command = {
        .name = "backfill",
        .usage = "usage: synclog backfill TOPIC --source SRC [--key COL] [--version COL] [--value COL] [--chunk N]\n"
                 "                              [--rate N] [--rate-bytes B] [--checkpoint PATH] [--restart]\n"
                 "                              [--acks none|written|fsync]\n"
                 "\n"
                 "Produce every row of the source SRC into TOPIC as an origin=backfill record carrying the row's\n"
                 "own version, in key order, in chunks. The applier's version rule keeps a backfilled row from\n"
                 "overwriting a newer live one, and a later live event wins over it.\n"
                 "  --source SRC        sqlite:PATH:TABLE (a table of a SQLite database), jsonl:PATH (one JSON\n"
                 "                      object per line), or a PostgreSQL table or view: postgresql://...?table=NAME\n"
                 "                      (a libpq URI) or postgres:CONNINFO:TABLE, NAME as SQL reads it (schema.t)\n"
                 "  --key COL           the key column (default key)\n"
                 "  --version COL       the version column, an integer (default version); a row without one is\n"
                 "                      refused\n"
                 "  --value COL         the value is this column's text; default: a JSON object of the other\n"
                 "                      columns in table order (PostgreSQL: as jsonb prints them). A true\n"
                 "                      `deleted` column makes the row a delete\n"
                 "  --chunk N           rows per chunk (default 10000): progress is checkpointed after every\n"
                 "                      acknowledged chunk\n"
                 "  --rate N            at most N records per second (default: no limit)\n"
                 "  --rate-bytes B      at most B bytes of keys and values per second\n"
                 "  --checkpoint PATH   where progress is kept (default: next to the source,\n"
                 "                      SOURCE_FILE.TABLE.TOPIC.backfill or SOURCE_FILE.TOPIC.backfill;\n"
                 "                      PostgreSQL: ./postgresql.SCHEMA.TABLE.TOPIC.backfill)\n"
                 "  --restart           forget the checkpoint and start over\n"
                 "  --acks LEVEL        when a record counts as acknowledged: fsync (default), written or none\n"
                 "After a crash, kill or Ctrl-C, the same command goes on after the last acknowledged chunk, and\n"
                 "produces no row twice: rows that reached the topic before the crash are found there and counted.\n"
                 "The broker may also cap backfill records per topic (synclogd --backfill-rate-max).\n"
                 "A row without a key or with a version that is not an integer is reported with its position and\n"
                 "skipped; the others are produced, and the exit status is then 1.\n"
                 "Progress goes to stderr: a bar on a terminal, a line every 5 s otherwise, JSON lines with --json.\n"
                 "Prints `backfilled R rows, acknowledged A, skipped S, checksum HEX` (or one JSON object), where\n"
                 "the checksum covers every (key, version) read, so two runs over one snapshot can be compared.\n"
                 "The run's result is reported to the broker (`synclog status`, the synclog_run_last_* metrics); a\n"
                 "run that acknowledged every row clears the `lost` state of the groups reading TOPIC.\n",
};

struct backfill_args {
	const char *topic;
	const char *source;
	struct sl_source_columns columns;
	const char *checkpoint;
	bool restart;
	uint64_t chunk;
	uint64_t rate;
	uint64_t rate_bytes;
	enum sl_acks acks;
};

static int args_parse(int argc, char **argv, struct backfill_args *a)
{
	const char *value;
	int rc;

	for (int i = 0; i < argc; i++) {
		if ((rc = cli_flag(argc, argv, &i, "--source", &value)) != 0) {
			if (rc < 0)
				return cli_usage_error(&backfill_command,
				                       "--source needs sqlite:PATH:TABLE, jsonl:PATH, "
				                       "postgresql://...?table=NAME or postgres:CONNINFO:TABLE");
			a->source = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--key", &value)) != 0) {
			if (rc < 0 || value[0] == '\0')
				return cli_usage_error(&backfill_command, "--key needs a column name");
			a->columns.key = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--version", &value)) != 0) {
			if (rc < 0 || value[0] == '\0')
				return cli_usage_error(&backfill_command, "--version needs a column name");
			a->columns.version = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--value", &value)) != 0) {
			if (rc < 0 || value[0] == '\0')
				return cli_usage_error(&backfill_command, "--value needs a column name");
			a->columns.value = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--chunk", &value)) != 0) {
			if (rc < 0 || cli_parse_u64(value, CHUNK_ROWS_MAX, &a->chunk) != 0 || a->chunk == 0)
				return cli_usage_error(&backfill_command, "--chunk needs 1 to %d rows", CHUNK_ROWS_MAX);
		} else if ((rc = cli_flag(argc, argv, &i, "--rate", &value)) != 0) {
			if (rc < 0 || cli_parse_u64(value, 1000000000, &a->rate) != 0 || a->rate == 0)
				return cli_usage_error(&backfill_command,
				                       "--rate needs 1 to 1000000000 records per second");
		} else if ((rc = cli_flag(argc, argv, &i, "--rate-bytes", &value)) != 0) {
			if (rc < 0 || cli_parse_u64(value, UINT64_MAX / 2, &a->rate_bytes) != 0 || a->rate_bytes == 0)
				return cli_usage_error(&backfill_command,
				                       "--rate-bytes needs a number of bytes per second");
		} else if ((rc = cli_flag(argc, argv, &i, "--checkpoint", &value)) != 0) {
			if (rc < 0 || value[0] == '\0')
				return cli_usage_error(&backfill_command, "--checkpoint needs a path");
			a->checkpoint = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--acks", &value)) != 0) {
			if (rc < 0 || cli_parse_acks(value, &a->acks) != 0)
				return cli_usage_error(&backfill_command, "--acks must be none, written or fsync");
		} else if (strcmp(argv[i], "--restart") == 0) {
			a->restart = true;
		} else if (cli_operand(&backfill_command, argv[i], &a->topic) != 0) {
			return CLI_EXIT_USAGE;
		}
	}
	if (a->topic == NULL)
		return cli_usage_error(&backfill_command, "the TOPIC is required");
	if (a->source == NULL)
		return cli_usage_error(&backfill_command, "--source SRC is required");
	return CLI_EXIT_OK;
}

/* ---- progress ---- */

struct show {
	const struct cli *cli;
	const struct sl_source *source;
	bool terminal;
	bool bar_drawn;
	int64_t next_plain_ms;
	uint64_t bad_rows;
};

static void bar_draw(struct show *s, const struct sl_backfill_progress *p)
{
	uint64_t done = p->rows + p->skipped;
	int filled = p->total > 0 ? (int)((double)done / (double)p->total * BAR_WIDTH) : 0;
	char bar[BAR_WIDTH + 1];

	if (filled > BAR_WIDTH)
		filled = BAR_WIDTH;
	memset(bar, '#', (size_t)filled);
	memset(bar + filled, '.', (size_t)(BAR_WIDTH - filled));
	bar[BAR_WIDTH] = '\0';
	fprintf(stderr, "\r[%s] %llu/%lld rows  %.0f rows/s  ETA %s%.0fs   ", bar, (unsigned long long)done,
	        (long long)p->total, p->rows_per_s, p->eta_s < 0 ? "?" : "", p->eta_s < 0 ? 0.0 : p->eta_s);
	s->bar_drawn = true;
}

static void progress_cb(const struct sl_backfill_progress *p, void *cb_arg)
{
	struct show *s = cb_arg;
	int64_t now = sl_clock_mono_ms();

	if (s->terminal && !s->cli->json) {
		bar_draw(s, p);
		return;
	}
	if (now < s->next_plain_ms)
		return;
	s->next_plain_ms = now + PLAIN_PROGRESS_MS;
	if (s->cli->json)
		fprintf(stderr,
		        "{\"progress\":{\"rows\":%llu,\"acknowledged\":%llu,\"skipped\":%llu,\"total\":%lld,"
		        "\"rows_per_s\":%.0f,\"eta_s\":%.1f}}\n",
		        (unsigned long long)p->rows, (unsigned long long)p->acknowledged,
		        (unsigned long long)p->skipped, (long long)p->total, p->rows_per_s, p->eta_s);
	else
		fprintf(stderr,
		        "synclog backfill: %llu/%lld rows, acknowledged %llu, skipped %llu, %.0f rows/s, ETA %.0fs\n",
		        (unsigned long long)(p->rows + p->skipped), (long long)p->total,
		        (unsigned long long)p->acknowledged, (unsigned long long)p->skipped, p->rows_per_s,
		        p->eta_s < 0 ? 0.0 : p->eta_s);
}

static void bad_row_cb(const struct sl_source_row *row, void *cb_arg)
{
	struct show *s = cb_arg;
	const char *pos = s->source->position_name;

	if (s->bar_drawn) {
		fputc('\n', stderr);
		s->bar_drawn = false;
	}
	s->bad_rows++;
	fprintf(stderr, "synclog backfill: %s", s->source->spec);
	if (pos[0] != '\0')
		fprintf(stderr, " %s %llu", pos, (unsigned long long)row->position);
	if (row->key != NULL)
		fprintf(stderr, " key '%.*s'", (int)(row->key_len > 100 ? 100 : row->key_len), (const char *)row->key);
	fprintf(stderr, ": %s; the row was skipped\n", row->bad);
}

static bool stop_cb(void *cb_arg)
{
	(void)cb_arg;
	return cli_interrupted();
}

static void result_print(const struct cli *cli, const struct sl_backfill_progress *p)
{
	if (cli->json)
		printf("{\"backfilled\":%llu,\"acknowledged\":%llu,\"skipped\":%llu,\"checksum\":\"%016llx\","
		       "\"recovered\":%llu,\"resumed\":%s,\"finished\":%s}\n",
		       (unsigned long long)p->rows, (unsigned long long)p->acknowledged, (unsigned long long)p->skipped,
		       (unsigned long long)p->checksum, (unsigned long long)p->recovered, p->resumed ? "true" : "false",
		       p->finished ? "true" : "false");
	else
		printf("backfilled %llu rows, acknowledged %llu, skipped %llu, checksum %016llx\n",
		       (unsigned long long)p->rows, (unsigned long long)p->acknowledged, (unsigned long long)p->skipped,
		       (unsigned long long)p->checksum);
}

/* The run's end, for `synclog status` and the metrics: ok only when every row is acknowledged (which also clears
 * the `lost` state of the groups reading the topic); an interrupted or failed run, or one that skipped bad rows,
 * is reported as failed with why. The source is the run's "target" field: the other side of the run. */
static void run_report(const struct cli *cli, const struct backfill_args *a, const struct sl_source *source,
                       const struct sl_backfill_progress *p, int rc, const char *err, int64_t started_ms)
{
	struct sl_run_report r = {.started_ms = started_ms, .finished_ms = sl_clock_wall_ms(), .rows = p->rows};

	snprintf(r.kind, sizeof(r.kind), "backfill");
	snprintf(r.topic, sizeof(r.topic), "%s", a->topic);
	snprintf(r.target, sizeof(r.target), "%s", source->spec);
	r.ok = rc == 0 && p->skipped == 0;
	if (rc == -EINTR)
		snprintf(r.summary, sizeof(r.summary), "interrupted after %llu rows, acknowledged %llu",
		         (unsigned long long)p->rows, (unsigned long long)p->acknowledged);
	else if (rc != 0)
		snprintf(r.summary, sizeof(r.summary), "failed after %llu rows: %s", (unsigned long long)p->rows, err);
	else
		snprintf(r.summary, sizeof(r.summary), "backfilled %llu rows, acknowledged %llu, skipped %llu",
		         (unsigned long long)p->rows, (unsigned long long)p->acknowledged,
		         (unsigned long long)p->skipped);
	cli_run_report(cli, &backfill_command, &r);
}

int cli_backfill(const struct cli *cli, int argc, char **argv)
{
	struct backfill_args a = {.chunk = 10000, .acks = SL_ACKS_FSYNC};
	struct sl_backfill_options o;
	struct sl_backfill_progress p;
	struct sl_source source;
	struct show show = {.cli = cli, .terminal = isatty(STDERR_FILENO) == 1};
	char err[SL_ERROR_BYTES], checkpoint[SL_SOURCE_SPEC_BYTES_MAX + SL_TOPIC_NAME_BYTES_MAX + 32];
	int64_t started_ms;
	int rc, exit_code = CLI_EXIT_OK;

	if (cli_wants_help(argc, argv))
		return cli_help(&backfill_command);
	rc = args_parse(argc, argv, &a);
	if (rc != CLI_EXIT_OK)
		return rc;
	if (sl_source_open(&source, a.source, &a.columns, err, sizeof(err)) != 0)
		return cli_fail(&backfill_command, "%s", err);
	if (a.columns.key == NULL)
		a.columns.key = SL_SOURCE_KEY_COLUMN_DEFAULT;
	if (a.columns.version == NULL)
		a.columns.version = SL_SOURCE_VERSION_COLUMN_DEFAULT;
	if (a.checkpoint == NULL)
		snprintf(checkpoint, sizeof(checkpoint), "%s.%s.backfill", source.stem[0] ? source.stem : "./synclog",
		         a.topic);
	else
		snprintf(checkpoint, sizeof(checkpoint), "%s", a.checkpoint);
	show.source = &source;
	sl_backfill_options_init(&o);
	o.broker = cli->broker;
	o.kafka_config = &cli->kafka;
	o.security = &cli->security;
	o.topic = a.topic;
	o.source = &source;
	o.columns = &a.columns;
	o.checkpoint_path = checkpoint;
	o.restart = a.restart;
	o.chunk_rows = (uint32_t)a.chunk;
	o.rate_records_per_s = a.rate;
	o.rate_bytes_per_s = a.rate_bytes;
	o.acks = a.acks;
	o.io_timeout_ms = cli->timeout_ms;
	o.progress_cb = progress_cb;
	o.bad_row_cb = bad_row_cb;
	o.stop_cb = stop_cb;
	o.cb_arg = &show;
	cli_signals_install();
	started_ms = sl_clock_wall_ms();
	rc = sl_backfill_run(&o, &p, err, sizeof(err));
	if (show.bar_drawn)
		fputc('\n', stderr);
	result_print(cli, &p);
	if (rc != -EALREADY)
		run_report(cli, &a, &source, &p, rc, err, started_ms);
	if (rc == -EALREADY)
		fprintf(stderr,
		        "synclog backfill: this backfill finished before (checkpoint %s): nothing to do; give "
		        "--restart "
		        "to produce the source again\n",
		        checkpoint);
	else if (rc == -EINTR)
		exit_code = cli_fail(&backfill_command,
		                     "interrupted; progress is kept in %s: run the same command to go on", checkpoint);
	else if (rc != 0)
		exit_code = cli_fail(&backfill_command, "%s", err);
	else if (p.skipped > 0)
		exit_code =
		        cli_fail(&backfill_command,
		                 "%llu row(s) could not be produced (reported above) and were skipped; fix them in the "
		                 "source and run again with --restart, or produce them by hand",
		                 (unsigned long long)p.skipped);
	sl_source_close(&source);
	return exit_code;
}
