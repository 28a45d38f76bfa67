/* `synclog reconcile --source SRC --target TARGET`: compare a source of truth with a target by key range digests
 * (consumer/sync/reconcile.h), print the counts of each kind of difference and their ratio, alert above a threshold,
 * report the differing keys, repair them through the log with origin=repair records, and keep each run in the
 * target's reconcile_runs; with --every, on a schedule in one long-lived process. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/base/clock.h"
#include "consumer/client/synclog.h"
#include "consumer/sync/reconcile.h"
#include "consumer/sync/source.h"
#include "consumer/sync/target.h"
#include "tools/cli.h"
#include "tools/cli_contract.h"

/* The seed's success metric: fewer than 0.01% of rows differ. */
#define THRESHOLD_DEFAULT 0.0001

static const struct cli_command reconcile_command = {
        .name = "reconcile",
        .usage = "usage: synclog reconcile --source SRC --target TARGET [--schema NAME] [--table NAME] [--key COL]\n"
                 "                         [--version COL] [--value COL] [--sample F] [--seed N] [--threshold R]\n"
                 "                         [--report PATH] [--repair TOPIC] [--every DURATION]\n"
                 "\n"
                 "Compare the rows of SRC with the target's entity table by key. Both sides are cut into key\n"
                 "ranges summarised by a digest; only ranges whose digests differ are split and walked row by row,\n"
                 "so agreeing data costs about one read of each side. Each differing key is one of:\n"
                 "  missing   in the source, absent or deleted in the target\n"
                 "  extra     live in the target, absent or deleted in the source\n"
                 "  version   live on both sides at different versions\n"
                 "  value     same version, different value (JSON compared without regard to key order and space)\n"
                 "  --source SRC        sqlite:PATH:TABLE, jsonl:PATH, postgresql://...?table=NAME or\n"
                 "                      postgres:CONNINFO:TABLE (columns as for `synclog backfill`)\n"
                 "  --target TARGET     a target of `synclog apply`: sqlite:PATH, postgresql://... (a libpq URI)\n"
                 "                      or postgres:CONNINFO. When both sides are PostgreSQL, each server sums\n"
                 "                      its own ranges: a range that agrees costs one row over the network\n"
                 "  --schema NAME       a PostgreSQL target's schema (default synclog)\n"
                 "  --table NAME        the target's entity table (default entities)\n"
                 "  --key, --version, --value COL   the source's columns (defaults key, version; value: a JSON\n"
                 "                      object of the other columns)\n"
                 "  --sample F          compare a random fraction F (0 < F <= 1) of the key ranges (default 1)\n"
                 "  --seed N            the sample's random seed (default: from the clock)\n"
                 "  --threshold R       above this diff ratio, print a line starting `ALERT reconcile` on stderr\n"
                 "                      and exit 1; at or below, exit 0. Default: the recovery.mismatch_threshold\n"
                 "                      of the sync contract of the topic that feeds the target (or --repair's),\n"
                 "                      else 0.0001 (0.01%)\n"
                 "  --report PATH       write each differing key as a JSON line: key, kind, source_version,\n"
                 "                      target_version, action (repair, or bump_source when the target holds a\n"
                 "                      newer version than the source), repaired\n"
                 "  --repair TOPIC      produce, for every differing key, the source's row (a delete carrying the\n"
                 "                      target's version for extra) with origin=repair into TOPIC; the applier lets\n"
                 "                      a repair replace a row of its own version, never a newer one. Keys where\n"
                 "                      the target is ahead are not repaired: bump them in the source\n"
                 "  --every DURATION    run again every DURATION (500ms, 30s, 5m, 2h, 7d or ISO 8601) until\n"
                 "                      SIGINT/SIGTERM, then exit 0\n"
                 "Prints `compared C missing M extra E version V value P diff_ratio R` (or one JSON object) per\n"
                 "run, and keeps each run in the target's table reconcile_runs. Each run is also reported to the\n"
                 "broker under the topic that feeds the target (or --repair's), for `synclog status` and the\n"
                 "synclog_reconcile_last_* metrics; a broker that cannot be reached is a warning only.\n",
};

struct reconcile_args {
	const char *source;
	const char *target;
	const char *schema;
	const char *table;
	struct sl_source_columns columns;
	double sample;
	uint64_t seed;
	double threshold;
	const char *report;
	const char *repair_topic;
	int64_t every_ms; /* 0: once */
};

static int args_parse(int argc, char **argv, struct reconcile_args *a)
{
	const char *value, *bad;
	int rc;

	for (int i = 0; i < argc; i++) {
		if ((rc = cli_flag(argc, argv, &i, "--source", &value)) != 0) {
			if (rc < 0)
				return cli_usage_error(&reconcile_command,
				                       "--source needs sqlite:PATH:TABLE, jsonl:PATH, "
				                       "postgresql://...?table=NAME or postgres:CONNINFO:TABLE");
			a->source = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--target", &value)) != 0) {
			if (rc < 0)
				return cli_usage_error(
				        &reconcile_command,
				        "--target needs sqlite:PATH, postgresql://... or postgres:CONNINFO");
			a->target = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--schema", &value)) != 0) {
			if (rc < 0 || value[0] == '\0')
				return cli_usage_error(&reconcile_command, "--schema needs a schema name");
			a->schema = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--table", &value)) != 0) {
			if (rc < 0 || value[0] == '\0')
				return cli_usage_error(&reconcile_command, "--table needs a table name");
			a->table = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--key", &value)) != 0) {
			if (rc < 0 || value[0] == '\0')
				return cli_usage_error(&reconcile_command, "--key needs a column name");
			a->columns.key = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--version", &value)) != 0) {
			if (rc < 0 || value[0] == '\0')
				return cli_usage_error(&reconcile_command, "--version needs a column name");
			a->columns.version = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--value", &value)) != 0) {
			if (rc < 0 || value[0] == '\0')
				return cli_usage_error(&reconcile_command, "--value needs a column name");
			a->columns.value = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--sample", &value)) != 0) {
			if (rc < 0 || cli_parse_double(value, 0, 1, &a->sample) != 0 || a->sample <= 0)
				return cli_usage_error(&reconcile_command,
				                       "--sample needs a fraction F with 0 < F <= 1");
		} else if ((rc = cli_flag(argc, argv, &i, "--seed", &value)) != 0) {
			if (rc < 0 || cli_parse_u64(value, UINT64_MAX, &a->seed) != 0)
				return cli_usage_error(&reconcile_command, "--seed needs a whole number");
		} else if ((rc = cli_flag(argc, argv, &i, "--threshold", &value)) != 0) {
			if (rc < 0 || cli_parse_double(value, 0, 1, &a->threshold) != 0)
				return cli_usage_error(&reconcile_command, "--threshold needs a ratio from 0 to 1");
		} else if ((rc = cli_flag(argc, argv, &i, "--report", &value)) != 0) {
			if (rc < 0 || value[0] == '\0')
				return cli_usage_error(&reconcile_command, "--report needs a path");
			a->report = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--repair", &value)) != 0) {
			if (rc < 0 || value[0] == '\0')
				return cli_usage_error(&reconcile_command,
				                       "--repair needs the TOPIC the target applies");
			a->repair_topic = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--every", &value)) != 0) {
			if (rc < 0 || cli_parse_duration_ms(value, &a->every_ms) != 0 || a->every_ms <= 0)
				return cli_usage_error(&reconcile_command,
				                       "--every needs a duration: 500ms, 30s, 5m, 2h, 7d or ISO 8601");
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			return cli_usage_error(&reconcile_command, "unknown flag '%s'", argv[i]);
		} else {
			return cli_usage_error(&reconcile_command, "unexpected argument '%s'", argv[i]);
		}
	}
	if (a->source == NULL || a->target == NULL)
		return cli_usage_error(&reconcile_command, "--source SRC and --target TARGET are required");
	if ((bad = sl_target_check(a->target, a->schema)) != NULL)
		return cli_usage_error(&reconcile_command, "%s", bad);
	return CLI_EXIT_OK;
}

/* ---- one run ---- */

struct run_state {
	const struct reconcile_args *a;
	const struct sl_source *source;
	FILE *report;
	struct sl_producer *repair;
	uint64_t repairs_sent;
	uint64_t repairs_acked;
	uint64_t repairs_failed;
	uint64_t bumps; /* target ahead: the source must be bumped */
	char first_failure[SL_ERROR_BYTES];
	int fatal; /* a repair could not even be sent */
	char fatal_error[SL_ERROR_BYTES];
};

static void repair_delivered_cb(void *opaque, const struct sl_delivery *d, void *cb_arg)
{
	struct run_state *st = cb_arg;

	(void)opaque;
	if (d->status == 0) {
		st->repairs_acked++;
	} else if (st->repairs_failed++ == 0) {
		snprintf(st->first_failure, sizeof(st->first_failure), "%s", d->error);
	}
}

static void version_print(FILE *f, int64_t v)
{
	if (v == SL_VERSION_NONE)
		fputs("null", f);
	else
		fprintf(f, "%lld", (long long)v);
}

static void diff_cb(const struct sl_diff *d, void *cb_arg)
{
	struct run_state *st = cb_arg;
	struct sl_record rec;
	bool repairable = sl_reconcile_repair_record(d, sl_clock_wall_ms(), &rec) == 1, repaired = false;

	st->bumps += !repairable;
	if (repairable && st->repair != NULL && st->fatal == 0) {
		int rc = sl_producer_send(st->repair, SL_PARTITION_ANY, &rec, NULL);

		if (rc == 0) {
			st->repairs_sent++;
			repaired = true;
		} else {
			st->fatal = rc;
			snprintf(st->fatal_error, sizeof(st->fatal_error), "%s", sl_producer_error(st->repair));
		}
	}
	if (st->report == NULL)
		return;
	fputs("{\"key\":", st->report);
	sl_json_print_string(st->report, d->key, d->key_len);
	fprintf(st->report, ",\"kind\":\"%s\",\"source_version\":", sl_diff_kind_name(d->kind));
	version_print(st->report, d->source_version);
	fputs(",\"target_version\":", st->report);
	version_print(st->report, d->target_version);
	fprintf(st->report, ",\"source_deleted\":%s,\"target_deleted\":%s,\"action\":\"%s\",\"repaired\":%s}\n",
	        d->source_deleted ? "true" : "false", d->target_deleted ? "true" : "false",
	        repairable ? "repair" : "bump_source", repaired ? "true" : "false");
}

static void bad_row_cb(const struct sl_source_row *row, void *cb_arg)
{
	struct run_state *st = cb_arg;
	const char *pos = st->source->position_name;

	fprintf(stderr, "synclog reconcile: %s", st->source->spec);
	if (pos[0] != '\0')
		fprintf(stderr, " %s %llu", pos, (unsigned long long)row->position);
	if (row->key != NULL)
		fprintf(stderr, " key '%.*s'", (int)(row->key_len > 100 ? 100 : row->key_len), (const char *)row->key);
	fprintf(stderr, ": %s; left out of the comparison\n", row->bad);
}

static void summary_print(const struct cli *cli, const struct sl_reconcile_result *r, const struct run_state *st,
                          bool alert)
{
	if (cli->json)
		printf("{\"compared\":%llu,\"missing\":%llu,\"extra\":%llu,\"version\":%llu,\"value\":%llu,"
		       "\"diff_ratio\":%.10g,\"alert\":%s,\"repaired\":%llu,\"target_ahead\":%llu,\"skipped\":%llu,"
		       "\"ranges\":%llu,\"ranges_compared\":%llu,\"ranges_differing\":%llu}\n",
		       (unsigned long long)r->compared, (unsigned long long)r->missing, (unsigned long long)r->extra,
		       (unsigned long long)r->version, (unsigned long long)r->value, r->diff_ratio,
		       alert ? "true" : "false", (unsigned long long)st->repairs_acked,
		       (unsigned long long)r->target_ahead, (unsigned long long)r->skipped,
		       (unsigned long long)r->ranges, (unsigned long long)r->ranges_compared,
		       (unsigned long long)r->ranges_differing);
	else
		printf("compared %llu missing %llu extra %llu version %llu value %llu diff_ratio %.8f\n",
		       (unsigned long long)r->compared, (unsigned long long)r->missing, (unsigned long long)r->extra,
		       (unsigned long long)r->version, (unsigned long long)r->value, r->diff_ratio);
	fflush(stdout);
}

static int repair_open(const struct cli *cli, struct run_state *st, char *err, size_t err_bytes)
{
	struct sl_producer_options o;

	sl_producer_options_init(&o);
	o.broker = cli->broker;
	o.kafka_config = &cli->kafka;
	o.security = &cli->security;
	o.client_id = "synclog-reconcile-repair";
	o.topic = st->a->repair_topic;
	if (cli->timeout_ms > 0)
		o.io_timeout_ms = cli->timeout_ms;
	o.delivery_cb = repair_delivered_cb;
	o.delivery_cb_arg = st;
	return sl_producer_new(&st->repair, &o, err, err_bytes);
}

/* Tell the broker how the run ended (synclog status, the synclog_run_last_* and synclog_reconcile_last_* metrics
 * the alert rules read): ok when the comparison finished at or below the threshold with every repair acknowledged.
 * Nothing is reported when the run names no topic (a target that never applied one, and no --repair). */
static void run_report(const struct cli *cli, const char *topic, const struct sl_target *target,
                       const struct sl_reconcile_result *r, uint64_t repaired, int64_t started_ms, bool ok,
                       const char *failure)
{
	struct sl_run_report rr = {.started_ms = started_ms, .finished_ms = sl_clock_wall_ms(), .ok = ok};

	if (topic == NULL)
		return;
	snprintf(rr.kind, sizeof(rr.kind), "reconcile");
	snprintf(rr.topic, sizeof(rr.topic), "%s", topic);
	snprintf(rr.target, sizeof(rr.target), "%s", target->rows.spec);
	if (r != NULL) {
		rr.rows = r->compared;
		rr.differences = r->missing + r->extra + r->version + r->value;
		rr.diff_ratio = r->diff_ratio;
		rr.repaired = repaired;
		snprintf(rr.summary, sizeof(rr.summary),
		         "compared %llu missing %llu extra %llu version %llu value %llu%s%s",
		         (unsigned long long)r->compared, (unsigned long long)r->missing, (unsigned long long)r->extra,
		         (unsigned long long)r->version, (unsigned long long)r->value, failure ? ": " : "",
		         failure ? failure : "");
	} else {
		snprintf(rr.summary, sizeof(rr.summary), "failed: %s", failure ? failure : "");
	}
	cli_run_report(cli, &reconcile_command, &rr);
}

/* One comparison, its output, its alert, its record in the target and its report to the broker (when topic is
 * known). Returns the exit code of the run. */
static int run_once(const struct cli *cli, const struct reconcile_args *a, struct sl_source *source,
                    struct sl_target *target, const char *topic)
{
	struct run_state st = {.a = a, .source = source};
	struct sl_reconcile_options o;
	struct sl_reconcile_result r;
	struct sl_reconcile_run run = {.started_at_ms = sl_clock_wall_ms(), .source = source->spec};
	char err[SL_ERROR_BYTES];
	int rc, exit_code = CLI_EXIT_OK;
	bool alert;

	if (a->report != NULL && (st.report = fopen(a->report, "w")) == NULL)
		return cli_fail(&reconcile_command, "cannot write the report %s: %s", a->report, strerror(errno));
	if (a->repair_topic != NULL && repair_open(cli, &st, err, sizeof(err)) != 0) {
		if (st.report != NULL)
			fclose(st.report);
		return cli_fail(&reconcile_command, "%s", err);
	}
	sl_reconcile_options_init(&o);
	o.source = source;
	o.target = &target->rows;
	o.sample = a->sample;
	o.seed = a->seed != 0 ? a->seed : (uint64_t)sl_clock_mono_ns();
	o.diff_cb = diff_cb;
	o.bad_row_cb = bad_row_cb;
	o.cb_arg = &st;
	rc = sl_reconcile_run(&o, &r, err, sizeof(err));
	if (st.repair != NULL) {
		while (sl_producer_flush(st.repair, -1) == -EINTR)
			;
		sl_producer_free(st.repair);
	}
	if (st.report != NULL && fclose(st.report) != 0 && rc == 0)
		exit_code =
		        cli_fail(&reconcile_command, "writing the report %s failed: %s", a->report, strerror(errno));
	if (rc != 0) {
		run_report(cli, topic, target, NULL, 0, run.started_at_ms, false, err);
		return cli_fail(&reconcile_command, "%s", err);
	}
	alert = r.diff_ratio > a->threshold;
	summary_print(cli, &r, &st, alert);
	run.finished_at_ms = sl_clock_wall_ms();
	run.compared = r.compared;
	run.missing = r.missing;
	run.extra = r.extra;
	run.version = r.version;
	run.value = r.value;
	run.diff_ratio = r.diff_ratio;
	run.threshold = a->threshold;
	run.sample = a->sample;
	run.repaired = st.repairs_acked;
	run.alert = alert;
	if (target->ops->run_record(target->ctx, &run) != 0)
		fprintf(stderr, "synclog reconcile: warning: %s; the run is not in reconcile_runs\n",
		        target->ops->error(target->ctx));
	if (r.skipped > 0)
		fprintf(stderr, "synclog reconcile: %llu source row(s) were left out (reported above)\n",
		        (unsigned long long)r.skipped);
	if (st.bumps > 0)
		fprintf(stderr,
		        "synclog reconcile: %llu key(s) hold a newer version in the target than in the source: not "
		        "repaired; bump their version in the source (action bump_source%s)\n",
		        (unsigned long long)st.bumps, a->report != NULL ? " in the report" : "");
	if (st.fatal != 0 || st.repairs_failed > 0)
		exit_code = cli_fail(&reconcile_command, "repairs: %llu of %llu acknowledged: %s",
		                     (unsigned long long)st.repairs_acked,
		                     (unsigned long long)(st.repairs_sent + (st.fatal != 0)),
		                     st.fatal != 0 ? st.fatal_error : st.first_failure);
	if (alert) {
		fflush(stdout);
		fprintf(stderr,
		        "ALERT reconcile %s vs %s: diff_ratio %.8f above threshold %.8f: missing %llu extra %llu "
		        "version %llu value %llu of %llu compared%s\n",
		        source->spec, target->rows.spec, r.diff_ratio, a->threshold, (unsigned long long)r.missing,
		        (unsigned long long)r.extra, (unsigned long long)r.version, (unsigned long long)r.value,
		        (unsigned long long)r.compared, a->repair_topic != NULL ? "; repairs produced" : "");
		exit_code = CLI_EXIT_FAIL;
	}
	if (alert)
		snprintf(err, sizeof(err), "diff_ratio %.8f above threshold %.8f", r.diff_ratio, a->threshold);
	else if (st.fatal != 0 || st.repairs_failed > 0)
		snprintf(err, sizeof(err), "repairs failed: %s", st.fatal != 0 ? st.fatal_error : st.first_failure);
	run_report(cli, topic, target, &r, st.repairs_acked, run.started_at_ms, exit_code == CLI_EXIT_OK,
	           exit_code == CLI_EXIT_OK ? NULL : err);
	return exit_code;
}

/* Sleep ms, or less when a signal arrives. */
static void pause_ms(int64_t ms)
{
	int64_t until = sl_clock_mono_ms() + ms;

	while (!cli_interrupted()) {
		int64_t left = until - sl_clock_mono_ms();

		if (left <= 0)
			break;
		poll(NULL, 0, left > 1000 ? 1000 : (int)left);
	}
}

/* The threshold the topic's contract sets (recovery.mismatch_threshold), for the topic --repair names or the one
 * that feeds the target; else THRESHOLD_DEFAULT. Says on stderr where it came from, or why the contract could not
 * be read (the comparison goes on: it needs no broker). */
static double threshold_default(const struct cli *cli, const struct reconcile_args *a, struct sl_target *target)
{
	char topic[SL_TOPIC_NAME_BYTES_MAX + 1], err[SL_ERROR_BYTES];
	struct sl_contract *contract = NULL;
	uint32_t version = 0;
	double threshold = THRESHOLD_DEFAULT;

	if (a->repair_topic != NULL)
		snprintf(topic, sizeof(topic), "%s", a->repair_topic);
	else if (target->ops->topic_get(target->ctx, topic, sizeof(topic)) != 1)
		return threshold;
	if (cli_contract_fetch(cli, topic, &contract, &version, err, sizeof(err)) != 0) {
		fprintf(stderr, "synclog reconcile: warning: cannot read the contract of topic %s (%s): threshold %g\n",
		        topic, err, threshold);
		return threshold;
	}
	if (contract != NULL && contract->mismatch_threshold >= 0) {
		threshold = contract->mismatch_threshold;
		fprintf(stderr, "synclog reconcile: threshold %g from contract version %u of topic %s\n", threshold,
		        version, topic);
	}
	sl_contract_free(contract);
	return threshold;
}

int cli_reconcile(const struct cli *cli, int argc, char **argv)
{
	struct reconcile_args a = {.sample = 1, .threshold = -1};
	struct sl_source source;
	struct sl_target target;
	char err[SL_ERROR_BYTES], feeder[SL_TOPIC_NAME_BYTES_MAX + 1];
	const char *topic;
	int rc;

	if (cli_wants_help(argc, argv))
		return cli_help(&reconcile_command);
	rc = args_parse(argc, argv, &a);
	if (rc != CLI_EXIT_OK)
		return rc;
	if (sl_source_open(&source, a.source, &a.columns, err, sizeof(err)) != 0)
		return cli_fail(&reconcile_command, "%s", err);
	if (sl_target_open(&target, a.target, a.schema, a.table, err, sizeof(err)) != 0) {
		sl_source_close(&source);
		return cli_fail(&reconcile_command, "%s", err);
	}
	/* Repairs must reach the target through the topic that feeds it; the run is reported under that topic. */
	topic = target.ops->topic_get(target.ctx, feeder, sizeof(feeder)) == 1 ? feeder : a.repair_topic;
	if (a.repair_topic != NULL && topic == feeder && strcmp(feeder, a.repair_topic) != 0) {
		sl_target_close(&target);
		sl_source_close(&source);
		return cli_usage_error(&reconcile_command,
		                       "--repair %s: the target's table is fed by topic '%s': repairs sent to another "
		                       "topic would never reach it",
		                       a.repair_topic, feeder);
	}
	if (a.threshold < 0)
		a.threshold = threshold_default(cli, &a, &target);
	if (a.every_ms > 0)
		cli_signals_install();
	for (;;) {
		rc = run_once(cli, &a, &source, &target, topic);
		if (a.every_ms == 0)
			break;
		pause_ms(a.every_ms);
		if (cli_interrupted()) {
			rc = CLI_EXIT_OK;
			break;
		}
	}
	sl_target_close(&target);
	sl_source_close(&source);
	return rc;
}
