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
#include "consumer/sync/contract.h"
#include "consumer/sync/fetch_http.h"
#include "consumer/sync/upcast.h"
#include "consumer/client/synclog.h"
#include "tools/cli.h"
#include "tools/cli_contract.h"

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
                "                           [--conflicts version|source-of-truth|lww|reject]\n"
                "                           [--source-of-truth SYSTEM] [--max-clock-skew DURATION]\n"
                "                           [--on-unknown-schema hold|dead-letter] [--upcast VERSION=MAPPING ...]\n"
                "                           [--upcast-hook LIB.so] [--fetch-url URL] [--fetch-retries N]\n"
                "                           [--no-contract]\n"
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
                "The topic's sync contract (synclog contract show TOPIC) sets the defaults of the flags below, and\n"
                "of --on-delete and --tombstone-retention (deletes.mode, deletes.retention); a flag given wins:\n"
                "  --conflicts P                 when a record meets a row another write made: version (the rules\n"
                "                                above, default); source-of-truth (only the source of truth's\n"
                "                                records, by their origin_system, change its fields; others are\n"
                "                                kept in conflicts as rejected); lww (between two systems the later\n"
                "                                change time wins; within --max-clock-skew the source of truth's);\n"
                "                                reject (an equal version with another value waits in conflicts for\n"
                "                                `synclog conflicts resolve`)\n"
                "  --source-of-truth SYSTEM      the system whose writes win (the contract's source_of_truth)\n"
                "  --max-clock-skew D            lww: changes closer than D are not ordered by time (default 0)\n"
                "  --on-unknown-schema M         a schema version the contract does not accept: hold (the\n"
                "                                partition waits there, default) or dead-letter\n"
                "  --upcast VERSION=MAPPING      bring values of schema VERSION to VERSION+1, by steps .to=.from,\n"
                "                                .path=JSON, del(.path) (repeat for each old version)\n"
                "  --upcast-hook LIB.so          a shared object whose synclog_upcast() brings old versions up\n"
                "  --fetch-url URL               thin events (op changed): GET URL with {key} replaced; 404 is a\n"
                "                                delete; while the source is down the partition stalls\n"
                "  --fetch-retries N             tries of one thin event, with backoff, before it is dead-lettered\n"
                "                                (default recovery.retry_limit, else 8: about 3 minutes)\n"
                "  --no-contract                 ignore the topic's contract\n"
                "With a contract that names fields_owned, an event of a JSON object changes only the fields its\n"
                "system owns (see synclog-contract(1)).\n"
                "Prints `applied A stale S duplicate D deleted X dead_lettered Q` (or one JSON object with\n"
                "--json), and on stderr how many conflicts were kept, if any, and each partition that waits\n"
                "or is held, and why; without --follow, exits 1 when a partition is still held at the end.\n"
                "With --purge, `purged T stale_events S idempotency_keys K`.\n",
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
	int64_t retention_ms; /* -1: not given */
	enum sl_apply_values values;
	int64_t reject_retries;  /* -1: the default */
	int64_t failure_retries; /* -1: the default */
	int on_delete;           /* enum sl_apply_on_delete, -1: not given */
	int conflicts;           /* enum sl_contract_conflicts, -1: not given */
	const char *source_of_truth;
	int64_t max_clock_skew_ms; /* -1: not given */
	int on_unknown_schema;     /* enum sl_contract_on_unknown, -1: not given */
	const char *upcasts[SL_UPCAST_MAPPINGS_MAX];
	uint32_t upcast_count;
	const char *upcast_hook;
	const char *fetch_url;
	int64_t fetch_retries; /* -1: not given */
	bool no_contract;
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
		} else if ((rc = cli_flag(argc, argv, &i, "--conflicts", &value)) != 0) {
			enum sl_contract_conflicts c;

			if (rc < 0 || sl_contract_conflicts_parse(value, &c) != 0)
				return cli_usage_error(&apply_command,
				                       "--conflicts must be version, source-of-truth, lww or reject");
			a->conflicts = (int)c;
		} else if ((rc = cli_flag(argc, argv, &i, "--source-of-truth", &value)) != 0) {
			if (rc < 0 || value[0] == '\0' || strlen(value) > SL_CONTRACT_NAME_BYTES_MAX)
				return cli_usage_error(&apply_command, "--source-of-truth needs a system's name");
			a->source_of_truth = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--max-clock-skew", &value)) != 0) {
			if (rc < 0 || cli_parse_duration_ms(value, &a->max_clock_skew_ms) != 0)
				return cli_usage_error(&apply_command,
				                       "--max-clock-skew needs a duration such as 500ms or 2s");
		} else if ((rc = cli_flag(argc, argv, &i, "--on-unknown-schema", &value)) != 0) {
			if (rc > 0 && strcmp(value, "hold") == 0)
				a->on_unknown_schema = SL_ON_UNKNOWN_HOLD;
			else if (rc > 0 && strcmp(value, "dead-letter") == 0)
				a->on_unknown_schema = SL_ON_UNKNOWN_DEAD_LETTER;
			else
				return cli_usage_error(&apply_command,
				                       "--on-unknown-schema must be hold or dead-letter");
		} else if ((rc = cli_flag(argc, argv, &i, "--upcast", &value)) != 0) {
			if (rc < 0 || a->upcast_count == SL_UPCAST_MAPPINGS_MAX)
				return cli_usage_error(&apply_command, "--upcast needs VERSION=MAPPING (at most %d)",
				                       SL_UPCAST_MAPPINGS_MAX);
			a->upcasts[a->upcast_count++] = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--upcast-hook", &value)) != 0) {
			if (rc < 0 || value[0] == '\0')
				return cli_usage_error(&apply_command,
				                       "--upcast-hook needs the path of a shared object");
			a->upcast_hook = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--fetch-url", &value)) != 0) {
			if (rc < 0 || strstr(value, "{key}") == NULL)
				return cli_usage_error(
				        &apply_command,
				        "--fetch-url needs an http(s) URL with {key} where the key goes");
			a->fetch_url = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--fetch-retries", &value)) != 0) {
			if (rc < 0 || cli_parse_i64(value, 1, 1000, &a->fetch_retries) != 0)
				return cli_usage_error(&apply_command, "--fetch-retries needs a number from 1 to 1000");
		} else if (strcmp(argv[i], "--no-contract") == 0) {
			a->no_contract = true;
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
		} else if (cli_operand(&apply_command, argv[i], &a->topic) != 0) {
			return CLI_EXIT_USAGE;
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

/* A partition's state changed (apply.h state_cb): one line on stderr. */
static void state_cb(const char *topic, uint32_t partition, const char *state, const char *reason, int64_t offset,
                     void *cb_arg)
{
	(void)cb_arg;
	if (strcmp(state, "ok") == 0)
		fprintf(stderr, "synclog apply: topic %s partition %u moves again at offset %lld\n", topic, partition,
		        (long long)offset);
	else
		fprintf(stderr, "synclog apply: topic %s partition %u %s at offset %lld: %s\n", topic, partition, state,
		        (long long)offset, reason);
}

/* What the contract and the flags make of rule 9 (apply.h): o's contract fields, and the upcasts and the fetcher
 * they need (freed by the caller). Returns 0, or CLI_EXIT_USAGE / CLI_EXIT_FAIL after saying why. */
static int rules_set(const struct apply_args *a, const struct sl_contract *contract, struct sl_apply_options *o,
                     struct sl_upcast **upcast, struct sl_fetch_http **fetch)
{
	const char *url = a->fetch_url != NULL                                 ? a->fetch_url
	                  : contract != NULL && contract->fetch_url[0] != '\0' ? contract->fetch_url
	                                                                       : NULL;
	char err[SL_ERROR_BYTES];

	o->contract = contract;
	o->conflicts = a->conflicts >= 0  ? (enum sl_contract_conflicts)a->conflicts
	               : contract != NULL ? contract->conflicts
	                                  : SL_CONFLICTS_VERSION;
	o->max_clock_skew_ms = a->max_clock_skew_ms >= 0 ? a->max_clock_skew_ms
	                       : contract != NULL        ? contract->max_clock_skew_ms
	                                                 : 0;
	if (a->max_clock_skew_ms >= 0 && o->conflicts != SL_CONFLICTS_LWW)
		return cli_usage_error(&apply_command, "--max-clock-skew goes with the lww conflict policy only");
	o->source_of_truth = a->source_of_truth;
	o->on_unknown_schema = a->on_unknown_schema >= 0 ? (enum sl_contract_on_unknown)a->on_unknown_schema
	                       : contract != NULL        ? contract->on_unknown
	                                                 : SL_ON_UNKNOWN_HOLD;
	if (a->fetch_retries > 0)
		o->fetch_retries_max = (uint32_t)a->fetch_retries;
	else if (contract != NULL && contract->retry_limit > 0)
		o->fetch_retries_max = contract->retry_limit;
	o->state_cb = state_cb;
	if (a->upcast_count > 0 || a->upcast_hook != NULL) {
		if (sl_upcast_new(upcast) != 0)
			return cli_fail(&apply_command, "out of memory");
		for (uint32_t i = 0; i < a->upcast_count; i++)
			if (sl_upcast_add_mapping(*upcast, a->upcasts[i], err, sizeof(err)) != 0)
				return cli_usage_error(&apply_command, "%s", err);
		if (a->upcast_hook != NULL && sl_upcast_add_hook(*upcast, a->upcast_hook, err, sizeof(err)) != 0)
			return cli_fail(&apply_command, "%s", err);
		o->upcast_cb = sl_upcast_cb;
		o->upcast_cb_arg = *upcast;
	}
	if (url != NULL) {
		struct sl_fetch_http_options fo = {.url_template = url};

		if (sl_fetch_http_new(fetch, &fo, err, sizeof(err)) != 0)
			return cli_fail(&apply_command, "%s", err);
		o->fetch_cb = sl_fetch_http_cb;
		o->fetch_cb_arg = *fetch;
	}
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

/* A conflict policy other than version, and field ownership, read the stored row and keep the conflicts table
 * (apply.h rule 9c, 9d): a target store without those refuses them here, before anything is applied, and says what
 * to do. Returns CLI_EXIT_OK to go on. */
static int rules_store_check(const struct apply_args *a, const struct sl_contract *contract,
                             const struct sl_apply_options *o, const struct sl_apply_store *store,
                             const char *target_name)
{
	bool ownership = contract != NULL && sl_contract_has_ownership(contract);

	if (store->ops->row_get != NULL && store->ops->conflict_note != NULL)
		return CLI_EXIT_OK;
	if (o->conflicts != SL_CONFLICTS_VERSION)
		return cli_fail(&apply_command,
		                "target %s keeps no conflicts table and no row's last writer, which the %s conflict "
		                "policy (%s) needs: nothing was applied. Apply to a SQLite target, or with --conflicts "
		                "version",
		                target_name, sl_contract_conflicts_name(o->conflicts),
		                a->conflicts >= 0 ? "--conflicts" : "the topic's contract");
	if (ownership)
		return cli_fail(
		        &apply_command,
		        "target %s keeps no conflicts table and no row's last writer, which the field ownership "
		        "of topic %s's contract (fields_owned, fields_derived) needs: nothing was applied. Apply "
		        "to a SQLite target, or with --no-contract (the contract's other rules are then left out "
		        "too)",
		        target_name, a->topic);
	return CLI_EXIT_OK;
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

static int apply_run(const struct cli *cli, const struct apply_args *a, struct sl_apply_target *target,
                     const struct sl_contract *contract)
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
	struct sl_upcast *upcast = NULL;
	struct sl_fetch_http *fetch = NULL;
	int rc, exit_code = CLI_EXIT_OK;

	sl_apply_options_init(&o);
	rc = rules_set(a, contract, &o, &upcast, &fetch);
	if (rc != 0) {
		sl_upcast_free(upcast);
		sl_fetch_http_free(fetch);
		return rc;
	}
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
	if (rc == 0 && (exit_code = rules_store_check(a, contract, &o, &store, target_name)) != CLI_EXIT_OK)
		goto out;
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
	if (c.conflicts > 0 && o.conflicts == SL_CONFLICTS_REJECT)
		fprintf(stderr,
		        "synclog apply: %llu record(s) conflict with the stored row and wait for a decision: `synclog "
		        "conflicts list --target %s`\n",
		        (unsigned long long)c.conflicts, target_name);
	else if (c.conflicts > 0)
		fprintf(stderr,
		        "synclog apply: %llu record(s) were not applied by the %s conflict policy: see table conflicts "
		        "(`synclog conflicts list --target %s --all`); `synclog reconcile` finds and repairs "
		        "rows that drifted\n",
		        (unsigned long long)c.conflicts, sl_contract_conflicts_name(o.conflicts), target_name);
	if (rc != 0) {
		/* The dead-letter sink's own message says why the broker refused the dead letter. */
		const char *dlq_error = strstr(sl_apply_error(engine), "dead-letter") ? sl_apply_dlq_error(dlq) : "";

		exit_code = cli_fail(&apply_command,
		                     "%s%s%s; nothing after the last committed offset was applied, "
		                     "start again to resume there",
		                     sl_apply_error(engine), dlq_error[0] != '\0' ? ": " : "", dlq_error);
	} else if (sl_apply_held_count(engine) > 0 && !a->follow) {
		exit_code = cli_fail(&apply_command,
		                     "%u partition(s) held (see above): nothing after the held records was applied; "
		                     "start again once the contract or an --upcast accepts them",
		                     sl_apply_held_count(engine));
	} else if (sl_apply_held_count(engine) > 0) {
		fprintf(stderr,
		        "synclog apply: %u partition(s) held (see above): start again once the contract or an --upcast "
		        "accepts their records\n",
		        sl_apply_held_count(engine));
	}
	sl_apply_fetch_source_close(src, false);
out:
	sl_apply_free(engine);
	sl_upcast_free(upcast);
	sl_fetch_http_free(fetch);
	sl_conn_free(lag_conn);
	sl_apply_dlq_free(dlq);
	sl_apply_fetch_source_free(src);
	return exit_code;
}

/* One line on stderr saying what the topic's contract sets, when it sets anything. */
static void contract_note(const char *topic, uint32_t version, const struct sl_contract *c)
{
	fprintf(stderr, "synclog apply: contract version %u of topic %s: conflicts %s", version, topic,
	        sl_contract_conflicts_name(c->conflicts));
	if (sl_contract_has_ownership(c))
		fputs(", field ownership", stderr);
	if (c->schema_version_count > 0) {
		fputs(", schema versions", stderr);
		for (uint32_t i = 0; i < c->schema_version_count; i++)
			fprintf(stderr, "%s%d", i ? "," : " ", c->schema_versions[i]);
		fprintf(stderr, " (unknown: %s)", c->on_unknown == SL_ON_UNKNOWN_HOLD ? "hold" : "dead-letter");
	}
	if (c->fetch_url[0] != '\0')
		fprintf(stderr, ", thin events from %s", c->fetch_url);
	if (c->retry_limit > 0)
		fprintf(stderr, ", %u tries before the dead-letter topic", c->retry_limit);
	fputc('\n', stderr);
}

int cli_apply(const struct cli *cli, int argc, char **argv)
{
	struct apply_args a = {.retention_ms = -1,
	                       .values = SL_APPLY_VALUES_JSON,
	                       .reject_retries = -1,
	                       .failure_retries = -1,
	                       .on_delete = -1,
	                       .conflicts = -1,
	                       .max_clock_skew_ms = -1,
	                       .on_unknown_schema = -1,
	                       .fetch_retries = -1};
	static const enum sl_apply_on_delete on_delete_of[] = {
	        [SL_DELETES_SOFT] = SL_APPLY_ON_DELETE_HIDE,
	        [SL_DELETES_ARCHIVE] = SL_APPLY_ON_DELETE_ARCHIVE,
	        [SL_DELETES_PURGE] = SL_APPLY_ON_DELETE_ERASE_VALUE,
	};
	struct sl_apply_target_options to;
	struct sl_apply_target *target;
	struct sl_contract *contract = NULL;
	uint32_t version = 0;
	char err[SL_ERROR_BYTES];
	int rc;

	if (cli_wants_help(argc, argv))
		return cli_help(&apply_command);
	rc = args_parse(argc, argv, &a);
	if (rc != CLI_EXIT_OK)
		return rc;
	/* The topic's contract sets the defaults (synclog-contract(1)); a purge has no topic to ask about. */
	if (!a.purge && !a.no_contract) {
		if (cli_contract_fetch(cli, a.topic, &contract, &version, err, sizeof(err)) != 0)
			return cli_fail(&apply_command, "%s", err);
		if (contract != NULL) {
			contract_note(a.topic, version, contract);
			if (a.retention_ms < 0 && contract->delete_retention_ms > 0)
				a.retention_ms = contract->delete_retention_ms;
			if (a.on_delete < 0 && contract->deletes_given)
				a.on_delete = (int)on_delete_of[contract->deletes];
		}
	}
	if (a.retention_ms < 0)
		a.retention_ms = 7LL * 24 * 3600 * 1000;
	if (a.on_delete < 0)
		a.on_delete = SL_APPLY_ON_DELETE_HIDE;
	/* Applying from the broker, deleted rows follow the log's lifecycle; a purge alone has no log to ask. */
	to = (struct sl_apply_target_options){.schema = a.schema,
	                                      .table = a.table,
	                                      .values = a.values,
	                                      .on_delete = (enum sl_apply_on_delete)a.on_delete,
	                                      .follow_log = !a.purge};
	/* The table is claimed for its topic once the topic is known to exist (apply_run). */
	if (sl_apply_target_open(&target, a.target, &to, err, sizeof(err)) != 0) {
		sl_contract_free(contract);
		return cli_fail(&apply_command, "%s", err);
	}
	rc = a.purge ? purge_only(cli, &a, target) : apply_run(cli, &a, target, contract);
	sl_apply_target_close(target);
	sl_contract_free(contract);
	return rc;
}
