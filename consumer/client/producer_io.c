/* The producer's back half: sealed batches to Produce requests and answers back to callbacks, with retries that
 * keep each partition's batches in sequence order (producer_impl.h, invariants 1 to 4). A retry re-sends the same
 * bytes with the same producer id and sequence, so a batch the broker already appended is answered as a
 * duplicate with its original offsets and nothing is written twice. */
#include <errno.h>
#include <poll.h>
#include <string.h>

#include "proto/base/clock.h"
#include "consumer/client/producer_impl.h"

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

/* The first batch of pt that still has to be sent: invariant 1 lets only this one go. */
static struct sealed *first_queued(const struct producer_part *pt)
{
	for (struct sealed *s = pt->head; s != NULL; s = s->next) {
		if (s->state == SEALED_QUEUED)
			return s;
		if (s->state == SEALED_FAILED)
			return NULL;
	}
	return NULL;
}

static bool pool_has_room(const struct sl_producer *p)
{
	return p->pool != NULL || p->sealed_count < p->sealed_max;
}

int producer_next_event_ms(const struct sl_producer *p, int64_t now_ms, uint64_t *visits)
{
	bool connected = p->conn->fd >= 0, queued = false;
	int64_t next = INT64_MAX;

	/* Without room in the pool, a batch due to seal waits for an answer, not for a time. */
	if (pool_has_room(p))
		next = p->next_linger_ms;
	for (const struct producer_part *pt = p->busy.head; pt != NULL; pt = producer_list_next(&p->busy, pt)) {
		const struct sealed *s = first_queued(pt);

		if (visits != NULL)
			(*visits)++;
		if (s == NULL)
			continue;
		queued = true;
		/* A retry that is due but not sent waits for a request slot, which an answer frees. */
		if (connected && p->requests_in_flight < p->o.requests_in_flight_max)
			next = min64(next,
			             s->retry_at_ms > p->throttle_until_ms ? s->retry_at_ms : p->throttle_until_ms);
		next = min64(next, s->created_ms + p->o.delivery_timeout_ms);
	}
	if (!connected && queued)
		next = min64(next, p->reconnect_at_ms);
	for (uint32_t i = 0; i < SL_PRODUCER_REQUESTS_IN_FLIGHT_MAX; i++)
		if (p->requests[i].cid != 0)
			next = min64(next, p->requests[i].sent_ms + p->o.io_timeout_ms);
	if (next == INT64_MAX)
		return -1;
	if (next <= now_ms)
		return 0;
	return next - now_ms > INT32_MAX ? INT32_MAX : (int)(next - now_ms);
}

void producer_deliver(struct sl_producer *p, struct producer_part *pt)
{
	struct sealed *s;
	bool failed_left = false;

	while ((s = pt->head) != NULL && (s->state == SEALED_ACKED || s->state == SEALED_FAILED)) {
		struct sl_delivery d = {
		        .status = s->state == SEALED_ACKED ? 0 : s->status,
		        .partition = s->partition,
		        .duplicate = s->duplicate,
		        .error = s->state == SEALED_ACKED ? NULL : s->error,
		};

		pt->head = s->next;
		if (pt->head == NULL) {
			pt->tail = NULL;
			producer_list_remove(&p->busy, pt);
		}
		for (uint32_t i = 0; i < s->record_count; i++) {
			/* With acks none the broker answers before it assigns offsets: they stay unknown (-1). */
			d.offset = s->state == SEALED_ACKED && s->base_offset >= 0 ? s->base_offset + i : -1;
			producer_report(p, s->opaques[i], &d);
		}
		producer_pool_put(p, s);
	}
	for (s = pt->head; s != NULL; s = s->next)
		failed_left |= s->state == SEALED_FAILED;
	if (pt->failing && !failed_left) {
		/* Invariant 4: the failure is reported; what was sent to the partition after it goes too, and the
		 * partition starts over at the sequence the broker expects. */
		char error[SL_ERROR_BYTES];

		snprintf(error, sizeof(error), "not sent: an earlier batch of partition %u failed: %s",
		         (unsigned)(pt - p->parts), pt->failure);
		pt->failing = false;
		producer_cancel_open(p, pt, -ECANCELED, error);
	}
}

/* Clear the reference the request slot holds to s (invariant 3). */
static void detach(struct sl_producer *p, struct sealed *s)
{
	for (uint32_t i = 0; i < SL_PRODUCER_REQUESTS_IN_FLIGHT_MAX; i++) {
		struct request_slot *r = &p->requests[i];

		if (r->cid == 0 || r->cid != s->cid)
			continue;
		for (uint32_t j = 0; j < r->batch_count; j++)
			if (r->batches[j] == s)
				r->batches[j] = NULL;
	}
	s->cid = 0;
}

/* first failed with status: it and every later batch of pt fail (invariant 4). The broker expects first's
 * sequence next, since neither it nor anything after it was appended. */
static void fail_from(struct sl_producer *p, struct producer_part *pt, struct sealed *first, int status,
                      const char *error)
{
	uint32_t partition = (uint32_t)(pt - p->parts);

	snprintf(pt->failure, sizeof(pt->failure), "%s", error);
	for (struct sealed *s = first; s != NULL; s = s->next) {
		if (s->state == SEALED_ACKED)
			continue; /* the broker says it is in the log: report it as such */
		if (s->state == SEALED_IN_FLIGHT)
			detach(p, s);
		s->state = SEALED_FAILED;
		if (s == first) {
			s->status = status;
			snprintf(s->error, sizeof(s->error), "%s", error);
		} else {
			s->status = -ECANCELED;
			snprintf(s->error, sizeof(s->error), "not sent: an earlier batch of partition %u failed: %s",
			         partition, error);
		}
	}
	pt->next_sequence = first->base_sequence;
	pt->failing = true;
	producer_list_remove(&p->open, pt); /* invariant 7: a failing partition seals nothing */
	pt->backoff_ms = p->o.retry_backoff_ms;
}

static void requeue(struct sl_producer *p, struct producer_part *pt, struct sealed *s, int64_t now_ms, bool backoff)
{
	s->state = SEALED_QUEUED;
	s->cid = 0;
	s->retry_at_ms = now_ms;
	if (backoff) {
		s->retry_at_ms += pt->backoff_ms;
		pt->backoff_ms =
		        pt->backoff_ms * 2 > p->o.retry_backoff_ms_max ? p->o.retry_backoff_ms_max : pt->backoff_ms * 2;
	}
}

/* The connection is gone: every batch in flight goes back to QUEUED, in place, so that it is re-sent in order
 * on the next connection (invariant 1). */
static void disconnected(struct sl_producer *p, int64_t now_ms)
{
	for (uint32_t i = 0; i < SL_PRODUCER_REQUESTS_IN_FLIGHT_MAX; i++) {
		struct request_slot *r = &p->requests[i];

		if (r->cid == 0)
			continue;
		for (uint32_t j = 0; j < r->batch_count; j++) {
			if (r->batches[j] != NULL) {
				r->batches[j]->state = SEALED_QUEUED;
				r->batches[j]->cid = 0;
				r->batches[j]->retry_at_ms = now_ms;
			}
		}
		r->cid = 0;
		r->batch_count = 0;
	}
	p->requests_in_flight = 0;
	if (p->conn->error[0] != '\0')
		snprintf(p->error, sizeof(p->error), "%s", p->conn->error);
	sl_conn_close(p->conn);
	if (p->reconnect_at_ms < now_ms)
		p->reconnect_at_ms = now_ms;
}

/* The connection was closed while requests were in flight without a connection error being reported here: the
 * one way is sl_conn_release running out of memory when a batch returned to the pool (invariant 6). Their batches
 * go back to QUEUED before anything reconnects, so that no answer on a new connection matches an old slot. */
static void requests_orphaned(struct sl_producer *p, int64_t now_ms)
{
	if (p->conn->fd < 0 && p->requests_in_flight > 0)
		disconnected(p, now_ms);
}

static void reconnect(struct sl_producer *p, int64_t now_ms)
{
	if (sl_conn_connect(p->conn) == 0) {
		p->reconnect_backoff_ms = p->o.retry_backoff_ms;
		return;
	}
	snprintf(p->error, sizeof(p->error), "%s", sl_conn_error(p->conn));
	p->reconnect_at_ms = now_ms + p->reconnect_backoff_ms;
	p->reconnect_backoff_ms = p->reconnect_backoff_ms * 2 > p->o.retry_backoff_ms_max ? p->o.retry_backoff_ms_max
	                                                                                  : p->reconnect_backoff_ms * 2;
}

/* Fail the first QUEUED batch of each partition whose delivery timeout passed, with everything after it. A batch
 * IN_FLIGHT waits for its answer, or for the request timeout to drop the connection. */
static void expire(struct sl_producer *p, int64_t now_ms)
{
	struct producer_part *pt, *after;

	for (pt = p->busy.head; pt != NULL; pt = after) {
		struct sealed *s = first_queued(pt);
		uint32_t i = (uint32_t)(pt - p->parts);
		char error[SL_ERROR_BYTES];

		/* Delivering below may take pt out of the busy list, and nothing else. */
		after = producer_list_next(&p->busy, pt);
		p->walk_visits++;
		if (s == NULL || now_ms < s->created_ms + p->o.delivery_timeout_ms)
			continue;
		if (s->ever_sent)
			snprintf(
			        error, sizeof(error),
			        "partition %u: not acknowledged within the delivery timeout of %u ms, so it may or may "
			        "not be in the log (last problem: %s)",
			        i, p->o.delivery_timeout_ms, p->error[0] ? p->error : "none recorded");
		else
			snprintf(error, sizeof(error), "partition %u: could not be sent within %u ms: %s", i,
			         p->o.delivery_timeout_ms, p->error[0] ? p->error : "no connection to the broker");
		fail_from(p, pt, s, -ETIMEDOUT, error);
		producer_deliver(p, pt);
	}
}

static bool retriable(int code, const struct producer_part *pt, const struct sealed *s)
{
	switch (code) {
	case SYNCLOG__ERROR_CODE__THROTTLED:
	case SYNCLOG__ERROR_CODE__NOT_ENOUGH_SPACE:
	case SYNCLOG__ERROR_CODE__BROKER_SHUTTING_DOWN:
		return true;
	case SYNCLOG__ERROR_CODE__OUT_OF_ORDER_SEQUENCE:
		/* Out of order behind an earlier batch that is being retried is expected; with nothing before it
		 * outstanding it is a real gap. */
		for (const struct sealed *e = pt->head; e != NULL && e != s; e = e->next)
			if (e->state == SEALED_QUEUED || e->state == SEALED_IN_FLIGHT)
				return true;
		return false;
	default:
		return false;
	}
}

static const Synclog__ProducePartitionResult *result_for(const Synclog__Response *resp, uint32_t partition)
{
	if (resp->body_case != SYNCLOG__RESPONSE__BODY_PRODUCE || resp->produce == NULL)
		return NULL;
	for (size_t i = 0; i < resp->produce->n_results; i++)
		if (resp->produce->results[i]->partition == partition)
			return resp->produce->results[i];
	return NULL;
}

/* One batch's outcome from its answer. */
static void batch_answered(struct sl_producer *p, struct sealed *s, const Synclog__Response *resp, int64_t now_ms)
{
	struct producer_part *pt = &p->parts[s->partition];
	const Synclog__ProducePartitionResult *r = result_for(resp, s->partition);
	int code = resp->error != SYNCLOG__ERROR_CODE__NONE ? (int)resp->error
	           : r != NULL                              ? (int)r->error
	                                                    : SYNCLOG__ERROR_CODE__INTERNAL;
	const char *message = resp->error != SYNCLOG__ERROR_CODE__NONE ? resp->error_message
	                      : r != NULL                              ? r->error_message
	                                  : "the broker's answer has no result for this partition";
	char error[SL_ERROR_BYTES];

	s->cid = 0;
	if (code == SYNCLOG__ERROR_CODE__NONE) {
		if (r->duplicate && r->base_offset < 0) {
			/* A retry of a batch whose first append is still in flight on the broker: ask again later
			 * for its offsets. */
			requeue(p, pt, s, now_ms, true);
			return;
		}
		s->state = SEALED_ACKED;
		s->base_offset = r->base_offset;
		s->duplicate = r->duplicate;
		pt->backoff_ms = p->o.retry_backoff_ms;
		return;
	}
	snprintf(error, sizeof(error), "topic '%s' partition %u: %s: %s", p->topic, s->partition, sl_error_name(code),
	         message != NULL && message[0] != '\0' ? message : sl_error_message(code));
	if (retriable(code, pt, s)) {
		snprintf(p->error, sizeof(p->error), "%s", error);
		requeue(p, pt, s, now_ms, code != SYNCLOG__ERROR_CODE__OUT_OF_ORDER_SEQUENCE);
		return;
	}
	fail_from(p, pt, s, sl_errno_of_code(code), error);
}

/* Returns true when the broker is shutting down: the caller drops the connection and reconnects later. */
static bool response_handle(struct sl_producer *p, const Synclog__Response *resp, int64_t now_ms)
{
	struct request_slot *r = NULL;
	bool shutting_down = resp->error == SYNCLOG__ERROR_CODE__BROKER_SHUTTING_DOWN;

	for (uint32_t i = 0; i < SL_PRODUCER_REQUESTS_IN_FLIGHT_MAX && r == NULL; i++)
		if (p->requests[i].cid != 0 && p->requests[i].cid == resp->correlation_id)
			r = &p->requests[i];
	if (r == NULL)
		return false; /* not ours (a request of a closed connection cannot answer on this one) */
	if (resp->body_case == SYNCLOG__RESPONSE__BODY_PRODUCE && resp->produce != NULL &&
	    resp->produce->throttle_ms > 0) {
		/* The broker's backfill quota: it held this answer back for part of throttle_ms at most; wait out the
		 * rest before sending again, as Kafka's clients do. */
		int64_t until = r->sent_ms + (int64_t)resp->produce->throttle_ms;

		if (until > p->throttle_until_ms)
			p->throttle_until_ms = until;
	}
	for (uint32_t j = 0; j < r->batch_count; j++) {
		struct sealed *s = r->batches[j];
		const Synclog__ProducePartitionResult *res;

		if (s == NULL)
			continue; /* detached by a failure */
		res = result_for(resp, s->partition);
		shutting_down |= res != NULL && res->error == SYNCLOG__ERROR_CODE__BROKER_SHUTTING_DOWN;
		batch_answered(p, s, resp, now_ms);
		/* One batch per partition per request, so delivering cannot free another batch of this slot. */
		producer_deliver(p, &p->parts[s->partition]);
	}
	r->cid = 0;
	r->batch_count = 0;
	p->requests_in_flight--;
	return shutting_down;
}

/* Fill free request slots with the batches that may go now (invariant 1), at most one per partition per
 * request, within the broker's frame limit. Partitions are taken in busy-list order and each one taken moves to
 * the tail (invariant 7): a partition left out by the frame limit is first in the next request. */
static void requests_send(struct sl_producer *p, int64_t now_ms)
{
	uint64_t frame_max = sl_conn_frame_bytes_max(p->conn);

	if (now_ms < p->throttle_until_ms)
		return;
	while (p->conn->fd >= 0 && p->requests_in_flight < p->o.requests_in_flight_max) {
		Synclog__Request req = SYNCLOG__REQUEST__INIT;
		Synclog__ProduceRequest body = SYNCLOG__PRODUCE_REQUEST__INIT;
		struct request_slot *r = NULL;
		uint64_t bytes = REQUEST_OVERHEAD_BYTES, cid;
		uint32_t n = 0;
		int rc;

		for (uint32_t i = 0; i < SL_PRODUCER_REQUESTS_IN_FLIGHT_MAX && r == NULL; i++)
			if (p->requests[i].cid == 0)
				r = &p->requests[i];
		SL_ASSERT(r != NULL);
		for (struct producer_part *pt = p->busy.head; pt != NULL; pt = producer_list_next(&p->busy, pt)) {
			uint32_t i = (uint32_t)(pt - p->parts);
			struct sealed *s = first_queued(pt);

			p->walk_visits++;
			if (s == NULL || s->retry_at_ms > now_ms)
				continue;
			if (bytes + s->len + REQUEST_BATCH_OVERHEAD_BYTES > frame_max)
				continue; /* it goes in the next request */
			bytes += s->len + REQUEST_BATCH_OVERHEAD_BYTES;
			p->wire_parts[n].partition = i;
			p->wire_parts[n].batch.data = s->bytes;
			p->wire_parts[n].batch.len = s->len;
			p->wire_part_ptrs[n] = &p->wire_parts[n];
			r->batches[n] = s;
			n++;
		}
		if (n == 0)
			return;
		body.topic = p->topic;
		body.acks = (Synclog__Acks)p->o.acks;
		body.backfill = p->o.backfill;
		body.n_partitions = n;
		body.partitions = p->wire_part_ptrs;
		req.body_case = SYNCLOG__REQUEST__BODY_PRODUCE;
		req.produce = &body;
		/* The batches are sent from their sealed slots, not copied into the connection's buffer (a 256 KiB
		 * memcpy per batch was 10-18% of the producer's time with 1 KiB records): invariant 6 keeps them
		 * there until sent. */
		rc = sl_conn_queue_ref(p->conn, &req, &cid);
		/* The size was checked against the frame limit above, with room to spare. */
		SL_ASSERT(rc != -EMSGSIZE);
		if (rc != 0) {
			snprintf(p->error, sizeof(p->error), "%s", sl_conn_error(p->conn));
			return; /* out of memory: the batches stay QUEUED and are tried again */
		}
		r->cid = cid;
		r->sent_ms = now_ms;
		r->batch_count = n;
		for (uint32_t j = 0; j < n; j++) {
			struct producer_part *pt = &p->parts[r->batches[j]->partition];

			r->batches[j]->state = SEALED_IN_FLIGHT;
			r->batches[j]->cid = cid;
			r->batches[j]->ever_sent = true;
			r->batches[j]->attempts++;
			producer_list_remove(&p->busy, pt);
			producer_list_append(&p->busy, pt);
		}
		p->requests_in_flight++;
	}
}

static bool any_queued(struct sl_producer *p)
{
	for (const struct producer_part *pt = p->busy.head; pt != NULL; pt = producer_list_next(&p->busy, pt)) {
		p->walk_visits++;
		if (first_queued(pt) != NULL)
			return true;
	}
	return false;
}

static bool request_timed_out(const struct sl_producer *p, int64_t now_ms)
{
	for (uint32_t i = 0; i < SL_PRODUCER_REQUESTS_IN_FLIGHT_MAX; i++)
		if (p->requests[i].cid != 0 && now_ms - p->requests[i].sent_ms >= p->o.io_timeout_ms)
			return true;
	return false;
}

/* Read every answer buffered. Returns 0, or a negative errno when the connection broke. */
static int responses_take(struct sl_producer *p)
{
	Synclog__Response *resp;
	int rc;

	while ((rc = sl_conn_take(p->conn, &resp)) == 1) {
		if (response_handle(p, resp, sl_clock_mono_ms())) {
			sl_conn_set_error(p->conn, "broker %s:%s is shutting down", p->conn->addr.host,
			                  p->conn->addr.port);
			return -ESHUTDOWN;
		}
	}
	return rc;
}

int producer_io(struct sl_producer *p, int timeout_ms)
{
	int64_t now_ms = sl_clock_mono_ms();
	uint64_t pending_before = p->pending;
	int wait_ms, rc;

	p->io_passes++;
	producer_seal_due(p, now_ms);
	expire(p, now_ms);
	requests_orphaned(p, now_ms);
	if (p->conn->fd < 0 && any_queued(p) && now_ms >= p->reconnect_at_ms) {
		reconnect(p, now_ms);
		now_ms = sl_clock_mono_ms();
	}
	if (p->conn->fd >= 0 && request_timed_out(p, now_ms)) {
		sl_conn_set_error(p->conn, "broker %s:%s did not answer a produce request within %u ms",
		                  p->conn->addr.host, p->conn->addr.port, p->o.io_timeout_ms);
		disconnected(p, now_ms);
	}
	requests_send(p, now_ms);

	wait_ms = producer_next_event_ms(p, now_ms, &p->walk_visits);
	if (wait_ms < 0 || (timeout_ms >= 0 && wait_ms > timeout_ms))
		wait_ms = timeout_ms;
	/* Records were reported in this pass: that is progress to hand back, not a reason to wait. */
	if (p->pending != pending_before)
		wait_ms = 0;
	if (p->conn->fd >= 0 && (p->requests_in_flight > 0 || sl_conn_unsent(p->conn) > 0)) {
		rc = sl_conn_pump(p->conn, wait_ms, p->requests_in_flight > 0);
		if (rc == -EINTR)
			return rc;
		if (rc == 0)
			rc = responses_take(p);
		if (rc < 0 || p->conn->fd < 0) {
			disconnected(p, sl_clock_mono_ms());
			return 0;
		}
		/* Answers freed request slots: refill them now rather than on the next pass, with the batches that
		 * kept filling while their partition waited for a slot (producer_seal_due). */
		producer_seal_due(p, sl_clock_mono_ms());
		requests_send(p, sl_clock_mono_ms());
		if (p->conn->fd >= 0 && sl_conn_unsent(p->conn) > 0 && sl_conn_pump(p->conn, 0, 0) < 0)
			disconnected(p, sl_clock_mono_ms());
		return 0;
	}
	if (wait_ms == 0 || (wait_ms < 0 && p->pending == 0))
		return 0;
	if (wait_ms < 0)
		wait_ms = p->o.retry_backoff_ms; /* nothing scheduled yet work is pending: look again soon */
	if (poll(NULL, 0, wait_ms) < 0 && errno == EINTR)
		return -EINTR;
	return 0;
}
