/* What every object of the Kafka transport needs (kafka_impl.h): the configuration a librdkafka handle starts
 * from, Kafka's errors as errno, the interruptible wait on a handle's queue, records to and from librdkafka's
 * messages, and ListOffsets and partition counts from metadata. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "consumer/client/kafka_impl.h"

static void log_drop_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk, (void)level, (void)fac, (void)buf;
}

rd_kafka_conf_t *sl_kafka_conf_new(const char *bootstrap, const char *client_id, const struct sl_kafka_pair *ours,
                                   size_t count, const struct sl_kafka_config *security,
                                   const struct sl_kafka_config *user, char *err, size_t err_bytes)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char why[512];

	if (conf == NULL) {
		sl_error_set(err, err_bytes, "out of memory for a librdkafka configuration");
		return NULL;
	}
	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, why, sizeof(why)) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "client.id", client_id != NULL ? client_id : "synclog", why, sizeof(why)) !=
	            RD_KAFKA_CONF_OK) {
		sl_error_set(err, err_bytes, "librdkafka refused the bootstrap servers '%s': %s", bootstrap, why);
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	for (size_t i = 0; i < count; i++) {
		if (rd_kafka_conf_set(conf, ours[i].key, ours[i].value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
			sl_error_set(err, err_bytes, "librdkafka refused %s=%s: %s", ours[i].key, ours[i].value, why);
			rd_kafka_conf_destroy(conf);
			return NULL;
		}
	}
	for (uint32_t i = 0; security != NULL && i < security->count; i++) {
		const struct sl_kafka_setting *s = &security->settings[i];

		if (rd_kafka_conf_set(conf, s->key, s->value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
			sl_error_set(err, err_bytes, "librdkafka refused the security setting %s: %s", s->key, why);
			rd_kafka_conf_destroy(conf);
			return NULL;
		}
	}
	for (uint32_t i = 0; user != NULL && i < user->count; i++) {
		const struct sl_kafka_setting *s = &user->settings[i];

		if (strcmp(s->key, "bootstrap.servers") == 0 || strcmp(s->key, "metadata.broker.list") == 0) {
			/* Two sources for the one thing that names the cluster would leave one of them unused. */
			sl_error_set(err, err_bytes,
			             "Kafka setting %s=%s: the cluster's servers come from the broker address "
			             "(--broker kafka://HOST:PORT,...); remove the setting",
			             s->key, s->value);
			rd_kafka_conf_destroy(conf);
			return NULL;
		}
		if (rd_kafka_conf_set(conf, s->key, s->value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
			sl_error_set(err, err_bytes,
			             "Kafka setting %s=%s refused: %s (see librdkafka's CONFIGURATION.md)", s->key,
			             s->value, why);
			rd_kafka_conf_destroy(conf);
			return NULL;
		}
	}
	/* librdkafka logs from its own threads to stderr; what fails reaches our caller as an error anyway. A user
	 * who asks for debug contexts or a log level gets librdkafka's lines. */
	if (sl_kafka_config_get(user, "debug") == NULL && sl_kafka_config_get(user, "log_level") == NULL)
		rd_kafka_conf_set_log_cb(conf, log_drop_cb);
	return conf;
}

int sl_kafka_errno(rd_kafka_resp_err_t e)
{
	switch (e) {
	case RD_KAFKA_RESP_ERR_NO_ERROR:
		return 0;
	case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
	case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
	case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
	case RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND:
		return -ENOENT;
	case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
		return -EEXIST;
	case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
	case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
	case RD_KAFKA_RESP_ERR_INVALID_REPLICA_ASSIGNMENT:
	case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
	case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
	case RD_KAFKA_RESP_ERR_INVALID_REQUEST:
	case RD_KAFKA_RESP_ERR_INVALID_GROUP_ID:
	case RD_KAFKA_RESP_ERR__INVALID_ARG:
	case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
		return -EINVAL;
	case RD_KAFKA_RESP_ERR__TIMED_OUT:
	case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
	case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
	case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
		return -ETIMEDOUT;
	case RD_KAFKA_RESP_ERR__TRANSPORT:
	case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
	case RD_KAFKA_RESP_ERR__RESOLVE:
		return -ECONNREFUSED;
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
		return -EMSGSIZE;
	case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
		return -ERANGE;
	case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
		return -EIDRM;
	case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
	case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
	case RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID:
		return -ESTALE;
	case RD_KAFKA_RESP_ERR_NON_EMPTY_GROUP:
		return -EBUSY;
	case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
		return -EPERM;
	case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
	case RD_KAFKA_RESP_ERR__AUTHENTICATION:
	case RD_KAFKA_RESP_ERR__SSL:
		return -EACCES;
	case RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE:
	case RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
		return -EOPNOTSUPP;
	case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
		return -EIO;
	case RD_KAFKA_RESP_ERR__QUEUE_FULL:
		return -ENOBUFS;
	case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
	case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
	case RD_KAFKA_RESP_ERR__DESTROY:
		return -ECANCELED;
	case RD_KAFKA_RESP_ERR_INVALID_MSG:
	case RD_KAFKA_RESP_ERR__BAD_MSG:
		return -EBADMSG;
	default:
		return -EPROTO;
	}
}

int sl_kafka_code(rd_kafka_resp_err_t e)
{
	switch (sl_kafka_errno(e)) {
	case 0:
		return SYNCLOG__ERROR_CODE__NONE;
	case -ENOENT:
		return e == RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND ? SYNCLOG__ERROR_CODE__UNKNOWN_GROUP
		                                                 : SYNCLOG__ERROR_CODE__UNKNOWN_TOPIC;
	case -EEXIST:
		return SYNCLOG__ERROR_CODE__TOPIC_EXISTS;
	case -EINVAL:
		return SYNCLOG__ERROR_CODE__INVALID_CONFIG;
	case -ERANGE:
		return SYNCLOG__ERROR_CODE__OFFSET_OUT_OF_RANGE;
	case -EIDRM:
		return SYNCLOG__ERROR_CODE__UNKNOWN_MEMBER;
	case -ESTALE:
		return SYNCLOG__ERROR_CODE__ILLEGAL_GENERATION;
	case -EBUSY:
		return SYNCLOG__ERROR_CODE__GROUP_NOT_EMPTY;
	case -EOPNOTSUPP:
		return SYNCLOG__ERROR_CODE__UNSUPPORTED_FEATURE;
	case -EMSGSIZE:
		return SYNCLOG__ERROR_CODE__BATCH_TOO_LARGE;
	case -EIO:
		return SYNCLOG__ERROR_CODE__STORAGE_ERROR;
	default:
		return 0; /* a failure on this side (network, timeout) or one with no synclog equivalent */
	}
}

/* ---- waiting ---- */

int sl_kafka_wake_init(struct sl_kafka_wake *w, rd_kafka_queue_t *q)
{
	if (pipe2(w->fds, O_NONBLOCK | O_CLOEXEC) != 0) {
		int rc = -errno;

		w->fds[0] = w->fds[1] = -1;
		rd_kafka_queue_destroy(q);
		return rc;
	}
	w->queue = q;
	rd_kafka_queue_io_event_enable(q, w->fds[1], "w", 1);
	return 0;
}

int sl_kafka_wake_wait(struct sl_kafka_wake *w, int timeout_ms)
{
	struct pollfd pfd = {.fd = w->fds[0], .events = POLLIN};
	char drain[64];

	if (rd_kafka_queue_length(w->queue) > 0)
		return 0;
	if (poll(&pfd, 1, timeout_ms) < 0 && errno == EINTR)
		return -EINTR;
	while (read(w->fds[0], drain, sizeof(drain)) > 0)
		;
	return 0;
}

void sl_kafka_wake_free(struct sl_kafka_wake *w)
{
	/* No queue: the wake was never made (its pipe may be unset, as in a calloc'ed owner), or made and failed. */
	if (w->queue == NULL)
		return;
	rd_kafka_queue_io_event_enable(w->queue, -1, NULL, 0);
	close(w->fds[0]);
	close(w->fds[1]);
	rd_kafka_queue_destroy(w->queue);
	w->fds[0] = w->fds[1] = -1;
	w->queue = NULL;
}

int sl_kafka_handle_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, rd_kafka_t **rk_out, struct sl_kafka_wake *wake,
                        char *err, size_t err_bytes)
{
	char why[512];

	*rk_out = rd_kafka_new(type, conf, why, sizeof(why));
	if (*rk_out == NULL) {
		rd_kafka_conf_destroy(conf);
		sl_error_set(err, err_bytes, "librdkafka: %s", why);
		return -EINVAL;
	}
	if (type == RD_KAFKA_PRODUCER)
		return sl_kafka_wake_init(wake, rd_kafka_queue_get_main(*rk_out));
	rd_kafka_poll_set_consumer(*rk_out);
	return sl_kafka_wake_init(wake, rd_kafka_queue_get_consumer(*rk_out));
}

/* ---- records ---- */

size_t sl_kafka_headers_bytes(const rd_kafka_message_t *m)
{
	rd_kafka_headers_t *hdrs;
	const char *name;
	const void *value;
	size_t size, bytes = 0;

	if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return 0;
	for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; i++)
		bytes += sl_record_header_bytes((int32_t)strlen(name), value != NULL ? (int32_t)size : -1);
	return bytes;
}

int sl_kafka_message_record(const rd_kafka_message_t *m, struct sl_record *out, uint8_t **hpos, const uint8_t *hend,
                            const char **why)
{
	rd_kafka_headers_t *hdrs;
	rd_kafka_timestamp_type_t tstype;
	const char *name;
	const void *value;
	size_t size;
	int32_t count = 0;
	uint8_t *start = *hpos;

	memset(out, 0, sizeof(*out));
	out->offset = m->offset;
	out->timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
	out->key = m->key;
	out->key_len = m->key != NULL ? (int32_t)m->key_len : -1;
	out->value = m->payload;
	out->value_len = m->payload != NULL ? (int32_t)m->len : -1;
	if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
		     i++) {
			const struct sl_record_header h = {(const uint8_t *)name, (int32_t)strlen(name), value,
			                                   value != NULL ? (int32_t)size : -1};
			int rc = sl_record_header_encode(hpos, hend, &h);

			SL_ASSERT(rc == 0); /* the caller reserved sl_kafka_headers_bytes(m) */
			count++;
		}
	}
	/* Not NULL even without headers, as the batch iterator gives it: a copy of the record gets exactly none. */
	SL_ASSERT(start != NULL);
	out->headers = start;
	out->headers_len = (int32_t)(*hpos - start);
	out->header_count = count;
	return sl_record_headers_decode(out, why);
}

rd_kafka_headers_t *sl_kafka_record_headers(const struct sl_record *r, bool *bad)
{
	struct sl_record_header hs[SL_RECORD_SYNC_HEADERS_MAX], h;
	char vtext[SL_RECORD_DECIMAL_BYTES], stext[SL_RECORD_DECIMAL_BYTES], ctext[SL_RECORD_DECIMAL_BYTES];
	rd_kafka_headers_t *hdrs;
	size_t n;

	*bad = false;
	if (r->headers != NULL) {
		const uint8_t *p = r->headers, *end = r->headers + (r->headers_len > 0 ? r->headers_len : 0);
		int rc;

		if (r->headers_len < 0 || r->header_count <= 0) {
			*bad = r->headers_len != 0 || r->header_count != 0;
			return NULL;
		}
		hdrs = rd_kafka_headers_new((size_t)r->header_count);
		while ((rc = sl_record_header_next(&p, end, &h)) == 1) {
			/* A name with a NUL cannot be a librdkafka header name (a C string). */
			if (memchr(h.name, '\0', (size_t)h.name_len) != NULL ||
			    rd_kafka_header_add(hdrs, (const char *)h.name, h.name_len, h.value,
			                        h.value_len >= 0 ? h.value_len : 0) != RD_KAFKA_RESP_ERR_NO_ERROR) {
				rc = -1;
				break;
			}
		}
		if (rc != 0) {
			rd_kafka_headers_destroy(hdrs);
			*bad = true;
			return NULL;
		}
		return hdrs;
	}
	n = sl_record_sync_headers(r, hs, vtext, stext, ctext);
	if (n == 0)
		return NULL;
	hdrs = rd_kafka_headers_new(n);
	for (size_t i = 0; i < n; i++)
		rd_kafka_header_add(hdrs, (const char *)hs[i].name, hs[i].name_len, hs[i].value, hs[i].value_len);
	return hdrs;
}

/* ---- offsets and metadata ---- */

int sl_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, uint32_t *count_out, char *err,
                             size_t err_bytes)
{
	const struct rd_kafka_metadata *md;
	rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
	int rc = -ENOENT;

	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		sl_error_set(err, err_bytes, "Kafka metadata: %s: is the cluster reachable (--broker, --kafka-config)?",
		             rd_kafka_err2str(e));
		return sl_kafka_errno(e);
	}
	for (int i = 0; i < md->topic_cnt; i++) {
		if (strcmp(md->topics[i].topic, topic) != 0)
			continue;
		if (md->topics[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			rc = sl_kafka_errno(md->topics[i].err);
			sl_error_set(err, err_bytes, "topic '%s': %s", topic, rd_kafka_err2str(md->topics[i].err));
		} else {
			*count_out = (uint32_t)md->topics[i].partition_cnt;
			rc = 0;
		}
		break;
	}
	if (rc == -ENOENT)
		sl_error_set(err, err_bytes,
		             "topic '%s' does not exist on the Kafka cluster, or its ACLs hide it from this user: "
		             "create it first, or ask for access to it",
		             topic);
	rd_kafka_metadata_destroy(md);
	return rc;
}

int sl_kafka_offsets_at(rd_kafka_t *rk, const char *topic, const uint32_t *partitions, uint32_t count, int64_t at,
                        int timeout_ms, int64_t *offsets_out, char *err, size_t err_bytes)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)count);
	rd_kafka_resp_err_t e;
	bool past_end = false;
	int rc = 0;

	for (uint32_t i = 0; i < count; i++)
		rd_kafka_topic_partition_list_add(list, topic, (int32_t)partitions[i])->offset = at;
	e = rd_kafka_offsets_for_times(rk, list, timeout_ms);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		sl_error_set(err, err_bytes, "list offsets of topic '%s': %s", topic, rd_kafka_err2str(e));
		rd_kafka_topic_partition_list_destroy(list);
		return sl_kafka_errno(e);
	}
	for (int i = 0; i < list->cnt && rc == 0; i++) {
		const rd_kafka_topic_partition_t *tp = &list->elems[i];

		if (tp->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			sl_error_set(err, err_bytes, "list offsets of topic '%s' partition %d: %s", topic,
			             tp->partition, rd_kafka_err2str(tp->err));
			rc = sl_kafka_errno(tp->err);
			break;
		}
		offsets_out[i] = tp->offset;
		past_end |= tp->offset < 0; /* no record at or after the time */
	}
	rd_kafka_topic_partition_list_destroy(list);
	if (rc == 0 && past_end && at >= 0) {
		/* As synclogd answers: a time after the last record is the log end. */
		int64_t *ends = calloc(count, sizeof(*ends));

		if (ends == NULL)
			return -ENOMEM;
		rc = sl_kafka_offsets_at(rk, topic, partitions, count, RD_KAFKA_OFFSET_END, timeout_ms, ends, err,
		                         err_bytes);
		for (uint32_t i = 0; rc == 0 && i < count; i++)
			if (offsets_out[i] < 0)
				offsets_out[i] = ends[i];
		free(ends);
	}
	return rc;
}
