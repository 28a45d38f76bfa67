/* The producer on a Kafka cluster (transport.h): librdkafka's producer behind sl_producer's calls, with the same
 * promises where Kafka can keep them.
 *
 * A record's journey: sl_producer_send -> its headers (the record's own section, or made from its sync fields) ->
 * rd_kafka_producev (librdkafka copies it into its queue; its partitioner, murmur2_random, picks the partition of a
 * keyed record exactly as sl_partition_for_key does) -> librdkafka's batches and requests, retried by its idempotent
 * producer without duplicates -> a delivery report on the handle's main queue -> served by our poll, flush or send
 * on the caller's thread -> the delivery callback.
 *
 * Settings, each with its reason (the caller's --kafka-config comes last and may replace them):
 *   acks fsync -> acks=all, enable.idempotence=true, enable.gapless.guarantee=true: an acknowledged record is on
 *     every in-sync replica, a retry is never stored twice, and the acknowledged records of a partition are a
 *     prefix of what was sent to it (what the native producer promises, producer_impl.h invariant 4).
 *     written -> acks=1, none -> acks=0: Kafka allows idempotence only with acks=all.
 *   partitioner=murmur2_random: Java's partitioner for keyed records; keyless ones go to a random partition.
 *   linger.ms, batch.size, batch.num.messages, compression.type, message.timeout.ms (the delivery timeout),
 *   retry.backoff.ms, max.in.flight.requests.per.connection and queue.buffering.max.kbytes from the options, so
 *   that the same options bound the same things on both transports.
 *
 * INVARIANTS
 *   1. pending == records producev accepted and whose delivery report has not been served yet.
 *   2. The delivery callback runs only from inside a call of this producer, on the caller's thread (librdkafka
 *      serves its main queue only there), never from librdkafka's threads.
 *
 * librdkafka allocates per record (its message and our headers): the one place the transport departs from the
 * rule of no allocation per record, and the price of reaching a Kafka cluster through it. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/base/clock.h"
#include "consumer/client/kafka_impl.h"

/* How often a producer waiting for room or for reports checks the clock: far below any delivery timeout. */
#define WAIT_SLICE_MS 100

struct sl_kafka_producer {
	struct sl_producer_options o;
	char topic[SL_TOPIC_NAME_BYTES_MAX + 1];
	char *bootstrap;
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	struct sl_kafka_wake wake;
	uint32_t partition_count;
	uint64_t pending;
	bool in_callback;
	char error[SL_ERROR_BYTES];
};

static void delivered_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct sl_kafka_producer *k = opaque;
	char why[SL_ERROR_BYTES];
	struct sl_delivery d = {
	        .status = sl_kafka_errno(m->err),
	        .partition = m->partition >= 0 ? (uint32_t)m->partition : 0,
	        .offset = m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->offset >= 0 ? m->offset : -1,
	};

	(void)rk;
	SL_ASSERT(k->pending > 0);
	if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(why, sizeof(why), "topic '%s' partition %d on the Kafka cluster: %s%s", k->topic, m->partition,
		         rd_kafka_err2str(m->err),
		         m->err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT
		                 ? ": not acknowledged within the delivery timeout; is the cluster reachable?"
		                 : "");
		d.error = why;
	}
	k->pending--;
	k->in_callback = true;
	k->o.delivery_cb(m->_private, &d, k->o.delivery_cb_arg);
	k->in_callback = false;
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct sl_kafka_producer *k = opaque;

	(void)rk;
	/* Kept for the next failure's message; librdkafka retries what can be retried by itself. */
	snprintf(k->error, sizeof(k->error), "Kafka cluster: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err),
	         reason);
}

/* Serve the delivery reports that arrived, waiting at most timeout_ms for one. 0 or -EINTR. */
static int serve(struct sl_kafka_producer *k, int timeout_ms)
{
	int rc = timeout_ms != 0 ? sl_kafka_wake_wait(&k->wake, timeout_ms) : 0;

	rd_kafka_poll(k->rk, 0);
	return rc;
}

int sl_kafka_producer_new(struct sl_kafka_producer **out, const struct sl_producer_options *o, char *err,
                          size_t err_bytes)
{
	static const char *const acks_of[] = {[SL_ACKS_FSYNC] = "all", [SL_ACKS_WRITTEN] = "1", [SL_ACKS_NONE] = "0"};
	char linger[16], batch[16], records[16], timeout[16], backoff[16], in_flight[16], buffer_kb[24], socket[16];
	char message_max[16];
	struct sl_kafka_producer *k;
	int rc;

	*out = NULL;
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		return -ENOMEM;
	k->o = *o;
	snprintf(k->topic, sizeof(k->topic), "%s", o->topic);
	k->o.topic = k->topic;
	k->o.broker = NULL;
	k->o.kafka_config = NULL;
	k->o.security = NULL;
	k->wake.fds[0] = k->wake.fds[1] = -1;
	rc = sl_kafka_bootstrap_text(o->broker, &k->bootstrap, err, err_bytes);
	if (rc != 0) {
		free(k);
		return rc;
	}
	struct sl_kafka_config security;
	rc = sl_kafka_config_secure(&security, o->security, NULL, err, err_bytes);
	if (rc != 0) {
		sl_kafka_producer_free(k);
		return rc;
	}
	snprintf(linger, sizeof(linger), "%u", o->linger_ms);
	snprintf(batch, sizeof(batch), "%u", o->batch_bytes_max);
	snprintf(records, sizeof(records), "%u", o->batch_records_max > 1000000 ? 1000000 : o->batch_records_max);
	snprintf(timeout, sizeof(timeout), "%u", o->delivery_timeout_ms);
	snprintf(backoff, sizeof(backoff), "%u", o->retry_backoff_ms);
	snprintf(in_flight, sizeof(in_flight), "%u", o->requests_in_flight_max);
	snprintf(buffer_kb, sizeof(buffer_kb), "%llu", (unsigned long long)(o->buffer_bytes_max / 1024));
	snprintf(socket, sizeof(socket), "%u", o->io_timeout_ms < 10 ? 10 : o->io_timeout_ms);
	/* A request carries at least one whole batch of batch_bytes_max. */
	snprintf(message_max, sizeof(message_max), "%u",
	         o->batch_bytes_max + 4096 > 1000000 ? o->batch_bytes_max + 4096 : 1000000);
	bool fsync = o->acks == SL_ACKS_FSYNC;
	const struct sl_kafka_pair ours[] = {
	        {"acks", acks_of[o->acks]},
	        {"enable.idempotence", fsync ? "true" : "false"},
	        {"enable.gapless.guarantee", fsync ? "true" : "false"},
	        {"partitioner", "murmur2_random"},
	        {"linger.ms", linger},
	        {"batch.size", batch},
	        {"batch.num.messages", records},
	        {"compression.type", o->codec == SL_BATCH_CODEC_ZSTD ? "zstd" : "none"},
	        {"message.timeout.ms", timeout},
	        {"retry.backoff.ms", backoff},
	        {"max.in.flight.requests.per.connection", in_flight},
	        {"queue.buffering.max.kbytes", buffer_kb},
	        {"socket.timeout.ms", socket},
	        {"message.max.bytes", message_max},
	};
	rd_kafka_conf_t *conf =
	        sl_kafka_conf_new(k->bootstrap, o->client_id != NULL ? o->client_id : "synclog-producer", ours,
	                          SL_ARRAY_COUNT(ours), &security, o->kafka_config, err, err_bytes);
	sl_kafka_config_free(&security);
	if (conf == NULL) {
		sl_kafka_producer_free(k);
		return -EINVAL;
	}
	rd_kafka_conf_set_opaque(conf, k);
	rd_kafka_conf_set_dr_msg_cb(conf, delivered_cb);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	rc = sl_kafka_handle_new(RD_KAFKA_PRODUCER, conf, &k->rk, &k->wake, err, err_bytes);
	if (rc == 0)
		rc = sl_kafka_partition_count(k->rk, k->topic,
		                              (int)(o->io_timeout_ms > INT32_MAX ? INT32_MAX : o->io_timeout_ms),
		                              &k->partition_count, err, err_bytes);
	if (rc == 0 && (k->rkt = rd_kafka_topic_new(k->rk, k->topic, NULL)) == NULL)
		rc = -ENOMEM;
	if (rc != 0) {
		sl_kafka_producer_free(k);
		return rc;
	}
	*out = k;
	return 0;
}

/* What the native producer refuses before sending, refused the same way here. */
static int record_check(struct sl_kafka_producer *k, int32_t partition, const struct sl_record *r)
{
	uint64_t bytes = (r->key_len > 0 ? (uint64_t)r->key_len : 0) + (r->value_len > 0 ? (uint64_t)r->value_len : 0) +
	                 (r->headers_len > 0 ? (uint64_t)r->headers_len : 0);

	if (k->o.backfill && r->origin != SL_ORIGIN_BACKFILL) {
		snprintf(k->error, sizeof(k->error),
		         "a backfill producer sends only origin=backfill records, not origin=%s",
		         sl_origin_name(r->origin));
		return -EINVAL;
	}
	if (partition != SL_PARTITION_ANY && (partition < 0 || (uint32_t)partition >= k->partition_count)) {
		snprintf(k->error, sizeof(k->error), "partition %d does not exist: topic '%s' has %u", partition,
		         k->topic, k->partition_count);
		return -EINVAL;
	}
	if (r->key_len < -1 || (r->key_len > 0 && r->key == NULL) || r->value_len < -1 ||
	    (r->value_len > 0 && r->value == NULL) || (unsigned)r->op > SL_OP_DELETE ||
	    (unsigned)r->origin > SL_ORIGIN_REPAIR || (r->op == SL_OP_DELETE && r->value_len != -1)) {
		snprintf(k->error, sizeof(k->error),
		         "invalid record fields (lengths, op, origin, or a delete with a value)");
		return -EINVAL;
	}
	if (bytes + 64 > k->o.batch_bytes_max) {
		snprintf(k->error, sizeof(k->error), "record of %llu bytes is larger than a batch (%u bytes)",
		         (unsigned long long)bytes, k->o.batch_bytes_max);
		return -EMSGSIZE;
	}
	return 0;
}

int sl_kafka_producer_send(struct sl_kafka_producer *k, int32_t partition, const struct sl_record *r, void *opaque)
{
	int64_t give_up_ms = -1;
	rd_kafka_headers_t *hdrs;
	bool bad;
	int rc;

	SL_ASSERT(!k->in_callback);
	rc = record_check(k, partition, r);
	if (rc != 0)
		return rc;
	/* Null (-1) and empty (0) differ in Kafka as in synclog: an empty key or value needs a pointer. */
	const void *key = r->key_len < 0 ? NULL : r->key != NULL ? (const void *)r->key : "";
	void *value = r->value_len < 0 ? NULL : r->value != NULL ? (void *)r->value : "";
	size_t key_len = r->key_len > 0 ? (size_t)r->key_len : 0,
	       value_len = r->value_len > 0 ? (size_t)r->value_len : 0;
	int32_t to = partition == SL_PARTITION_ANY ? RD_KAFKA_PARTITION_UA : partition;

	for (;;) {
		hdrs = sl_kafka_record_headers(r, &bad);
		if (bad) {
			snprintf(k->error, sizeof(k->error), "the record's headers are malformed");
			return -EINVAL;
		}
		rd_kafka_resp_err_t e =
		        rd_kafka_producev(k->rk, RD_KAFKA_V_RKT(k->rkt), RD_KAFKA_V_PARTITION(to),
		                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_len),
		                          RD_KAFKA_V_VALUE(value, value_len), RD_KAFKA_V_TIMESTAMP(r->timestamp_ms),
		                          RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
			k->pending++;
			break;
		}
		if (hdrs != NULL)
			rd_kafka_headers_destroy(hdrs);
		if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			snprintf(k->error, sizeof(k->error), "topic '%s': %s", k->topic, rd_kafka_err2str(e));
			return sl_kafka_errno(e) == -ENOENT ? -EINVAL : sl_kafka_errno(e);
		}
		/* The buffer is full: wait for acknowledgements, as the native producer does, for at most the
		 * delivery timeout. */
		int64_t now = sl_clock_mono_ms();
		if (give_up_ms < 0)
			give_up_ms = now + k->o.delivery_timeout_ms;
		if (now >= give_up_ms) {
			snprintf(k->error, sizeof(k->error),
			         "the producer's buffer stayed full for %u ms: the Kafka cluster is not acknowledging",
			         k->o.delivery_timeout_ms);
			return -ETIMEDOUT;
		}
		rc = serve(k, WAIT_SLICE_MS);
		if (rc != 0)
			return rc;
	}
	/* Reports that came in meanwhile, without waiting: a busy sender keeps them flowing. */
	if (rd_kafka_queue_length(k->wake.queue) > 0)
		rd_kafka_poll(k->rk, 0);
	return 0;
}

int sl_kafka_producer_poll(struct sl_kafka_producer *k, uint32_t timeout_ms)
{
	int rc;

	SL_ASSERT(!k->in_callback);
	rc = serve(k, timeout_ms > INT32_MAX ? INT32_MAX : (int)timeout_ms);
	if (rc != 0)
		return rc;
	return k->pending > INT32_MAX ? INT32_MAX : (int)k->pending;
}

int sl_kafka_producer_flush(struct sl_kafka_producer *k, int timeout_ms)
{
	int64_t deadline_ms = timeout_ms < 0 ? INT64_MAX : sl_clock_mono_ms() + timeout_ms;

	SL_ASSERT(!k->in_callback);
	/* Sends what lingers at once (rd_kafka_flush marks the handle flushing); the wait is ours, interruptible. */
	rd_kafka_flush(k->rk, 0);
	while (k->pending > 0) {
		int64_t now_ms = sl_clock_mono_ms();
		int rc;

		if (now_ms >= deadline_ms)
			return -ETIMEDOUT;
		rc = serve(k, (int)(deadline_ms - now_ms < WAIT_SLICE_MS ? deadline_ms - now_ms : WAIT_SLICE_MS));
		if (rc != 0)
			return rc;
		if (k->pending > 0)
			rd_kafka_flush(k->rk, 0);
	}
	return 0;
}

int sl_kafka_producer_pollfd(const struct sl_kafka_producer *k, struct pollfd *out)
{
	if (k->pending == 0)
		return 0;
	out->fd = k->wake.fds[0];
	out->events = POLLIN;
	out->revents = 0;
	return 1;
}

uint64_t sl_kafka_producer_pending(const struct sl_kafka_producer *k)
{
	return k->pending;
}

uint32_t sl_kafka_producer_partition_count(const struct sl_kafka_producer *k)
{
	return k->partition_count;
}

int sl_kafka_producer_timeout_ms(const struct sl_kafka_producer *k)
{
	/* librdkafka keeps its own deadlines; reports wake the descriptor of sl_kafka_producer_pollfd. A report
	 * queued before the caller started waiting is caught by this bound. */
	return k->pending == 0 ? -1 : WAIT_SLICE_MS;
}

const char *sl_kafka_producer_error(const struct sl_kafka_producer *k)
{
	return k->error;
}

void sl_kafka_producer_free(struct sl_kafka_producer *k)
{
	if (k == NULL)
		return;
	SL_ASSERT(!k->in_callback);
	if (k->rk != NULL) {
		/* Records not yet acknowledged are reported canceled, as the native producer does. */
		rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		for (int i = 0; i < 50 && k->pending > 0; i++)
			rd_kafka_poll(k->rk, WAIT_SLICE_MS / 10);
	}
	if (k->rkt != NULL)
		rd_kafka_topic_destroy(k->rkt);
	sl_kafka_wake_free(&k->wake);
	if (k->rk != NULL)
		rd_kafka_destroy(k->rk);
	free(k->bootstrap);
	free(k);
}
