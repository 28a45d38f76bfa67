/* The producer's front half: options, creation, choosing a partition, appending records to the open batch of their
 * partition and sealing batches into the bounded pool. No allocation and no syscall per record: a record is
 * copied into a preallocated builder and its opaque into a preallocated array; I/O happens only when a batch
 * seals or a deadline passed (see producer_impl.h for the whole journey). */
#include <errno.h>
#include <string.h>

#include "proto/base/clock.h"
#include "consumer/client/producer_impl.h"

_Static_assert((int)SL_ACKS_FSYNC == (int)SYNCLOG__ACKS__ACKS_FSYNC &&
                       (int)SL_ACKS_WRITTEN == (int)SYNCLOG__ACKS__ACKS_WRITTEN &&
                       (int)SL_ACKS_NONE == (int)SYNCLOG__ACKS__ACKS_NONE,
               "sl_acks values are the wire values");

void sl_producer_options_init(struct sl_producer_options *o)
{
	memset(o, 0, sizeof(*o));
	o->broker = SL_BROKER_DEFAULT;
	o->acks = SL_ACKS_FSYNC;
	o->codec = SL_BATCH_CODEC_NONE;
	o->linger_ms = 5;
	o->batch_bytes_max = 256 * 1024;
	o->batch_records_max = 16384;
	o->requests_in_flight_max = SL_PRODUCER_REQUESTS_IN_FLIGHT_MAX;
	o->buffer_bytes_max = 32u << 20;
	o->delivery_timeout_ms = 15000;
	o->retry_backoff_ms = 100;
	o->retry_backoff_ms_max = 1000;
	o->io_timeout_ms = SL_IO_TIMEOUT_MS_DEFAULT;
}

static int options_check(const struct sl_producer_options *o, char *err, size_t err_bytes)
{
	const char *bad = NULL;

	if (o->topic == NULL || o->topic[0] == '\0' || strlen(o->topic) > SL_TOPIC_NAME_BYTES_MAX)
		bad = "topic must be 1 to 200 characters";
	else if ((unsigned)o->acks > SL_ACKS_NONE)
		bad = "acks must be fsync, written or none";
	else if (o->codec != SL_BATCH_CODEC_NONE && o->codec != SL_BATCH_CODEC_ZSTD)
		bad = "codec must be none or zstd";
	else if (o->batch_bytes_max < 1024 || o->batch_bytes_max > SL_BATCH_BYTES_MAX)
		bad = "batch_bytes_max must be from 1 KiB to 64 MiB";
	else if (o->batch_records_max < 1)
		bad = "batch_records_max must be at least 1";
	else if (o->requests_in_flight_max < 1 || o->requests_in_flight_max > SL_PRODUCER_REQUESTS_IN_FLIGHT_MAX)
		bad = "requests_in_flight_max must be from 1 to 5";
	else if (o->buffer_bytes_max < o->batch_bytes_max)
		bad = "buffer_bytes_max must hold at least one batch";
	else if (o->delivery_cb == NULL)
		bad = "a delivery callback is required";
	if (bad != NULL) {
		sl_error_set(err, err_bytes, "producer options: %s", bad);
		return -EINVAL;
	}
	return 0;
}

static int producer_alloc(struct sl_producer *p)
{
	uint32_t n = p->partition_count;

	p->parts = calloc(n, sizeof(*p->parts));
	p->wire_parts = calloc(n, sizeof(*p->wire_parts));
	p->wire_part_ptrs = calloc(n, sizeof(*p->wire_part_ptrs));
	if (p->parts == NULL || p->wire_parts == NULL || p->wire_part_ptrs == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < SL_PRODUCER_REQUESTS_IN_FLIGHT_MAX; i++) {
		p->requests[i].batches = calloc(n, sizeof(*p->requests[i].batches));
		if (p->requests[i].batches == NULL)
			return -ENOMEM;
	}
	p->open.kind = PARTS_OPEN;
	p->busy.kind = PARTS_BUSY;
	for (uint32_t i = 0; i < n; i++) {
		p->parts[i].open_ms = -1;
		p->parts[i].backoff_ms = p->o.retry_backoff_ms;
		synclog__produce_partition__init(&p->wire_parts[i]);
	}
	return 0;
}

int sl_producer_new(struct sl_producer **out, const struct sl_producer_options *o, char *err, size_t err_bytes)
{
	struct sl_topic_config config;
	struct sl_partition_info *infos = NULL;
	struct sl_producer *p;
	uint32_t info_count;
	uint64_t slots;
	int rc;

	*out = NULL;
	rc = options_check(o, err, err_bytes);
	if (rc != 0)
		return rc;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	if (sl_broker_is_kafka(o->broker)) {
		rc = sl_kafka_producer_new(&p->kafka, o, err, err_bytes);
		if (rc != 0) {
			free(p);
			return rc;
		}
		*out = p;
		return 0;
	}
	p->o = *o;
	snprintf(p->topic, sizeof(p->topic), "%s", o->topic);
	p->o.topic = p->topic;
	p->sticky = -1;
	p->next_linger_ms = INT64_MAX;
	p->reconnect_backoff_ms = o->retry_backoff_ms;
	rc = sl_conn_new(&p->conn, o->broker, o->client_id != NULL ? o->client_id : "synclog-producer");
	if (rc != 0) {
		char addr_err[SL_ERROR_BYTES];
		struct sl_broker_addr addr;

		if (rc == -EINVAL && sl_broker_parse(o->broker, &addr, addr_err, sizeof(addr_err)) != 0)
			sl_error_set(err, err_bytes, "%s", addr_err);
		else
			sl_error_set(err, err_bytes, "producer: out of memory");
		free(p);
		return rc;
	}
	p->o.broker = NULL; /* the connection keeps the address; the caller's string may go */
	p->o.client_id = NULL;
	p->o.security = NULL; /* and a copy of the security options */
	rc = sl_conn_set_security(p->conn, o->security);
	if (rc != 0) {
		sl_error_set(err, err_bytes, "%s", sl_conn_error(p->conn));
		sl_conn_free(p->conn);
		free(p);
		return rc;
	}
	/* The connection's own timeout covers connect and Hello (and the setup calls here): a reconnect that
	 * hangs must not outlast the delivery timeout of the batches waiting for it. Produce requests are timed
	 * by the producer against io_timeout_ms. */
	sl_conn_set_timeout(p->conn,
	                    o->io_timeout_ms < o->delivery_timeout_ms ? o->io_timeout_ms : o->delivery_timeout_ms);
	rc = sl_conn_connect(p->conn);
	if (rc == 0)
		rc = sl_topic_describe(p->conn, p->topic, &config, &infos, &info_count);
	free(infos);
	if (rc == 0)
		p->partition_count = config.partitions;
	if (rc == 0 && p->partition_count == 0) {
		sl_conn_set_error(p->conn, "topic '%s' has no partitions", p->topic);
		rc = -EPROTO;
	}
	if (rc == 0)
		rc = sl_producer_id_init(p->conn, &p->producer_id, &p->producer_epoch);
	/* The same sum requests_send checks a batch against: a full batch always fits a request of its own. */
	if (rc == 0 && (uint64_t)o->batch_bytes_max + REQUEST_OVERHEAD_BYTES + REQUEST_BATCH_OVERHEAD_BYTES >
	                       sl_conn_frame_bytes_max(p->conn)) {
		sl_conn_set_error(p->conn, "a batch of %u bytes does not fit the broker's frame limit of %u bytes",
		                  o->batch_bytes_max, sl_conn_frame_bytes_max(p->conn));
		rc = -EMSGSIZE;
	}
	if (rc != 0) {
		sl_error_set(err, err_bytes, "%s", sl_conn_error(p->conn));
		p->partition_count = 0;
		sl_producer_free(p);
		return rc;
	}
	rc = producer_alloc(p);
	if (rc != 0) {
		sl_error_set(err, err_bytes, "producer: out of memory for %u partitions", p->partition_count);
		sl_producer_free(p);
		return rc;
	}
	/* Enough sealed batches to keep every request slot full and one more filling behind them. */
	slots = o->buffer_bytes_max / o->batch_bytes_max;
	if (slots < (uint64_t)o->requests_in_flight_max + 1)
		slots = o->requests_in_flight_max + 1;
	p->sealed_max = slots > UINT32_MAX ? UINT32_MAX : (uint32_t)slots;
	*out = p;
	return 0;
}

void producer_report(struct sl_producer *p, void *opaque, const struct sl_delivery *d)
{
	SL_ASSERT(p->pending > 0);
	p->pending--;
	p->in_callback = true;
	p->o.delivery_cb(opaque, d, p->o.delivery_cb_arg);
	p->in_callback = false;
}

void producer_cancel_open(struct sl_producer *p, struct producer_part *pt, int status, const char *error)
{
	struct sl_delivery d = {.status = status, .partition = (uint32_t)(pt - p->parts), .offset = -1, .error = error};
	int32_t n;

	if (pt->builder.buf == NULL)
		return;
	n = pt->builder.record_count;
	sl_batch_builder_reset(&pt->builder);
	pt->open_ms = -1;
	producer_list_remove(&p->open, pt);
	for (int32_t i = 0; i < n; i++)
		producer_report(p, pt->opaques[i], &d);
}

void producer_pool_put(struct sl_producer *p, struct sealed *s)
{
	/* Invariant 6: from the pool, s->bytes is reused by the next seal; the connection lets go of it first. */
	(void)sl_conn_release(p->conn, s->bytes, s->len);
	s->next = p->pool;
	p->pool = s;
}

static struct sealed *pool_get(struct sl_producer *p)
{
	struct sealed *s = p->pool;

	if (s != NULL) {
		p->pool = s->next;
		return s;
	}
	if (p->sealed_count == p->sealed_max)
		return NULL;
	/* The pool grows to sealed_max once and is kept: steady state allocates nothing. */
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->bytes = malloc(p->o.batch_bytes_max);
	s->opaques = malloc((size_t)p->o.batch_records_max * sizeof(*s->opaques));
	if (s->bytes == NULL || s->opaques == NULL) {
		free(s->bytes);
		free(s->opaques);
		free(s);
		return NULL;
	}
	p->sealed_count++;
	return s;
}

/* Kafka's DefaultRecordBatch.incrementSequence: sequences wrap from INT32_MAX to 0. */
static int32_t sequence_add(int32_t sequence, int32_t increment)
{
	if (sequence > INT32_MAX - increment)
		return increment - (INT32_MAX - sequence) - 1;
	return sequence + increment;
}

int producer_seal(struct sl_producer *p, struct producer_part *pt, int64_t now_ms)
{
	struct sl_batch_builder *b = &pt->builder;
	const uint8_t *bytes;
	struct sealed *s;
	void **swap;
	size_t len;
	int rc;

	if (b->buf == NULL || b->record_count == 0)
		return 0;
	if (pt->failing)
		return -EAGAIN;
	s = pool_get(p);
	if (s == NULL)
		return -EAGAIN;
	b->producer_id = p->producer_id;
	b->producer_epoch = p->producer_epoch;
	b->base_sequence = pt->next_sequence;
	rc = sl_batch_builder_finish(b, p->o.codec, &bytes, &len);
	if (rc != 0 && p->o.codec != SL_BATCH_CODEC_NONE) {
		/* The compressor failed (out of memory): the records still go, uncompressed. */
		rc = sl_batch_builder_finish(b, SL_BATCH_CODEC_NONE, &bytes, &len);
	}
	SL_ASSERT(rc == 0 && len <= p->o.batch_bytes_max);
	/* The builder's buffers and a sealed batch's are all batch_bytes_max bytes from malloc: the finished batch
	 * changes hands by swapping buffers, not by a copy (a 256 KiB memcpy per batch was 7% of the producer's
	 * time with 1 KiB records). */
	SL_ASSERT(b->bytes_max == p->o.batch_bytes_max);
	if (bytes == b->buf) {
		uint8_t *t = b->buf;

		b->buf = s->bytes;
		s->bytes = t;
	} else if (bytes == b->zbuf) {
		uint8_t *t = b->zbuf;

		b->zbuf = s->bytes;
		s->bytes = t;
	} else {
		memcpy(s->bytes, bytes, len);
	}
	s->len = len;
	swap = s->opaques;
	s->opaques = pt->opaques;
	pt->opaques = swap;
	s->record_count = (uint32_t)b->record_count;
	s->partition = (uint32_t)(pt - p->parts);
	s->base_sequence = pt->next_sequence;
	s->state = SEALED_QUEUED;
	s->ever_sent = false;
	s->duplicate = false;
	s->attempts = 0;
	s->created_ms = pt->open_ms;
	s->retry_at_ms = now_ms;
	s->cid = 0;
	s->base_offset = -1;
	s->status = 0;
	s->error[0] = '\0';
	s->next = NULL;
	if (pt->tail != NULL) {
		pt->tail->next = s;
	} else {
		pt->head = s;
		producer_list_append(&p->busy, pt);
		SL_ASSERT(p->busy.count <= p->sealed_count); /* invariant 7: each busy partition holds a sealed batch */
	}
	pt->tail = s;
	pt->next_sequence = sequence_add(pt->next_sequence, b->record_count);
	sl_batch_builder_reset(b);
	pt->open_ms = -1;
	producer_list_remove(&p->open, pt);
	if (p->sticky == (int32_t)s->partition)
		p->sticky = -1;
	return 0;
}

/* Walks the open list from its oldest batch (invariant 7): it stops at the first batch not due yet, whose deadline
 * is the earliest of the rest, or when the pool is empty. A failing partition is not in the list: it seals nothing
 * (invariant 4), and its deadline would only spin the loop. */
void producer_seal_due(struct sl_producer *p, int64_t now_ms)
{
	struct producer_part *pt, *after;
	int64_t next = INT64_MAX;

	for (pt = p->open.head; pt != NULL; pt = after) {
		int64_t due = pt->open_ms + p->o.linger_ms;

		after = producer_list_next(&p->open, pt);
		p->walk_visits++;
		if (!p->flushing && due > now_ms) {
			next = due < next ? due : next;
			break;
		}
		/* While an earlier batch of the partition still waits for a request slot, the open batch keeps filling
		 * instead of closing into a batch of its own: its records would wait for the slot either way, and one
		 * batch costs the broker one append where many small ones cost many (Kafka's accumulator does the
		 * same). It is looked at again within a millisecond, and at once when an answer frees a slot
		 * (producer_io). Such partitions are busy, so there are at most sealed_max of them to step over. */
		if (!p->flushing && pt->tail != NULL && pt->tail->state == SEALED_QUEUED) {
			next = now_ms + 1 < next ? now_ms + 1 : next;
			continue;
		}
		if (producer_seal(p, pt, now_ms) != 0) {
			/* The pool is empty, so no later batch seals either; this one is the oldest still waiting. */
			next = due < next ? due : next;
			break;
		}
	}
	p->next_linger_ms = next;
}

static int32_t choose_partition(struct sl_producer *p, const struct sl_record *r)
{
	if (r->key != NULL && r->key_len >= 0)
		return (int32_t)sl_partition_for_key(r->key, (size_t)r->key_len, p->partition_count);
	if (p->sticky < 0)
		p->sticky = (int32_t)(p->rr_next++ % p->partition_count);
	return p->sticky;
}

/* Wait, doing I/O, until pt can take a new batch: its open batch was sealed or canceled. Bounded: batches in
 * flight are answered, time out or fail within the delivery timeout plus one request timeout. */
static int wait_for_room(struct sl_producer *p, struct producer_part *pt)
{
	int64_t deadline_ms = sl_clock_mono_ms() + p->o.delivery_timeout_ms + p->o.io_timeout_ms;

	for (;;) {
		int64_t now_ms = sl_clock_mono_ms();
		int rc;

		if (producer_seal(p, pt, now_ms) == 0)
			return 0;
		if (now_ms >= deadline_ms) {
			sl_error_set(p->error, sizeof(p->error),
			             "producer buffer still full after %u ms: the broker does not acknowledge",
			             p->o.delivery_timeout_ms + p->o.io_timeout_ms);
			return -ETIMEDOUT;
		}
		rc = producer_io(p, (int)(deadline_ms - now_ms));
		if (rc != 0)
			return rc;
	}
}

/* The open batch of partition, its builder allocated on the partition's first record. */
static int part_ready(struct sl_producer *p, int32_t partition, struct producer_part **out)
{
	struct producer_part *pt = &p->parts[partition];
	int rc;

	if (pt->builder.buf == NULL) {
		rc = sl_batch_builder_init(&pt->builder, p->o.batch_bytes_max);
		if (rc == 0) {
			pt->opaques = malloc((size_t)p->o.batch_records_max * sizeof(*pt->opaques));
			if (pt->opaques == NULL) {
				sl_batch_builder_free(&pt->builder);
				rc = -ENOMEM;
			}
		}
		if (rc != 0) {
			sl_error_set(p->error, sizeof(p->error), "out of memory for the batch of partition %d",
			             partition);
			return rc;
		}
	}
	*out = pt;
	return 0;
}

static int send_refused(struct sl_producer *p, const struct sl_record *r, int rc)
{
	int64_t bytes = (int64_t)(r->key_len > 0 ? r->key_len : 0) + (r->value_len > 0 ? r->value_len : 0) +
	                (r->idempotency_key != NULL ? r->idempotency_key_len : 0);

	if (bytes + 256 >= p->o.batch_bytes_max || rc == -ENOSPC) {
		sl_error_set(p->error, sizeof(p->error), "record of %lld bytes does not fit in a batch of %u bytes",
		             (long long)bytes, p->o.batch_bytes_max);
		return -EMSGSIZE;
	}
	sl_error_set(p->error, sizeof(p->error), "record has invalid fields (lengths, op or origin)");
	return -EINVAL;
}

/* Records sl_producer_send appends between two readings of the clock. Reading it for every record was 4-7% of
 * the producer's CPU with 1 KiB records (bench/results/profiles.md, W2). A busy sender notices a passed linger
 * deadline within this many records; a sender that pauses has its deadlines met by sl_producer_poll, _flush and
 * _timeout_ms, which read the clock themselves, as its event loop already relies on (synclog.h). */
#define SEND_CLOCK_RECORDS 64

int sl_producer_send(struct sl_producer *p, int32_t partition, const struct sl_record *r, void *opaque)
{
	bool sticky = partition == SL_PARTITION_ANY && (r->key == NULL || r->key_len < 0);
	bool sealed = false, linger_passed = false;
	struct producer_part *pt;
	int rc;

	if (p->kafka != NULL)
		return sl_kafka_producer_send(p->kafka, partition, r, opaque);

	SL_ASSERT(!p->in_callback);
	if (p->o.backfill && r->origin != SL_ORIGIN_BACKFILL) {
		sl_error_set(
		        p->error, sizeof(p->error),
		        "a backfill producer sends only origin=backfill records, not origin=%s: its requests count "
		        "against the broker's backfill quota",
		        sl_origin_name(r->origin));
		return -EINVAL;
	}
	if (partition == SL_PARTITION_ANY)
		partition = choose_partition(p, r);
	if (partition < 0 || (uint32_t)partition >= p->partition_count) {
		sl_error_set(p->error, sizeof(p->error), "partition %d does not exist: topic '%s' has %u", partition,
		             p->topic, p->partition_count);
		return -EINVAL;
	}
	/* At most twice: a full batch is sealed once, and the record fits an empty one or never. */
	for (int attempt = 0;; attempt++) {
		rc = part_ready(p, partition, &pt);
		if (rc != 0)
			return rc;
		if ((uint32_t)pt->builder.record_count == p->o.batch_records_max)
			rc = -ENOSPC;
		else
			rc = sl_batch_builder_add(&pt->builder, r);
		if (rc != -ENOSPC || attempt == 1)
			break;
		rc = wait_for_room(p, pt);
		if (rc != 0)
			return rc;
		sealed = true;
		/* A keyless record that closed the sticky batch starts the next partition's (Kafka's sticky
		 * partitioner): sealing cleared the choice. */
		if (sticky)
			partition = choose_partition(p, r);
	}
	if (rc != 0)
		return send_refused(p, r, rc);
	pt->opaques[pt->builder.record_count - 1] = opaque;
	p->pending++;
	/* The clock is read when a batch opens (its linger and delivery timeout count from there) and every
	 * SEND_CLOCK_RECORDS records after, not for every record. */
	if (pt->open_ms < 0 || ++p->sends_unclocked >= SEND_CLOCK_RECORDS) {
		int64_t now_ms = sl_clock_mono_ms();

		p->sends_unclocked = 0;
		if (pt->open_ms < 0) {
			pt->open_ms = now_ms;
			/* Invariant 7: opens read a monotonic clock, so the open list stays in open_ms order. */
			SL_ASSERT(p->open.tail == NULL || p->open.tail->open_ms <= now_ms);
			if (!pt->failing)
				producer_list_append(&p->open, pt);
			if (now_ms + p->o.linger_ms < p->next_linger_ms)
				p->next_linger_ms = now_ms + p->o.linger_ms;
		}
		linger_passed = now_ms >= p->next_linger_ms;
	}
	/* The hot path ends here unless a batch just sealed or a linger deadline passed. */
	if (sealed || linger_passed)
		(void)producer_io(p, 0); /* does not wait, so it has nothing to be interrupted */
	return 0;
}

int sl_producer_poll(struct sl_producer *p, uint32_t timeout_ms)
{
	int rc;

	if (p->kafka != NULL)
		return sl_kafka_producer_poll(p->kafka, timeout_ms);

	SL_ASSERT(!p->in_callback);
	rc = producer_io(p, timeout_ms > INT32_MAX ? INT32_MAX : (int)timeout_ms);
	if (rc != 0)
		return rc;
	return p->pending > INT32_MAX ? INT32_MAX : (int)p->pending;
}

int sl_producer_flush(struct sl_producer *p, int timeout_ms)
{
	int64_t deadline_ms = timeout_ms < 0 ? INT64_MAX : sl_clock_mono_ms() + timeout_ms;
	int rc = 0;

	if (p->kafka != NULL)
		return sl_kafka_producer_flush(p->kafka, timeout_ms);

	SL_ASSERT(!p->in_callback);
	p->flushing = true;
	while (p->pending > 0) {
		int64_t now_ms = sl_clock_mono_ms();

		if (now_ms >= deadline_ms) {
			rc = -ETIMEDOUT;
			break;
		}
		rc = producer_io(p, deadline_ms == INT64_MAX ? -1 : (int)(deadline_ms - now_ms));
		if (rc != 0)
			break;
	}
	p->flushing = false;
	return rc;
}

uint64_t sl_producer_pending(const struct sl_producer *p)
{
	if (p->kafka != NULL)
		return sl_kafka_producer_pending(p->kafka);

	return p->pending;
}

uint32_t sl_producer_partition_count(const struct sl_producer *p)
{
	if (p->kafka != NULL)
		return sl_kafka_producer_partition_count(p->kafka);

	return p->partition_count;
}

int sl_producer_timeout_ms(const struct sl_producer *p)
{
	if (p->kafka != NULL)
		return sl_kafka_producer_timeout_ms(p->kafka);

	if (p->pending == 0)
		return -1;
	return producer_next_event_ms(p, sl_clock_mono_ms(), NULL);
}

int sl_producer_pollfd(const struct sl_producer *p, struct pollfd *out)
{
	if (p->kafka != NULL)
		return sl_kafka_producer_pollfd(p->kafka, out);

	if (p->conn->fd < 0 || (p->requests_in_flight == 0 && sl_conn_unsent(p->conn) == 0))
		return 0;
	out->fd = p->conn->fd;
	out->events = (short)((p->requests_in_flight > 0 ? POLLIN : 0) | (sl_conn_unsent(p->conn) > 0 ? POLLOUT : 0));
	out->revents = 0;
	return 1;
}

const char *sl_producer_error(const struct sl_producer *p)
{
	if (p->kafka != NULL)
		return sl_kafka_producer_error(p->kafka);

	return p->error;
}

static void sealed_free(struct sealed *s)
{
	free(s->bytes);
	free(s->opaques);
	free(s);
}

void sl_producer_free(struct sl_producer *p)
{
	static const char closed[] = "producer closed before the record was acknowledged: flush before closing";

	if (p == NULL)
		return;
	if (p->kafka != NULL) {
		sl_kafka_producer_free(p->kafka);
		free(p);
		return;
	}
	SL_ASSERT(!p->in_callback);
	/* Unsent requests would not be sent anyway; closing first means no batch freed below is still referenced by
	 * the connection (producer_impl.h, invariant 6). */
	if (p->conn != NULL)
		sl_conn_close(p->conn);
	for (uint32_t i = 0; p->parts != NULL && i < p->partition_count; i++) {
		struct producer_part *pt = &p->parts[i];

		/* Whatever is still queued is canceled; answers already in are reported as they are. */
		for (struct sealed *s = pt->head; s != NULL; s = s->next) {
			if (s->state == SEALED_QUEUED || s->state == SEALED_IN_FLIGHT) {
				s->state = SEALED_FAILED;
				s->status = -ECANCELED;
				snprintf(s->error, sizeof(s->error), "%s", closed);
			}
		}
		pt->failing = false;
		producer_deliver(p, pt);
		producer_cancel_open(p, pt, -ECANCELED, closed);
		sl_batch_builder_free(&pt->builder);
		free(pt->opaques);
	}
	while (p->pool != NULL) {
		struct sealed *s = p->pool;

		p->pool = s->next;
		sealed_free(s);
	}
	for (uint32_t i = 0; i < SL_PRODUCER_REQUESTS_IN_FLIGHT_MAX; i++)
		free(p->requests[i].batches);
	free(p->parts);
	free(p->wire_parts);
	free(p->wire_part_ptrs);
	sl_conn_free(p->conn);
	free(p);
}
