/* `synclog apply TOPIC --group G --target TARGET`: replay a topic into a target store (SQLite or PostgreSQL) with
 * the rules of consumer/sync/apply.h (stale versions logged and dropped, duplicates skipped, soft deletes purged after
 * a window, poison records dead-lettered to TOPIC.dlq), resuming from the offsets the target itself holds. The applier
 * is a member of group G: the broker shows it with its lag and counters, deals partitions among a target's appliers and
 * tells it of offset resets, which it adopts into the target. It stops within a second of SIGINT/SIGTERM, after
 * committing what it applied, and refuses (exit 1) to read past records retention removed before it applied them,
 * unless --allow-gap. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto/base/clock.h"
#include "consumer/sync/apply.h"
#include "consumer/client/synclog.h"
#include "tools/cli.h"

/* How often --follow reports its counters and lag: often enough to watch drift, rare enough to read. */
#define PROGRESS_INTERVAL_MS      5000
/* How often the progress line of a catch-up on a terminal is redrawn: smooth enough to watch, and each redraw
 * asks the broker for the log ends once. */
#define PROGRESS_LINE_INTERVAL_MS 500

static const struct cli_command apply_command = {
        .name = "apply",
        .usage =
                "usage: synclog apply TOPIC --group G --target TARGET [--table NAME] [--schema NAME] [--follow]\n"
                "                           [--tombstone-retention DURATION] [--values json|text] [--allow-gap]\n"
                "                           [--on-delete hide|erase-value|archive]\n"
                "                           [--reject-retries N] [--failure-retries N]\n"
                "       synclog apply --target TARGET [--table NAME] [--schema NAME] --purge\n"
                "                     [--tombstone-retention DURATION]\n"
                "\n"
                "Replay TOPIC into the target store, resuming at the offsets the target holds for group G. TARGET is\n"
                "sqlite:PATH (a SQLite database, created when missing), postgresql://... or postgres://... (a libpq\n"
                "connection URI) or postgres:CONNINFO (a libpq key=value string); the tables (`entities`,\n"
                "`stale_events`, `synclog_offsets`, `synclog_idempotency_keys`, ...) are created when missing, in\n"
                "PostgreSQL in schema --schema. Per key: a lower version than stored is stale (logged in\n"
                "stale_events, not applied), an equal version or a seen idempotency key is a duplicate (skipped), a\n"
                "higher version is applied; a record without a version applies in log order. A delete marks the row\n"
                "deleted; a later upsert with a lower version does not bring it back, nor, once the tombstone is\n"
                "purged, any version up to the delete's (kept in synclog_purged). An equal version with another\n"
                "value is a conflict, kept in table `conflicts` and not applied, except from origin=repair, which\n"
                "replaces the row. An origin=backfill record without a version only fills an absent key. A\n"
                "record the target refuses is retried, then written to TOPIC.dlq with its error, topic, partition\n"
                "and offset, this group and target, and whether the error is permanent (the record) or\n"
                "transient (the target's state). A lost PostgreSQL connection is tried again for 60 s; the applier\n"
                "resumes from the stored offsets.\n"
                "The applier joins group G as a member (`synclog group describe G` shows it) and reports its\n"
                "counters with its commits. After `synclog offsets reset --group G ... --execute` it adopts the\n"
                "reset offsets into the target (the target's own offsets otherwise win) and logs it.\n"
                "  --group G                     the target's name for its offsets (required to apply)\n"
                "  --target TARGET               the target store (required)\n"
                "  --table NAME                  the entity table (default entities). A table is fed by one\n"
                "                                topic: the first apply claims it, another topic is refused (use\n"
                "                                one table per topic in one database)\n"
                "  --schema NAME                 PostgreSQL: the schema of the tables (default synclog)\n"
                "  --follow                      keep applying new records until SIGINT/SIGTERM; print the counters\n"
                "                                and the lag to stderr every 5 seconds. Without it, stop at the end\n"
                "                                of the log as it was at the start; on a terminal, a progress line\n"
                "                                on stderr shows records done, rate, lag left and time left\n"
                "  --tombstone-retention D       purge deleted rows (and stale_events rows, idempotency keys) older\n"
                "                                than D: 7d (default), 12h, 1s, or ISO 8601 (P7D, PT12H). On a\n"
                "                                compacted topic a deleted row also waits until the broker's\n"
                "                                cleaner removed its delete from the log (until then a replay of the\n"
                "                                log still refuses a late stale record, so the target must too);\n"
                "                                --purge alone decides by time\n"
                "  --on-delete hide|erase-value|archive  what a delete does to the row: hide marks it deleted and\n"
                "                                keeps its value until purged (default); erase-value clears the value\n"
                "                                at once (personal data); archive copies the row to table\n"
                "                                TABLE_archive (entities_archive) first, then clears it. The deleted\n"
                "                                row stays, so versions still compare, until it is purged\n"
                "  --values json|text            what a value must be: one JSON value (default; PostgreSQL column\n"
                "                                jsonb) or UTF-8 text (column text)\n"
                "  --reject-retries N            tries after the first before a rejected record is dead-lettered\n"
                "                                (default 3; backoff 10 ms doubling to 1 s, one backoff per round\n"
                "                                for all records rejected together)\n"
                "  --failure-retries N           retries of a failed transaction (target down, dead-letter topic\n"
                "                                unreachable) before the applier stops with exit 1 (default 5)\n"
                "  --allow-gap                   read on when retention removed records before this target applied\n"
                "                                them (without it: say how many and exit 1; the group is `lost`\n"
                "                                until an offset reset or a backfill)\n"
                "  --purge                       only purge what is older than the retention, then exit\n"
                "Prints `applied A stale S duplicate D deleted X dead_lettered Q` (or one JSON object with\n"
                "--json), and on stderr how many conflicts were kept, if any; with --purge,\n"
                "`purged T stale_events S idempotency_keys K`.\n",
};

struct apply_args {
	const char *topic;
	const char *group;
	const char *target;
	const char *table;
	const char *schema;
	bool follow;
	bool purge;
	bool allow_gap;
	int64_t retention_ms;
	enum sl_apply_values values;
	int64_t reject_retries;  /* -1: the default */
	int64_t failure_retries; /* -1: the default */
	enum sl_apply_on_delete on_delete;
};

/* The broker's rule for group names (broker/topics.c): the group's offsets are committed there too. */
static bool group_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > SL_GROUP_NAME_BYTES_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

static int args_parse(int argc, char **argv, struct apply_args *a)
{
	const char *value;
	int rc;

	for (int i = 0; i < argc; i++) {
		if ((rc = cli_flag(argc, argv, &i, "--group", &value)) != 0) {
			if (rc < 0 || !group_name_ok(value))
				return cli_usage_error(
				        &apply_command,
				        "--group needs a name of 1 to 200 letters, digits, '.', '_' or '-'");
			a->group = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--target", &value)) != 0) {
			if (rc < 0)
				return cli_usage_error(&apply_command, "--target needs a target store");
			a->target = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--schema", &value)) != 0) {
			if (rc < 0 || value[0] == '\0' || strlen(value) > 63)
				return cli_usage_error(&apply_command, "--schema needs a name of 1 to 63 bytes");
			a->schema = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--table", &value)) != 0) {
			if (rc < 0 || sl_apply_sqlite_table_check(value) != 0)
				return cli_usage_error(&apply_command,
				                       "--table needs a name: a letter or '_', then letters, digits or "
				                       "'_' (not a table of synclog's own)");
			a->table = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--tombstone-retention", &value)) != 0) {
			if (rc < 0 || sl_duration_parse(value, &a->retention_ms) != 0)
				return cli_usage_error(&apply_command,
				                       "--tombstone-retention needs a duration such as 7d, 12h, 1s or "
				                       "ISO 8601 P7D");
		} else if ((rc = cli_flag(argc, argv, &i, "--values", &value)) != 0) {
			if (rc > 0 && strcmp(value, "json") == 0)
				a->values = SL_APPLY_VALUES_JSON;
			else if (rc > 0 && strcmp(value, "text") == 0)
				a->values = SL_APPLY_VALUES_TEXT;
			else
				return cli_usage_error(&apply_command, "--values must be json or text");
		} else if ((rc = cli_flag(argc, argv, &i, "--reject-retries", &value)) != 0) {
			if (rc < 0 || cli_parse_i64(value, 0, 100, &a->reject_retries) != 0)
				return cli_usage_error(&apply_command, "--reject-retries needs a number from 0 to 100");
		} else if ((rc = cli_flag(argc, argv, &i, "--failure-retries", &value)) != 0) {
			if (rc < 0 || cli_parse_i64(value, 0, 1000, &a->failure_retries) != 0)
				return cli_usage_error(&apply_command,
				                       "--failure-retries needs a number from 0 to 1000");
		} else if (strcmp(argv[i], "--allow-gap") == 0) {
			a->allow_gap = true;
		} else if ((rc = cli_flag(argc, argv, &i, "--on-delete", &value)) != 0) {
			if (rc > 0 && strcmp(value, "hide") == 0)
				a->on_delete = SL_APPLY_ON_DELETE_HIDE;
			else if (rc > 0 && strcmp(value, "erase-value") == 0)
				a->on_delete = SL_APPLY_ON_DELETE_ERASE_VALUE;
			else if (rc > 0 && strcmp(value, "archive") == 0)
				a->on_delete = SL_APPLY_ON_DELETE_ARCHIVE;
			else
				return cli_usage_error(&apply_command,
				                       "--on-delete must be hide, erase-value or archive");
		} else if (strcmp(argv[i], "--follow") == 0) {
			a->follow = true;
		} else if (strcmp(argv[i], "--purge") == 0) {
			a->purge = true;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			return cli_usage_error(&apply_command, "unknown flag '%s'", argv[i]);
		} else if (a->topic == NULL) {
			a->topic = argv[i];
		} else {
			return cli_usage_error(&apply_command, "unexpected argument '%s'", argv[i]);
		}
	}
	if (a->target == NULL)
		return cli_usage_error(&apply_command, "--target TARGET is required");
	{
		struct sl_apply_target_options to = {.schema = a->schema, .values = a->values};
		const char *bad = sl_apply_target_check(a->target, &to);

		if (bad != NULL)
			return cli_usage_error(&apply_command, "%s", bad);
	}
	if (a->purge)
		return a->follow ? cli_usage_error(&apply_command, "--purge does not go with --follow") : CLI_EXIT_OK;
	if (a->topic == NULL)
		return cli_usage_error(&apply_command, "the TOPIC is required");
	if (a->group == NULL)
		return cli_usage_error(&apply_command, "--group G is required: the target keeps its offsets by group");
	return CLI_EXIT_OK;
}

static void counters_print(FILE *out, bool json, const struct sl_apply_counters *c, const int64_t *lag)
{
	if (json) {
		fprintf(out,
		        "{\"applied\":%llu,\"stale\":%llu,\"duplicate\":%llu,\"deleted\":%llu,\"dead_lettered\":%llu",
		        (unsigned long long)c->applied, (unsigned long long)c->stale, (unsigned long long)c->duplicate,
		        (unsigned long long)c->deleted, (unsigned long long)c->dead_lettered);
		if (lag != NULL && *lag >= 0)
			fprintf(out, ",\"lag\":%lld", (long long)*lag);
		else if (lag != NULL)
			fputs(",\"lag\":null", out);
		fputs("}\n", out);
		return;
	}
	fprintf(out, "applied %llu stale %llu duplicate %llu deleted %llu dead_lettered %llu",
	        (unsigned long long)c->applied, (unsigned long long)c->stale, (unsigned long long)c->duplicate,
	        (unsigned long long)c->deleted, (unsigned long long)c->dead_lettered);
	if (lag != NULL && *lag >= 0)
		fprintf(out, " lag %lld", (long long)*lag);
	else if (lag != NULL)
		fputs(" lag unknown", out);
	fputc('\n', out);
}

/* Records in the topic after the target's positions, or -1 when the broker cannot say now. */
static int64_t lag_records(struct sl_conn *conn, const char *topic, const struct sl_apply *a)
{
	struct sl_topic_config config;
	struct sl_partition_info *infos = NULL;
	uint32_t count = 0;
	int64_t lag = 0;

	if (sl_topic_describe(conn, topic, &config, &infos, &count) != 0)
		return -1;
	for (uint32_t i = 0; i < count; i++) {
		int64_t pos = sl_apply_position_get(a, topic, infos[i].partition);

		if (pos < infos[i].earliest_offset)
			pos = infos[i].earliest_offset;
		if (infos[i].next_offset > pos)
			lag += infos[i].next_offset - pos;
	}
	free(infos);
	return lag;
}

static int purge_only(const struct cli *cli, const struct apply_args *a, struct sl_apply_target *target)
{
	struct sl_apply_store store;
	struct sl_apply_purge_counts counts;
	int rc;

	sl_apply_target_store(target, &store);
	rc = sl_apply_store_purge(&store, sl_clock_wall_ms(), a->retention_ms, &counts);
	if (rc != 0)
		return cli_fail(&apply_command, "purging: %s", store.ops->error(store.ctx));
	if (cli->json)
		printf("{\"purged\":%llu,\"stale_events\":%llu,\"idempotency_keys\":%llu}\n",
		       (unsigned long long)counts.tombstones, (unsigned long long)counts.stale_events,
		       (unsigned long long)counts.idempotency_keys);
	else
		printf("purged %llu stale_events %llu idempotency_keys %llu\n", (unsigned long long)counts.tombstones,
		       (unsigned long long)counts.stale_events, (unsigned long long)counts.idempotency_keys);
	return CLI_EXIT_OK;
}

static int gap_check(const struct apply_args *a, const char *target_name, struct sl_apply_fetch_source *src,
                     uint64_t *reported);

static uint64_t records_done(const struct sl_apply_counters *c)
{
	return c->applied + c->stale + c->duplicate + c->deleted + c->dead_lettered;
}

/* The catch-up's progress line on a terminal: records done, rate over the last redraw, lag left and the time it
 * takes at that rate. Rewritten in place with a carriage return; no other terminal codes. */
struct progress {
	bool on;
	int64_t next_ms, last_ms;
	uint64_t last_done;
	size_t width; /* of the line drawn last, to blank what a shorter one leaves */
};

static void progress_draw(struct progress *p, struct sl_apply *engine, struct sl_conn *lag_conn, const char *topic)
{
	struct sl_apply_counters c;
	int64_t now = sl_clock_mono_ms(), lag = lag_records(lag_conn, topic, engine);
	uint64_t done;
	double rate;
	char line[160], eta[SL_DURATION_TEXT_BYTES] = "?";
	int n;

	sl_apply_counters_get(engine, &c);
	done = records_done(&c);
	rate = now > p->last_ms ? (double)(done - p->last_done) * 1000.0 / (double)(now - p->last_ms) : 0;
	if (lag >= 0 && rate >= 1)
		sl_duration_format((int64_t)((double)lag / rate * 1000.0), eta, sizeof(eta));
	else if (lag == 0)
		snprintf(eta, sizeof(eta), "0s");
	if (lag >= 0)
		n = snprintf(line, sizeof(line), "applying: %llu records done, %.0f/s, lag %lld, %s left",
		             (unsigned long long)done, rate, (long long)lag, eta);
	else
		n = snprintf(line, sizeof(line), "applying: %llu records done, %.0f/s, lag unknown",
		             (unsigned long long)done, rate);
	fprintf(stderr, "\r%s%*s", line, p->width > (size_t)n ? (int)(p->width - (size_t)n) : 0, "");
	fflush(stderr);
	p->width = (size_t)n;
	p->last_ms = now;
	p->last_done = done;
	p->next_ms = now + PROGRESS_LINE_INTERVAL_MS;
}

static void progress_clear(struct progress *p)
{
	if (p->on && p->width > 0)
		fprintf(stderr, "\r%*s\r", (int)p->width, "");
}

/* Poll until the end (or a signal), reporting progress when following. Returns 0 or the failing errno; a gap found
 * on the way (a rebalance gave this applier a partition retention cut) sets *exit_code. */
static int apply_loop(const struct cli *cli, const struct apply_args *a, const char *target_name,
                      struct sl_apply *engine, struct sl_conn *lag_conn, struct sl_apply_fetch_source *src,
                      uint64_t *lost_reported, int *exit_code)
{
	int64_t next_progress_ms = sl_clock_wall_ms() + PROGRESS_INTERVAL_MS;
	struct progress line = {.on = !a->follow && lag_conn != NULL, .last_ms = sl_clock_mono_ms()};
	uint32_t failures = 0;

	line.next_ms = line.last_ms + PROGRESS_LINE_INTERVAL_MS;
	while (!cli_interrupted() && !sl_apply_done(engine)) {
		int rc = sl_apply_poll(engine);

		if (rc < 0 && rc != -EINTR) {
			progress_clear(&line);
			return rc;
		}
		/* A failed transaction that the engine retries (a lost connection, a busy database): say why, once. */
		if (sl_apply_failures(engine) > failures) {
			progress_clear(&line);
			fprintf(stderr, "synclog apply: warning: %s; rolled back, retrying from the target's offsets\n",
			        sl_apply_error(engine));
		}
		failures = sl_apply_failures(engine);
		if (line.on && sl_clock_mono_ms() >= line.next_ms)
			progress_draw(&line, engine, lag_conn, a->topic);
		if ((*exit_code = gap_check(a, target_name, src, lost_reported)) != CLI_EXIT_OK) {
			progress_clear(&line);
			return 0;
		}
		if (a->follow && sl_clock_wall_ms() >= next_progress_ms) {
			struct sl_apply_counters c;
			int64_t lag = lag_records(lag_conn, a->topic, engine);

			sl_apply_counters_get(engine, &c);
			counters_print(stderr, cli->json, &c, &lag);
			next_progress_ms = sl_clock_wall_ms() + PROGRESS_INTERVAL_MS;
		}
	}
	progress_clear(&line);
	return 0;
}

/* Refuse to apply past records retention removed before this target applied them, unless --allow-gap: say how
 * many. Returns CLI_EXIT_OK to go on. */
static int gap_check(const struct apply_args *a, const char *target_name, struct sl_apply_fetch_source *src,
                     uint64_t *reported)
{
	uint64_t lost = sl_apply_fetch_source_lost(src);

	if (lost <= *reported)
		return CLI_EXIT_OK;
	*reported = lost;
	if (a->allow_gap) {
		fprintf(stderr,
		        "synclog apply: warning: %llu records of topic '%s' were removed by retention before target %s "
		        "(group %s) applied them; applying on from the earliest record (--allow-gap)\n",
		        (unsigned long long)lost, a->topic, target_name, a->group);
		return CLI_EXIT_OK;
	}
	return cli_fail(
	        &apply_command,
	        "%llu records of topic '%s' were removed by retention before target %s (group %s) applied them: "
	        "the target missed them. Run a backfill, or pass --allow-gap to apply on from the earliest "
	        "record (or reset the group's offsets)",
	        (unsigned long long)lost, a->topic, target_name, a->group);
}

/* The target as dead letters and reports name it. SQLite: sqlite:ABSOLUTE_PATH (and ?table=NAME for another table
 * than the default), so `synclog dlq redrive` finds it from anywhere. PostgreSQL: the connection string as given,
 * with any password left out (a dead letter is read by people). */
static void target_name_make(const struct apply_args *a, char *out, size_t out_bytes)
{
	char path[4096];
	size_t n = 0;

	if (strncmp(a->target, "sqlite:", 7) != 0) {
		const char *p = a->target, *at = strchr(p, '@'), *scheme = strstr(p, "://");

		/* postgresql://user:secret@host/db: drop ":secret" */
		if (scheme != NULL && at != NULL && scheme < at) {
			const char *colon = memchr(scheme + 3, ':', (size_t)(at - scheme - 3));

			if (colon != NULL) {
				snprintf(out, out_bytes, "%.*s%s", (int)(colon - p), p, at);
				return;
			}
		}
		/* postgres:host=h password=secret, postgresql://h/db?password=secret: drop the password=... word */
		for (const char *w = p; *w != '\0' && n + 1 < out_bytes;) {
			if (strncmp(w, "password=", 9) == 0 && w > p && strchr(" :?&", w[-1]) != NULL) {
				while (*w != '\0' && *w != ' ' && *w != '&')
					w++;
				while (*w == ' ' || *w == '&')
					w++;
				continue;
			}
			out[n++] = *w++;
		}
		while (n > 0 && strchr(" ?&", out[n - 1]) != NULL)
			n--;
		out[n] = '\0';
		return;
	}
	if (realpath(a->target + 7, path) == NULL)
		snprintf(path, sizeof(path), "%s", a->target + 7);
	if (a->table != NULL && strcmp(a->table, SL_APPLY_SQLITE_TABLE_DEFAULT) != 0)
		snprintf(out, out_bytes, "sqlite:%s?table=%s", path, a->table);
	else
		snprintf(out, out_bytes, "sqlite:%s", path);
}

static int apply_run(const struct cli *cli, const struct apply_args *a, struct sl_apply_target *target)
{
	char target_name[600], client_id[64];
	struct sl_apply_fetch_source_options so = {
	        .broker = cli->broker,
	        .security = &cli->security,
	        .client_id = client_id,
	        .topic = a->topic,
	        .group = a->group,
	        .target = target_name,
	        .follow = a->follow,
	        .io_timeout_ms = cli->timeout_ms,
	        .kafka_config = &cli->kafka,
	};
	struct sl_apply_fetch_source *src = NULL;
	struct sl_apply_dlq *dlq = NULL;
	struct sl_apply *engine = NULL;
	struct sl_conn *lag_conn = NULL;
	struct sl_apply_options o;
	struct sl_apply_store store;
	struct sl_apply_source source;
	struct sl_apply_counters c;
	char err[SL_ERROR_BYTES];
	uint64_t lost_reported = 0;
	int rc, exit_code = CLI_EXIT_OK;

	target_name_make(a, target_name, sizeof(target_name));
	/* The process id in the member id tells an operator which process holds which partitions. */
	snprintf(client_id, sizeof(client_id), "synclog-apply-%ld", (long)getpid());
	cli_signals_install(); /* before joining: a forming group makes the join wait */
	rc = sl_apply_fetch_source_new(&src, &so, err, sizeof(err));
	/* Before anything is applied: a table fed by another topic is refused (apply.h, synclog_tables). */
	if (rc == 0 && (rc = sl_apply_target_claim(target, a->topic)) != 0) {
		sl_apply_target_store(target, &store);
		snprintf(err, sizeof(err), "%s", store.ops->error(store.ctx));
	}
	if (rc == 0)
		rc = sl_apply_dlq_new(&dlq, cli->broker, &cli->security, &cli->kafka, a->topic, a->group, target_name,
		                      err, sizeof(err));
	/* Lag for --follow's reports, and for the progress line of a catch-up watched on a terminal. */
	if (rc == 0 && (a->follow || cli_is_terminal(stderr)) &&
	    sl_conn_new(&lag_conn, cli->broker, "synclog-apply-lag") != 0)
		lag_conn = NULL; /* the lag is then reported unknown, and no progress line is drawn */
	if (lag_conn != NULL && sl_conn_set_security(lag_conn, &cli->security) != 0) {
		sl_conn_free(lag_conn);
		lag_conn = NULL;
	}
	if (lag_conn != NULL && cli->timeout_ms > 0)
		sl_conn_set_timeout(lag_conn, cli->timeout_ms);
	if (lag_conn != NULL && sl_conn_set_kafka_config(lag_conn, &cli->kafka) != 0) {
		sl_conn_free(lag_conn);
		lag_conn = NULL;
	}
	sl_apply_options_init(&o);
	o.group = a->group;
	o.tombstone_retention_ms = a->retention_ms;
	if (a->reject_retries >= 0)
		o.reject_retries_max = (uint32_t)a->reject_retries;
	if (a->failure_retries >= 0)
		o.failure_retries_max = (uint32_t)a->failure_retries;
	o.dead_letter_cb = sl_apply_dlq_send;
	o.dead_letter_flush_cb = sl_apply_dlq_flush;
	o.dead_letter_cb_arg = dlq;
	o.stop = cli_interrupted_flag();
	sl_apply_target_store(target, &store);
	if (rc == 0) {
		sl_apply_fetch_source_get(src, &source);
		rc = sl_apply_new(&engine, &o, &store, &source, err, sizeof(err));
	}
	if (rc == 0 && (rc = sl_apply_start(engine)) != 0)
		snprintf(err, sizeof(err), "%s", sl_apply_error(engine));
	if (rc == -EINTR && cli_interrupted()) {
		exit_code = CLI_EXIT_OK; /* stopped while joining: nothing was applied */
		goto out;
	}
	if (rc != 0) {
		exit_code = cli_fail(&apply_command, "%s", err);
		goto out;
	}
	if ((exit_code = gap_check(a, target_name, src, &lost_reported)) != CLI_EXIT_OK) {
		sl_apply_fetch_source_close(src, true);
		goto out;
	}
	rc = apply_loop(cli, a, target_name, engine, lag_conn, src, &lost_reported, &exit_code);
	if (exit_code != CLI_EXIT_OK) {
		sl_apply_fetch_source_close(src, true);
		goto out;
	}
	if (sl_apply_flush(engine) != 0)
		fprintf(stderr, "synclog apply: warning: %s; the target's own offsets are unaffected\n",
		        sl_apply_error(engine));
	sl_apply_counters_get(engine, &c);
	counters_print(stdout, cli->json, &c, NULL);
	if (sl_apply_resets_adopted(engine) > 0)
		fprintf(stderr, "synclog apply: adopted %llu offset reset%s of group %s into target %s\n",
		        (unsigned long long)sl_apply_resets_adopted(engine),
		        sl_apply_resets_adopted(engine) == 1 ? "" : "s", a->group, target_name);
	if (c.conflicts > 0)
		fprintf(stderr,
		        "synclog apply: %llu record(s) had the version of the stored row but another value and were "
		        "not "
		        "applied: see table conflicts; `synclog reconcile` finds and repairs such rows\n",
		        (unsigned long long)c.conflicts);
	if (rc != 0) {
		/* The dead-letter sink's own message says why the broker refused the dead letter. */
		const char *dlq_error = strstr(sl_apply_error(engine), "dead-letter") ? sl_apply_dlq_error(dlq) : "";

		exit_code = cli_fail(&apply_command,
		                     "%s%s%s; nothing after the last committed offset was applied, "
		                     "start again to resume there",
		                     sl_apply_error(engine), dlq_error[0] != '\0' ? ": " : "", dlq_error);
	}
	sl_apply_fetch_source_close(src, false);
out:
	sl_apply_free(engine);
	sl_conn_free(lag_conn);
	sl_apply_dlq_free(dlq);
	sl_apply_fetch_source_free(src);
	return exit_code;
}

int cli_apply(const struct cli *cli, int argc, char **argv)
{
	struct apply_args a = {.retention_ms = 7LL * 24 * 3600 * 1000,
	                       .values = SL_APPLY_VALUES_JSON,
	                       .reject_retries = -1,
	                       .failure_retries = -1};
	struct sl_apply_target_options to;
	struct sl_apply_target *target;
	char err[SL_ERROR_BYTES];
	int rc;

	if (cli_wants_help(argc, argv))
		return cli_help(&apply_command);
	rc = args_parse(argc, argv, &a);
	if (rc != CLI_EXIT_OK)
		return rc;
	/* Applying from the broker, deleted rows follow the log's lifecycle; a purge alone has no log to ask. */
	to = (struct sl_apply_target_options){.schema = a.schema,
	                                      .table = a.table,
	                                      .values = a.values,
	                                      .on_delete = a.on_delete,
	                                      .follow_log = !a.purge};
	/* The table is claimed for its topic once the topic is known to exist (apply_run). */
	if (sl_apply_target_open(&target, a.target, &to, err, sizeof(err)) != 0)
		return cli_fail(&apply_command, "%s", err);
	rc = a.purge ? purge_only(cli, &a, target) : apply_run(cli, &a, target);
	sl_apply_target_close(target);
	return rc;
}
