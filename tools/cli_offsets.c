/* `synclog offsets reset`: move a consumer group's committed offsets to a point an operator names (the log start or
 * end, an offset, a time, a duration ago, a shift), or to the offsets of a plan file. It plans first (a dry run by
 * default), refuses while the group has live members unless --force, and commits the plan as one operator commit.
 * The placement rules are sl_reset_plan's (consumer/offset_reset.c). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/base/clock.h"
#include "consumer/client/synclog.h"
#include "tools/cli.h"

static const struct cli_command offsets_command = {
        .name = "offsets",
        .usage = "usage: synclog offsets reset --group G (--topic T[:P[,P...]]... | --all-topics) SPEC\n"
                 "                             [--dry-run|--execute] [--force] [--export FILE]\n"
                 "       synclog offsets reset --group G --from-file FILE [--dry-run|--execute] [--force]\n",
};

static const struct cli_command reset_command = {
        .name = "offsets reset",
        .usage = "usage: synclog offsets reset --group G (--topic T[:P[,P...]]... | --all-topics) SPEC\n"
                 "                             [--dry-run|--execute] [--force] [--export FILE]\n"
                 "       synclog offsets reset --group G --from-file FILE [--dry-run|--execute] [--force]\n"
                 "\n"
                 "Move the committed offsets of a consumer group. Prints one row per partition:\n"
                 "`TOPIC PARTITION OLD_OFFSET NEW_OFFSET` (OLD_OFFSET -1: nothing was committed), or with --json\n"
                 "{\"group\":G,\"topic\":T,\"partition\":P,\"old_offset\":O,\"new_offset\":N}.\n"
                 "\n"
                 "Scope:\n"
                 "  --topic T          every partition of topic T; --topic T:0,3 only partitions 0 and 3; repeatable\n"
                 "  --all-topics       every topic the group has committed offsets on or subscribes to\n"
                 "SPEC, exactly one:\n"
                 "  --to-earliest      the log start\n"
                 "  --to-latest        the log end (the next offset to be written)\n"
                 "  --to-offset N      offset N\n"
                 "  --to-datetime T    the first record at or after T (ISO 8601: 2024-05-01T12:00:00Z, UTC when no\n"
                 "                     zone is given; epoch milliseconds; or a duration ago: -10m); the log end\n"
                 "                     when no record is that recent\n"
                 "  --by-duration D    like --to-datetime with now minus D (10m, 2h, 7d, or ISO 8601: PT30M,\n"
                 "                     P1DT2H, P2W; a day is 24 h; years and months are refused)\n"
                 "  --shift-by N       N records forward, or back when negative, from the committed offset; a\n"
                 "                     partition with no commit shifts from the log start\n"
                 "Every new offset lies in [log start, log end]: an offset outside is clamped, with a warning on\n"
                 "stderr. A partition with no commit gets the position the SPEC names.\n"
                 "\n"
                 "  --dry-run          print the plan, change nothing (the default)\n"
                 "  --execute          commit the plan (one operator commit, all partitions or none)\n"
                 "  --force            even while the group has live members: the broker fences them (their\n"
                 "                     commits are refused) until the reset is durable, then they rebalance and\n"
                 "                     read on from the new offsets (an applier adopts them into its target)\n"
                 "  --export FILE      also write the plan as CSV: a header topic,partition,old_offset,new_offset\n"
                 "                     then one line per partition\n"
                 "  --from-file FILE   apply the offsets of such a CSV (columns found by the header: topic,\n"
                 "                     partition and new_offset are required), or of Kafka's headerless\n"
                 "                     topic,partition,offset lines, instead of a SPEC and scope\n"
                 "\n"
                 "Refused with exit 1 while the group has live members (unless --force), for a topic or partition\n"
                 "that does not exist, and when the broker refuses the commit.\n",
};

/* One --topic: a topic and its partitions (none listed: all). */
struct scope {
	const char *topic;
	uint32_t *partitions;
	uint32_t count;
};

struct reset_args {
	const char *group;
	struct scope *scopes;
	uint32_t scope_count;
	bool all_topics;
	int spec_count;
	struct sl_reset_spec spec;
	bool execute, dry_run, force;
	const char *export_path;
	const char *from_file;
};

/* The plan being built: rows, plus what the warnings and the JSON output need. */
struct plan {
	struct sl_offset_row *rows;
	size_t count, cap;
};

static int scope_parse(const char *value, struct scope *out)
{
	const char *colon = strchr(value, ':');
	size_t topic_len = colon != NULL ? (size_t)(colon - value) : strlen(value);
	char *topic;

	if (topic_len == 0 || topic_len > SL_TOPIC_NAME_BYTES_MAX)
		return cli_usage_error(&reset_command, "--topic needs a topic name, not '%s'", value);
	topic = strndup(value, topic_len);
	if (topic == NULL)
		return cli_fail(&reset_command, "out of memory");
	out->topic = topic;
	out->partitions = NULL;
	out->count = 0;
	if (colon == NULL)
		return CLI_EXIT_OK;
	/* At most one partition per character of the list: sizes the array once. */
	out->partitions = calloc(strlen(colon) + 1, sizeof(*out->partitions));
	if (out->partitions == NULL)
		return cli_fail(&reset_command, "out of memory");
	for (const char *p = colon + 1;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		char num[16];
		uint64_t v;

		if (len == 0 || len >= sizeof(num))
			return cli_usage_error(&reset_command,
			                       "--topic %s: the partitions must be numbers separated "
			                       "by commas, as T:0,3",
			                       value);
		memcpy(num, p, len);
		num[len] = '\0';
		if (cli_parse_u64(num, UINT32_MAX, &v) != 0)
			return cli_usage_error(&reset_command, "--topic %s: '%s' is not a partition number", value,
			                       num);
		out->partitions[out->count++] = (uint32_t)v;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return CLI_EXIT_OK;
}

static int spec_set(struct reset_args *a, enum sl_reset_kind kind, int64_t value)
{
	a->spec_count++;
	a->spec.kind = kind;
	a->spec.value = value;
	return CLI_EXIT_OK;
}

/* The SPEC flags; returns -1 when argv[*i] is not one, else the exit code of parsing it. */
static int spec_parse(int argc, char **argv, int *i, struct reset_args *a)
{
	const char *value;
	int64_t v;
	int rc;

	if (strcmp(argv[*i], "--to-earliest") == 0)
		return spec_set(a, SL_RESET_EARLIEST, 0);
	if (strcmp(argv[*i], "--to-latest") == 0)
		return spec_set(a, SL_RESET_LATEST, 0);
	if ((rc = cli_flag(argc, argv, i, "--to-offset", &value)) != 0) {
		if (rc < 0 || cli_parse_i64(value, 0, INT64_MAX, &v) != 0)
			return cli_usage_error(&reset_command, "--to-offset needs an offset (0 or more)");
		return spec_set(a, SL_RESET_OFFSET, v);
	}
	if ((rc = cli_flag(argc, argv, i, "--to-datetime", &value)) != 0) {
		if (rc < 0 || sl_time_parse(value, sl_clock_wall_ms(), &v) != 0)
			return cli_usage_error(
			        &reset_command,
			        "--to-datetime needs an ISO 8601 time such as 2024-05-01T12:00:00Z, epoch "
			        "milliseconds, or a duration ago such as -10m");
		return spec_set(a, SL_RESET_DATETIME, v);
	}
	if ((rc = cli_flag(argc, argv, i, "--by-duration", &value)) != 0) {
		if (rc < 0 || sl_duration_parse(value, &v) != 0)
			return cli_usage_error(
			        &reset_command,
			        "--by-duration needs a duration such as 10m, 2h, 7d, or ISO 8601 PT30M, P1DT2H, P2W "
			        "(years and months are refused: their length varies)");
		return spec_set(a, SL_RESET_DATETIME, sl_clock_wall_ms() - v);
	}
	if ((rc = cli_flag(argc, argv, i, "--shift-by", &value)) != 0) {
		if (rc < 0 || cli_parse_i64(value, INT64_MIN + 1, INT64_MAX, &v) != 0)
			return cli_usage_error(&reset_command, "--shift-by needs a number of records (negative: back)");
		return spec_set(a, SL_RESET_SHIFT, v);
	}
	return -1;
}

static int args_parse(int argc, char **argv, struct reset_args *a)
{
	const char *value;
	int rc;

	a->scopes = calloc((size_t)argc + 1, sizeof(*a->scopes));
	if (a->scopes == NULL)
		return cli_fail(&reset_command, "out of memory");
	for (int i = 0; i < argc; i++) {
		if ((rc = spec_parse(argc, argv, &i, a)) >= 0) {
			if (rc != CLI_EXIT_OK)
				return rc;
		} else if ((rc = cli_flag(argc, argv, &i, "--group", &value)) != 0) {
			if (rc < 0)
				return cli_usage_error(&reset_command, "--group needs a group name");
			a->group = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--topic", &value)) != 0) {
			if (rc < 0)
				return cli_usage_error(&reset_command, "--topic needs T or T:P[,P...]");
			rc = scope_parse(value, &a->scopes[a->scope_count++]);
			if (rc != CLI_EXIT_OK)
				return rc;
		} else if ((rc = cli_flag(argc, argv, &i, "--export", &value)) != 0) {
			if (rc < 0)
				return cli_usage_error(&reset_command, "--export needs a file name");
			a->export_path = value;
		} else if ((rc = cli_flag(argc, argv, &i, "--from-file", &value)) != 0) {
			if (rc < 0)
				return cli_usage_error(&reset_command, "--from-file needs a file name");
			a->from_file = value;
		} else if (strcmp(argv[i], "--all-topics") == 0) {
			a->all_topics = true;
		} else if (strcmp(argv[i], "--execute") == 0) {
			a->execute = true;
		} else if (strcmp(argv[i], "--dry-run") == 0) {
			a->dry_run = true;
		} else if (strcmp(argv[i], "--force") == 0) {
			a->force = true;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			return cli_usage_error(&reset_command, "unknown flag '%s'", argv[i]);
		} else {
			return cli_usage_error(&reset_command, "unexpected argument '%s'", argv[i]);
		}
	}
	if (a->group == NULL)
		return cli_usage_error(&reset_command, "--group G is required");
	if (a->execute && a->dry_run)
		return cli_usage_error(&reset_command, "--dry-run and --execute exclude each other");
	if (a->from_file != NULL) {
		if (a->spec_count > 0 || a->scope_count > 0 || a->all_topics)
			return cli_usage_error(
			        &reset_command,
			        "--from-file takes the topics, partitions and offsets from the file: give no "
			        "SPEC, --topic or --all-topics with it");
		return CLI_EXIT_OK;
	}
	if (a->spec_count != 1)
		return cli_usage_error(&reset_command,
		                       "exactly one SPEC is required: --to-earliest, --to-latest, --to-offset N, "
		                       "--to-datetime T, --by-duration D or --shift-by N");
	if (a->all_topics == (a->scope_count > 0))
		return cli_usage_error(&reset_command,
		                       "name the topics: --topic T[:P,...] (repeatable) or --all-topics");
	return CLI_EXIT_OK;
}

static void args_free(struct reset_args *a)
{
	for (uint32_t i = 0; a->scopes != NULL && i < a->scope_count; i++) {
		free((char *)a->scopes[i].topic);
		free(a->scopes[i].partitions);
	}
	free(a->scopes);
}

static bool plan_has(const struct plan *p, const char *topic, uint32_t partition)
{
	for (size_t i = 0; i < p->count; i++)
		if (p->rows[i].partition == partition && strcmp(p->rows[i].topic, topic) == 0)
			return true;
	return false;
}

static int plan_add(struct plan *p, const char *topic, uint32_t partition, int64_t old_offset, int64_t new_offset)
{
	if (p->count == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct sl_offset_row *rows = realloc(p->rows, cap * sizeof(*rows));

		if (rows == NULL)
			return -ENOMEM;
		p->rows = rows;
		p->cap = cap;
	}
	struct sl_offset_row *r = &p->rows[p->count++];
	memset(r, 0, sizeof(*r));
	snprintf(r->topic, sizeof(r->topic), "%s", topic);
	r->partition = partition;
	r->old_offset = old_offset;
	r->new_offset = new_offset;
	return 0;
}

static void clamp_warn(const struct sl_reset_spec *spec, const char *topic, uint32_t partition,
                       const struct sl_reset_input *in, int64_t got)
{
	if (spec->kind == SL_RESET_SHIFT)
		fprintf(stderr,
		        "synclog offsets reset: warning: topic %s partition %u: shifting %" PRId64 " by %" PRId64
		        " goes past the log [%" PRId64 ", %" PRId64 "]: clamped to %" PRId64 "\n",
		        topic, partition, in->committed < 0 ? in->earliest : in->committed, spec->value, in->earliest,
		        in->next, got);
	else
		fprintf(stderr,
		        "synclog offsets reset: warning: topic %s partition %u: offset %" PRId64
		        " is outside the log [%" PRId64 ", %" PRId64 "]: clamped to %" PRId64 "\n",
		        topic, partition, spec->value, in->earliest, in->next, got);
}

/* Plan count partitions of topic (partitions NULL: all of them). With wanted (from a file) each partition gets
 * its own offset; otherwise the SPEC decides. Returns an exit code. */
static int plan_topic(struct sl_conn *c, const struct reset_args *a, struct plan *p, const char *topic,
                      const uint32_t *partitions, uint32_t count, const int64_t *wanted)
{
	struct sl_topic_config cfg;
	struct sl_partition_info *infos = NULL;
	uint32_t n_infos, *ids = NULL;
	int64_t *committed = NULL, *at_time = NULL;
	int rc, exit_code = CLI_EXIT_FAIL;

	rc = sl_topic_describe(c, topic, &cfg, &infos, &n_infos);
	if (rc == -ENOENT) {
		cli_fail(&reset_command,
		         "topic '%s' does not exist (never created, or deleted): `synclog topic list` "
		         "shows the topics",
		         topic);
		goto out;
	}
	if (rc != 0) {
		cli_fail(&reset_command, "%s", sl_conn_error(c));
		goto out;
	}
	if (partitions == NULL)
		count = n_infos;
	ids = calloc(count + 1, sizeof(*ids));
	committed = calloc(count + 1, sizeof(*committed));
	at_time = calloc(count + 1, sizeof(*at_time));
	if (ids == NULL || committed == NULL || at_time == NULL) {
		cli_fail(&reset_command, "out of memory for %u partitions", count);
		goto out;
	}
	for (uint32_t i = 0; i < count; i++) {
		ids[i] = partitions != NULL ? partitions[i] : i;
		if (ids[i] >= n_infos) {
			cli_fail(&reset_command, "topic '%s' has no partition %u: its partitions are 0 to %u", topic,
			         ids[i], n_infos - 1);
			goto out;
		}
		if (infos[ids[i]].error != 0) {
			cli_fail(&reset_command, "topic '%s' partition %u is unavailable: %s", topic, ids[i],
			         infos[ids[i]].error_message);
			goto out;
		}
	}
	if (count == 0) {
		exit_code = CLI_EXIT_OK;
		goto out;
	}
	rc = sl_group_offsets_fetch(c, a->group, topic, ids, count, committed, NULL);
	if (rc == 0 && wanted == NULL && a->spec.kind == SL_RESET_DATETIME)
		rc = sl_offsets_list(c, topic, SL_OFFSET_TIMESTAMP, a->spec.value, ids, count, at_time);
	if (rc != 0) {
		cli_fail(&reset_command, "%s", sl_conn_error(c));
		goto out;
	}
	for (uint32_t i = 0; i < count; i++) {
		const struct sl_partition_info *info = &infos[ids[i]];
		struct sl_reset_input in = {info->earliest_offset, info->next_offset, committed[i], at_time[i]};
		struct sl_reset_spec spec = a->spec;
		bool clamped;
		int64_t got;

		if (plan_has(p, topic, ids[i])) {
			if (wanted == NULL)
				continue; /* named twice by --topic: one row */
			cli_fail(&reset_command, "the file names topic %s partition %u twice: which offset is meant?",
			         topic, ids[i]);
			goto out;
		}
		if (wanted != NULL)
			spec = (struct sl_reset_spec){SL_RESET_OFFSET, wanted[i]};
		got = sl_reset_plan(&spec, &in, &clamped);
		if (clamped)
			clamp_warn(&spec, topic, ids[i], &in, got);
		if (plan_add(p, topic, ids[i], committed[i], got) != 0) {
			cli_fail(&reset_command, "out of memory");
			goto out;
		}
	}
	exit_code = CLI_EXIT_OK;
out:
	free(infos);
	free(ids);
	free(committed);
	free(at_time);
	return exit_code;
}

/* --all-topics: the distinct topics of the group's description, in its order. */
static int plan_all_topics(struct sl_conn *c, const struct reset_args *a, const struct sl_group_description *d,
                           struct plan *p)
{
	if (d == NULL || d->partition_count == 0)
		return cli_fail(
		        &reset_command,
		        "group '%s' has no committed offsets and no subscriptions: name the topics with --topic",
		        a->group);
	for (uint32_t i = 0; i < d->partition_count; i++) {
		int rc;

		if (i > 0 && strcmp(d->partitions[i].topic, d->partitions[i - 1].topic) == 0)
			continue;
		rc = plan_topic(c, a, p, d->partitions[i].topic, NULL, 0, NULL);
		if (rc != CLI_EXIT_OK)
			return rc;
	}
	return CLI_EXIT_OK;
}

/* --from-file: the rows of the file, topic by topic. */
static int plan_from_file(struct sl_conn *c, const struct reset_args *a, struct plan *p)
{
	struct sl_offset_row *rows;
	size_t count;
	char err[SL_ERROR_BYTES];
	FILE *f = fopen(a->from_file, "r");
	int rc;

	if (f == NULL)
		return cli_fail(&reset_command, "cannot open %s: %s", a->from_file, strerror(errno));
	rc = sl_offset_rows_read_csv(f, &rows, &count, err, sizeof(err));
	fclose(f);
	if (rc != 0)
		return cli_fail(&reset_command, "%s: %s", a->from_file, err);
	uint32_t *ids = calloc(count + 1, sizeof(*ids));
	int64_t *wanted = calloc(count + 1, sizeof(*wanted));
	bool *done = calloc(count + 1, sizeof(*done));
	rc = ids && wanted && done ? CLI_EXIT_OK : cli_fail(&reset_command, "out of memory");
	for (size_t i = 0; rc == CLI_EXIT_OK && i < count; i++) {
		uint32_t n = 0;

		if (done[i])
			continue;
		for (size_t j = i; j < count; j++) {
			if (done[j] || strcmp(rows[j].topic, rows[i].topic) != 0)
				continue;
			ids[n] = rows[j].partition;
			wanted[n++] = rows[j].new_offset;
			done[j] = true;
		}
		rc = plan_topic(c, a, p, rows[i].topic, ids, n, wanted);
	}
	free(ids);
	free(wanted);
	free(done);
	free(rows);
	return rc;
}

static void rows_print(const struct cli *cli, const struct reset_args *a, const struct plan *p)
{
	for (size_t i = 0; i < p->count; i++) {
		const struct sl_offset_row *r = &p->rows[i];

		if (cli->json) {
			fputs("{\"group\":", stdout);
			cli_json_string(a->group);
			fputs(",\"topic\":", stdout);
			cli_json_string(r->topic);
			printf(",\"partition\":%u,\"old_offset\":%" PRId64 ",\"new_offset\":%" PRId64 "}\n",
			       r->partition, r->old_offset, r->new_offset);
		} else {
			printf("%s %u %" PRId64 " %" PRId64 "\n", r->topic, r->partition, r->old_offset, r->new_offset);
		}
	}
}

static int plan_export(const struct reset_args *a, const struct plan *p)
{
	FILE *f = fopen(a->export_path, "w");
	int rc;

	if (f == NULL)
		return cli_fail(&reset_command, "cannot create %s: %s", a->export_path, strerror(errno));
	rc = sl_offset_rows_write_csv(f, p->rows, p->count);
	if (fclose(f) != 0)
		rc = -EIO;
	if (rc != 0)
		return cli_fail(&reset_command, "writing %s failed: %s", a->export_path, strerror(-rc));
	return CLI_EXIT_OK;
}

static int plan_execute(struct sl_conn *c, const struct reset_args *a, const struct plan *p)
{
	struct sl_topic_partition_offset *offsets = calloc(p->count + 1, sizeof(*offsets));
	int rc;

	if (offsets == NULL)
		return cli_fail(&reset_command, "out of memory");
	for (size_t i = 0; i < p->count; i++)
		offsets[i] = (struct sl_topic_partition_offset){p->rows[i].topic, p->rows[i].partition,
		                                                p->rows[i].new_offset};
	rc = p->count > 0 ? sl_group_offsets_commit(c, a->group, offsets, (uint32_t)p->count, a->force) : 0;
	free(offsets);
	if (rc == -EBUSY)
		return cli_fail(&reset_command, "%s", sl_conn_error(c));
	if (rc != 0)
		return cli_fail(&reset_command, "nothing was changed: %s", sl_conn_error(c));
	return CLI_EXIT_OK;
}

/* Refuse while the group has live members, unless forced; *d_out is the group (NULL when it does not exist). */
static int members_check(struct sl_conn *c, const struct reset_args *a, struct sl_group_description **d_out)
{
	int rc = sl_group_describe(c, a->group, d_out);

	if (rc == -ENOENT) {
		*d_out = NULL; /* a new group: the reset creates its offsets */
		return CLI_EXIT_OK;
	}
	if (rc != 0)
		return cli_fail(&reset_command, "%s", sl_conn_error(c));
	if ((*d_out)->member_count > 0 && !a->force)
		return cli_fail(&reset_command,
		                "group '%s' has %u live member%s (e.g. %s): stop its consumers first, or pass --force "
		                "(they are fenced, then read on from the new offsets)",
		                a->group, (*d_out)->member_count, (*d_out)->member_count == 1 ? "" : "s",
		                (*d_out)->members[0].member_id);
	return CLI_EXIT_OK;
}

static int offsets_reset(const struct cli *cli, int argc, char **argv)
{
	struct reset_args a = {0};
	struct plan p = {0};
	struct sl_group_description *d = NULL;
	struct sl_conn *c = NULL;
	int rc;

	rc = args_parse(argc, argv, &a);
	if (rc != CLI_EXIT_OK)
		goto out;
	c = cli_connect(cli, &reset_command, "synclog-offsets");
	if (c == NULL) {
		rc = CLI_EXIT_FAIL;
		goto out;
	}
	rc = members_check(c, &a, &d);
	if (rc != CLI_EXIT_OK)
		goto out;
	if (a.from_file != NULL)
		rc = plan_from_file(c, &a, &p);
	else if (a.all_topics)
		rc = plan_all_topics(c, &a, d, &p);
	for (uint32_t i = 0; rc == CLI_EXIT_OK && i < a.scope_count; i++)
		rc = plan_topic(c, &a, &p, a.scopes[i].topic, a.scopes[i].partitions, a.scopes[i].count, NULL);
	if (rc == CLI_EXIT_OK && a.export_path != NULL)
		rc = plan_export(&a, &p);
	if (rc == CLI_EXIT_OK && a.execute)
		rc = plan_execute(c, &a, &p);
	if (rc == CLI_EXIT_OK) {
		rows_print(cli, &a, &p);
		if (!a.execute)
			fprintf(stderr,
			        "synclog offsets reset: dry run, nothing changed: add --execute to commit these "
			        "offsets\n");
	}
out:
	sl_group_description_free(d);
	sl_conn_free(c);
	free(p.rows);
	args_free(&a);
	return rc;
}

int cli_offsets(const struct cli *cli, int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {{"reset", &reset_command, offsets_reset}};
	return cli_subcommand_run(&offsets_command, subs, (int)(sizeof(subs) / sizeof(subs[0])), cli, argc, argv);
}
