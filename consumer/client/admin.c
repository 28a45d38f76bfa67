/* Admin calls: one request, one answer, on a connection with nothing else in flight. Each turns the broker's
 * answer into plain structs and a negative errno, so callers never see protobuf types. */
#include <errno.h>
#include <string.h>

#include "consumer/client/client_impl.h"

/* The answer must have the body asked for; anything else is a broker that does not speak this protocol. */
int sl_conn_expect_body(struct sl_conn *c, const Synclog__Response *resp, int body_case, const char *what)
{
	if (resp->error != SYNCLOG__ERROR_CODE__NONE)
		return sl_conn_fail_response(c, what, resp->error, resp->error_message);
	if ((int)resp->body_case != body_case) {
		sl_conn_set_error(c,
		                  "%s: the broker answered with another message type (%d): is it a synclog broker "
		                  "of this version?",
		                  what, (int)resp->body_case);
		return -EPROTO;
	}
	return 0;
}

int sl_conn_request(struct sl_conn *c, Synclog__Request *req, int body_case, const char *what,
                    Synclog__Response **resp_out)
{
	int rc = sl_conn_call(c, req, resp_out);

	return rc != 0 ? rc : sl_conn_expect_body(c, *resp_out, body_case, what);
}

static void config_from_wire(struct sl_topic_config *out, const Synclog__TopicConfig *in)
{
	memset(out, 0, sizeof(*out));
	if (in == NULL)
		return;
	snprintf(out->name, sizeof(out->name), "%s", in->name != NULL ? in->name : "");
	out->partitions = in->partitions;
	out->retention_ms = in->retention_ms;
	out->retention_bytes = in->retention_bytes;
	out->compact = in->compact != 0;
	out->segment_bytes = in->segment_bytes;
	out->segment_ms = in->segment_ms;
	out->delete_retention_ms = in->delete_retention_ms;
	out->retain_for_groups = in->retain_for_groups != 0;
}

/* Wire settings for count settings, in one allocation the caller frees (NULL when count is 0 or on no memory). */
static Synclog__TopicSetting **settings_to_wire(const struct sl_topic_setting *settings, uint32_t count)
{
	if (count == 0)
		return NULL;
	Synclog__TopicSetting **ptrs = calloc(count, sizeof(*ptrs) + sizeof(Synclog__TopicSetting));
	if (ptrs == NULL)
		return NULL;
	Synclog__TopicSetting *items = (Synclog__TopicSetting *)(ptrs + count);
	for (uint32_t i = 0; i < count; i++) {
		synclog__topic_setting__init(&items[i]);
		items[i].key = (char *)settings[i].key;
		items[i].value = (char *)settings[i].value;
		ptrs[i] = &items[i];
	}
	return ptrs;
}

int sl_topic_create(struct sl_conn *c, const struct sl_topic_config *config)
{
	return sl_topic_create_settings(c, config, NULL, 0);
}

int sl_topic_create_settings(struct sl_conn *c, const struct sl_topic_config *config,
                             const struct sl_topic_setting *settings, uint32_t count)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__CreateTopicRequest body = SYNCLOG__CREATE_TOPIC_REQUEST__INIT;
	Synclog__TopicConfig wire = SYNCLOG__TOPIC_CONFIG__INIT;
	Synclog__Response *resp;
	char what[SL_TOPIC_NAME_BYTES_MAX + 64];
	int rc;

	if (c->kafka != NULL)
		return sl_kafka_topic_create(c, config, settings, count);

	body.settings = settings_to_wire(settings, count);
	if (count > 0 && body.settings == NULL) {
		sl_conn_set_error(c, "create topic '%s': out of memory", config->name);
		return -ENOMEM;
	}
	body.n_settings = count;

	wire.name = (char *)config->name;
	wire.partitions = config->partitions;
	wire.retention_ms = config->retention_ms;
	wire.retention_bytes = config->retention_bytes;
	wire.compact = config->compact;
	wire.segment_bytes = config->segment_bytes;
	wire.segment_ms = config->segment_ms;
	body.config = &wire;
	req.body_case = SYNCLOG__REQUEST__BODY_CREATE_TOPIC;
	req.create_topic = &body;
	snprintf(what, sizeof(what), "create topic '%s'", config->name);
	rc = sl_conn_request(c, &req, SYNCLOG__RESPONSE__BODY_CREATE_TOPIC, what, &resp);
	free(body.settings);
	return rc;
}

int sl_topic_alter(struct sl_conn *c, const char *name, const struct sl_topic_setting *settings, uint32_t count,
                   struct sl_topic_config *config_out)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__AlterTopicRequest body = SYNCLOG__ALTER_TOPIC_REQUEST__INIT;
	Synclog__Response *resp;
	char what[SL_TOPIC_NAME_BYTES_MAX + 64];
	int rc;

	if (c->kafka != NULL)
		return sl_kafka_unsupported(c, "alter a topic",
		                            "change its configs with the cluster's own tools (kafka-configs.sh)");

	snprintf(what, sizeof(what), "alter topic '%s'", name);
	body.name = (char *)name;
	body.settings = settings_to_wire(settings, count);
	if (count > 0 && body.settings == NULL) {
		sl_conn_set_error(c, "%s: out of memory", what);
		return -ENOMEM;
	}
	body.n_settings = count;
	req.body_case = SYNCLOG__REQUEST__BODY_ALTER_TOPIC;
	req.alter_topic = &body;
	rc = sl_conn_request(c, &req, SYNCLOG__RESPONSE__BODY_ALTER_TOPIC, what, &resp);
	free(body.settings);
	if (rc == 0 && config_out != NULL)
		config_from_wire(config_out, resp->alter_topic->config);
	return rc;
}

int sl_topic_compact(struct sl_conn *c, const char *name, bool wait, struct sl_compact_result **results_out,
                     uint32_t *count_out)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__CompactTopicRequest body = SYNCLOG__COMPACT_TOPIC_REQUEST__INIT;
	Synclog__Response *resp;
	char what[SL_TOPIC_NAME_BYTES_MAX + 64];
	int rc;

	if (c->kafka != NULL)
		return sl_kafka_unsupported(c, "compact a topic now",
		                            "Kafka's log cleaner runs by the topic's cleanup.policy on its own");

	if (results_out != NULL)
		*results_out = NULL;
	if (count_out != NULL)
		*count_out = 0;
	snprintf(what, sizeof(what), "compact topic '%s'", name);
	body.name = (char *)name;
	body.wait = wait;
	req.body_case = SYNCLOG__REQUEST__BODY_COMPACT_TOPIC;
	req.compact_topic = &body;
	rc = sl_conn_call(c, &req, &resp);
	if (rc != 0)
		return rc;
	/* A partition that failed fails the call, but its result still says which and why. */
	int call_rc = sl_conn_expect_body(c, resp, SYNCLOG__RESPONSE__BODY_COMPACT_TOPIC, what);
	if ((call_rc != 0 && resp->error != SYNCLOG__ERROR_CODE__CLEANER_FAILED) || resp->compact_topic == NULL ||
	    results_out == NULL)
		return call_rc;
	const Synclog__CompactTopicResponse *r = resp->compact_topic;
	struct sl_compact_result *res = calloc(r->n_partitions ? r->n_partitions : 1, sizeof(*res));
	if (res == NULL) {
		sl_conn_set_error(c, "%s: out of memory", what);
		return -ENOMEM;
	}
	for (size_t i = 0; i < r->n_partitions; i++) {
		const Synclog__CompactPartitionResult *in = r->partitions[i];
		res[i].partition = in->partition;
		res[i].error = in->error;
		if (in->error != SYNCLOG__ERROR_CODE__NONE)
			snprintf(res[i].error_message, sizeof(res[i].error_message), "%s",
			         in->error_message != NULL && in->error_message[0] ? in->error_message
			                                                           : sl_error_message(in->error));
		res[i].bytes_before = in->bytes_before;
		res[i].bytes_after = in->bytes_after;
		res[i].records_removed = in->records_removed;
		res[i].tombstones_removed = in->tombstones_removed;
		res[i].duration_ms = in->duration_ms;
	}
	*results_out = res;
	*count_out = (uint32_t)r->n_partitions;
	return call_rc;
}

int sl_topic_delete(struct sl_conn *c, const char *name)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__DeleteTopicRequest body = SYNCLOG__DELETE_TOPIC_REQUEST__INIT;
	Synclog__Response *resp;
	char what[SL_TOPIC_NAME_BYTES_MAX + 64];

	if (c->kafka != NULL)
		return sl_kafka_topic_delete(c, name);

	body.name = (char *)name;
	req.body_case = SYNCLOG__REQUEST__BODY_DELETE_TOPIC;
	req.delete_topic = &body;
	snprintf(what, sizeof(what), "delete topic '%s'", name);
	return sl_conn_request(c, &req, SYNCLOG__RESPONSE__BODY_DELETE_TOPIC, what, &resp);
}

int sl_topic_list(struct sl_conn *c, struct sl_topic_config **topics_out, uint32_t *count_out)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__ListTopicsRequest body = SYNCLOG__LIST_TOPICS_REQUEST__INIT;
	Synclog__Response *resp;
	struct sl_topic_config *topics;
	size_t n;
	int rc;

	if (c->kafka != NULL)
		return sl_kafka_topic_list(c, topics_out, count_out);

	*topics_out = NULL;
	*count_out = 0;
	req.body_case = SYNCLOG__REQUEST__BODY_LIST_TOPICS;
	req.list_topics = &body;
	rc = sl_conn_request(c, &req, SYNCLOG__RESPONSE__BODY_LIST_TOPICS, "list topics", &resp);
	if (rc != 0)
		return rc;
	n = resp->list_topics->n_topics;
	topics = calloc(n ? n : 1, sizeof(*topics));
	if (topics == NULL) {
		sl_conn_set_error(c, "list topics: out of memory for %zu topics", n);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		config_from_wire(&topics[i], resp->list_topics->topics[i]);
	*topics_out = topics;
	*count_out = (uint32_t)n;
	return 0;
}

static int partition_info_compare(const void *a, const void *b)
{
	const struct sl_partition_info *x = a, *y = b;

	return x->partition < y->partition ? -1 : x->partition > y->partition;
}

int sl_topic_describe(struct sl_conn *c, const char *name, struct sl_topic_config *config_out,
                      struct sl_partition_info **partitions_out, uint32_t *count_out)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__DescribeTopicRequest body = SYNCLOG__DESCRIBE_TOPIC_REQUEST__INIT;
	Synclog__Response *resp;
	Synclog__DescribeTopicResponse *d;
	struct sl_partition_info *parts;
	char what[SL_TOPIC_NAME_BYTES_MAX + 64];
	int rc;

	if (c->kafka != NULL)
		return sl_kafka_topic_describe(c, name, config_out, partitions_out, count_out);

	*partitions_out = NULL;
	*count_out = 0;
	body.name = (char *)name;
	req.body_case = SYNCLOG__REQUEST__BODY_DESCRIBE_TOPIC;
	req.describe_topic = &body;
	snprintf(what, sizeof(what), "describe topic '%s'", name);
	rc = sl_conn_request(c, &req, SYNCLOG__RESPONSE__BODY_DESCRIBE_TOPIC, what, &resp);
	if (rc != 0)
		return rc;
	d = resp->describe_topic;
	config_from_wire(config_out, d->config);
	if (config_out->name[0] == '\0')
		snprintf(config_out->name, sizeof(config_out->name), "%s", name);
	if (config_out->partitions == 0)
		config_out->partitions = (uint32_t)d->n_partitions;
	parts = calloc(d->n_partitions ? d->n_partitions : 1, sizeof(*parts));
	if (parts == NULL) {
		sl_conn_set_error(c, "%s: out of memory for %zu partitions", what, d->n_partitions);
		return -ENOMEM;
	}
	for (size_t i = 0; i < d->n_partitions; i++) {
		const Synclog__PartitionInfo *in = d->partitions[i];

		parts[i].partition = in->partition;
		parts[i].earliest_offset = in->earliest_offset;
		parts[i].next_offset = in->next_offset;
		parts[i].bytes = in->bytes;
		parts[i].segments = in->segments;
		parts[i].dirty_ratio = in->dirty_ratio;
		if (in->cleaner != NULL) {
			parts[i].last_clean_ms = in->cleaner->last_clean_ms;
			parts[i].last_clean_duration_ms = in->cleaner->last_duration_ms;
			parts[i].cleaner_records_removed = in->cleaner->records_removed;
			parts[i].cleaner_tombstones_removed = in->cleaner->tombstones_removed;
			parts[i].tombstones_kept = in->cleaner->tombstones_kept;
			snprintf(parts[i].cleaner_error, sizeof(parts[i].cleaner_error), "%s",
			         in->cleaner->last_error != NULL ? in->cleaner->last_error : "");
		}
		parts[i].error = in->error;
		if (in->error != SYNCLOG__ERROR_CODE__NONE)
			snprintf(parts[i].error_message, sizeof(parts[i].error_message), "%s",
			         in->error_message != NULL && in->error_message[0] ? in->error_message
			                                                           : sl_error_message(in->error));
	}
	qsort(parts, d->n_partitions, sizeof(*parts), partition_info_compare);
	*partitions_out = parts;
	*count_out = (uint32_t)d->n_partitions;
	return 0;
}

int sl_offsets_list(struct sl_conn *c, const char *topic, enum sl_offset_spec spec, int64_t timestamp_ms,
                    const uint32_t *partitions, uint32_t count, int64_t *offsets_out)
{
	static const char *const spec_names[] = {"earliest", "latest", "timestamp"};
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__ListOffsetsRequest body = SYNCLOG__LIST_OFFSETS_REQUEST__INIT;
	Synclog__Response *resp;
	Synclog__ListOffsetsResponse *lo;
	char what[SL_TOPIC_NAME_BYTES_MAX + 64];
	int rc;

	if (c->kafka != NULL)
		return sl_kafka_offsets_list(c, topic, spec, timestamp_ms, partitions, count, offsets_out);

	_Static_assert((int)SL_OFFSET_EARLIEST == (int)SYNCLOG__OFFSET_SPEC__EARLIEST &&
	                       (int)SL_OFFSET_LATEST == (int)SYNCLOG__OFFSET_SPEC__LATEST &&
	                       (int)SL_OFFSET_TIMESTAMP == (int)SYNCLOG__OFFSET_SPEC__TIMESTAMP,
	               "offset specs equal the wire values");
	SL_ASSERT((unsigned)spec < SL_ARRAY_COUNT(spec_names));
	SL_ASSERT(count > 0);
	body.topic = (char *)topic;
	body.spec = (Synclog__OffsetSpec)spec;
	body.timestamp_ms = timestamp_ms;
	body.n_partitions = count;
	body.partitions = (uint32_t *)partitions;
	req.body_case = SYNCLOG__REQUEST__BODY_LIST_OFFSETS;
	req.list_offsets = &body;
	snprintf(what, sizeof(what), "list %s offsets of topic '%s'", spec_names[spec], topic);
	rc = sl_conn_request(c, &req, SYNCLOG__RESPONSE__BODY_LIST_OFFSETS, what, &resp);
	if (rc != 0)
		return rc;
	lo = resp->list_offsets;
	for (uint32_t i = 0; i < count; i++) {
		size_t j;

		for (j = 0; j < lo->n_offsets; j++)
			if (lo->offsets[j]->partition == partitions[i])
				break;
		if (j == lo->n_offsets) {
			sl_conn_set_error(c, "%s: the broker's answer has no offset for partition %u", what,
			                  partitions[i]);
			return -EPROTO;
		}
		if (lo->offsets[j]->error != SYNCLOG__ERROR_CODE__NONE) {
			char pwhat[sizeof(what) + 32];

			snprintf(pwhat, sizeof(pwhat), "%s, partition %u", what, partitions[i]);
			return sl_conn_fail_response(c, pwhat, lo->offsets[j]->error, NULL);
		}
		offsets_out[i] = lo->offsets[j]->offset;
	}
	return 0;
}

int sl_producer_id_init(struct sl_conn *c, int64_t *producer_id_out, int16_t *producer_epoch_out)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__InitProducerRequest body = SYNCLOG__INIT_PRODUCER_REQUEST__INIT;
	Synclog__Response *resp;
	int rc;

	if (c->kafka != NULL)
		return sl_kafka_unsupported(c, "a synclog producer id",
		                            "librdkafka's idempotent producer gets its own");

	req.body_case = SYNCLOG__REQUEST__BODY_INIT_PRODUCER;
	req.init_producer = &body;
	rc = sl_conn_request(c, &req, SYNCLOG__RESPONSE__BODY_INIT_PRODUCER, "init producer", &resp);
	if (rc != 0)
		return rc;
	if (resp->init_producer->producer_id < 0 || resp->init_producer->producer_epoch < 0 ||
	    resp->init_producer->producer_epoch > INT16_MAX) {
		sl_conn_set_error(c, "init producer: the broker issued an invalid producer id %lld epoch %d",
		                  (long long)resp->init_producer->producer_id, resp->init_producer->producer_epoch);
		return -EPROTO;
	}
	*producer_id_out = resp->init_producer->producer_id;
	*producer_epoch_out = (int16_t)resp->init_producer->producer_epoch;
	return 0;
}
