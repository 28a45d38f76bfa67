/* Produce: validate each partition's batch (length, CRC32C, record count), apply the idempotent-producer rules,
 * append through the partition log without re-encoding, and answer once every append reached the requested
 * level. Appends refused by a full log window wait in the partition's queue, in order.
 *
 * The backfill quota (synclogd --backfill-rate-max): a request the producer declares backfill
 * (ProduceRequest.backfill) is charged, by the record counts of its batch headers, to its topic's token bucket
 * (proto/base/rate.h, fed with the loop's cached time). When that leaves a debt, the records are appended at once
 * but the answer is held back until the debt is paid, at most HOLD_MS_MAX, and says how long in throttle_ms; a
 * client that has its requests in flight answered no faster cannot send faster, as with Kafka's quotas. Nothing
 * here reads a record: the cost is one bucket update per request. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/base/clock.h"
#include "proto/base/assert.h"
#include "broker/handlers/handlers.h"
#include "proto/errors.h"
#include "proto/batch.h"
#include "proto/limits.h"

/* The longest an answer is held back: Kafka's default quota window (11 samples of 1 s) and well below a client's
 * request timeout (30 s), so a held answer is never taken for a lost one. A larger debt is announced in
 * throttle_ms; our producer waits out the rest before it sends again (producer_io.c). */
#define HOLD_MS_MAX 10000

struct sl_produce_item {
	struct sl_append append; /* first: the append's data points back at the item */
	struct sl_req *req;
	struct sl_partition *part;
	Synclog__ProducePartitionResult result;
	int64_t producer_id;
	int32_t base_sequence;
	int32_t record_count;
	uint32_t origins[SL_ORIGIN_COUNT]; /* records per origin, counted while validating */
	char error_message[256];
};

static void item_error(struct sl_produce_item *it, Synclog__ErrorCode code, const char *msg)
{
	it->result.error = code;
	snprintf(it->error_message, sizeof(it->error_message), "%.*s", (int)sizeof(it->error_message) - 1, msg);
	it->result.error_message = it->error_message;
	it->result.base_offset = -1;
	it->result.last_offset = -1;
}

static void produce_free_body(struct sl_req *req)
{
	free(req->items);
	free(req->produce_results);
}

static void hold_timer_free_cb(uv_handle_t *h)
{
	free(h);
}

/* The cancel hook of a held answer (request.h): answer now; the front end drops it when the client is gone. */
static void hold_end(struct sl_req *req, int drop)
{
	uv_timer_t *t = req->wait_timer;

	(void)drop;
	uv_timer_stop(t);
	uv_close((uv_handle_t *)t, hold_timer_free_cb);
	req->wait_timer = NULL;
	sl_req_unpark(req);
	sl_req_respond(req);
}

static void hold_timeout_cb(uv_timer_t *t)
{
	hold_end(t->data, 0);
}

/* Answer now, or after req->hold_ms when the backfill quota asks for it. */
static void answer(struct sl_req *req)
{
	if (req->hold_ms == 0)
		goto now;
	req->wait_timer = malloc(sizeof(*req->wait_timer));
	if (req->wait_timer == NULL)
		goto now; /* the quota gives way before the answer does */
	uv_timer_init(&req->srv->loop, req->wait_timer);
	req->wait_timer->data = req;
	uv_timer_start(req->wait_timer, hold_timeout_cb, req->hold_ms, 0);
	sl_req_park(req, hold_end);
	return;
now:
	sl_req_respond(req);
}

static void item_done(struct sl_produce_item *it)
{
	struct sl_req *req = it->req;
	SL_ASSERT(req->pending > 0);
	req->pending--;
	if (req->pending > 0)
		return;
	if (!req->responded && !req->parked)
		answer(req);
	else
		sl_req_release(req);
}

/* The topic's per-origin counters: a batch's bytes are shared among its origins by record count. */
static void counters_add(struct sl_topic_counters *tc, const struct sl_produce_item *it, size_t bytes)
{
	uint32_t counted = it->origins[0] + it->origins[1] + it->origins[2];
	tc->produce_batches++;
	if (counted != (uint32_t)it->record_count) {
		/* Records not walked: counted as live. */
		tc->produce_records[SL_ORIGIN_LIVE] += (uint64_t)it->record_count;
		tc->produce_bytes[SL_ORIGIN_LIVE] += bytes;
		return;
	}
	uint64_t left = bytes;
	for (int k = SL_ORIGIN_COUNT - 1; k >= 0; k--) {
		uint64_t share = k == 0 ? left : (uint64_t)bytes * it->origins[k] / counted;
		tc->produce_records[k] += it->origins[k];
		tc->produce_bytes[k] += share;
		left -= share;
	}
}

/* Charge the records of a backfill request's appends to its topic's bucket; set how long to hold the answer. */
static void backfill_charge(struct sl_req *req, struct sl_topic *topic)
{
	struct sl_server *srv = req->srv;
	uint64_t records = 0;
	int64_t wait_ns, now_ns = (int64_t)uv_now(&srv->loop) * 1000000;
	uint64_t throttle_ms;

	if (topic->backfill_rate.per_s != (double)srv->cfg.backfill_rate_max)
		/* One second of burst: a backfill that pauses may catch up for a second, no more. */
		sl_rate_init(&topic->backfill_rate, (double)srv->cfg.backfill_rate_max,
		             (double)srv->cfg.backfill_rate_max, now_ns);
	for (size_t i = 0; i < req->item_count; i++)
		if (req->items[i].append.cb != NULL)
			records += (uint64_t)req->items[i].record_count;
	wait_ns = sl_rate_take(&topic->backfill_rate, (double)records, now_ns);
	throttle_ms = ((uint64_t)wait_ns + 999999) / 1000000;
	if (throttle_ms > UINT32_MAX)
		throttle_ms = UINT32_MAX;
	req->produce.throttle_ms = (uint32_t)throttle_ms;
	req->hold_ms = throttle_ms > HOLD_MS_MAX ? HOLD_MS_MAX : (uint32_t)throttle_ms;
}

static void append_cb(struct sl_append *a, int status)
{
	struct sl_produce_item *it = a->data;
	struct sl_server *srv = it->req->srv;
	if (it->producer_id >= 0)
		sl_producer_state_done(&it->part->producers, it->producer_id, it->base_sequence, status, a->base_offset,
		                       a->last_offset);
	if (status == 0) {
		it->result.base_offset = a->base_offset;
		it->result.last_offset = a->last_offset;
		srv->stats.produce_batches++;
		srv->stats.produce_records += (uint64_t)it->record_count;
		srv->stats.produce_bytes += a->len;
		counters_add(&it->part->topic->counters, it, a->len);
	} else {
		char msg[256];
		snprintf(msg, sizeof(msg), "append to %.100s/%u failed: %s; nothing was acknowledged",
		         it->part->topic->cfg.name, it->part->index, strerror(-status));
		item_error(it, sl_errno_to_code(status), msg);
		srv->stats.produce_errors++;
	}
	struct sl_partition *p = it->part;
	item_done(it);
	sl_partition_progress(srv, p);
}

static void blocked_push(struct sl_partition *p, struct sl_append *a)
{
	a->next = NULL;
	if (p->blocked_tail)
		p->blocked_tail->next = a;
	else
		p->blocked_head = a;
	p->blocked_tail = a;
}

/* Try to append; a full window queues it behind the others of this partition. */
static void append_or_queue(struct sl_partition *p, struct sl_produce_item *it)
{
	int rc = p->blocked_head ? -EAGAIN : sl_log_append(p->log, &it->append);
	if (rc == -EAGAIN) {
		blocked_push(p, &it->append);
		return;
	}
	if (rc < 0)
		append_cb(&it->append, rc);
}

void sl_partition_progress(struct sl_server *srv, struct sl_partition *p)
{
	struct sl_append *a;
	while (p->log && (a = p->blocked_head) != NULL) {
		struct sl_append *next = a->next;
		int rc = sl_log_append(p->log, a);
		if (rc == -EAGAIN)
			break;
		p->blocked_head = next;
		if (p->blocked_head == NULL)
			p->blocked_tail = NULL;
		if (rc < 0)
			append_cb(a, rc);
	}
	sl_fetch_wake(p);
}

static enum sl_durability level_of(Synclog__Acks acks)
{
	switch (acks) {
	case SYNCLOG__ACKS__ACKS_WRITTEN:
		return SL_DURABILITY_WRITTEN;
	case SYNCLOG__ACKS__ACKS_NONE:
		return SL_DURABILITY_NONE;
	default:
		return SL_DURABILITY_FSYNC;
	}
}

static void produce_one(struct sl_req *req, struct sl_topic *topic, Synclog__ProducePartition *pp,
                        struct sl_produce_item *it, enum sl_durability level)
{
	struct sl_server *srv = req->srv;
	it->req = req;
	it->producer_id = -1;
	synclog__produce_partition_result__init(&it->result);
	it->result.partition = pp->partition;
	it->result.base_offset = -1;
	it->result.last_offset = -1;
	if (pp->partition >= topic->cfg.partitions) {
		item_error(it, SYNCLOG__ERROR_CODE__UNKNOWN_PARTITION, "no such partition in this topic");
		return;
	}
	struct sl_partition *p = &topic->parts[pp->partition];
	it->part = p;
	if (p->log == NULL) {
		item_error(it, SYNCLOG__ERROR_CODE__PARTITION_UNAVAILABLE, p->open_error);
		return;
	}
	if (srv->scratch == NULL) {
		srv->scratch_cap = SL_BATCH_BYTES_MAX;
		srv->scratch = malloc(srv->scratch_cap);
		if (srv->scratch == NULL) {
			item_error(it, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
			return;
		}
	}
	struct sl_batch_header h;
	const char *why = NULL;
	int rc = sl_batch_validate_counting(pp->batch.data, pp->batch.len, &h, srv->scratch, srv->scratch_cap, &why,
	                                    it->origins);
	if (rc == -ENOTSUP) {
		item_error(it, SYNCLOG__ERROR_CODE__UNSUPPORTED_CODEC, "batch codec not supported: use none or zstd");
		return;
	}
	if (rc < 0) {
		char msg[200];
		snprintf(msg, sizeof(msg), "corrupt batch (%s): nothing was appended", why ? why : "invalid");
		item_error(it, SYNCLOG__ERROR_CODE__CORRUPT_BATCH, msg);
		return;
	}
	/* The topic's own segment size when it has one: a batch must fit in one segment. */
	int64_t segment_bytes, segment_ms;
	sl_topic_segment_limits(&srv->topics, &topic->cfg, &segment_bytes, &segment_ms);
	if ((int64_t)pp->batch.len > segment_bytes) {
		char msg[200];
		snprintf(msg, sizeof(msg),
		         "batch of %zu bytes larger than a segment (%lld bytes): send smaller batches",
		         (size_t)pp->batch.len, (long long)segment_bytes);
		item_error(it, SYNCLOG__ERROR_CODE__BATCH_TOO_LARGE, msg);
		return;
	}
	/* Refuse what synclog does not implement rather than store it with a meaning it would not keep. */
	if (h.attributes & (SL_BATCH_ATTR_TRANSACTIONAL | SL_BATCH_ATTR_CONTROL)) {
		item_error(it, SYNCLOG__ERROR_CODE__UNSUPPORTED_BATCH,
		           "transactional and control batches are not supported: send plain batches (attribute bits 4 "
		           "and 5 clear); nothing was appended");
		return;
	}
	if (h.producer_id < -1 || (h.producer_id >= 0 && (h.producer_epoch < 0 || h.base_sequence < 0))) {
		item_error(it, SYNCLOG__ERROR_CODE__UNSUPPORTED_BATCH,
		           "producer fields out of range: producer id -1 (not idempotent), or an id from InitProducer "
		           "with epoch and base sequence >= 0; nothing was appended");
		return;
	}
	it->record_count = h.record_count;
	if (h.producer_id >= 0) {
		if (h.producer_id >= srv->next_producer_id) {
			item_error(it, SYNCLOG__ERROR_CODE__UNKNOWN_PRODUCER,
			           "producer id was not issued by this broker: call InitProducer");
			return;
		}
		/* A producer id new to this partition takes a place in its table: one connection may bring in only
		 * a few (request.h, struct sl_session), so it cannot push real producers out. */
		if (!sl_producer_state_known(&p->producers, h.producer_id) &&
		    sl_session_producer_id_admit(req->session, h.producer_id) < 0) {
			item_error(it, SYNCLOG__ERROR_CODE__THROTTLED,
			           "this connection already brought " SL_STR(
			                   SL_SESSION_PRODUCER_IDS_MAX) " producer ids to the broker: use one of them");
			return;
		}
		struct sl_producer_batch dup;
		int verdict = sl_producer_state_check(&p->producers, h.producer_id, h.producer_epoch, h.base_sequence,
		                                      h.record_count, sl_clock_wall_ms(), &dup);
		switch (verdict) {
		case SL_PRODUCER_APPEND:
			it->producer_id = h.producer_id;
			it->base_sequence = h.base_sequence;
			break;
		case SL_PRODUCER_DUPLICATE:
			if (dup.base_offset < 0) {
				item_error(it, SYNCLOG__ERROR_CODE__THROTTLED,
				           "the original of this retried batch is still being written: retry shortly");
			} else {
				it->result.base_offset = dup.base_offset;
				it->result.last_offset = dup.last_offset;
				it->result.duplicate = 1;
			}
			return;
		case SL_PRODUCER_FENCED:
			item_error(it, SYNCLOG__ERROR_CODE__UNKNOWN_PRODUCER,
			           "producer epoch is older than one already seen: this producer was fenced");
			return;
		case SL_PRODUCER_OUT_OF_ORDER:
			item_error(it, SYNCLOG__ERROR_CODE__OUT_OF_ORDER_SEQUENCE,
			           "sequence gap: the batch before this one was not appended; resend from it");
			return;
		default:
			item_error(it, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
			return;
		}
	}
	it->append.batch = pp->batch.data;
	it->append.len = pp->batch.len;
	it->append.level = level;
	it->append.cb = append_cb;
	it->append.data = it;
	req->pending++;
	append_or_queue(p, it);
}

void sl_handle_produce(struct sl_req *req)
{
	Synclog__ProduceRequest *pr = req->msg->produce;
	struct sl_topic *topic = sl_topics_find(&req->srv->topics, pr->topic ? pr->topic : "");
	if (topic == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__UNKNOWN_TOPIC, "unknown topic '%.200s': create it first",
		            pr->topic ? pr->topic : "");
		sl_req_respond(req);
		return;
	}
	if (pr->acks != SYNCLOG__ACKS__ACKS_FSYNC && pr->acks != SYNCLOG__ACKS__ACKS_WRITTEN &&
	    pr->acks != SYNCLOG__ACKS__ACKS_NONE) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INVALID_REQUEST, "unknown acks value %d", (int)pr->acks);
		sl_req_respond(req);
		return;
	}
	req->item_count = pr->n_partitions;
	req->items = calloc(pr->n_partitions ? pr->n_partitions : 1, sizeof(*req->items));
	req->produce_results = calloc(pr->n_partitions ? pr->n_partitions : 1, sizeof(*req->produce_results));
	req->free_body = produce_free_body;
	if (req->items == NULL || req->produce_results == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		sl_req_respond(req);
		return;
	}
	synclog__produce_response__init(&req->produce);
	req->produce.n_results = pr->n_partitions;
	req->produce.results = req->produce_results;
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_PRODUCE;
	req->resp.produce = &req->produce;
	enum sl_durability level = level_of(pr->acks);
	/* Hold one pending count while queuing, so a synchronous failure cannot answer half-way through. */
	req->pending++;
	for (size_t i = 0; i < pr->n_partitions; i++) {
		req->produce_results[i] = &req->items[i].result;
		produce_one(req, topic, pr->partitions[i], &req->items[i], level);
	}
	if (pr->backfill && req->srv->cfg.backfill_rate_max > 0)
		backfill_charge(req, topic);
	if (level == SL_DURABILITY_NONE && !req->responded) {
		/* acks=none: the producer does not wait; the request stays alive until its appends called back. */
		answer(req);
	}
	struct sl_produce_item hold = {.req = req};
	item_done(&hold);
}
