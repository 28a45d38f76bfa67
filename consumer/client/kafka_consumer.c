/* The group consumer on a Kafka cluster (transport.h): librdkafka's group consumer (the cluster's coordinator deals
 * the partitions, librdkafka heartbeats from its own threads) behind sl_consumer's calls, with the native
 * consumer's semantics: commits only of what poll handed out (at-least-once), commits the application may also
 * make itself (offsets it keeps elsewhere, with metadata), starting positions by the options for partitions the
 * group never committed, stop_at_end per partition as it was when assigned, and the rebalance callback with
 * REVOKED before ASSIGNED, where sl_consumer_seek may move a gained partition.
 *
 * A rebalance, as librdkafka reports it (served from inside our poll, on the caller's thread):
 *   revoke: commit the consumed positions (auto_commit), tell the callback which partitions went and whether
 *           their positions are committed, drop them and the records held for them, unassign;
 *   assign: read the group's commits of the gained partitions (rd_kafka_committed), resolve positions (the
 *           commit clamped to the log, else the start of the options), capture the ends (stop_at_end), tell the
 *           callback (which may seek), assign them at those positions.
 * Eager protocols (range, roundrobin: librdkafka's default) revoke everything and assign everything again;
 * cooperative-sticky, when chosen with --kafka-config partition.assignment.strategy, revokes and assigns only what
 * moves; both go through the same two steps.
 *
 * INVARIANTS
 *   1. parts[] is exactly the partitions librdkafka has assigned to us, each with the position of the next record
 *      to hand out, and committed the offset known committed (-1: none known).
 *   2. A record is handed out only for an assigned partition, at or past its position (and below its end with
 *      stop_at_end); the position then moves past it. So a revoked partition's stale records never leave.
 *   3. Only positions of assigned partitions are committed, and only through the group (rd_kafka_commit), which
 *      the coordinator refuses for a member of an old generation.
 *
 * Generation: librdkafka does not expose the group's generation; sl_consumer_generation counts the assignments
 * this member received instead (it grows at every rebalance, as a generation does). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/base/clock.h"
#include "consumer/client/kafka_impl.h"

/* Messages taken per poll at most, whatever records_max is: bounds what one poll holds. */
#define POLL_MESSAGES_MAX 4096

struct kcpart {
	const char *topic; /* one of topics[] */
	uint32_t partition;
	int64_t position;
	int64_t committed; /* -1: none known */
	int64_t end;       /* stop_at_end: the log end when assigned; else INT64_MAX */
	bool done;
	bool revoked; /* revoke: leaving parts[] */
};

/* parts[] sorted by topic and partition, rebuilt after each change of the assignment: part_find runs for every
 * message and every committed offset, and a scan of parts[] there cost assigned partitions x messages. */
struct kcpart_key {
	uint32_t topic_index; /* in topics[] */
	uint32_t partition;
	uint32_t index; /* in parts[] */
};

struct sl_kafka_consumer {
	struct sl_consumer_options o;
	struct sl_consumer *owner; /* what the rebalance callback is given */
	char group[SL_GROUP_NAME_BYTES_MAX + 1];
	char **topics;
	uint32_t topic_count;
	char *bootstrap;
	rd_kafka_t *rk;
	struct sl_kafka_wake wake;
	struct kcpart *parts;
	struct kcpart_key *keys; /* part_count entries, part_cap allocated */
	uint32_t part_count, part_cap;
	struct sl_consumer_partition *view; /* part_cap entries: callbacks and sl_consumer_assignment */
	rd_kafka_message_t **msgs;
	uint32_t msg_count;
	uint32_t
	        stashed; /* msgs[0..stashed): what came while subscribe waited for the assignment, for the first poll */
	uint8_t *headers;
	size_t headers_cap;
	int64_t next_commit_ms;
	int64_t down_since_ms;
	int32_t assignments;
	bool assigned_once; /* the first rebalance has come */
	bool in_callback;
	bool closed;
	int failure; /* a failure inside the rebalance callback, returned by the next poll */
	char member_id[SL_MEMBER_ID_BYTES_MAX];
	struct sl_consumer_stats stats;
	char error[SL_ERROR_BYTES];
};

static void set_error(struct sl_kafka_consumer *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct sl_kafka_consumer *k, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(k->error, sizeof(k->error), fmt, ap);
	va_end(ap);
}

static int io_timeout(const struct sl_kafka_consumer *k)
{
	return k->o.io_timeout_ms > INT32_MAX ? INT32_MAX : (int)k->o.io_timeout_ms;
}

/* Index in topics[] of the topic called name, or -1. The topics are the few the caller subscribed to. */
static int32_t topic_index(const struct sl_kafka_consumer *k, const char *name)
{
	for (uint32_t i = 0; i < k->topic_count; i++)
		if (strcmp(k->topics[i], name) == 0)
			return (int32_t)i;
	return -1;
}

static const char *topic_of(const struct sl_kafka_consumer *k, const char *name)
{
	int32_t t = topic_index(k, name);

	return t >= 0 ? k->topics[t] : NULL;
}

static int key_compare(const void *a, const void *b)
{
	const struct kcpart_key *x = a, *y = b;

	if (x->topic_index != y->topic_index)
		return x->topic_index < y->topic_index ? -1 : 1;
	if (x->partition != y->partition)
		return x->partition < y->partition ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* After parts[] changed: sort their keys again (a rebalance, not a message). */
static void keys_build(struct sl_kafka_consumer *k)
{
	for (uint32_t i = 0; i < k->part_count; i++) {
		uint32_t t = 0;

		while (t < k->topic_count && k->topics[t] != k->parts[i].topic)
			t++;
		SL_ASSERT(t < k->topic_count); /* parts[].topic is one of topics[] */
		k->keys[i] = (struct kcpart_key){.topic_index = t, .partition = k->parts[i].partition, .index = i};
	}
	if (k->part_count > 0)
		qsort(k->keys, k->part_count, sizeof(*k->keys), key_compare);
}

static struct kcpart *part_find(struct sl_kafka_consumer *k, const char *topic, int32_t partition)
{
	int32_t t = topic_index(k, topic);
	uint32_t lo = 0, hi = k->part_count;

	if (t < 0 || partition < 0)
		return NULL;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct kcpart_key *key = &k->keys[mid];

		if (key->topic_index < (uint32_t)t ||
		    (key->topic_index == (uint32_t)t && key->partition < (uint32_t)partition))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < k->part_count && k->keys[lo].topic_index == (uint32_t)t &&
	    k->keys[lo].partition == (uint32_t)partition)
		return &k->parts[k->keys[lo].index];
	return NULL;
}

static void messages_drop(struct sl_kafka_consumer *k)
{
	for (uint32_t i = 0; i < k->msg_count; i++)
		rd_kafka_message_destroy(k->msgs[i]);
	k->msg_count = 0;
	if (k->stashed > 0) {
		/* A rebalance before the first poll: what came for the old assignment goes (positions keep it). */
		for (uint32_t i = 0; i < k->stashed; i++)
			rd_kafka_message_destroy(k->msgs[i]);
		k->stashed = 0;
	}
}

static int parts_reserve(struct sl_kafka_consumer *k, uint32_t count)
{
	if (count <= k->part_cap)
		return 0;
	struct kcpart *parts = realloc(k->parts, count * sizeof(*parts));
	if (parts == NULL)
		return -ENOMEM;
	k->parts = parts;
	struct kcpart_key *keys = realloc(k->keys, count * sizeof(*keys));
	if (keys == NULL)
		return -ENOMEM;
	k->keys = keys;
	struct sl_consumer_partition *view = realloc(k->view, count * sizeof(*view));
	if (view == NULL)
		return -ENOMEM;
	k->view = view;
	k->part_cap = count;
	return 0;
}

/* ---- commits ---- */

/* Commit count offsets through the group and wait for the coordinator. Returns 0, -ESTALE (a new generation, or
 * a partition not ours), -EIDRM, or another negative errno; k's error says which. */
static int commit_send(struct sl_kafka_consumer *k, const struct sl_topic_partition_offset *offsets, uint32_t count)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)count);
	rd_kafka_resp_err_t e;
	int rc = 0;

	for (uint32_t i = 0; i < count; i++) {
		rd_kafka_topic_partition_t *tp =
		        rd_kafka_topic_partition_list_add(list, offsets[i].topic, (int32_t)offsets[i].partition);

		tp->offset = offsets[i].offset;
	}
	e = rd_kafka_commit(k->rk, list, 0);
	for (int i = 0; e == RD_KAFKA_RESP_ERR_NO_ERROR && i < list->cnt; i++)
		e = list->elems[i].err;
	rd_kafka_topic_partition_list_destroy(list);
	if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
		k->stats.commits++;
		for (uint32_t i = 0; i < count; i++) {
			struct kcpart *p = part_find(k, offsets[i].topic, (int32_t)offsets[i].partition);

			if (p != NULL)
				p->committed = offsets[i].offset;
		}
		return 0;
	}
	rc = sl_kafka_errno(e);
	if (rc == -ESTALE || rc == -EIDRM)
		k->stats.commits_refused++;
	else
		k->stats.commit_failures++;
	set_error(k, "group '%s': commit refused or failed: %s", k->group, rd_kafka_err2str(e));
	return rc;
}

static uint32_t consumed_gather(struct sl_kafka_consumer *k, struct sl_topic_partition_offset *out)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < k->part_count; i++)
		if (k->parts[i].position != k->parts[i].committed)
			out[n++] = (struct sl_topic_partition_offset){k->parts[i].topic, k->parts[i].partition,
			                                              k->parts[i].position};
	return n;
}

static int commit_consumed(struct sl_kafka_consumer *k)
{
	struct sl_topic_partition_offset *offs;
	uint32_t n;
	int rc;

	if (k->part_count == 0)
		return 0;
	offs = calloc(k->part_count, sizeof(*offs));
	if (offs == NULL)
		return -ENOMEM;
	n = consumed_gather(k, offs);
	rc = n > 0 ? commit_send(k, offs, n) : 0;
	free(offs);
	return rc;
}

/* ---- rebalances ---- */

static void callback(struct sl_kafka_consumer *k, enum sl_consumer_change change, uint32_t count)
{
	if (k->o.rebalance_cb == NULL)
		return;
	k->in_callback = true;
	k->o.rebalance_cb(k->owner, change, k->view, count, k->o.rebalance_cb_arg);
	k->in_callback = false;
}

static void revoke(struct sl_kafka_consumer *k, rd_kafka_topic_partition_list_t *list)
{
	uint32_t n = 0;

	if (k->o.auto_commit)
		(void)commit_consumed(k); /* a refusal is reported below: committed stays false */
	messages_drop(k);
	for (int i = 0; i < list->cnt; i++) {
		struct kcpart *p = part_find(k, list->elems[i].topic, list->elems[i].partition);

		if (p != NULL)
			k->view[n++] = (struct sl_consumer_partition){p->topic, p->partition, p->position,
			                                              p->position == p->committed};
	}
	callback(k, SL_CONSUMER_REVOKED, n);
	/* Marked first, removed after: a removal moves the last entry, which the keys would no longer find. */
	for (int i = 0; i < list->cnt; i++) {
		struct kcpart *p = part_find(k, list->elems[i].topic, list->elems[i].partition);

		if (p != NULL)
			p->revoked = true;
	}
	for (uint32_t i = 0; i < k->part_count;) {
		if (k->parts[i].revoked)
			k->parts[i] = k->parts[--k->part_count];
		else
			i++;
	}
	keys_build(k);
}

/* Where a gained partition starts when the group has no commit for it, by the options. */
static int start_resolve(struct sl_kafka_consumer *k, struct kcpart *p, int64_t earliest, int64_t end)
{
	int64_t at;

	switch (k->o.start) {
	case SL_FROM_LATEST:
		p->position = end;
		return 0;
	case SL_FROM_OFFSET:
		p->position = k->o.start_offset < earliest ? earliest
		              : k->o.start_offset > end    ? end
		                                           : k->o.start_offset;
		return 0;
	case SL_FROM_BEFORE_END:
		p->position = end - k->o.start_offset > earliest ? end - k->o.start_offset : earliest;
		return 0;
	case SL_FROM_TIMESTAMP: {
		int rc = sl_kafka_offsets_at(k->rk, p->topic, &p->partition, 1, k->o.start_timestamp_ms, io_timeout(k),
		                             &at, k->error, sizeof(k->error));
		p->position = rc == 0 ? at : earliest;
		return rc;
	}
	case SL_FROM_EARLIEST:
	default:
		p->position = earliest;
		return 0;
	}
}

static int assign(struct sl_kafka_consumer *k, rd_kafka_topic_partition_list_t *list)
{
	uint32_t first = k->part_count, n = 0;
	int rc = parts_reserve(k, k->part_count + (uint32_t)list->cnt);
	rd_kafka_resp_err_t e;

	if (rc != 0)
		return rc;
	/* The group's commits of what was gained, one request; asked again while the coordinator answers a partition
	 * with an error (a rebalance under way): starting such a partition from the options' start instead would read
	 * again what the group already consumed. */
	int64_t deadline = sl_clock_mono_ms() + k->o.io_timeout_ms;
	for (;;) {
		rd_kafka_resp_err_t pe = RD_KAFKA_RESP_ERR_NO_ERROR;

		e = rd_kafka_committed(k->rk, list, io_timeout(k));
		for (int i = 0; e == RD_KAFKA_RESP_ERR_NO_ERROR && i < list->cnt; i++)
			if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR)
				pe = list->elems[i].err;
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR && pe == RD_KAFKA_RESP_ERR_NO_ERROR)
			break;
		if (sl_clock_mono_ms() >= deadline) {
			set_error(k, "group '%s': reading its commits: %s", k->group,
			          rd_kafka_err2str(e != RD_KAFKA_RESP_ERR_NO_ERROR ? e : pe));
			return sl_kafka_errno(e != RD_KAFKA_RESP_ERR_NO_ERROR ? e : pe);
		}
		struct timespec ts = {0, 100 * 1000000};
		nanosleep(&ts, NULL);
	}
	for (int i = 0; rc == 0 && i < list->cnt; i++) {
		rd_kafka_topic_partition_t *tp = &list->elems[i];
		const char *topic = topic_of(k, tp->topic);
		struct kcpart *p;
		int64_t earliest, end;

		if (topic == NULL)
			continue; /* not a topic of ours */
		e = rd_kafka_query_watermark_offsets(k->rk, topic, tp->partition, &earliest, &end, io_timeout(k));
		if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
			set_error(k, "group '%s': the range of %s/%d: %s", k->group, topic, tp->partition,
			          rd_kafka_err2str(e));
			rc = sl_kafka_errno(e);
			break;
		}
		p = &k->parts[k->part_count++];
		*p = (struct kcpart){topic,
		                     (uint32_t)tp->partition,
		                     0,
		                     tp->offset >= 0 ? tp->offset : -1,
		                     k->o.stop_at_end ? end : INT64_MAX,
		                     false,
		                     false};
		if (p->committed >= 0) {
			p->position = p->committed;
			if (p->position < earliest) { /* retention removed what the group had not read */
				k->stats.skipped += (uint64_t)(earliest - p->position);
				p->position = earliest;
			}
			if (p->position > end)
				p->position = end;
		} else {
			rc = start_resolve(k, p, earliest, end);
		}
		n++;
	}
	if (rc != 0) {
		k->part_count = first;
		keys_build(k);
		return rc;
	}
	keys_build(k); /* the callback may seek a gained partition */
	for (uint32_t i = 0; i < n; i++) {
		const struct kcpart *p = &k->parts[first + i];

		k->view[i] = (struct sl_consumer_partition){p->topic, p->partition, p->position, true};
	}
	callback(k, SL_CONSUMER_ASSIGNED, n); /* may move positions: sl_kafka_consumer_seek */
	for (uint32_t i = first; i < k->part_count; i++) {
		struct kcpart *p = &k->parts[i];

		p->done = k->o.stop_at_end && p->position >= p->end;
		rd_kafka_topic_partition_list_find(list, p->topic, (int32_t)p->partition)->offset = p->position;
	}
	return 0;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *list, void *opaque)
{
	struct sl_kafka_consumer *k = opaque;
	bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;

	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		int rc = assign(k, list);

		if (rc != 0 && k->failure == 0)
			k->failure = rc;
		if (cooperative) {
			rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, list);

			if (e != NULL)
				rd_kafka_error_destroy(e);
		} else {
			rd_kafka_topic_partition_list_t *all = rd_kafka_topic_partition_list_new((int)k->part_count);

			for (uint32_t i = 0; i < k->part_count; i++)
				rd_kafka_topic_partition_list_add(all, k->parts[i].topic,
				                                  (int32_t)k->parts[i].partition)
				        ->offset = k->parts[i].position;
			rd_kafka_assign(rk, all);
			rd_kafka_topic_partition_list_destroy(all);
		}
		k->assignments++;
		if (k->assigned_once)
			k->stats.rebalances++;
		k->assigned_once = true;
		char *id = rd_kafka_memberid(rk);
		snprintf(k->member_id, sizeof(k->member_id), "%s", id != NULL ? id : "");
		rd_kafka_mem_free(rk, id);
	} else {
		revoke(k, list);
		if (cooperative) {
			rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, list);

			if (e != NULL)
				rd_kafka_error_destroy(e);
		} else {
			rd_kafka_assign(rk, NULL);
		}
	}
}

/* ---- subscribe, poll ---- */

void sl_kafka_consumer_free(struct sl_kafka_consumer *k)
{
	if (k == NULL)
		return;
	messages_drop(k);
	sl_kafka_wake_free(&k->wake);
	/* Without a close the member does not leave: the coordinator removes it after its session timeout, which is
	 * what a crash looks like (synclog.h). */
	if (k->rk != NULL)
		rd_kafka_destroy_flags(k->rk, k->closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	for (uint32_t i = 0; k->topics != NULL && i < k->topic_count; i++)
		free(k->topics[i]);
	free(k->topics);
	free(k->bootstrap);
	free(k->parts);
	free(k->keys);
	free(k->view);
	free(k->msgs);
	free(k->headers);
	free(k);
}

int sl_kafka_consumer_subscribe(struct sl_kafka_consumer **out, struct sl_consumer *owner,
                                const struct sl_consumer_options *o, char *err, size_t err_bytes)
{
	char session[16], wait[16], bytes[16], socket[16];
	struct sl_kafka_consumer *k;
	int rc;

	*out = NULL;
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		return -ENOMEM;
	k->o = *o;
	k->owner = owner;
	k->wake.fds[0] = k->wake.fds[1] = -1;
	k->down_since_ms = -1;
	snprintf(k->group, sizeof(k->group), "%s", o->group);
	k->o.group = k->group;
	k->o.broker = k->o.client_id = NULL;
	k->o.topics = NULL;
	k->o.kafka_config = NULL;
	k->o.security = NULL;
	k->topics = calloc(o->topic_count, sizeof(*k->topics));
	k->msgs = calloc(POLL_MESSAGES_MAX, sizeof(*k->msgs));
	k->headers = malloc(1);
	k->headers_cap = 1;
	rc = k->topics != NULL && k->msgs != NULL && k->headers != NULL ? 0 : -ENOMEM;
	for (uint32_t i = 0; rc == 0 && i < o->topic_count; i++) {
		if ((k->topics[i] = strdup(o->topics[i])) == NULL)
			rc = -ENOMEM;
		else
			k->topic_count++;
	}
	if (rc == 0)
		rc = sl_kafka_bootstrap_text(o->broker, &k->bootstrap, err, err_bytes);
	struct sl_kafka_config security = {0};
	if (rc == 0)
		rc = sl_kafka_config_secure(&security, o->security, NULL, err, err_bytes);
	if (rc != 0) {
		sl_kafka_consumer_free(k);
		return rc;
	}
	snprintf(session, sizeof(session), "%u", o->session_timeout_ms > 0 ? o->session_timeout_ms : 10000);
	snprintf(wait, sizeof(wait), "%u", o->max_wait_ms < 1 ? 1 : o->max_wait_ms);
	snprintf(bytes, sizeof(bytes), "%u", o->partition_bytes_max < 1024 ? 1024 : o->partition_bytes_max);
	snprintf(socket, sizeof(socket), "%u", o->io_timeout_ms < 10 ? 10 : o->io_timeout_ms);
	/* queued.max.messages.kbytes: fetched ahead at most 16 MiB, as the fetcher (kafka_fetcher.c). */
	const struct sl_kafka_pair ours[] = {
	        {"queued.max.messages.kbytes", "16384"}, {"group.id", k->group},
	        {"enable.auto.commit", "false"},         {"enable.auto.offset.store", "false"},
	        {"enable.partition.eof", "true"},        {"auto.offset.reset", "earliest"},
	        {"session.timeout.ms", session},         {"fetch.wait.max.ms", wait},
	        {"max.partition.fetch.bytes", bytes},    {"check.crcs", "true"},
	        {"socket.timeout.ms", socket},
	};
	rd_kafka_conf_t *conf =
	        sl_kafka_conf_new(k->bootstrap, o->client_id != NULL ? o->client_id : "synclog-consumer", ours,
	                          SL_ARRAY_COUNT(ours), &security, o->kafka_config, err, err_bytes);
	sl_kafka_config_free(&security);
	if (conf == NULL) {
		sl_kafka_consumer_free(k);
		return -EINVAL;
	}
	rd_kafka_conf_set_opaque(conf, k);
	rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
	rc = sl_kafka_handle_new(RD_KAFKA_CONSUMER, conf, &k->rk, &k->wake, err, err_bytes);
	/* Every topic must exist (the native consumer's -ENOENT), checked before joining. */
	for (uint32_t i = 0; rc == 0 && i < k->topic_count; i++) {
		uint32_t count;

		rc = sl_kafka_partition_count(k->rk, k->topics[i], io_timeout(k), &count, err, err_bytes);
	}
	if (rc == 0) {
		rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new((int)k->topic_count);

		for (uint32_t i = 0; i < k->topic_count; i++)
			rd_kafka_topic_partition_list_add(subs, k->topics[i], RD_KAFKA_PARTITION_UA);
		rd_kafka_resp_err_t e = rd_kafka_subscribe(k->rk, subs);
		rd_kafka_topic_partition_list_destroy(subs);
		if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
			sl_error_set(err, err_bytes, "subscribe group '%s': %s", k->group, rd_kafka_err2str(e));
			rc = sl_kafka_errno(e);
		}
	}
	/* Join before returning, as the native consumer does: serve the queue until the first assignment. */
	int64_t deadline = sl_clock_mono_ms() + k->o.io_timeout_ms;
	while (rc == 0 && !k->assigned_once) {
		/* The poll goes on after serving the assignment: a record may follow it, kept for the first poll. */
		rd_kafka_message_t *m = rd_kafka_consumer_poll(k->rk, 100);

		if (m != NULL &&
		    (m->err == RD_KAFKA_RESP_ERR__FATAL || m->err == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED ||
		     m->err == RD_KAFKA_RESP_ERR_INVALID_GROUP_ID)) {
			sl_error_set(err, err_bytes, "join group '%s': %s", k->group, rd_kafka_message_errstr(m));
			rc = m->err == RD_KAFKA_RESP_ERR__FATAL ? -EPROTO : sl_kafka_errno(m->err);
			rd_kafka_message_destroy(m);
		} else if (m != NULL) {
			k->msgs[k->stashed++] = m; /* at most one: the loop ends with the assignment */
		}
		if (rc == 0 && k->failure != 0) {
			rc = k->failure;
			sl_error_set(err, err_bytes, "%s", k->error);
		}
		if (rc == 0 && !k->assigned_once && sl_clock_mono_ms() >= deadline) {
			sl_error_set(err, err_bytes,
			             "join group '%s': no assignment from the Kafka cluster within %u ms", k->group,
			             k->o.io_timeout_ms);
			rc = -ETIMEDOUT;
		}
	}
	if (rc != 0) {
		sl_kafka_consumer_free(k);
		return rc;
	}
	k->next_commit_ms = sl_clock_mono_ms() + k->o.auto_commit_interval_ms;
	*out = k;
	return 0;
}

bool sl_kafka_consumer_done(const struct sl_kafka_consumer *k)
{
	if (!k->o.stop_at_end)
		return false;
	for (uint32_t i = 0; i < k->part_count; i++)
		if (!k->parts[i].done)
			return false;
	return true;
}

/* An event of the queue (an end, an error), not a record. Returns 0 or a failure poll cannot get past. */
static int event_handle(struct sl_kafka_consumer *k, const rd_kafka_message_t *m)
{
	struct kcpart *p = m->rkt != NULL ? part_find(k, rd_kafka_topic_name(m->rkt), m->partition) : NULL;

	switch (m->err) {
	case RD_KAFKA_RESP_ERR__PARTITION_EOF:
		if (p != NULL && k->o.stop_at_end && m->offset >= p->end)
			p->done = true;
		return 0;
	case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
	case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
		set_error(k, "group '%s': a topic is gone from the Kafka cluster: %s", k->group,
		          rd_kafka_message_errstr(m));
		return -ENOENT;
	case RD_KAFKA_RESP_ERR__FATAL:
	case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
		set_error(k, "group '%s': %s", k->group, rd_kafka_message_errstr(m));
		return m->err == RD_KAFKA_RESP_ERR__FATAL ? -EPROTO : sl_kafka_errno(m->err);
	case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
		if (k->down_since_ms < 0)
			k->down_since_ms = sl_clock_mono_ms();
		set_error(k, "group '%s': %s", k->group, rd_kafka_message_errstr(m));
		return 0;
	default:
		return 0; /* librdkafka retries the rest itself */
	}
}

int sl_kafka_consumer_poll(struct sl_kafka_consumer *k, int timeout_ms, struct sl_consumer_record *records,
                           uint32_t records_max)
{
	int64_t deadline = timeout_ms < 0 ? INT64_MAX : sl_clock_mono_ms() + timeout_ms;
	uint32_t max = records_max < POLL_MESSAGES_MAX ? records_max : POLL_MESSAGES_MAX, n = 0;
	size_t hbytes = 0;
	int rc = 0, got = 0;

	SL_ASSERT(!k->closed && !k->in_callback && records_max > 0);
	/* The records of the previous poll count as consumed now; a first poll takes what subscribe kept (one
	 * record at most, and max is at least one). */
	uint32_t stashed = k->stashed;
	SL_ASSERT(stashed <= 1 && (stashed == 0 || k->msg_count == 0));
	k->stashed = 0;
	if (stashed == 0)
		messages_drop(k);
	if (k->o.auto_commit && sl_clock_mono_ms() >= k->next_commit_ms) {
		(void)commit_consumed(k); /* counted in the stats; the next one tries again */
		k->next_commit_ms = sl_clock_mono_ms() + k->o.auto_commit_interval_ms;
	}
	for (;;) {
		got = (int)stashed +
		      (int)rd_kafka_consume_batch_queue(k->wake.queue, 0, k->msgs + stashed, max - stashed);
		stashed = 0;
		if (k->failure != 0) {
			rc = k->failure;
			k->failure = 0;
			for (int i = 0; i < got; i++)
				rd_kafka_message_destroy(k->msgs[i]);
			return rc;
		}
		if (got < 0) {
			set_error(k, "group '%s': %s", k->group, rd_kafka_err2str(rd_kafka_last_error()));
			return -EPROTO;
		}
		if (got > 0)
			break;
		if (k->o.stop_at_end && sl_kafka_consumer_done(k))
			return 0;
		int64_t left = deadline - sl_clock_mono_ms();
		if (left <= 0)
			return 0;
		rc = sl_kafka_wake_wait(&k->wake, left > INT32_MAX ? INT32_MAX : (int)left);
		if (rc != 0)
			return rc;
	}
	/* Keep the records worth handing out (invariant 2), handle the events. */
	for (int i = 0; i < got; i++) {
		rd_kafka_message_t *m = k->msgs[i];
		struct kcpart *p = m->rkt != NULL ? part_find(k, rd_kafka_topic_name(m->rkt), m->partition) : NULL;

		if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			if (rc == 0)
				rc = event_handle(k, m);
		} else if (p != NULL && !p->done && m->offset >= p->position) {
			if (k->o.stop_at_end && m->offset >= p->end) {
				p->done = true;
			} else {
				k->msgs[n++] = m;
				hbytes += sl_kafka_headers_bytes(m);
				continue;
			}
		}
		rd_kafka_message_destroy(m);
	}
	k->msg_count = n;
	if (rc == 0 && hbytes > k->headers_cap) {
		uint8_t *h = realloc(k->headers, hbytes);

		if (h == NULL)
			rc = -ENOMEM;
		else
			k->headers = h, k->headers_cap = hbytes;
	}
	if (rc == 0 && n == 0 && k->down_since_ms >= 0 &&
	    sl_clock_mono_ms() - k->down_since_ms > k->o.reconnect_timeout_ms) {
		set_error(k, "group '%s': no broker of the Kafka cluster reachable for %u ms", k->group,
		          k->o.reconnect_timeout_ms);
		rc = -ECONNREFUSED;
	}
	if (rc != 0) {
		messages_drop(k);
		return rc;
	}
	if (n > 0)
		k->down_since_ms = -1;
	uint8_t *hpos = k->headers, *hend = k->headers + k->headers_cap;
	for (uint32_t i = 0; i < n; i++) {
		rd_kafka_message_t *m = k->msgs[i];
		struct kcpart *p = part_find(k, rd_kafka_topic_name(m->rkt), m->partition);
		const char *why = NULL;

		if (sl_kafka_message_record(m, &records[i].record, &hpos, hend, &why) != 0) {
			set_error(k, "group '%s': %s/%d offset %lld: %s", k->group, p->topic, m->partition,
			          (long long)m->offset, why != NULL ? why : "malformed record");
			messages_drop(k);
			return -EBADMSG;
		}
		records[i].topic = p->topic;
		records[i].partition = p->partition;
		p->position = m->offset + 1;
		if (k->o.stop_at_end && p->position >= p->end)
			p->done = true;
	}
	k->stats.records += n;
	return (int)n;
}

int sl_kafka_consumer_commit_offsets(struct sl_kafka_consumer *k, const struct sl_topic_partition_offset *offsets,
                                     uint32_t count)
{
	SL_ASSERT(!k->closed && !k->in_callback);
	for (uint32_t i = 0; i < count; i++) {
		if (offsets[i].offset < 0) {
			set_error(k, "commit of %s/%u: offset %lld is negative", offsets[i].topic, offsets[i].partition,
			          (long long)offsets[i].offset);
			return -EINVAL;
		}
		if (part_find(k, offsets[i].topic, (int32_t)offsets[i].partition) == NULL) {
			set_error(k,
			          "commit of %s/%u refused: the partition is not assigned to member %s of group '%s'",
			          offsets[i].topic, offsets[i].partition, k->member_id, k->group);
			k->stats.commits_refused++;
			return -ESTALE;
		}
	}
	return count > 0 ? commit_send(k, offsets, count) : 0;
}

int sl_kafka_consumer_commit_consumed(struct sl_kafka_consumer *k)
{
	SL_ASSERT(!k->closed && !k->in_callback);
	return commit_consumed(k);
}

int sl_kafka_consumer_seek(struct sl_kafka_consumer *k, const char *topic, uint32_t partition, int64_t offset)
{
	struct kcpart *p = part_find(k, topic, (int32_t)partition);

	SL_ASSERT(!k->closed);
	if (p == NULL) {
		set_error(k, "seek %s/%u: the partition is not assigned to this member", topic, partition);
		return -ESTALE;
	}
	if (offset < 0) {
		set_error(k, "seek %s/%u: offset %lld is negative", topic, partition, (long long)offset);
		return -EINVAL;
	}
	p->position = offset;
	p->done = k->o.stop_at_end && offset >= p->end;
	if (k->in_callback)
		return 0; /* an assignment being made: it is assigned at this position */
	messages_drop(k);
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(list, p->topic, (int32_t)partition)->offset = offset;
	rd_kafka_error_t *e = rd_kafka_seek_partitions(k->rk, list, io_timeout(k));
	int rc = 0;
	if (e != NULL || list->elems[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		set_error(k, "seek %s/%u: %s", topic, partition,
		          e != NULL ? rd_kafka_error_string(e) : rd_kafka_err2str(list->elems[0].err));
		rc = e != NULL ? sl_kafka_errno(rd_kafka_error_code(e)) : sl_kafka_errno(list->elems[0].err);
		if (e != NULL)
			rd_kafka_error_destroy(e);
	}
	rd_kafka_topic_partition_list_destroy(list);
	return rc;
}

int64_t sl_kafka_consumer_position(const struct sl_kafka_consumer *k, const char *topic, uint32_t partition)
{
	for (uint32_t i = 0; i < k->part_count; i++)
		if (k->parts[i].partition == partition && strcmp(k->parts[i].topic, topic) == 0)
			return k->parts[i].position;
	return -1;
}

const struct sl_consumer_partition *sl_kafka_consumer_assignment(struct sl_kafka_consumer *k, uint32_t *count_out)
{
	for (uint32_t i = 0; i < k->part_count; i++)
		k->view[i] =
		        (struct sl_consumer_partition){k->parts[i].topic, k->parts[i].partition, k->parts[i].position,
		                                       k->parts[i].position == k->parts[i].committed};
	*count_out = k->part_count;
	return k->view;
}

const char *sl_kafka_consumer_member_id(const struct sl_kafka_consumer *k)
{
	return k->member_id;
}

int32_t sl_kafka_consumer_generation(const struct sl_kafka_consumer *k)
{
	return k->assignments;
}

void sl_kafka_consumer_stats_get(const struct sl_kafka_consumer *k, struct sl_consumer_stats *out)
{
	*out = k->stats;
}

const char *sl_kafka_consumer_error(const struct sl_kafka_consumer *k)
{
	return k->error;
}

/* Close, committing the consumed positions when auto_commit (close) or nothing at all (leave). */
static int consumer_end(struct sl_kafka_consumer *k, bool commit)
{
	int rc = 0;

	SL_ASSERT(!k->closed && !k->in_callback);
	if (commit && k->o.auto_commit)
		rc = commit_consumed(k);
	else
		k->o.auto_commit = false; /* the revoke callback inside rd_kafka_consumer_close commits nothing */
	messages_drop(k);
	/* Leaves the group (the revoke callback runs from inside it, after everything was committed). */
	rd_kafka_resp_err_t e = rd_kafka_consumer_close(k->rk);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR && rc == 0) {
		set_error(k, "leave group '%s': %s", k->group, rd_kafka_err2str(e));
		rc = sl_kafka_errno(e);
	}
	k->closed = true;
	return rc;
}

int sl_kafka_consumer_close(struct sl_kafka_consumer *k)
{
	return consumer_end(k, true);
}

int sl_kafka_consumer_leave(struct sl_kafka_consumer *k)
{
	return consumer_end(k, false);
}
