/* The broker side of the applier: a record source that is a member of the target's consumer group (so the broker
 * shows it, deals partitions among a target's appliers and tells it of offset resets), sought to the positions the
 * target store holds and committing them to the group afterwards with the target's counters (for lag, status and
 * metrics), and the dead-letter sink that writes poison records to TOPIC.dlq as JSON envelopes naming their target
 * (format in apply.h), made durable in batches. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/base/clock.h"
#include "consumer/sync/apply.h"
#include "consumer/client/client_impl.h"

/* A follower's long poll: how long a new record may wait to be seen when the topic is idle. */
#define FOLLOW_WAIT_MS   200
/* Records handed out per poll of the group consumer. */
#define POLL_RECORDS_MAX 4096

struct sl_apply_fetch_source {
	char topic[SL_TOPIC_NAME_BYTES_MAX + 1];
	char group[SL_GROUP_NAME_BYTES_MAX + 1];
	char target[512];
	char instance_id[64];
	bool follow;
	struct sl_consumer *c;
	struct sl_conn *admin; /* the topic's description, the offsets of a reset */
	uint32_t part_count;
	int64_t *earliest;  /* per partition: the log start when the source was created */
	int64_t *log_end;   /* per partition: the log end when the source was created */
	bool *lost_checked; /* per partition: its first seek compared the target's position with the log start */
	bool sought;        /* the first seek (the target's offsets as stored) was checked against log_end */
	bool reassigned;    /* the rebalance callback ran: the engine must seek again */
	bool closed;
	uint64_t lost; /* records removed by retention before the target applied them */
	struct sl_consumer_record *records;
	int n, at;
	int64_t reset_generation_reported;
	bool kafka_reset_checked; /* a Kafka cluster's reset marks were read (kafka_reset_poll) */
	struct sl_apply_position *reset_positions;
	int64_t *reset_offsets;
	uint32_t *reset_partitions;
	bool compact; /* the topic is compacted: its deletes go by the cleaner's lifecycle (tombstone_in_log) */
	struct sl_topic_partition_offset *commit_scratch;
	char error[SL_ERROR_BYTES];
};

/* ---- source ---- */

/* Partition count, log starts and log ends of the topic now, into s. Returns 0 or a negative errno with s->error
 * set. */
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
	size_t n = count ? count : 1;
	s->earliest = calloc(n, sizeof(*s->earliest));
	s->log_end = calloc(n, sizeof(*s->log_end));
	s->lost_checked = calloc(n, sizeof(*s->lost_checked));
	s->commit_scratch = calloc(n, sizeof(*s->commit_scratch));
	s->reset_positions = calloc(n, sizeof(*s->reset_positions));
	s->reset_offsets = calloc(n, sizeof(*s->reset_offsets));
	s->reset_partitions = calloc(n, sizeof(*s->reset_partitions));
	if (s->earliest == NULL || s->log_end == NULL || s->lost_checked == NULL || s->commit_scratch == NULL ||
	    s->reset_positions == NULL || s->reset_offsets == NULL || s->reset_partitions == NULL) {
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

static void rebalance_cb(struct sl_consumer *c, enum sl_consumer_change change,
                         const struct sl_consumer_partition *partitions, uint32_t count, void *cb_arg)
{
	struct sl_apply_fetch_source *s = cb_arg;

	(void)c;
	(void)change;
	(void)partitions;
	(void)count;
	/* The consumer starts gained partitions at the broker's commits; the target's positions are the ones that
	 * count, so the engine seeks again before anything is applied. */
	s->reassigned = true;
}

int sl_apply_fetch_source_new(struct sl_apply_fetch_source **out, const struct sl_apply_fetch_source_options *o,
                              char *err, size_t err_bytes)
{
	struct sl_apply_fetch_source *s;
	struct sl_consumer_options co;
	const char *topics[1];
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
	s->records = calloc(POLL_RECORDS_MAX, sizeof(*s->records));
	snprintf(s->topic, sizeof(s->topic), "%s", o->topic);
	snprintf(s->group, sizeof(s->group), "%s", o->group);
	snprintf(s->target, sizeof(s->target), "%s", o->target != NULL ? o->target : "");
	s->follow = o->follow;
	s->reset_generation_reported = -1;
	rc = s->records != NULL
	             ? sl_conn_new(&s->admin, o->broker, o->client_id != NULL ? o->client_id : "synclog-apply")
	             : -ENOMEM;
	if (rc == 0 && (rc = sl_conn_set_kafka_config(s->admin, o->kafka_config)) != 0)
		sl_conn_free(s->admin);
	if (rc != 0) {
		sl_error_set(err, err_bytes, "apply source: bad broker address '%s'", o->broker);
		free(s->records);
		free(s);
		return rc;
	}
	if (o->io_timeout_ms > 0)
		sl_conn_set_timeout(s->admin, o->io_timeout_ms);
	rc = sl_conn_set_security(s->admin, o->security);
	if (rc != 0) {
		sl_error_set(err, err_bytes, "apply source: %s", sl_conn_error(s->admin));
		sl_conn_free(s->admin);
		free(s->records);
		free(s);
		return rc;
	}
	rc = topic_read(s);
	if (rc != 0)
		sl_error_set(err, err_bytes, "%s", s->error);
	if (rc == 0) {
		/* A member of the group like any consumer: group describe shows it, and the broker deals the
		 * partitions among the appliers of one target. Commits are the engine's (its store's positions). */
		sl_consumer_options_init(&co);
		topics[0] = s->topic;
		co.broker = o->broker;
		co.security = o->security;
		co.client_id = o->client_id != NULL ? o->client_id : "synclog-apply";
		co.group = s->group;
		co.topics = topics;
		co.topic_count = 1;
		co.auto_commit = false;
		co.stop_at_end = !o->follow;
		co.max_wait_ms = FOLLOW_WAIT_MS;
		co.report_lost = false;
		co.kafka_config = o->kafka_config;
		if (o->io_timeout_ms > 0)
			co.io_timeout_ms = o->io_timeout_ms;
		co.rebalance_cb = rebalance_cb;
		co.rebalance_cb_arg = s;
		/* Static membership by target: an applier restarted after kill -9 replaces its dead predecessor at
		 * once instead of waiting for its session to expire while that one holds the partitions. */
		uint64_t h = 14695981039346656037ull;
		for (const char *t = s->target; *t != '\0'; t++)
			h = (h ^ (uint8_t)*t) * 1099511628211ull;
		snprintf(s->instance_id, sizeof(s->instance_id), "synclog-apply-%016llx", (unsigned long long)h);
		co.instance_id = s->target[0] != '\0' ? s->instance_id : NULL;
		rc = sl_consumer_subscribe(&s->c, &co, err, err_bytes);
	}
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
	sl_consumer_free(s->c);
	sl_conn_free(s->admin);
	free(s->earliest);
	free(s->log_end);
	free(s->lost_checked);
	free(s->commit_scratch);
	free(s->reset_positions);
	free(s->reset_offsets);
	free(s->reset_partitions);
	free(s->records);
	free(s);
}

int sl_apply_fetch_source_close(struct sl_apply_fetch_source *s, bool commit_nothing)
{
	int rc;

	if (s->closed)
		return 0;
	s->closed = true;
	/* Auto-commit is off: close commits nothing either way; it leaves so the partitions move at once. */
	rc = commit_nothing ? sl_consumer_leave(s->c) : sl_consumer_close(s->c);
	if (rc != 0)
		snprintf(s->error, sizeof(s->error), "%s", sl_consumer_error(s->c));
	return rc;
}

uint32_t sl_apply_fetch_source_partition_count(const struct sl_apply_fetch_source *s)
{
	return s->part_count;
}

uint64_t sl_apply_fetch_source_skipped(const struct sl_apply_fetch_source *s)
{
	struct sl_consumer_stats st;

	sl_consumer_stats_get(s->c, &st);
	return st.skipped;
}

uint64_t sl_apply_fetch_source_lost(const struct sl_apply_fetch_source *s)
{
	return s->lost;
}

static int64_t position_of(const struct sl_apply_position *positions, uint32_t count, const char *topic, uint32_t p)
{
	for (uint32_t i = 0; i < count; i++)
		if (positions[i].partition == p && strcmp(positions[i].topic, topic) == 0)
			return positions[i].next_offset;
	return -1;
}

static int src_seek(void *ctx, const struct sl_apply_position *positions, uint32_t count)
{
	struct sl_apply_fetch_source *s = ctx;
	uint32_t assigned = 0;
	const struct sl_consumer_partition *parts = sl_consumer_assignment(s->c, &assigned);

	s->reassigned = false;
	s->n = s->at = 0;
	for (uint32_t k = 0; k < assigned; k++) {
		uint32_t p = parts[k].partition;
		int64_t target = position_of(positions, count, s->topic, p);
		int64_t offset = target >= 0 ? target : p < s->part_count ? s->earliest[p] : 0;
		int rc;

		if (p < s->part_count && !s->sought && offset > s->log_end[p]) {
			snprintf(
			        s->error, sizeof(s->error),
			        "topic '%s' partition %u: the target has applied up to offset %lld but the log ends at "
			        "%lld: was the topic deleted and created again? Apply it into a new target",
			        s->topic, p, (long long)offset, (long long)s->log_end[p]);
			return -ERANGE;
		}
		if (p < s->part_count && !s->lost_checked[p]) {
			/* What retention removed before the target applied it: behind the log start, or everything
			 * before it for a target that never applied this partition. */
			int64_t lost = target >= 0 ? s->earliest[p] - target : s->earliest[p];

			s->lost_checked[p] = true;
			if (lost > 0) {
				s->lost += (uint64_t)lost;
				sl_consumer_add_lost(s->c, s->topic, p, lost);
			}
		}
		rc = sl_consumer_seek(s->c, s->topic, p, offset);
		if (rc != 0) {
			snprintf(s->error, sizeof(s->error), "topic '%s' partition %u: cannot seek to offset %lld: %s",
			         s->topic, p, (long long)offset, sl_consumer_error(s->c));
			return rc;
		}
	}
	s->sought = true;
	return 0;
}

static int src_fetch(void *ctx)
{
	struct sl_apply_fetch_source *s = ctx;
	int n;

	s->n = s->at = 0;
	if (s->reassigned)
		return SL_APPLY_SOURCE_RESEEK;
	n = sl_consumer_poll(s->c, FOLLOW_WAIT_MS, s->records, POLL_RECORDS_MAX);
	if (s->reassigned) {
		/* Partitions moved during the poll: its records may start anywhere; the engine seeks first. */
		return SL_APPLY_SOURCE_RESEEK;
	}
	if (n < 0) {
		if (n != -EINTR)
			snprintf(s->error, sizeof(s->error), "%s", sl_consumer_error(s->c));
		return n;
	}
	s->n = n;
	return 0;
}

static int src_next(void *ctx, struct sl_apply_record *out)
{
	struct sl_apply_fetch_source *s = ctx;

	if (s->at >= s->n)
		return 0;
	out->topic = s->topic;
	out->partition = s->records[s->at].partition;
	out->rec = s->records[s->at].record;
	s->at++;
	return 1;
}

static bool src_done(void *ctx)
{
	struct sl_apply_fetch_source *s = ctx;

	return s->at >= s->n && !s->reassigned && sl_consumer_done(s->c);
}

/* The positions of the partitions this member owns, committed as a member of the group with the target's running
 * counts: group describe shows the applier with its lag, and status and metrics its counters. A commit refused
 * because the group moved on (a rebalance) is not an error: the next poll joins again. */
static int src_commit(void *ctx, const struct sl_apply_position *positions, uint32_t count,
                      const struct sl_apply_counters *totals)
{
	struct sl_apply_fetch_source *s = ctx;
	struct sl_applier_info info;
	uint32_t n = 0;
	int rc;

	memset(&info, 0, sizeof(info));
	info.applied = totals->applied;
	info.stale = totals->stale;
	info.duplicate = totals->duplicate;
	info.deleted = totals->deleted;
	info.dead_lettered = totals->dead_lettered;
	snprintf(info.target, sizeof(info.target), "%s", s->target);
	sl_consumer_set_applier_info(s->c, &info);
	for (uint32_t i = 0; i < count; i++) {
		if (strcmp(positions[i].topic, s->topic) != 0 || positions[i].partition >= s->part_count ||
		    sl_consumer_position(s->c, s->topic, positions[i].partition) < 0)
			continue; /* not this member's */
		s->commit_scratch[n++] =
		        (struct sl_topic_partition_offset){s->topic, positions[i].partition, positions[i].next_offset};
	}
	if (n == 0)
		return 0;
	rc = sl_consumer_commit_offsets(s->c, s->commit_scratch, n);
	if (rc == -ESTALE || rc == -EIDRM)
		return 0;
	if (rc != 0)
		snprintf(s->error, sizeof(s->error), "%s", sl_consumer_error(s->c));
	return rc;
}

/* On a Kafka cluster, which has no reset generation: the newest reset mark (SL_KAFKA_RESET_MARK) among the group's
 * commits of the topic, read once, at start. Kafka refuses an operator's commit while the group has a member, so
 * a reset can only happen before this applier joined. Returns 1 with the reset's offsets, 0 for none. */
static int kafka_reset_poll(struct sl_apply_fetch_source *s, int64_t *generation_out, uint32_t *count_out)
{
	struct sl_committed *got;
	int64_t gen = 0;
	uint32_t n = 0;
	int rc;

	if (s->kafka_reset_checked || s->part_count == 0)
		return 0;
	s->kafka_reset_checked = true;
	got = calloc(s->part_count, sizeof(*got));
	if (got == NULL)
		return -ENOMEM;
	for (uint32_t p = 0; p < s->part_count; p++)
		s->reset_partitions[p] = p;
	rc = sl_group_committed_get(s->admin, s->group, s->topic, s->reset_partitions, s->part_count, got);
	if (rc != 0) {
		snprintf(s->error, sizeof(s->error), "reading the group's commits for an offset reset: %s",
		         sl_conn_error(s->admin));
		free(got);
		return rc;
	}
	for (uint32_t p = 0; p < s->part_count; p++) {
		const size_t len = strlen(SL_KAFKA_RESET_MARK);
		long long at;

		if (got[p].offset < 0 || strncmp(got[p].metadata, SL_KAFKA_RESET_MARK, len) != 0 ||
		    sscanf(got[p].metadata + len, "%lld", &at) != 1)
			continue;
		if (at > gen)
			gen = at;
		s->reset_positions[n++] = (struct sl_apply_position){s->topic, p, got[p].offset};
	}
	free(got);
	if (gen <= 0)
		return 0;
	*generation_out = gen;
	*count_out = n;
	return 1;
}

static int src_reset_poll(void *ctx, int64_t *generation_out, const struct sl_apply_position **positions_out,
                          uint32_t *count_out)
{
	struct sl_apply_fetch_source *s = ctx;
	int64_t gen = sl_consumer_reset_generation(s->c);
	uint32_t n = 0;
	int rc;

	if (sl_conn_is_kafka(s->admin)) {
		*positions_out = s->reset_positions;
		return kafka_reset_poll(s, generation_out, count_out);
	}
	if (gen == s->reset_generation_reported)
		return 0;
	for (uint32_t p = 0; p < s->part_count; p++)
		s->reset_partitions[p] = p;
	rc = s->part_count > 0 ? sl_group_offsets_fetch(s->admin, s->group, s->topic, s->reset_partitions,
	                                                s->part_count, s->reset_offsets, NULL)
	                       : 0;
	if (rc != 0) {
		snprintf(s->error, sizeof(s->error), "reading the offsets of reset %lld: %s", (long long)gen,
		         sl_conn_error(s->admin));
		return rc;
	}
	for (uint32_t p = 0; p < s->part_count; p++)
		if (s->reset_offsets[p] >= 0)
			s->reset_positions[n++] = (struct sl_apply_position){s->topic, p, s->reset_offsets[p]};
	s->reset_generation_reported = gen;
	*generation_out = gen;
	*positions_out = s->reset_positions;
	*count_out = n;
	return 1;
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
        .reset_poll = src_reset_poll,
};

void sl_apply_fetch_source_get(struct sl_apply_fetch_source *s, struct sl_apply_source *out)
{
	out->ops = &fetch_source_ops;
	out->ctx = s;
}

/* ---- dead letters ---- */

/* A dead letter is one record; its envelope holds the original value, escaped at most 6 bytes per byte. A value
 * that does not fit is left out of the envelope (it stays at its offset in the source topic). */
#define DLQ_BATCH_BYTES_MAX   (4u << 20)
/* Dead letters are sent as they come and made durable together by the engine's flush before its commit: batches
 * of up to this many, so thousands of poison records cost a few produce requests, not one fsync each. */
#define DLQ_BATCH_RECORDS_MAX 4096

struct sl_apply_dlq {
	char topic[SL_TOPIC_NAME_BYTES_MAX + 1];
	char group[SL_GROUP_NAME_BYTES_MAX + 1];
	char target[512];
	struct sl_producer *p;
	int status; /* the first failure since the last flush, 0 when none */
	char error[SL_ERROR_BYTES];
};

static void dlq_delivered_cb(void *opaque, const struct sl_delivery *d, void *cb_arg)
{
	struct sl_apply_dlq *q = cb_arg;

	(void)opaque;
	if (d->status != 0 && q->status == 0) {
		q->status = d->status;
		snprintf(q->error, sizeof(q->error), "%s", d->error);
	}
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
                     const struct sl_kafka_config *kafka_config, const char *topic, const char *group,
                     const char *target, char *err, size_t err_bytes)
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
	snprintf(q->group, sizeof(q->group), "%s", group != NULL ? group : "");
	snprintf(q->target, sizeof(q->target), "%s", target != NULL ? target : "");
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
	/* The engine's flush closes the batch; lingering only saves requests between two flushes. */
	o.linger_ms = 1000;
	o.batch_bytes_max = DLQ_BATCH_BYTES_MAX;
	o.batch_records_max = DLQ_BATCH_RECORDS_MAX;
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
static char *envelope(const struct sl_apply_dlq *q, const struct sl_apply_record *r, const char *error, bool transient,
                      bool with_value, int64_t now_ms, size_t *len_out)
{
	const struct sl_record *rec = &r->rec;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return NULL;
	fputs("{\"error\":", f);
	sl_json_print_string(f, error, strlen(error));
	fprintf(f, ",\"error_class\":\"%s\",\"group\":", transient ? "transient" : "permanent");
	sl_json_print_string(f, q->group, strlen(q->group));
	fputs(",\"target\":", f);
	sl_json_print_string(f, q->target, strlen(q->target));
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

int sl_apply_dlq_send(const struct sl_apply_record *r, const char *error, bool transient, void *cb_arg)
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
		char *env = envelope(q, r, error, transient, with_value, dl.timestamp_ms, &len);

		if (env == NULL) {
			snprintf(q->error, sizeof(q->error), "out of memory for a dead letter");
			return -ENOMEM;
		}
		dl.value = (const uint8_t *)env;
		dl.value_len = (int32_t)len;
		while ((rc = sl_producer_send(q->p, 0, &dl, NULL)) == -EINTR)
			; /* waiting for room in a full buffer: a signal only interrupts one wait */
		free(env);
	}
	if (rc != 0)
		snprintf(q->error, sizeof(q->error), "%s: %s", q->topic, sl_producer_error(q->p));
	return rc;
}

int sl_apply_dlq_flush(void *cb_arg)
{
	struct sl_apply_dlq *q = cb_arg;
	int rc;

	/* The producer bounds the wait with its delivery timeout; a signal only interrupts one wait. */
	while ((rc = sl_producer_flush(q->p, -1)) == -EINTR)
		;
	if (q->status == 0 && sl_producer_pending(q->p) > 0) {
		q->status = -ETIMEDOUT;
		snprintf(q->error, sizeof(q->error), "%s: the broker did not acknowledge the dead letters", q->topic);
	}
	rc = q->status;
	q->status = 0;
	return rc;
}
