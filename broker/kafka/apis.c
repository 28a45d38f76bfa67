/* The Kafka APIs of the listener, as a table from API key to translation, and the requests with no handler twin,
 * answered here from the shard's state: ApiVersions, Metadata, FindCoordinator, DescribeConfigs. This broker is
 * a cluster of one: broker 0, at the Kafka listener's own host and port, is the controller, the leader of every
 * partition (replicas and ISR [0]) and the coordinator of every group. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "broker/groups.h"
#include "broker/kafka/kafka_impl.h"
#include "broker/topics.h"

#define BROKER_ID                     0
/* The cluster id clients see (Metadata v2+): one broker, one cluster. */
#define CLUSTER_ID                    "synclog"
/* Metadata v8+: authorized operations not computed (Kafka's "not requested" value). */
#define AUTHORIZED_OPERATIONS_OMITTED INT32_MIN

typedef void (*api_fn)(struct sl_kafka_req *kr);

/* What the listener answers. A key with no entry is not served: ApiVersions does not list it, and a client
 * that sends it anyway has its connection closed with a line in the log, as Kafka does. */
static const api_fn apis[SL_KAFKA_API_KEY_COUNT] = {
        [SL_KAFKA_PRODUCE] = sl_kafka_produce,
        [SL_KAFKA_FETCH] = sl_kafka_fetch,
        [SL_KAFKA_LIST_OFFSETS] = sl_kafka_list_offsets,
        [SL_KAFKA_METADATA] = sl_kafka_metadata,
        [SL_KAFKA_OFFSET_COMMIT] = sl_kafka_offset_commit,
        [SL_KAFKA_OFFSET_FETCH] = sl_kafka_offset_fetch,
        [SL_KAFKA_FIND_COORDINATOR] = sl_kafka_find_coordinator,
        [SL_KAFKA_JOIN_GROUP] = sl_kafka_join_group,
        [SL_KAFKA_HEARTBEAT] = sl_kafka_heartbeat,
        [SL_KAFKA_LEAVE_GROUP] = sl_kafka_leave_group,
        [SL_KAFKA_SYNC_GROUP] = sl_kafka_sync_group,
        [SL_KAFKA_DESCRIBE_GROUPS] = sl_kafka_describe_groups,
        [SL_KAFKA_LIST_GROUPS] = sl_kafka_list_groups,
        [SL_KAFKA_API_VERSIONS] = sl_kafka_api_versions,
        [SL_KAFKA_CREATE_TOPICS] = sl_kafka_create_topics,
        [SL_KAFKA_DELETE_TOPICS] = sl_kafka_delete_topics,
        [SL_KAFKA_INIT_PRODUCER_ID] = sl_kafka_init_producer_id,
        [SL_KAFKA_DESCRIBE_CONFIGS] = sl_kafka_describe_configs,
        [SL_KAFKA_SASL_HANDSHAKE] = sl_kafka_sasl_handshake,
        [SL_KAFKA_SASL_AUTHENTICATE] = sl_kafka_sasl_authenticate,
};

int sl_kafka_api_served(int16_t key, int16_t *min_out, int16_t *max_out)
{
	if (key < 0 || key >= SL_KAFKA_API_KEY_COUNT || apis[key] == NULL || !sl_kafka_api_ranges[key].decodable)
		return 0;
	*min_out = sl_kafka_api_ranges[key].min;
	*max_out = sl_kafka_api_ranges[key].max;
	return 1;
}

void sl_kafka_serve(struct sl_kafka_req *kr)
{
	int16_t min, max;
	if (!sl_kafka_api_served(kr->rq.api_key, &min, &max)) {
		sl_kafka_log(kr, "API not served (ApiVersions lists what is): closing the connection");
		sl_kafka_req_close_conn(kr);
		return;
	}
	apis[kr->rq.api_key](kr);
}

/* ---- ApiVersions ---- */

void sl_kafka_api_versions(struct sl_kafka_req *kr)
{
	int16_t v = kr->rq.api_version;
	int supported = v >= 0 && v <= sl_kafka_api_ranges[SL_KAFKA_API_VERSIONS].max;
	/* KIP-511: a version the broker does not know is answered in the v0 layout, with error 35 and the ranges,
	 * so the client can retry with one it shares. The response header is v0 at every version. */
	int flexible = supported && v >= 3;
	struct sl_kwrite *w = &kr->head;
	sl_kafka_head_begin(kr, 0);
	sl_kwrite_i16(w, supported ? SL_KERR_NONE : SL_KERR_UNSUPPORTED_VERSION);
	uint32_t n = 0;
	int16_t min, max;
	for (int16_t key = 0; key < SL_KAFKA_API_KEY_COUNT; key++)
		n += (uint32_t)sl_kafka_api_served(key, &min, &max);
	if (flexible)
		sl_kwrite_uvarint(w, n + 1);
	else
		sl_kwrite_i32(w, (int32_t)n);
	for (int16_t key = 0; key < SL_KAFKA_API_KEY_COUNT; key++) {
		if (!sl_kafka_api_served(key, &min, &max))
			continue;
		sl_kwrite_i16(w, key);
		sl_kwrite_i16(w, min);
		sl_kwrite_i16(w, max);
		if (flexible)
			sl_kwrite_uvarint(w, 0);
	}
	if (supported && v >= 1)
		sl_kwrite_i32(w, 0); /* throttle_time_ms */
	if (flexible)
		sl_kwrite_uvarint(w, 0);
	if (!supported)
		sl_kafka_log(kr, "ApiVersions version %d not served: answered with error 35 and the served ranges", v);
	sl_kafka_req_answer(kr);
}

/* ---- Metadata ---- */

static void write_broker(struct sl_kafka_req *kr, struct sl_kwrite *w, int16_t v)
{
	const struct sl_kafka *k = kr->srv->kafka;
	sl_kwrite_i32(w, BROKER_ID);
	sl_kwrite_str(w, k->host);
	sl_kwrite_i32(w, k->port);
	if (v >= 1)
		sl_kwrite_str(w, NULL); /* rack */
}

static void write_topic(struct sl_kwrite *w, int16_t v, const char *name, const struct sl_topic *t, int16_t err)
{
	sl_kwrite_i16(w, err);
	sl_kwrite_str(w, name);
	if (v >= 1)
		sl_kwrite_i8(w, 0); /* is_internal */
	uint32_t n = t ? t->cfg.partitions : 0;
	sl_kwrite_i32(w, (int32_t)n);
	for (uint32_t i = 0; i < n; i++) {
		/* A partition whose log failed to open is offline: Kafka says so with a storage error. */
		sl_kwrite_i16(w, t->parts[i].log ? SL_KERR_NONE : SL_KERR_KAFKA_STORAGE_ERROR);
		sl_kwrite_i32(w, (int32_t)i);
		sl_kwrite_i32(w, BROKER_ID); /* leader */
		if (v >= 7)
			sl_kwrite_i32(w, 0); /* leader_epoch: one broker, never a new leader */
		sl_kwrite_i32(w, 1);         /* replica_nodes */
		sl_kwrite_i32(w, BROKER_ID);
		sl_kwrite_i32(w, 1); /* isr_nodes */
		sl_kwrite_i32(w, BROKER_ID);
		if (v >= 5)
			sl_kwrite_i32(w, 0); /* offline_replicas */
	}
	if (v >= 8)
		sl_kwrite_i32(w, AUTHORIZED_OPERATIONS_OMITTED);
}

void sl_kafka_metadata(struct sl_kafka_req *kr)
{
	const struct sl_kafka_metadata *m = &kr->rq.u.metadata;
	int16_t v = kr->rq.api_version;
	struct sl_topics *topics = &kr->srv->topics;
	struct sl_kwrite *w = &kr->head;
	sl_kafka_head_begin(kr, 0);
	if (v >= 3)
		sl_kwrite_i32(w, 0); /* throttle_time_ms */
	sl_kwrite_i32(w, 1);         /* brokers */
	write_broker(kr, w, v);
	if (v >= 2)
		sl_kwrite_str(w, CLUSTER_ID);
	if (v >= 1)
		sl_kwrite_i32(w, BROKER_ID); /* controller_id */
	if (m->all_topics) {
		/* Every topic this principal may see (broker/acl.h): the count is patched once they are counted. */
		size_t count_at = w->len;
		int32_t shown = 0;
		sl_kwrite_i32(w, 0);
		for (struct sl_topic *t = topics->head; t; t = t->next) {
			if (!sl_kafka_allows(kr, SL_ACL_TOPIC, t->cfg.name, SL_ACL_DESCRIBE))
				continue;
			write_topic(w, v, t->cfg.name, t, SL_KERR_NONE);
			shown++;
		}
		sl_kwrite_put_i32(w, count_at, shown);
	} else {
		sl_kwrite_i32(w, (int32_t)m->topic_count);
		for (uint32_t i = 0; i < m->topic_count; i++) {
			const char *name = m->topics[i];
			struct sl_topic *t = sl_topics_find(topics, name);
			/* Topics are never created by asking for them (no auto.create.topics.enable): create them
			 * with CreateTopics or `synclog topic create`. A topic the principal may not see is refused
			 * whether or not it exists, so the answer does not tell. */
			int16_t err = !sl_kafka_allows(kr, SL_ACL_TOPIC, name, SL_ACL_DESCRIBE)
			                      ? SL_KERR_TOPIC_AUTHORIZATION_FAILED
			              : t                                 ? SL_KERR_NONE
			              : sl_topic_name_check(name, 0) == 0 ? SL_KERR_UNKNOWN_TOPIC_OR_PARTITION
			                                                  : SL_KERR_INVALID_TOPIC_EXCEPTION;
			write_topic(w, v, name, err == SL_KERR_TOPIC_AUTHORIZATION_FAILED ? NULL : t, err);
		}
	}
	if (v >= 8)
		sl_kwrite_i32(w, AUTHORIZED_OPERATIONS_OMITTED);
	sl_kafka_req_answer(kr);
}

/* ---- FindCoordinator ---- */

void sl_kafka_find_coordinator(struct sl_kafka_req *kr)
{
	const struct sl_kafka_find_coordinator *f = &kr->rq.u.find_coordinator;
	int16_t v = kr->rq.api_version;
	struct sl_kwrite *w = &kr->head;
	int16_t err = SL_KERR_NONE;
	const char *msg = NULL;
	if (f->key_type != 0) {
		err = SL_KERR_COORDINATOR_NOT_AVAILABLE;
		msg = "synclogd has no transaction coordinator: transactions are not supported";
	} else if (sl_group_name_check(f->key) != 0) {
		err = SL_KERR_INVALID_GROUP_ID;
		msg = "group ids are 1 to 200 characters of [A-Za-z0-9._-]";
	}
	if (msg)
		sl_kafka_log(kr, "'%.200s': %s", f->key, msg);
	sl_kafka_head_begin(kr, 0);
	if (v >= 1)
		sl_kwrite_i32(w, 0); /* throttle_time_ms */
	sl_kwrite_i16(w, err);
	if (v >= 1)
		sl_kwrite_str(w, msg);
	sl_kwrite_i32(w, err ? -1 : BROKER_ID);
	sl_kwrite_str(w, err ? "" : kr->srv->kafka->host);
	sl_kwrite_i32(w, err ? -1 : kr->srv->kafka->port);
	sl_kafka_req_answer(kr);
}

/* ---- DescribeConfigs ---- */

enum { SOURCE_TOPIC = 1, SOURCE_STATIC_BROKER = 4, SOURCE_DEFAULT = 5 };
enum { RESOURCE_TOPIC = 2, RESOURCE_BROKER = 4 };

struct config_out {
	struct sl_kwrite *w;
	int16_t v;
	const struct sl_kafka_config_resource *res;
	int32_t count;
};

static void config_entry(struct config_out *o, const char *name, const char *value, int8_t source)
{
	if (!o->res->all_keys) {
		int asked = 0;
		for (uint32_t i = 0; i < o->res->key_count && !asked; i++)
			asked = strcmp(o->res->keys[i], name) == 0;
		if (!asked)
			return;
	}
	sl_kwrite_str(o->w, name);
	sl_kwrite_str(o->w, value);
	sl_kwrite_i8(o->w, 1); /* read_only: AlterConfigs is not served */
	if (o->v == 0)
		sl_kwrite_i8(o->w, source == SOURCE_DEFAULT); /* is_default */
	else
		sl_kwrite_i8(o->w, source);
	sl_kwrite_i8(o->w, 0); /* is_sensitive */
	if (o->v >= 1)
		sl_kwrite_i32(o->w, 0); /* synonyms */
	o->count++;
}

static void config_i64(struct config_out *o, const char *name, int64_t value, int8_t source)
{
	char s[32];
	snprintf(s, sizeof(s), "%" PRId64, value);
	config_entry(o, name, s, source);
}

/* The configs that exist for a topic: what it was created with and the broker-wide settings it runs under. */
static void topic_configs(struct config_out *o, const struct sl_server *srv, const struct sl_topic *t)
{
	config_entry(o, "cleanup.policy", t->cfg.compact ? "compact" : "delete", SOURCE_TOPIC);
	config_i64(o, "retention.ms", t->cfg.retention_ms, SOURCE_TOPIC);
	config_i64(o, "retention.bytes", t->cfg.retention_bytes, SOURCE_TOPIC);
	int64_t segment_bytes, segment_ms;
	sl_topic_segment_limits(&srv->topics, &t->cfg, &segment_bytes, &segment_ms);
	config_i64(o, "segment.bytes", segment_bytes, t->cfg.segment_bytes ? SOURCE_TOPIC : SOURCE_STATIC_BROKER);
	config_i64(o, "segment.ms", segment_ms, t->cfg.segment_ms ? SOURCE_TOPIC : SOURCE_STATIC_BROKER);
	config_i64(o, "delete.retention.ms", t->cfg.delete_retention_ms, SOURCE_TOPIC);
	/* The largest batch a producer can send: it must fit one request frame. */
	config_i64(o, "max.message.bytes", srv->cfg.frame_bytes_max, SOURCE_STATIC_BROKER);
	/* Batches are stored as the producer sent them: its compression and its timestamps. */
	config_entry(o, "compression.type", "producer", SOURCE_DEFAULT);
	config_entry(o, "message.timestamp.type", "CreateTime", SOURCE_DEFAULT);
}

static void broker_configs(struct config_out *o, const struct sl_server *srv)
{
	config_i64(o, "log.segment.bytes", (int64_t)srv->cfg.log.segment_bytes_max, SOURCE_STATIC_BROKER);
	config_i64(o, "message.max.bytes", srv->cfg.frame_bytes_max, SOURCE_STATIC_BROKER);
	config_entry(o, "auto.create.topics.enable", "false", SOURCE_DEFAULT);
	config_i64(o, "num.partitions", SL_KAFKA_DEFAULT_PARTITIONS, SOURCE_DEFAULT);
	config_entry(o, "default.replication.factor", "1", SOURCE_DEFAULT);
}

void sl_kafka_describe_configs(struct sl_kafka_req *kr)
{
	const struct sl_kafka_describe_configs *d = &kr->rq.u.describe_configs;
	int16_t v = kr->rq.api_version;
	struct sl_kwrite *w = &kr->head;
	sl_kafka_head_begin(kr, 0);
	sl_kwrite_i32(w, 0); /* throttle_time_ms */
	sl_kwrite_i32(w, (int32_t)d->resource_count);
	for (uint32_t i = 0; i < d->resource_count; i++) {
		const struct sl_kafka_config_resource *res = &d->resources[i];
		const struct sl_topic *t = NULL;
		int16_t err = SL_KERR_NONE;
		const char *msg = NULL;
		if (res->type == RESOURCE_TOPIC) {
			t = sl_topics_find(&kr->srv->topics, res->name);
			if (!sl_kafka_allows(kr, SL_ACL_TOPIC, res->name, SL_ACL_DESCRIBE)) {
				t = NULL;
				err = SL_KERR_TOPIC_AUTHORIZATION_FAILED;
				msg = "not allowed to describe this topic";
			} else if (t == NULL) {
				err = SL_KERR_UNKNOWN_TOPIC_OR_PARTITION;
				msg = "unknown topic";
			}
		} else if (res->type == RESOURCE_BROKER) {
			if (strcmp(res->name, "0") != 0 && res->name[0] != '\0') {
				err = SL_KERR_INVALID_REQUEST;
				msg = "this cluster has one broker, id 0";
			}
		} else {
			err = SL_KERR_INVALID_REQUEST;
			msg = "only topic (2) and broker (4) resources have configs here";
		}
		sl_kwrite_i16(w, err);
		sl_kwrite_str(w, msg);
		sl_kwrite_i8(w, res->type);
		sl_kwrite_str(w, res->name);
		size_t count_at = w->len;
		sl_kwrite_i32(w, 0);
		struct config_out o = {w, v, res, 0};
		if (err == SL_KERR_NONE && t)
			topic_configs(&o, kr->srv, t);
		else if (err == SL_KERR_NONE)
			broker_configs(&o, kr->srv);
		sl_kwrite_put_i32(w, count_at, o.count);
	}
	sl_kafka_req_answer(kr);
}
