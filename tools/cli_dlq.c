/* `synclog dlq list|show|redrive`: the dead letters of a topic's targets (TOPIC.dlq, envelopes in
 * consumer/sync/apply.h), told apart by the group and target each names, and redriven into that target.
 *
 * Redrive re-applies letters with the applier's rules (versions, duplicates, deletes), reading each record again
 * from the source topic at its offset, so exactly the bytes that failed are tried. Its progress is kept in the
 * target under the group name "G.redrive", in the same transactions as the data: a letter at or below that
 * position was redriven, so running it twice changes nothing. A letter the target still rejects is counted and
 * stays in the dead-letter topic; one whose source record retention already removed is counted as gone. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/client/synclog.h"
#include "consumer/sync/apply.h"
#include "tools/cli.h"

/* The pseudo-group suffix under which a target keeps its redrive positions. */
#define REDRIVE_SUFFIX ".redrive"
/* Letters read at most: the dead letters of a topic are few and read by people; a bound on one command's work. */
#define LETTERS_MAX    1000000u

static const struct cli_command dlq_command = {
        .name = "dlq",
        .usage = "usage: synclog dlq list TOPIC [--group G]\n"
                 "       synclog dlq show TOPIC [--group G]\n"
                 "       synclog dlq redrive TOPIC --group G [--offset O] [--values json|text] [--execute]\n",
};

static const struct cli_command list_command = {
        .name = "dlq list",
        .usage = "usage: synclog dlq list TOPIC [--group G]\n"
                 "\n"
                 "The dead letters of TOPIC (kept in TOPIC.dlq), one line each: the letter's offset in TOPIC.dlq,\n"
                 "the group and target it belongs to, the record's partition and offset, the error's class\n"
                 "(permanent: the record itself; transient: the target's state) and the error. --group G: only\n"
                 "that target's. With --json, one object per letter: {\"dlq_offset\":N,\"group\":G,\"target\":T,\n"
                 "\"topic\":T,\"partition\":P,\"offset\":O,\"key\":K,\"error_class\":C,\"error\":E}.\n",
};

static const struct cli_command show_command = {
        .name = "dlq show",
        .usage = "usage: synclog dlq show TOPIC [--group G]\n"
                 "\n"
                 "The whole envelope of every dead letter of TOPIC (or of group G's target), one JSON object per\n"
                 "line, with \"dlq_offset\" added.\n",
};

static const struct cli_command redrive_command = {
        .name = "dlq redrive",
        .usage = "usage: synclog dlq redrive TOPIC --group G [--offset O] [--values json|text] [--execute]\n"
                 "\n"
                 "Apply group G's dead letters of TOPIC to the target they name, with the applier's rules, reading\n"
                 "each record again from TOPIC at its offset. A dry run by default: one line per letter,\n"
                 "`DLQ_OFFSET PARTITION OFFSET KEY would-redrive|redriven|gone`. --offset O: only the letter at\n"
                 "offset O of TOPIC.dlq. --execute: apply them; prints `redriven R applied A stale S duplicate D\n"
                 "deleted X still_rejected Q skipped K gone G`. The target keeps its redrive progress (group\n"
                 "G.redrive): running it twice changes nothing. --values: what the target takes now, as for\n"
                 "`synclog apply` (default json). Exit 1 when a letter is still rejected.\n",
};

/* One dead letter, as its envelope says. */
struct letter {
	int64_t dlq_offset;
	json_t *env;
	const char *group, *target, *topic;
	uint32_t partition;
	int64_t offset;
	struct sl_record rec; /* the source record (redrive); pointers into mem */
	uint8_t *mem;
	int state; /* redrive: 0 to redrive, 1 already redriven, 2 gone */
};

struct letters {
	struct letter *v;
	size_t count, cap;
};

static void letters_free(struct letters *l)
{
	for (size_t i = 0; i < l->count; i++) {
		json_decref(l->v[i].env);
		free(l->v[i].mem);
	}
	free(l->v);
}

static const char *dlq_topic_of(const char *topic, char *buf, size_t bytes)
{
	size_t n = strlen(topic), s = strlen(SL_APPLY_DLQ_SUFFIX);

	if (n > s && strcmp(topic + n - s, SL_APPLY_DLQ_SUFFIX) == 0)
		snprintf(buf, bytes, "%s", topic);
	else
		snprintf(buf, bytes, "%s" SL_APPLY_DLQ_SUFFIX, topic);
	return buf;
}

static const char *jstr(json_t *env, const char *key)
{
	const char *s = json_string_value(json_object_get(env, key));
	return s != NULL ? s : "";
}

/* Every letter of TOPIC.dlq (of group, when not NULL), in offset order. */
static int letters_read(const struct cli *cli, const struct cli_command *cmd, const char *topic, const char *group,
                        struct letters *out)
{
	char name[SL_TOPIC_NAME_BYTES_MAX + 8], err[SL_ERROR_BYTES];
	struct sl_fetcher_options o;
	struct sl_fetcher *f;
	int rc;

	sl_fetcher_options_init(&o);
	o.broker = cli->broker;
	o.security = &cli->security;
	o.kafka_config = &cli->kafka;
	o.client_id = "synclog-dlq";
	o.topic = dlq_topic_of(topic, name, sizeof(name));
	o.stop_at_end = true;
	rc = sl_fetcher_new(&f, &o, err, sizeof(err));
	if (rc == -ENOENT)
		return cli_fail(cmd, "topic '%s' has no dead letters (no topic %s)", topic, name);
	if (rc != 0)
		return cli_fail(cmd, "%s", err);
	while (!sl_fetcher_done(f) && !cli_interrupted()) {
		uint32_t partition;
		struct sl_record r;

		rc = sl_fetcher_fetch(f);
		if (rc == -EINTR)
			continue;
		if (rc != 0)
			break;
		while ((rc = sl_fetcher_next(f, &partition, &r)) == 1) {
			json_error_t jerr;
			json_t *env = r.value != NULL ? json_loadb((const char *)r.value, (size_t)r.value_len, 0, &jerr)
			                              : NULL;

			if (env == NULL || !json_is_object(env)) {
				fprintf(stderr, "synclog %s: skipping %s offset %lld: not a dead-letter envelope\n",
				        cmd->name, name, (long long)r.offset);
				json_decref(env);
				continue;
			}
			if (group != NULL && strcmp(jstr(env, "group"), group) != 0) {
				json_decref(env);
				continue;
			}
			if (out->count == out->cap) {
				size_t cap = out->cap ? out->cap * 2 : 64;
				struct letter *nv = cap <= LETTERS_MAX ? realloc(out->v, cap * sizeof(*nv)) : NULL;

				if (nv == NULL) {
					json_decref(env);
					sl_fetcher_free(f);
					return cli_fail(cmd, "too many dead letters to read at once (more than %u)",
					                LETTERS_MAX);
				}
				out->v = nv;
				out->cap = cap;
			}
			struct letter *l = &out->v[out->count++];
			memset(l, 0, sizeof(*l));
			l->dlq_offset = r.offset;
			l->env = env;
			l->group = jstr(env, "group");
			l->target = jstr(env, "target");
			l->topic = jstr(env, "topic");
			l->partition = (uint32_t)json_integer_value(json_object_get(env, "partition"));
			l->offset = json_integer_value(json_object_get(env, "offset"));
		}
		if (rc < 0)
			break;
		rc = 0;
	}
	if (rc != 0) {
		rc = cli_fail(cmd, "%s", sl_fetcher_error(f));
		sl_fetcher_free(f);
		return rc;
	}
	sl_fetcher_free(f);
	return CLI_EXIT_OK;
}

static int args_topic_group(const struct cli_command *cmd, int argc, char **argv, const char **topic,
                            const char **group, int64_t *offset, bool *execute, enum sl_apply_values *values)
{
	const char *value;
	int rc;

	for (int i = 0; i < argc; i++) {
		if ((rc = cli_flag(argc, argv, &i, "--group", &value)) != 0) {
			if (rc < 0)
				return cli_usage_error(cmd, "--group needs a group name");
			*group = value;
		} else if (offset != NULL && (rc = cli_flag(argc, argv, &i, "--offset", &value)) != 0) {
			if (rc < 0 || cli_parse_i64(value, 0, INT64_MAX, offset) != 0)
				return cli_usage_error(cmd,
				                       "--offset needs the letter's offset in the dead-letter topic");
		} else if (values != NULL && (rc = cli_flag(argc, argv, &i, "--values", &value)) != 0) {
			if (rc > 0 && strcmp(value, "json") == 0)
				*values = SL_APPLY_VALUES_JSON;
			else if (rc > 0 && strcmp(value, "text") == 0)
				*values = SL_APPLY_VALUES_TEXT;
			else
				return cli_usage_error(cmd, "--values must be json or text");
		} else if (execute != NULL && strcmp(argv[i], "--execute") == 0) {
			*execute = true;
		} else if (execute != NULL && strcmp(argv[i], "--dry-run") == 0) {
			*execute = false;
		} else if (cli_operand(cmd, argv[i], topic) != 0) {
			return CLI_EXIT_USAGE;
		}
	}
	if (*topic == NULL)
		return cli_usage_error(cmd, "the TOPIC is required");
	return CLI_EXIT_OK;
}

static int dlq_list(const struct cli *cli, int argc, char **argv)
{
	const char *topic = NULL, *group = NULL;
	struct letters l = {0};
	int rc = args_topic_group(&list_command, argc, argv, &topic, &group, NULL, NULL, NULL);

	if (rc != CLI_EXIT_OK)
		return rc;
	rc = letters_read(cli, &list_command, topic, group, &l);
	if (rc != CLI_EXIT_OK)
		return rc;
	if (!cli->json)
		printf("%-10s %-20s %-10s %12s %-9s %-20s %s\n", "DLQ_OFFSET", "GROUP", "PARTITION", "OFFSET", "CLASS",
		       "KEY", "ERROR");
	for (size_t i = 0; i < l.count; i++) {
		json_t *env = l.v[i].env;

		if (cli->json) {
			json_t *row =
			        json_pack("{s:I,s:s,s:s,s:s,s:i,s:I,s:O,s:s,s:s}", "dlq_offset",
			                  (json_int_t)l.v[i].dlq_offset, "group", l.v[i].group, "target", l.v[i].target,
			                  "topic", l.v[i].topic, "partition", (int)l.v[i].partition, "offset",
			                  (json_int_t)l.v[i].offset, "key", json_object_get(env, "key"), "error_class",
			                  jstr(env, "error_class"), "error", jstr(env, "error"));
			char *text = row != NULL ? json_dumps(row, JSON_COMPACT) : NULL;

			if (text != NULL)
				puts(text);
			free(text);
			json_decref(row);
		} else {
			printf("%-10" PRId64 " %-20s %-10u %12" PRId64 " %-9s %-20s %s\n", l.v[i].dlq_offset,
			       l.v[i].group, l.v[i].partition, l.v[i].offset, jstr(env, "error_class"),
			       jstr(env, "key"), jstr(env, "error"));
		}
	}
	letters_free(&l);
	return CLI_EXIT_OK;
}

static int dlq_show(const struct cli *cli, int argc, char **argv)
{
	const char *topic = NULL, *group = NULL;
	struct letters l = {0};
	int rc = args_topic_group(&show_command, argc, argv, &topic, &group, NULL, NULL, NULL);

	if (rc != CLI_EXIT_OK)
		return rc;
	rc = letters_read(cli, &show_command, topic, group, &l);
	if (rc != CLI_EXIT_OK)
		return rc;
	for (size_t i = 0; i < l.count; i++) {
		json_object_set_new(l.v[i].env, "dlq_offset", json_integer(l.v[i].dlq_offset));
		char *text = json_dumps(l.v[i].env, JSON_COMPACT);

		if (text != NULL)
			puts(text);
		free(text);
	}
	letters_free(&l);
	return CLI_EXIT_OK;
}

/* ---- redrive ---- */

static int letter_cmp(const void *a, const void *b)
{
	const struct letter *x = a, *y = b;
	int r = strcmp(x->topic, y->topic);

	if (r != 0)
		return r;
	if (x->partition != y->partition)
		return x->partition < y->partition ? -1 : 1;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static uint8_t *field_copy(uint8_t **at, const uint8_t *p, int32_t len)
{
	uint8_t *out = *at;

	if (p == NULL || len < 0)
		return NULL;
	memcpy(*at, p, (size_t)len);
	*at += len;
	return out;
}

/* Keep a copy of the source record r in letter x. */
static int letter_take(struct letter *x, const struct sl_record *r)
{
	size_t bytes = (size_t)(r->key_len > 0 ? r->key_len : 0) + (size_t)(r->value_len > 0 ? r->value_len : 0) +
	               (size_t)(r->idempotency_key_len > 0 ? r->idempotency_key_len : 0) + 1;
	uint8_t *at;

	x->mem = at = malloc(bytes);
	if (at == NULL)
		return -ENOMEM;
	x->rec = *r;
	x->rec.key = field_copy(&at, r->key, r->key_len);
	x->rec.value = field_copy(&at, r->value, r->value_len);
	x->rec.idempotency_key = field_copy(&at, r->idempotency_key, r->idempotency_key_len);
	return 0;
}

/* Read the source record of every letter (sorted by topic, partition, offset): one fetcher per partition, from its
 * first letter's offset to its last. A record retention removed is marked gone. */
static int sources_read(const struct cli *cli, struct letters *l)
{
	for (size_t i = 0; i < l->count;) {
		size_t j = i;
		char err[SL_ERROR_BYTES];
		struct sl_fetcher_options o;
		struct sl_fetcher *f;
		int rc;

		while (j < l->count && strcmp(l->v[j].topic, l->v[i].topic) == 0 &&
		       l->v[j].partition == l->v[i].partition)
			j++;
		sl_fetcher_options_init(&o);
		o.broker = cli->broker;
		o.security = &cli->security;
		o.kafka_config = &cli->kafka;
		o.client_id = "synclog-dlq";
		o.topic = l->v[i].topic;
		o.partition = (int32_t)l->v[i].partition;
		o.from = SL_FROM_OFFSET;
		o.from_offset = l->v[i].offset;
		o.stop_at_end = true;
		rc = sl_fetcher_new(&f, &o, err, sizeof(err));
		if (rc != 0)
			return cli_fail(&redrive_command, "%s", err);
		size_t k = i;
		while (k < j && !sl_fetcher_done(f)) {
			uint32_t partition;
			struct sl_record r;

			rc = sl_fetcher_fetch(f);
			if (rc == -EINTR && cli_interrupted())
				break;
			if (rc != 0 && rc != -EINTR) {
				rc = cli_fail(&redrive_command, "%s", sl_fetcher_error(f));
				sl_fetcher_free(f);
				return rc;
			}
			while (k < j && (rc = sl_fetcher_next(f, &partition, &r)) == 1) {
				while (k < j && l->v[k].offset < r.offset)
					l->v[k++].state = 2; /* removed by retention, or never there */
				/* Several letters may name one record (read again after an offset reset). */
				while (k < j && l->v[k].offset == r.offset) {
					if (letter_take(&l->v[k], &r) != 0) {
						sl_fetcher_free(f);
						return cli_fail(&redrive_command, "out of memory");
					}
					k++;
				}
			}
		}
		for (; k < j; k++)
			if (l->v[k].mem == NULL)
				l->v[k].state = 2;
		sl_fetcher_free(f);
		i = j;
	}
	return CLI_EXIT_OK;
}

/* The engine's source: the letters to redrive, handed out once, from the positions the target holds. */
struct redrive_source {
	struct letters *l;
	size_t at;
	const struct sl_apply_position *positions;
	uint32_t position_count;
	bool fetched;
};

static int rs_seek(void *ctx, const struct sl_apply_position *positions, uint32_t count)
{
	struct redrive_source *s = ctx;

	s->positions = positions;
	s->position_count = count;
	s->at = 0;
	s->fetched = false;
	return 0;
}

static int rs_fetch(void *ctx)
{
	((struct redrive_source *)ctx)->fetched = true;
	return 0;
}

static int64_t rs_position(const struct redrive_source *s, const struct letter *x)
{
	for (uint32_t i = 0; i < s->position_count; i++)
		if (s->positions[i].partition == x->partition && strcmp(s->positions[i].topic, x->topic) == 0)
			return s->positions[i].next_offset;
	return -1;
}

static int rs_next(void *ctx, struct sl_apply_record *out)
{
	struct redrive_source *s = ctx;

	while (s->fetched && s->at < s->l->count) {
		struct letter *x = &s->l->v[s->at++];

		if (x->state != 0 || x->offset < rs_position(s, x))
			continue;
		out->topic = x->topic;
		out->partition = x->partition;
		out->rec = x->rec;
		return 1;
	}
	return 0;
}

static bool rs_done(void *ctx)
{
	struct redrive_source *s = ctx;

	return s->fetched && s->at >= s->l->count;
}

static const char *rs_error(void *ctx)
{
	(void)ctx;
	return "";
}

/* A letter the target still rejects stays where it is: counted, not sent again. */
static int still_rejected_cb(const struct sl_apply_record *r, const char *error, bool transient, void *cb_arg)
{
	(void)transient;
	(*(uint64_t *)cb_arg)++;
	fprintf(stderr, "synclog dlq redrive: %s partition %u offset %lld is still rejected: %s\n", r->topic,
	        r->partition, (long long)r->rec.offset, error);
	return 0;
}

static const struct sl_apply_source_ops redrive_ops = {
        .seek = rs_seek, .fetch = rs_fetch, .next = rs_next, .done = rs_done, .error = rs_error};

/* Open a target as dead letters name it: sqlite:PATH, or sqlite:PATH?table=NAME for another table than the
 * default (tools/cli_apply.c). Returns 0 or a CLI exit code after saying why. */
static int target_open(const char *target, enum sl_apply_values values, struct sl_apply_sqlite **db_out)
{
	char path[4096], err[SL_ERROR_BYTES];
	const char *table = NULL;

	if (strncmp(target, "sqlite:", 7) != 0)
		return cli_fail(&redrive_command, "target '%s' is not one this tool can open (sqlite:PATH)", target);
	snprintf(path, sizeof(path), "%s", target + 7);
	char *q = strstr(path, "?table=");
	if (q != NULL) {
		*q = '\0';
		table = q + 7;
	}
	struct sl_apply_sqlite_options so = {.path = path, .values = values, .table = table};
	if (sl_apply_sqlite_open_table(db_out, &so, err, sizeof(err)) != 0)
		return cli_fail(&redrive_command, "%s", err);
	return 0;
}

static int redrive_apply(const struct cli *cli, const char *group, const char *target, enum sl_apply_values values,
                         struct letters *l)
{
	char rgroup[SL_GROUP_NAME_BYTES_MAX + 16], err[SL_ERROR_BYTES];
	struct sl_apply_sqlite *db;
	struct sl_apply_store store;
	struct redrive_source rs = {.l = l};
	struct sl_apply_source source = {&redrive_ops, &rs};
	struct sl_apply_options o;
	struct sl_apply_counters c;
	struct sl_apply *engine = NULL;
	uint64_t still = 0, redriven = 0;
	int rc;

	snprintf(rgroup, sizeof(rgroup), "%s" REDRIVE_SUFFIX, group);
	if (strlen(rgroup) > SL_GROUP_NAME_BYTES_MAX)
		return cli_fail(&redrive_command, "group '%s' is too long to keep redrive progress", group);
	if ((rc = target_open(target, values, &db)) != 0)
		return rc;
	sl_apply_sqlite_store(db, &store);
	sl_apply_options_init(&o);
	o.group = rgroup;
	o.dead_letter_cb = still_rejected_cb;
	o.dead_letter_cb_arg = &still;
	o.stop = cli_interrupted_flag();
	rc = sl_apply_new(&engine, &o, &store, &source, err, sizeof(err));
	if (rc == 0 && (rc = sl_apply_start(engine)) == 0) {
		for (size_t i = 0; i < l->count; i++)
			redriven += l->v[i].state == 0 && l->v[i].offset >= rs_position(&rs, &l->v[i]);
		while (!sl_apply_done(engine) && (rc = sl_apply_poll(engine)) >= 0)
			rc = 0;
	}
	if (rc != 0 && engine != NULL)
		snprintf(err, sizeof(err), "%s", sl_apply_error(engine));
	memset(&c, 0, sizeof(c));
	if (engine != NULL)
		sl_apply_counters_get(engine, &c);
	sl_apply_free(engine);
	sl_apply_sqlite_close(db);
	if (rc != 0)
		return cli_fail(&redrive_command, "redriving into %s: %s", target, err);
	uint64_t skipped = 0, gone = 0;
	for (size_t i = 0; i < l->count; i++) {
		skipped += l->v[i].state == 1;
		gone += l->v[i].state == 2;
	}
	if (cli->json)
		printf("{\"target\":\"%s\",\"redriven\":%llu,\"applied\":%llu,\"stale\":%llu,\"duplicate\":%llu,"
		       "\"deleted\":%llu,\"still_rejected\":%llu,\"skipped\":%llu,\"gone\":%llu}\n",
		       target, (unsigned long long)(redriven - still), (unsigned long long)c.applied,
		       (unsigned long long)c.stale, (unsigned long long)c.duplicate, (unsigned long long)c.deleted,
		       (unsigned long long)still, (unsigned long long)skipped, (unsigned long long)gone);
	else
		printf("redriven %llu applied %llu stale %llu duplicate %llu deleted %llu still_rejected %llu skipped "
		       "%llu gone %llu\n",
		       (unsigned long long)(redriven - still), (unsigned long long)c.applied,
		       (unsigned long long)c.stale, (unsigned long long)c.duplicate, (unsigned long long)c.deleted,
		       (unsigned long long)still, (unsigned long long)skipped, (unsigned long long)gone);
	return still > 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

/* The redrive positions the target holds (group G.redrive), to tell what was redriven already. */
static int positions_cb(const struct sl_apply_position *pos, const struct sl_apply_counters *totals, void *cb_arg)
{
	struct letters *l = cb_arg;

	(void)totals;
	for (size_t i = 0; i < l->count; i++)
		if (l->v[i].state == 0 && l->v[i].partition == pos->partition &&
		    strcmp(l->v[i].topic, pos->topic) == 0 && l->v[i].offset < pos->next_offset)
			l->v[i].state = 1;
	return 0;
}

static int mark_redriven(const char *group, const char *target, struct letters *l)
{
	char rgroup[SL_GROUP_NAME_BYTES_MAX + 16];
	struct sl_apply_sqlite *db;
	struct sl_apply_store store;
	int rc;

	if ((rc = target_open(target, SL_APPLY_VALUES_JSON, &db)) != 0)
		return rc;
	sl_apply_sqlite_store(db, &store);
	snprintf(rgroup, sizeof(rgroup), "%s" REDRIVE_SUFFIX, group);
	rc = store.ops->offsets_read(store.ctx, rgroup, positions_cb, l);
	if (rc != 0)
		rc = cli_fail(&redrive_command, "%s", store.ops->error(store.ctx));
	sl_apply_sqlite_close(db);
	return rc == 0 ? CLI_EXIT_OK : rc;
}

static int dlq_redrive(const struct cli *cli, int argc, char **argv)
{
	const char *topic = NULL, *group = NULL, *target;
	int64_t offset = -1;
	bool execute = false;
	enum sl_apply_values values = SL_APPLY_VALUES_JSON;
	struct letters l = {0};
	int rc = args_topic_group(&redrive_command, argc, argv, &topic, &group, &offset, &execute, &values);

	if (rc != CLI_EXIT_OK)
		return rc;
	if (group == NULL)
		return cli_usage_error(&redrive_command, "--group G is required: letters are redriven to G's target");
	rc = letters_read(cli, &redrive_command, topic, group, &l);
	if (rc != CLI_EXIT_OK)
		return rc;
	if (offset >= 0) {
		size_t n = 0;
		for (size_t i = 0; i < l.count; i++)
			if (l.v[i].dlq_offset == offset)
				l.v[n++] = l.v[i];
			else
				json_decref(l.v[i].env);
		l.count = n;
		if (n == 0) {
			letters_free(&l);
			return cli_fail(&redrive_command, "no dead letter of group %s at offset %lld", group,
			                (long long)offset);
		}
	}
	if (l.count == 0) {
		printf(cli->json ? "{\"redriven\":0}\n" : "no dead letters of group %s\n", group);
		letters_free(&l);
		return CLI_EXIT_OK;
	}
	target = l.v[0].target;
	for (size_t i = 1; i < l.count; i++) {
		if (strcmp(l.v[i].target, target) != 0) {
			rc = cli_fail(
			        &redrive_command,
			        "group %s's letters name two targets (%s and %s): redrive one at a time with --offset",
			        group, target, l.v[i].target);
			letters_free(&l);
			return rc;
		}
	}
	qsort(l.v, l.count, sizeof(*l.v), letter_cmp);
	rc = sources_read(cli, &l);
	if (rc == CLI_EXIT_OK)
		rc = mark_redriven(group, target, &l);
	if (rc == CLI_EXIT_OK && !execute) {
		static const char *const states[] = {"would-redrive", "redriven", "gone"};
		for (size_t i = 0; i < l.count; i++)
			printf("%" PRId64 " %u %" PRId64 " %s %s\n", l.v[i].dlq_offset, l.v[i].partition, l.v[i].offset,
			       jstr(l.v[i].env, "key"), states[l.v[i].state]);
		fprintf(stderr, "synclog dlq redrive: dry run into %s, nothing changed: add --execute to apply\n",
		        target);
	} else if (rc == CLI_EXIT_OK) {
		rc = redrive_apply(cli, group, target, values, &l);
	}
	letters_free(&l);
	return rc;
}

int cli_dlq(const struct cli *cli, int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
	        {"list", &list_command, dlq_list},
	        {"show", &show_command, dlq_show},
	        {"redrive", &redrive_command, dlq_redrive},
	};
	return cli_subcommand_run(&dlq_command, subs, (int)(sizeof(subs) / sizeof(subs[0])), cli, argc, argv);
}
