/* The broker side of the applier: a record source over the fetcher, sought to the positions the target store
 * holds and committing them to the group afterwards (for lag), and the dead-letter sink that writes poison records
 * to TOPIC.dlq as JSON envelopes (format in apply.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/base/clock.h"
#include "consumer/sync/apply.h"
#include "consumer/client/client_impl.h"

/* A follower's long poll: how long a new record may wait to be seen when the topic is idle. */
#define FOLLOW_WAIT_MS 200

struct sl_apply_fetch_source {
	char topic[SL_TOPIC_NAME_BYTES_MAX + 1];
	char group[SL_GROUP_NAME_BYTES_MAX + 1];
	bool follow;
	struct sl_fetcher *f;
	struct sl_conn *admin; /* the topic's description, and the commits */
	uint32_t part_count;
	int64_t *earliest; /* per partition: the log start when the source was created */
	int64_t *log_end;  /* per partition: the log end when the source was created */
	bool sought;       /* the first seek (the target's offsets as stored) was checked against log_end */
	bool compact;      /* the topic is compacted: its deletes go by the cleaner's lifecycle (tombstone_in_log) */
	struct sl_topic_partition_offset *commit_scratch;
	char error[SL_ERROR_BYTES];
};

/* ---- source ---- */

/* Partition count, log starts and log ends of the topic now, into s. Returns 0 or a negative errno with s->error
 * set. The fetcher is created afterwards, so it reads no partition the count misses. */
static int topic_read(struct sl_apply_fetch_source *s)
{
	struct sl_topic_config config;
	struct sl_partition_info *infos = NULL;
	uint32_t count = 0;
	int rc = sl_topic_describe(s->admin, s->topic, &config, &infos, &count);

	if (rc != 0) {
		snprintf(s->error, sizeof(s->error), "%s", sl_conn_error(s->admin));
		return rc;
	}
	s->part_count = count;
	s->compact = config.compact;
	s->earliest = calloc(count ? count : 1, sizeof(*s->earliest));
	s->log_end = calloc(count ? count : 1, sizeof(*s->log_end));
	s->commit_scratch = calloc(count ? count : 1, sizeof(*s->commit_scratch));
	if (s->earliest == NULL || s->log_end == NULL || s->commit_scratch == NULL) {
		snprintf(s->error, sizeof(s->error), "apply source: out of memory for %u partitions", count);
		free(infos);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < count; i++) {
		SL_ASSERT(infos[i].partition == i); /* sorted by partition, numbered from 0 */
		s->earliest[i] = infos[i].earliest_offset;
		s->log_end[i] = infos[i].next_offset;
	}
	free(infos);
	return 0;
}

int sl_apply_fetch_source_new(struct sl_apply_fetch_source **out, const struct sl_apply_fetch_source_options *o,
                              char *err, size_t err_bytes)
{
	struct sl_apply_fetch_source *s;
	struct sl_fetcher_options fo;
	int rc;

	*out = NULL;
	if (o->topic == NULL || o->topic[0] == '\0' || strlen(o->topic) > SL_TOPIC_NAME_BYTES_MAX || o->group == NULL ||
	    o->group[0] == '\0' || strlen(o->group) > SL_GROUP_NAME_BYTES_MAX) {
		sl_error_set(err, err_bytes, "apply source: a topic and a group of 1 to 200 characters are required");
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	snprintf(s->topic, sizeof(s->topic), "%s", o->topic);
	snprintf(s->group, sizeof(s->group), "%s", o->group);
	s->follow = o->follow;
	sl_fetcher_options_init(&fo);
	fo.broker = o->broker;
	fo.security = o->security;
	fo.client_id = o->client_id != NULL ? o->client_id : "synclog-apply";
	fo.topic = s->topic;
	fo.from = SL_FROM_EARLIEST;
	fo.stop_at_end = !o->follow;
	fo.max_wait_ms = FOLLOW_WAIT_MS;
	fo.kafka_config = o->kafka_config;
	if (o->io_timeout_ms > 0)
		fo.io_timeout_ms = o->io_timeout_ms;
	rc = sl_conn_new(&s->admin, o->broker, fo.client_id);
	if (rc == 0 && (rc = sl_conn_set_kafka_config(s->admin, o->kafka_config)) != 0)
		sl_conn_free(s->admin);
	if (rc != 0) {
		sl_error_set(err, err_bytes, "apply source: bad broker address '%s'", o->broker);
		free(s);
		return rc;
	}
	if (o->io_timeout_ms > 0)
		sl_conn_set_timeout(s->admin, o->io_timeout_ms);
	rc = sl_conn_set_security(s->admin, o->security);
	if (rc != 0) {
		sl_error_set(err, err_bytes, "apply source: %s", sl_conn_error(s->admin));
		sl_conn_free(s->admin);
		free(s);
		return rc;
	}
	rc = topic_read(s);
	if (rc != 0)
		sl_error_set(err, err_bytes, "%s", s->error);
	if (rc == 0)
		rc = sl_fetcher_new(&s->f, &fo, err, err_bytes);
	if (rc != 0) {
		sl_apply_fetch_source_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void sl_apply_fetch_source_free(struct sl_apply_fetch_source *s)
{
	if (s == NULL)
		return;
	sl_fetcher_free(s->f);
	sl_conn_free(s->admin);
	free(s->earliest);
	free(s->log_end);
	free(s->commit_scratch);
	free(s);
}

uint32_t sl_apply_fetch_source_partition_count(const struct sl_apply_fetch_source *s)
{
	return s->part_count;
}

uint64_t sl_apply_fetch_source_skipped(const struct sl_apply_fetch_source *s)
{
	return sl_fetcher_skipped(s->f);
}

static int src_seek(void *ctx, const struct sl_apply_position *positions, uint32_t count)
{
	struct sl_apply_fetch_source *s = ctx;

	for (uint32_t p = 0; p < s->part_count; p++) {
		int64_t offset = s->earliest[p];
		int rc;

		for (uint32_t i = 0; i < count; i++)
			if (positions[i].partition == p && strcmp(positions[i].topic, s->topic) == 0)
				offset = positions[i].next_offset;
		if (!s->sought && offset > s->log_end[p]) {
			snprintf(
			        s->error, sizeof(s->error),
			        "topic '%s' partition %u: the target has applied up to offset %lld but the log ends at "
			        "%lld: was the topic deleted and created again? Apply it into a new target",
			        s->topic, p, (long long)offset, (long long)s->log_end[p]);
			return -ERANGE;
		}
		rc = sl_fetcher_seek(s->f, p, offset);
		if (rc != 0) {
			snprintf(s->error, sizeof(s->error), "topic '%s' partition %u: cannot seek to offset %lld",
			         s->topic, p, (long long)offset);
			return rc;
		}
	}
	s->sought = true;
	return 0;
}

static int src_fetch(void *ctx)
{
	struct sl_apply_fetch_source *s = ctx;
	int rc = sl_fetcher_fetch(s->f);

	if (rc == -ERANGE)
		snprintf(s->error, sizeof(s->error),
		         "%s; the target's offsets are past the log end: was the topic deleted and created again? "
		         "Apply into a new target",
		         sl_fetcher_error(s->f));
	else if (rc != 0 && rc != -EINTR)
		snprintf(s->error, sizeof(s->error), "%s", sl_fetcher_error(s->f));
	return rc;
}

static int src_next(void *ctx, struct sl_apply_record *out)
{
	struct sl_apply_fetch_source *s = ctx;
	int rc = sl_fetcher_next(s->f, &out->partition, &out->rec);

	if (rc < 0)
		snprintf(s->error, sizeof(s->error), "%s", sl_fetcher_error(s->f));
	out->topic = s->topic;
	return rc;
}

static bool src_done(void *ctx)
{
	return sl_fetcher_done(((struct sl_apply_fetch_source *)ctx)->f);
}

/* The applier is not a member of its group: it owns its partitions by owning the target, and a member killed
 * with -9 would hold partitions until its session expired. So the positions go to the broker as an operator's
 * commit, which the broker refuses (-EBUSY) while someone consumes as a member of the same group. */
static int src_commit(void *ctx, const struct sl_apply_position *positions, uint32_t count)
{
	struct sl_apply_fetch_source *s = ctx;
	uint32_t n = 0;
	int rc;

	for (uint32_t i = 0; i < count; i++) {
		if (strcmp(positions[i].topic, s->topic) != 0 || positions[i].partition >= s->part_count)
			continue;
		s->commit_scratch[n++] =
		        (struct sl_topic_partition_offset){s->topic, positions[i].partition, positions[i].next_offset};
	}
	if (n == 0)
		return 0;
	rc = sl_group_offsets_commit(s->admin, s->group, s->commit_scratch, n, false);
	if (rc != 0)
		snprintf(s->error, sizeof(s->error), "%s", sl_conn_error(s->admin));
	return rc;
}

static int src_tombstone_in_log(void *ctx, const char *topic, uint32_t partition, int64_t offset, bool *present_out)
{
	struct sl_apply_fetch_source *s = ctx;
	/* A topic that is not compacted keeps its deletes by retention alone: the target's rows go by time. */
	if (strcmp(topic, s->topic) != 0 || !s->compact)
		return -ENOTSUP;
	int rc = sl_delete_in_log(s->admin, topic, partition, offset, present_out);
	if (rc != 0)
		snprintf(s->error, sizeof(s->error), "%s", sl_conn_error(s->admin));
	return rc;
}

static const char *src_error(void *ctx)
{
	return ((struct sl_apply_fetch_source *)ctx)->error;
}

static const struct sl_apply_source_ops fetch_source_ops = {
        .seek = src_seek,
        .fetch = src_fetch,
        .next = src_next,
        .done = src_done,
        .commit = src_commit,
        .tombstone_in_log = src_tombstone_in_log,
        .error = src_error,
};

void sl_apply_fetch_source_get(struct sl_apply_fetch_source *s, struct sl_apply_source *out)
{
	out->ops = &fetch_source_ops;
	out->ctx = s;
}

/* ---- dead letters ---- */

/* A dead letter is one record; its envelope holds the original value, escaped at most 6 bytes per byte. A value
 * that does not fit is left out of the envelope (it stays at its offset in the source topic). */
#define DLQ_BATCH_BYTES_MAX (4u << 20)

struct sl_apply_dlq {
	char topic[SL_TOPIC_NAME_BYTES_MAX + 1];
	struct sl_producer *p;
	int status;
	char error[SL_ERROR_BYTES];
};

static void dlq_delivered_cb(void *opaque, const struct sl_delivery *d, void *cb_arg)
{
	struct sl_apply_dlq *q = cb_arg;

	(void)opaque;
	q->status = d->status;
	if (d->status != 0)
		snprintf(q->error, sizeof(q->error), "%s", d->error);
}

static bool dlq_exists(struct sl_conn *conn, const char *topic)
{
	struct sl_topic_config config;
	struct sl_partition_info *parts = NULL;
	uint32_t count;
	int rc = sl_topic_describe(conn, topic, &config, &parts, &count);

	free(parts);
	return rc == 0;
}

int sl_apply_dlq_new(struct sl_apply_dlq **out, const char *broker, const struct sl_security_options *security,
                     const struct sl_kafka_config *kafka_config, const char *topic, char *err, size_t err_bytes)
{
	struct sl_topic_config config = {.partitions = 1, .retention_ms = -1, .retention_bytes = -1};
	struct sl_producer_options o;
	struct sl_apply_dlq *q;
	struct sl_conn *conn;
	int rc;

	*out = NULL;
	if (strlen(topic) + strlen(SL_APPLY_DLQ_SUFFIX) > SL_TOPIC_NAME_BYTES_MAX) {
		sl_error_set(err, err_bytes,
		             "topic '%s' is too long to have a dead-letter topic '%s" SL_APPLY_DLQ_SUFFIX
		             "' (200 characters at most)",
		             topic, topic);
		return -EINVAL;
	}
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return -ENOMEM;
	snprintf(q->topic, sizeof(q->topic), "%s" SL_APPLY_DLQ_SUFFIX, topic);
	snprintf(config.name, sizeof(config.name), "%s", q->topic);
	rc = sl_conn_new(&conn, broker, "synclog-apply-dlq");
	if (rc == 0 && (rc = sl_conn_set_kafka_config(conn, kafka_config)) != 0)
		sl_conn_free(conn);
	if (rc == 0) {
		rc = sl_conn_set_security(conn, security);
		if (rc == 0)
			rc = sl_topic_create(conn, &config);
		if (rc == -EEXIST)
			rc = 0;
		if (rc == -EOPNOTSUPP && dlq_exists(conn, q->topic))
			rc = 0; /* a Kafka cluster that cannot create topics (no controller), where it was made before
			         */
		if (rc != 0)
			sl_error_set(err, err_bytes, "creating the dead-letter topic: %s", sl_conn_error(conn));
		sl_conn_free(conn);
	} else {
		sl_error_set(err, err_bytes, "dead-letter topic: bad broker address '%s'", broker);
	}
	if (rc != 0) {
		free(q);
		return rc;
	}
	sl_producer_options_init(&o);
	o.broker = broker;
	o.security = security;
	o.client_id = "synclog-apply-dlq";
	o.topic = q->topic;
	o.acks = SL_ACKS_FSYNC;
	o.linger_ms = 0;
	o.batch_bytes_max = DLQ_BATCH_BYTES_MAX;
	o.batch_records_max = 16;
	o.buffer_bytes_max = 2 * DLQ_BATCH_BYTES_MAX;
	o.delivery_cb = dlq_delivered_cb;
	o.delivery_cb_arg = q;
	o.kafka_config = kafka_config;
	rc = sl_producer_new(&q->p, &o, err, err_bytes);
	if (rc != 0) {
		free(q);
		return rc;
	}
	*out = q;
	return 0;
}

void sl_apply_dlq_free(struct sl_apply_dlq *q)
{
	if (q == NULL)
		return;
	sl_producer_free(q->p);
	free(q);
}

const char *sl_apply_dlq_topic(const struct sl_apply_dlq *q)
{
	return q->topic;
}

const char *sl_apply_dlq_error(const struct sl_apply_dlq *q)
{
	return q->error;
}

static void json_bytes_or_null(FILE *f, const uint8_t *p, int32_t len, bool as_value)
{
	if (p == NULL || len < 0)
		fputs("null", f);
	else if (as_value)
		sl_json_print_value(f, p, (size_t)len);
	else
		sl_json_print_string(f, p, (size_t)len);
}

/* The envelope of apply.h, in a buffer the caller frees. */
static char *envelope(const struct sl_apply_record *r, const char *error, bool with_value, int64_t now_ms,
                      size_t *len_out)
{
	const struct sl_record *rec = &r->rec;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return NULL;
	fputs("{\"error\":", f);
	sl_json_print_string(f, error, strlen(error));
	fputs(",\"topic\":", f);
	sl_json_print_string(f, r->topic, strlen(r->topic));
	fprintf(f, ",\"partition\":%u,\"offset\":%lld,\"timestamp_ms\":%lld,\"key\":", r->partition,
	        (long long)rec->offset, (long long)rec->timestamp_ms);
	json_bytes_or_null(f, rec->key, rec->key_len, false);
	if (with_value) {
		fputs(",\"value\":", f);
		json_bytes_or_null(f, rec->value, rec->value_len, true);
	} else {
		fprintf(f, ",\"value_omitted\":%d", rec->value_len);
	}
	fputs(",\"version\":", f);
	if (rec->version == SL_VERSION_NONE)
		fputs("null", f);
	else
		fprintf(f, "%lld", (long long)rec->version);
	fprintf(f, ",\"op\":\"%s\",\"origin\":\"%s\",\"idempotency_key\":", sl_op_name(rec->op),
	        sl_origin_name(rec->origin));
	json_bytes_or_null(f, rec->idempotency_key, rec->idempotency_key_len, false);
	fprintf(f, ",\"schema_version\":%d,\"dead_lettered_at_ms\":%lld}", rec->schema_version, (long long)now_ms);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	*len_out = len;
	return buf;
}

int sl_apply_dlq_send(const struct sl_apply_record *r, const char *error, void *cb_arg)
{
	struct sl_apply_dlq *q = cb_arg;
	struct sl_record dl = {
	        .timestamp_ms = sl_clock_wall_ms(),
	        .key = r->rec.key,
	        .key_len = r->rec.key_len,
	        .version = SL_VERSION_NONE,
	        .op = SL_OP_UPSERT,
	        .origin = r->rec.origin,
	};
	int rc = -EMSGSIZE;

	for (int with_value = 1; rc == -EMSGSIZE && with_value >= 0; with_value--) {
		size_t len;
		char *env = envelope(r, error, with_value, dl.timestamp_ms, &len);

		if (env == NULL) {
			snprintf(q->error, sizeof(q->error), "out of memory for a dead letter");
			return -ENOMEM;
		}
		dl.value = (const uint8_t *)env;
		dl.value_len = (int32_t)len;
		q->status = 1; /* not yet reported */
		rc = sl_producer_send(q->p, 0, &dl, NULL);
		free(env);
	}
	if (rc != 0) {
		snprintf(q->error, sizeof(q->error), "%s: %s", q->topic, sl_producer_error(q->p));
		return rc;
	}
	/* The producer bounds the wait with its delivery timeout; a signal only interrupts one wait. */
	while ((rc = sl_producer_flush(q->p, -1)) == -EINTR)
		;
	if (q->status != 0) {
		if (q->status == 1)
			snprintf(q->error, sizeof(q->error), "%s: the broker did not acknowledge the dead letter",
			         q->topic);
		return q->status == 1 ? -ETIMEDOUT : q->status;
	}
	return 0;
}
