/* `synclog contract check TOPIC`: the running system against the topic's sync contract, one line per clause, ok or
 * FAIL with the evidence, exit 1 on any FAIL (for CI and cron). The clauses, each printed when the contract has it:
 *   contract     the stored contract reads (always)
 *   duplicates   delivery.duplicates idempotency-key: no live record without an idempotency key reached the broker
 *                since this version was set (refused ones count: a producer is breaking the contract)
 *   reconcile    recovery.reconcile_every / mismatch_threshold: the last reconcile run of the target is younger
 *                than reconcile_every and its diff ratio at or below the threshold
 *   stall        recovery.alert.stall_after: no group reading the topic is stuck (records to read, no commit)
 *                for longer than stall_after
 *   deletes      the topic keeps deletes (delete.retention.ms when compacted, else retention.ms) longer than the
 *                slowest group lags, and at least as long as the contract's deletes.retention (always)
 *   backfill     recovery.backfill_source: the source opens and reads */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/base/clock.h"
#include "consumer/client/synclog.h"
#include "consumer/sync/contract.h"
#include "consumer/sync/source.h"
#include "consumer/sync/target.h"
#include "tools/cli.h"
#include "tools/cli_contract.h"

#define EVIDENCE_BYTES 1024

const struct cli_command cli_contract_check_command = {
        .name = "contract check",
        .usage = "usage: synclog contract check TOPIC [--target TARGET] [--schema NAME] [--table NAME]\n"
                 "\n"
                 "Compare the running system with TOPIC's sync contract: one line per clause the contract has,\n"
                 "`ok CLAUSE: evidence` or `FAIL CLAUSE: evidence` (with --json one object per clause:\n"
                 "{\"topic\":T,\"clause\":C,\"ok\":true|false,\"evidence\":E}), exit 1 on any FAIL:\n"
                 "  contract     the stored contract reads\n"
                 "  duplicates   (delivery.duplicates: idempotency-key) no live record without an idempotency key\n"
                 "               reached the broker since this contract version was set\n"
                 "  reconcile    (recovery.reconcile_every, mismatch_threshold) the target's last reconcile run is\n"
                 "               younger than reconcile_every, its diff ratio at or below mismatch_threshold\n"
                 "  stall        (recovery.alert.stall_after) no group reading the topic has had records to read and\n"
                 "               no commit for longer than stall_after\n"
                 "  deletes      the topic keeps deletes longer than its slowest group lags, and as long as the\n"
                 "               contract's deletes.retention\n"
                 "  backfill     (recovery.backfill_source) the source opens and reads\n"
                 "After a FAIL, a line on stderr names whom to notify (recovery.alert.notify) and the replay\n"
                 "owner (recovery.replay_owner). The result is reported to the broker as a run of kind contract:\n"
                 "`synclog status` shows it under RUNS (the failed clauses named), and the metrics as\n"
                 "synclog_run_last_success{kind=\"contract\",topic=T}.\n"
                 "  --target TARGET   the target whose reconcile runs are checked (its reconcile_runs): sqlite:PATH,\n"
                 "                    postgresql://..., postgres://... or postgres:CONNINFO\n"
                 "  --schema NAME     PostgreSQL: the schema of its tables (default synclog)\n"
                 "  --table NAME      its entity table (default entities)\n",
};

struct check {
	const struct cli *cli;
	const char *topic;
	uint32_t clauses, fails;
	char failed[160]; /* the names of the clauses that failed, comma-separated (for the run report) */
};

static void clause(struct check *ck, const char *name, bool ok, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void clause(struct check *ck, const char *name, bool ok, const char *fmt, ...)
{
	char evidence[EVIDENCE_BYTES];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(evidence, sizeof(evidence), fmt, ap);
	va_end(ap);
	ck->clauses++;
	if (!ok) {
		size_t used = strlen(ck->failed);

		ck->fails++;
		snprintf(ck->failed + used, sizeof(ck->failed) - used, "%s%s", used > 0 ? ", " : "", name);
	}
	if (ck->cli->json) {
		printf("{\"topic\":");
		cli_json_string(ck->topic);
		printf(",\"clause\":\"%s\",\"ok\":%s,\"evidence\":", name, ok ? "true" : "false");
		cli_json_string(evidence);
		printf("}\n");
	} else {
		printf("%-4s %s: %s\n", ok ? "ok" : "FAIL", name, evidence);
	}
}

/* After a FAIL, on stderr (what cron mails): who the contract says to tell and who replays, so the page reaches
 * the people who own the sync. */
static void alert_note(const struct check *ck, const struct sl_contract *c)
{
	if (ck->fails == 0 || (c->notify[0] == '\0' && c->replay_owner[0] == '\0'))
		return;
	fprintf(stderr, "synclog contract check: %u clause%s of topic %s FAIL", ck->fails, ck->fails == 1 ? "" : "s",
	        ck->topic);
	if (c->notify[0] != '\0')
		fprintf(stderr, "; notify %s", c->notify);
	if (c->replay_owner[0] != '\0')
		fprintf(stderr, "; replay owner %s", c->replay_owner);
	fputc('\n', stderr);
}

static void ago(int64_t now_ms, int64_t then_ms, char *out, size_t cap)
{
	char d[SL_DURATION_TEXT_BYTES];

	sl_duration_format(now_ms - then_ms, d, sizeof(d));
	snprintf(out, cap, "%s ago", d);
}

/* ---- duplicates ---- */

static void duplicates_check(struct check *ck, const struct sl_contract *c, const struct sl_contract_enforcement *e)
{
	char since[40];

	if (c->duplicates != SL_DUPLICATES_IDEMPOTENCY_KEY)
		return;
	cli_time_format(e->since_ms, since, sizeof(since));
	if (e->records_without_idempotency_key == 0) {
		clause(ck, "duplicates", true,
		       "%" PRIu64 " live records produced since %s, every one with an idempotency key (broker %s those "
		       "without)",
		       e->live_records, since,
		       c->without_idempotency_key == SL_MISSING_IK_REFUSE ? "refuses" : "counts");
		return;
	}
	clause(ck, "duplicates", false,
	       "%" PRIu64 " of %" PRIu64 " live records produced since %s had no idempotency key (%" PRIu64
	       " batches, %" PRIu64 " records refused): a producer does not send them",
	       e->records_without_idempotency_key, e->live_records, since, e->batches_refused, e->records_refused);
}

/* ---- reconcile ---- */

static void reconcile_check(struct check *ck, const struct sl_contract *c, const char *target_spec, const char *schema,
                            const char *table, int64_t now_ms)
{
	struct sl_target target;
	struct sl_reconcile_run run;
	char err[SL_ERROR_BYTES], source[SL_SOURCE_SPEC_BYTES_MAX], when[64], every[SL_DURATION_TEXT_BYTES];
	double threshold = c->mismatch_threshold;
	bool old, over;
	int rc;

	if (c->reconcile_every_ms <= 0 && c->mismatch_threshold < 0)
		return;
	if (target_spec == NULL) {
		clause(ck, "reconcile", false,
		       "no target given: the contract asks for reconciliation; give --target TARGET to check its runs");
		return;
	}
	if (sl_target_open(&target, target_spec, schema, table, err, sizeof(err)) != 0) {
		clause(ck, "reconcile", false, "%s", err);
		return;
	}
	if (target.ops->topic_get(target.ctx, source, sizeof(source)) == 1 && strcmp(source, ck->topic) != 0) {
		clause(ck, "reconcile", false, "%s is fed by topic %s, not %s: give the target of this topic",
		       target_spec, source, ck->topic);
		sl_target_close(&target);
		return;
	}
	rc = target.ops->run_last(target.ctx, &run, source, sizeof(source));
	if (rc < 0) {
		clause(ck, "reconcile", false, "%s", target.ops->error(target.ctx));
	} else if (rc == 0) {
		clause(ck, "reconcile", false, "%s has no reconcile run: run `synclog reconcile --target %s`",
		       target_spec, target_spec);
	} else {
		char age[160];

		sl_duration_format(c->reconcile_every_ms, every, sizeof(every));
		ago(now_ms, run.finished_at_ms, when, sizeof(when));
		if (threshold < 0)
			threshold = run.threshold;
		old = c->reconcile_every_ms > 0 && now_ms - run.finished_at_ms > c->reconcile_every_ms;
		over = run.diff_ratio > threshold;
		if (c->reconcile_every_ms > 0)
			snprintf(age, sizeof(age), "last run %s, %s reconcile_every %s", when,
			         old ? "older than" : "within", every);
		else
			snprintf(age, sizeof(age), "last run %s", when);
		clause(ck, "reconcile", !old && !over,
		       "%s, against %s: diff_ratio %.8g %s mismatch_threshold %.8g (compared %" PRIu64
		       ", missing %" PRIu64 ", extra %" PRIu64 ", version %" PRIu64 ", value %" PRIu64 ")",
		       age, source, run.diff_ratio, over ? "above" : "at or below", threshold, run.compared,
		       run.missing, run.extra, run.version, run.value);
	}
	sl_target_close(&target);
}

/* ---- the groups reading the topic: stall and deletes ---- */

struct group_facts {
	uint32_t groups;            /* reading the topic */
	char stuck[EVIDENCE_BYTES]; /* the stuck partitions, for the evidence */
	size_t stuck_len;
	uint32_t stuck_count;
	char slowest[SL_GROUP_NAME_BYTES_MAX + 1];
	int64_t slowest_lag_ms;
	int64_t slowest_lag;
	int64_t longest_quiet_ms; /* of partitions with records to read: the longest since a commit */
	char quiet_group[SL_GROUP_NAME_BYTES_MAX + 1];
};

/* What the groups reading topic show: their lag, and the partitions with records to read and no commit for longer
 * than stall_after_ms (0: not asked). Returns 0 or a negative errno with err set. */
static int groups_read(struct sl_conn *conn, const char *topic, int64_t stall_after_ms, int64_t now_ms,
                       struct group_facts *f, char *err, size_t err_bytes)
{
	struct sl_group_summary *groups = NULL;
	uint32_t count = 0;
	int rc = sl_group_list(conn, &groups, &count);

	memset(f, 0, sizeof(*f));
	if (rc != 0) {
		snprintf(err, err_bytes, "%s", sl_conn_error(conn));
		return rc;
	}
	for (uint32_t g = 0; g < count; g++) {
		struct sl_group_description *d = NULL;
		bool reads = false;

		if (sl_group_describe(conn, groups[g].group, &d) != 0)
			continue; /* deleted meanwhile */
		for (uint32_t i = 0; i < d->partition_count; i++) {
			const struct sl_group_lag *p = &d->partitions[i];
			int64_t quiet_ms;

			if (strcmp(p->topic, topic) != 0)
				continue;
			reads = true;
			if (p->lag_ms > f->slowest_lag_ms || (f->slowest[0] == '\0')) {
				snprintf(f->slowest, sizeof(f->slowest), "%s", d->group);
				f->slowest_lag_ms = p->lag_ms;
				f->slowest_lag = p->lag;
			}
			if (p->lag <= 0)
				continue; /* caught up: idle, never stuck */
			/* Never committed, with records to read: stuck since it started; counted from the epoch. */
			quiet_ms = now_ms - (p->last_commit_ms > 0 ? p->last_commit_ms : 0);
			if (quiet_ms > f->longest_quiet_ms) {
				f->longest_quiet_ms = quiet_ms;
				snprintf(f->quiet_group, sizeof(f->quiet_group), "%s", d->group);
			}
			if (stall_after_ms > 0 && quiet_ms > stall_after_ms) {
				char last[64] = "never committed";

				if (p->last_commit_ms > 0)
					ago(now_ms, p->last_commit_ms, last, sizeof(last));
				f->stuck_count++;
				if (f->stuck_len < sizeof(f->stuck))
					f->stuck_len += (size_t)snprintf(
					        f->stuck + f->stuck_len, sizeof(f->stuck) - f->stuck_len,
					        "%sgroup %s partition %u: %" PRId64 " records to read, last commit %s",
					        f->stuck_len ? "; " : "", d->group, p->partition, p->lag, last);
			}
		}
		f->groups += reads;
		sl_group_description_free(d);
	}
	free(groups);
	return 0;
}

static void stall_check(struct check *ck, const struct sl_contract *c, const struct group_facts *f,
                        const char *groups_err)
{
	char stall[SL_DURATION_TEXT_BYTES], quiet[SL_DURATION_TEXT_BYTES];

	if (c->stall_after_ms <= 0)
		return;
	sl_duration_format(c->stall_after_ms, stall, sizeof(stall));
	if (groups_err != NULL) {
		clause(ck, "stall", false, "cannot read the groups: %s", groups_err);
	} else if (f->stuck_count > 0) {
		clause(ck, "stall", false, "%u partition(s) stuck longer than stall_after %s: %s", f->stuck_count,
		       stall, f->stuck);
	} else if (f->longest_quiet_ms > 0) {
		sl_duration_format(f->longest_quiet_ms, quiet, sizeof(quiet));
		clause(ck, "stall", true,
		       "%u group(s) read the topic; the longest without a commit while records wait is %s (%s), under "
		       "stall_after %s",
		       f->groups, f->quiet_group, quiet, stall);
	} else {
		clause(ck, "stall", true, "%u group(s) read the topic, every one caught up (stall_after %s)", f->groups,
		       stall);
	}
}

static void deletes_check(struct check *ck, const struct sl_contract *c, const struct sl_topic_config *cfg,
                          const struct group_facts *f, const char *groups_err)
{
	int64_t keep_ms = cfg->compact ? cfg->delete_retention_ms : cfg->retention_ms;
	const char *setting = cfg->compact ? "delete.retention.ms" : "retention.ms";
	char keep[SL_DURATION_TEXT_BYTES], lag[SL_DURATION_TEXT_BYTES], promised[SL_DURATION_TEXT_BYTES];

	if (keep_ms < 0)
		snprintf(keep, sizeof(keep), "forever");
	else
		sl_duration_format(keep_ms, keep, sizeof(keep));
	sl_duration_format(f->slowest_lag_ms, lag, sizeof(lag));
	sl_duration_format(c->delete_retention_ms, promised, sizeof(promised));
	if (c->delete_retention_ms > 0 && keep_ms >= 0 && keep_ms < c->delete_retention_ms) {
		clause(ck, "deletes", false,
		       "the topic keeps deletes %s (%s), less than the contract's deletes.retention %s: a target that "
		       "replays the log after that misses them",
		       keep, setting, promised);
	} else if (groups_err != NULL) {
		clause(ck, "deletes", false, "cannot read the groups: %s", groups_err);
	} else if (f->groups == 0) {
		clause(ck, "deletes", true, "the topic keeps deletes %s (%s); no group reads it yet", keep, setting);
	} else if (keep_ms >= 0 && f->slowest_lag_ms >= keep_ms) {
		clause(ck, "deletes", false,
		       "the slowest group, %s, lags %s (%" PRId64
		       " records), not less than the %s the topic keeps deletes "
		       "(%s): it can miss deletes",
		       f->slowest, lag, f->slowest_lag, keep, setting);
	} else {
		clause(ck, "deletes", true, "the topic keeps deletes %s (%s); the slowest of %u group(s), %s, lags %s",
		       keep, setting, f->groups, f->slowest, lag);
	}
}

/* ---- backfill ---- */

static void backfill_check(struct check *ck, const struct sl_contract *c)
{
	struct sl_source_columns columns = {0}; /* backfill's defaults: key, version, the rest as the value */
	struct sl_source src;
	struct sl_source_row row;
	char err[SL_ERROR_BYTES];
	int64_t rows;
	int rc;

	if (c->backfill_source[0] == '\0')
		return;
	if (sl_source_open(&src, c->backfill_source, &columns, err, sizeof(err)) != 0) {
		clause(ck, "backfill", false, "%s", err);
		return;
	}
	rc = src.ops->scan(src.ctx, (struct sl_key){0}, (struct sl_key){0});
	if (rc == 0)
		rc = src.ops->next(src.ctx, &row);
	if (rc < 0) {
		clause(ck, "backfill", false, "%s: %s", c->backfill_source, src.ops->error(src.ctx));
	} else {
		rows = src.ops->count(src.ctx);
		if (rows >= 0)
			clause(ck, "backfill", true, "%s reads: %" PRId64 " row%s", c->backfill_source, rows,
			       cli_plural((uint64_t)rows));
		else
			clause(ck, "backfill", true, "%s reads%s", c->backfill_source, rc == 0 ? " (no rows yet)" : "");
	}
	sl_source_close(&src);
}

/* Tell the broker how the check ended (kind "contract"): `synclog status` shows it under RUNS and the metrics as
 * synclog_run_last_success{kind="contract"}, so a failed check of a cron job is seen where operators look. A
 * report that fails is a warning: the check's answer is its output and exit code. */
static void check_report(const struct check *ck, uint32_t version, const char *target, int64_t started_ms)
{
	struct sl_run_report r = {.started_ms = started_ms,
	                          .finished_ms = sl_clock_wall_ms(),
	                          .ok = ck->fails == 0,
	                          .rows = ck->clauses,
	                          .differences = ck->fails};

	snprintf(r.kind, sizeof(r.kind), "contract");
	snprintf(r.topic, sizeof(r.topic), "%s", ck->topic);
	snprintf(r.target, sizeof(r.target), "%s", target != NULL ? target : "");
	if (version == 0)
		snprintf(r.summary, sizeof(r.summary), "the topic has no contract");
	else if (ck->fails == 0)
		snprintf(r.summary, sizeof(r.summary), "version %u: %u clauses ok", version, ck->clauses);
	else
		snprintf(r.summary, sizeof(r.summary), "version %u: %u of %u clauses FAIL: %s", version, ck->fails,
		         ck->clauses, ck->failed);
	cli_run_report(ck->cli, &cli_contract_check_command, &r);
}

int cli_contract_check(const struct cli *cli, int argc, char **argv)
{
	const char *topic = NULL, *target = NULL, *schema = NULL, *table = NULL, *value;
	struct sl_contract_record rec;
	struct sl_contract_enforcement enforcement;
	struct sl_topic_config cfg;
	struct sl_partition_info *infos = NULL;
	struct sl_contract *contract = NULL;
	struct group_facts facts;
	struct check ck = {.cli = cli};
	struct sl_conn *c;
	char err[SL_ERROR_BYTES], when[40], groups_err[SL_ERROR_BYTES];
	uint32_t count = 0;
	int64_t now = sl_clock_wall_ms();
	bool groups_ok;
	int rc;

	for (int i = 0; i < argc; i++) {
		if ((rc = cli_flag(argc, argv, &i, "--target", &value)) != 0) {
			if (rc < 0 || value[0] == '\0')
				return cli_usage_error(&cli_contract_check_command, "--target needs a target store");
			target = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--schema", &value)) != 0) {
			if (rc < 0 || value[0] == '\0')
				return cli_usage_error(&cli_contract_check_command, "--schema needs a schema name");
			schema = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--table", &value)) != 0) {
			if (rc < 0 || value[0] == '\0')
				return cli_usage_error(&cli_contract_check_command, "--table needs a table name");
			table = value;
		} else if (cli_operand(&cli_contract_check_command, argv[i], &topic) != 0) {
			return CLI_EXIT_USAGE;
		}
	}
	if (topic == NULL)
		return cli_usage_error(&cli_contract_check_command, "the TOPIC is required");
	ck.topic = topic;
	c = cli_connect(cli, &cli_contract_check_command, "synclog-contract-check");
	if (c == NULL)
		return CLI_EXIT_FAIL;
	rc = sl_topic_contract_get(c, topic, 0, &rec, false, NULL, NULL, &enforcement);
	if (rc == -ENODATA || rc == -ENOENT) {
		clause(&ck, "contract", false, "%s", sl_conn_error(c));
		sl_conn_free(c);
		if (rc == -ENODATA) /* the topic exists: its missing contract is worth a red line in status */
			check_report(&ck, 0, target, now);
		return CLI_EXIT_FAIL;
	}
	if (rc != 0) {
		rc = cli_fail(&cli_contract_check_command, "%s", sl_conn_error(c));
		sl_conn_free(c);
		return rc;
	}
	if (sl_contract_parse(rec.contract, strlen(rec.contract), &contract, err, sizeof(err)) != 0) {
		clause(&ck, "contract", false, "version %u cannot be read by this synclog: %s", rec.version, err);
		goto out;
	}
	cli_time_format(rec.set_at_ms, when, sizeof(when));
	clause(&ck, "contract", true, "version %u, set by %s at %s", rec.version, rec.set_by, when);
	duplicates_check(&ck, contract, &enforcement);
	reconcile_check(&ck, contract, target, schema, table, now);
	if (sl_topic_describe(c, topic, &cfg, &infos, &count) != 0) {
		clause(&ck, "deletes", false, "cannot describe the topic: %s", sl_conn_error(c));
	} else {
		groups_ok = groups_read(c, topic, contract->stall_after_ms, now, &facts, groups_err,
		                        sizeof(groups_err)) == 0;
		stall_check(&ck, contract, &facts, groups_ok ? NULL : groups_err);
		deletes_check(&ck, contract, &cfg, &facts, groups_ok ? NULL : groups_err);
	}
	backfill_check(&ck, contract);
	alert_note(&ck, contract);
out:
	check_report(&ck, rec.version, target, now);
	free(infos);
	sl_contract_free(contract);
	sl_contract_record_free(&rec);
	sl_conn_free(c);
	return ck.fails > 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
