/* Kafka's admin requests translated into the handlers' own: CreateTopics and DeleteTopics (one handler request per
 * topic) and InitProducerId (an idempotent producer's id: the same ids, sequence and dedup rules as our client).
 * A topic config synclogd does not have is refused by name rather than accepted and ignored. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/kafka/kafka_impl.h"
#include "broker/topics.h"

/* ---- CreateTopics ---- */

struct create_msg {
	Synclog__Request request;
	Synclog__CreateTopicRequest create;
	Synclog__TopicConfig config;
};

struct create_topics_state {
	int16_t *local_error; /* per topic: found before the handler */
	const char **local_message;
};

static void create_part(struct sl_kafka_req *kr, uint32_t t, struct sl_req *sub)
{
	struct create_topics_state *st = kr->state;
	struct sl_kwrite *w = &kr->parts[t];
	int16_t err = st->local_error[t];
	const char *msg = st->local_message[t];
	if (sub && sub->resp.error != SYNCLOG__ERROR_CODE__NONE) {
		err = sl_kafka_error_of(sub->resp.error);
		msg = sub->resp.error_message;
	}
	if (msg)
		sl_kafka_log(kr, "topic '%.200s': %s", kr->rq.u.create_topics.topics[t].name, msg);
	sl_kwrite_str(w, kr->rq.u.create_topics.topics[t].name);
	sl_kwrite_i16(w, err);
	if (kr->rq.api_version >= 1)
		sl_kwrite_str(w, err ? msg : NULL);
}

static void create_done(struct sl_kafka_req *kr)
{
	sl_kafka_head_begin(kr, 0);
	if (kr->rq.api_version >= 2)
		sl_kwrite_i32(&kr->head, 0); /* throttle_time_ms */
	sl_kwrite_i32(&kr->head, (int32_t)kr->rq.u.create_topics.topic_count);
}

static int parse_i64(const char *s, int64_t min, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < min)
		return -EINVAL;
	*out = v;
	return 0;
}

/* The topic configs synclogd has; anything else is refused by name. */
static const char *apply_configs(struct sl_kafka_req *kr, const struct sl_kafka_create_topic *ct,
                                 Synclog__TopicConfig *tc, int16_t *err)
{
	*err = SL_KERR_INVALID_CONFIG;
	for (uint32_t i = 0; i < ct->config_count; i++) {
		const char *name = ct->configs[i].name, *value = ct->configs[i].value;
		if (value == NULL)
			continue; /* null: the default */
		if (strcmp(name, "cleanup.policy") == 0) {
			if (strcmp(value, "delete") == 0)
				tc->compact = 0;
			else if (strcmp(value, "compact") == 0 || strcmp(value, "compact,delete") == 0 ||
			         strcmp(value, "delete,compact") == 0)
				tc->compact = 1;
			else
				return "cleanup.policy must be delete, compact or compact,delete";
		} else if (strcmp(name, "retention.ms") == 0) {
			/* 0 would read as "unset" to the handler; Kafka's 0 (delete at once) has no use here. */
			if (parse_i64(value, -1, &tc->retention_ms) < 0 || tc->retention_ms == 0)
				return "retention.ms must be -1 (forever) or a positive number of milliseconds";
		} else if (strcmp(name, "retention.bytes") == 0) {
			if (parse_i64(value, -1, &tc->retention_bytes) < 0 || tc->retention_bytes == 0)
				return "retention.bytes must be -1 (no limit) or a positive number of bytes";
		} else if (strcmp(name, "segment.bytes") == 0) {
			/* The handler checks the range (a segment must hold the largest batch). */
			if (parse_i64(value, 1, &tc->segment_bytes) < 0)
				return "segment.bytes must be a positive number of bytes";
		} else if (strcmp(name, "segment.ms") == 0) {
			if (parse_i64(value, 1, &tc->segment_ms) < 0)
				return "segment.ms must be a positive number of milliseconds";
		} else if (strcmp(name, "delete.retention.ms") == 0) {
			if (parse_i64(value, 0, &tc->delete_retention_ms) < 0)
				return "delete.retention.ms must be a number of milliseconds";
			/* 0 in TopicConfig means the default: Kafka's 0 (drop tombstones at the first clean) is 1 ms.
			 */
			if (tc->delete_retention_ms == 0)
				tc->delete_retention_ms = 1;
		} else {
			char *msg = sl_kafka_arena_alloc(&kr->arena, 320);
			if (msg)
				snprintf(msg, 320,
				         "config '%.200s' is not supported by synclogd (topic configs: cleanup.policy, "
				         "retention.ms, retention.bytes, segment.bytes, segment.ms, "
				         "delete.retention.ms)",
				         name);
			return msg ? msg : "unsupported config";
		}
	}
	*err = SL_KERR_NONE;
	return NULL;
}

static void create_one(struct sl_kafka_req *kr, uint32_t t)
{
	const struct sl_kafka_create_topics *c = &kr->rq.u.create_topics;
	const struct sl_kafka_create_topic *ct = &c->topics[t];
	struct create_topics_state *st = kr->state;
	struct sl_req *sub = NULL;
	struct create_msg m;
	synclog__topic_config__init(&m.config);
	m.config.name = (char *)ct->name;
	m.config.retention_ms = -1;
	m.config.retention_bytes = -1;
	int16_t err = SL_KERR_NONE;
	const char *msg = NULL;
	if (ct->replication_factor != -1 && ct->replication_factor != 1) {
		err = SL_KERR_INVALID_REPLICATION_FACTOR;
		msg = "synclogd is a single broker: use replication factor 1 (or -1)";
	} else if (ct->assignment_count > 0) {
		err = SL_KERR_INVALID_REPLICA_ASSIGNMENT;
		msg = "synclogd is a single broker: give a partition count, not replica assignments";
	} else if (ct->num_partitions == 0 || ct->num_partitions < -1) {
		err = SL_KERR_INVALID_PARTITIONS;
		msg = "the partition count must be at least 1 (or -1 for the default)";
	} else {
		m.config.partitions =
		        ct->num_partitions == -1 ? SL_KAFKA_DEFAULT_PARTITIONS : (uint32_t)ct->num_partitions;
		msg = apply_configs(kr, ct, &m.config, &err);
	}
	if (err == SL_KERR_NONE && c->validate_only) {
		/* The checks the handler would make, without creating anything. */
		if (sl_topic_name_check(ct->name, 0) != 0) {
			err = SL_KERR_INVALID_TOPIC_EXCEPTION;
			msg = "invalid topic name: 1 to 200 of [A-Za-z0-9._-], not starting with '.' or '__'";
		} else if (sl_topics_find(&kr->srv->topics, ct->name) != NULL) {
			err = SL_KERR_TOPIC_ALREADY_EXISTS;
			msg = "topic already exists";
		} else if (m.config.partitions > SL_TOPIC_PARTITIONS_MAX) {
			err = SL_KERR_INVALID_PARTITIONS;
			msg = "too many partitions";
		}
	}
	st->local_error[t] = err;
	st->local_message[t] = msg;
	if (err != SL_KERR_NONE || c->validate_only || (sub = sl_kafka_sub_new(kr, t)) == NULL) {
		if (err == SL_KERR_NONE && !c->validate_only) {
			st->local_error[t] = SL_KERR_UNKNOWN_SERVER_ERROR;
			st->local_message[t] = "out of memory";
		}
		create_part(kr, t, NULL);
		return;
	}
	void *mem = sl_req_alloc(sub, sizeof(m));
	if (mem == NULL) {
		sl_kafka_sub_fail(sub);
		return;
	}
	memcpy(mem, &m, sizeof(m));
	struct create_msg *pm = mem;
	synclog__request__init(&pm->request);
	synclog__create_topic_request__init(&pm->create);
	pm->create.config = &pm->config;
	pm->request.body_case = SYNCLOG__REQUEST__BODY_CREATE_TOPIC;
	pm->request.create_topic = &pm->create;
	sub->msg = &pm->request;
	sl_kafka_sub_dispatch(sub);
}

void sl_kafka_create_topics(struct sl_kafka_req *kr)
{
	const struct sl_kafka_create_topics *c = &kr->rq.u.create_topics;
	if (sl_kafka_subs_check(kr, c->topic_count) < 0)
		return;
	struct create_topics_state *st = sl_kafka_arena_alloc(&kr->arena, sizeof(*st));
	if (st) {
		st->local_error = sl_kafka_arena_alloc(&kr->arena, (c->topic_count + 1) * sizeof(int16_t));
		st->local_message = sl_kafka_arena_alloc(&kr->arena, (c->topic_count + 1) * sizeof(char *));
	}
	if (st == NULL || st->local_error == NULL || st->local_message == NULL ||
	    sl_kafka_req_begin_subs(kr, c->topic_count) < 0) {
		sl_kafka_log(kr, "out of memory: closing the connection");
		sl_kafka_req_close_conn(kr);
		return;
	}
	kr->state = st;
	kr->part_cb = create_part;
	kr->done_cb = create_done;
	for (uint32_t t = 0; t < c->topic_count; t++)
		create_one(kr, t);
	sl_kafka_req_end_subs(kr);
}

/* ---- DeleteTopics ---- */

static void delete_part(struct sl_kafka_req *kr, uint32_t t, struct sl_req *sub)
{
	struct sl_kwrite *w = &kr->parts[t];
	int16_t err = sub ? sl_kafka_error_of(sub->resp.error) : SL_KERR_UNKNOWN_SERVER_ERROR;
	if (err)
		sl_kafka_log(kr, "topic '%.200s': %s", kr->rq.u.delete_topics.topics[t],
		             sub && sub->resp.error_message ? sub->resp.error_message : "out of memory");
	sl_kwrite_str(w, kr->rq.u.delete_topics.topics[t]);
	sl_kwrite_i16(w, err);
}

static void delete_done(struct sl_kafka_req *kr)
{
	sl_kafka_head_begin(kr, 0);
	if (kr->rq.api_version >= 1)
		sl_kwrite_i32(&kr->head, 0); /* throttle_time_ms */
	sl_kwrite_i32(&kr->head, (int32_t)kr->rq.u.delete_topics.topic_count);
}

void sl_kafka_delete_topics(struct sl_kafka_req *kr)
{
	const struct sl_kafka_delete_topics *d = &kr->rq.u.delete_topics;
	if (sl_kafka_subs_check(kr, d->topic_count) < 0)
		return;
	if (sl_kafka_req_begin_subs(kr, d->topic_count) < 0) {
		sl_kafka_req_close_conn(kr);
		return;
	}
	kr->part_cb = delete_part;
	kr->done_cb = delete_done;
	for (uint32_t t = 0; t < d->topic_count; t++) {
		struct sl_req *sub = sl_kafka_sub_new(kr, t);
		if (sub == NULL) {
			delete_part(kr, t, NULL);
			continue;
		}
		struct {
			Synclog__Request request;
			Synclog__DeleteTopicRequest del;
		} *m = sl_req_alloc(sub, sizeof(*m));
		if (m == NULL) {
			sl_kafka_sub_fail(sub);
			continue;
		}
		synclog__request__init(&m->request);
		synclog__delete_topic_request__init(&m->del);
		m->del.name = (char *)d->topics[t];
		m->request.body_case = SYNCLOG__REQUEST__BODY_DELETE_TOPIC;
		m->request.delete_topic = &m->del;
		sub->msg = &m->request;
		sl_kafka_sub_dispatch(sub);
	}
	sl_kafka_req_end_subs(kr);
}

/* ---- InitProducerId ---- */

static void init_producer_part(struct sl_kafka_req *kr, uint32_t index, struct sl_req *sub)
{
	const Synclog__InitProducerResponse *r =
	        sub && sub->resp.body_case == SYNCLOG__RESPONSE__BODY_INIT_PRODUCER ? sub->resp.init_producer : NULL;
	int16_t err = sub ? sl_kafka_error_of(sub->resp.error) : SL_KERR_COORDINATOR_NOT_AVAILABLE;
	if (err == SL_KERR_NONE && r == NULL)
		err = SL_KERR_UNKNOWN_SERVER_ERROR;
	if (err && sub)
		sl_kafka_log(kr, "%s", sub->resp.error_message ? sub->resp.error_message : "no producer id");
	struct sl_kwrite *w = &kr->parts[index];
	sl_kwrite_i32(w, 0); /* throttle_time_ms */
	sl_kwrite_i16(w, err);
	sl_kwrite_i64(w, err ? -1 : r->producer_id);
	sl_kwrite_i16(w, err ? -1 : (int16_t)r->producer_epoch);
}

static void init_producer_done(struct sl_kafka_req *kr)
{
	sl_kafka_head_begin(kr, 0);
}

void sl_kafka_init_producer_id(struct sl_kafka_req *kr)
{
	if (sl_kafka_req_begin_subs(kr, 1) < 0) {
		sl_kafka_req_close_conn(kr);
		return;
	}
	kr->part_cb = init_producer_part;
	kr->done_cb = init_producer_done;
	struct sl_req *sub = NULL;
	if (kr->rq.u.init_producer_id.transactional_id != NULL) {
		sl_kafka_log(kr,
		             "transactional id '%.200s' refused: synclogd has no transactions (idempotence works "
		             "without one)",
		             kr->rq.u.init_producer_id.transactional_id);
		init_producer_part(kr, 0, NULL);
	} else if ((sub = sl_kafka_sub_new(kr, 0)) == NULL) {
		init_producer_part(kr, 0, NULL);
	} else {
		struct {
			Synclog__Request request;
			Synclog__InitProducerRequest init;
		} *m = sl_req_alloc(sub, sizeof(*m));
		if (m == NULL) {
			sl_kafka_sub_fail(sub);
		} else {
			synclog__request__init(&m->request);
			synclog__init_producer_request__init(&m->init);
			m->request.body_case = SYNCLOG__REQUEST__BODY_INIT_PRODUCER;
			m->request.init_producer = &m->init;
			sub->msg = &m->request;
			sl_kafka_sub_dispatch(sub);
		}
	}
	sl_kafka_req_end_subs(kr);
}
