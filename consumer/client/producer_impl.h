/* The producer's state, shared by producer.c (records into batches) and producer_io.c (batches to the broker and
 * back). Not installed.
 *
 * A record's journey through the producer:
 *
 *   sl_producer_send -> the open batch of its partition (struct producer_part: one sl_batch_builder, one opaque array)
 *     -> seal: when the batch is full, or linger_ms after its first record, or on flush, the batch gets the
 *        partition's next sequence number and is copied into a struct sealed taken from a bounded pool
 *     -> the partition's queue, oldest first (sequence order)
 *     -> a Produce request carrying at most one batch per partition; at most requests_in_flight_max requests
 *     -> the answer: ACKED, or back to QUEUED (retriable: throttled, disk full, lost connection, out of order
 *        behind a batch being retried), or FAILED
 *     -> callbacks, in queue order, once the head of the queue is ACKED or FAILED; the sealed batch returns to
 *        the pool.
 *
 * INVARIANTS
 *   1. Within a partition's queue, sequences increase in queue order, and a batch is sent (or re-sent) only when
 *      no batch before it is QUEUED: the broker sees a partition's batches in sequence order on every connection.
 *   2. A batch keeps its bytes, producer id, epoch and sequence until it is reported: a retry is the same bytes,
 *      which the broker recognises as a duplicate if it already appended them.
 *   3. Each IN_FLIGHT batch is referenced by exactly one request slot; a batch leaves IN_FLIGHT only through its
 *      answer, a lost connection (back to QUEUED), or a failure (the slot's reference is cleared first).
 *   4. Once a batch FAILED, every later batch of its partition is FAILED too, and the partition seals nothing
 *      until the failure is reported; the open batch is then canceled. So the acknowledged records of a
 *      partition are always a prefix of what was sent to it.
 *   5. pending == records sent and not yet reported.
 *   6. The connection sends a batch's bytes from its struct sealed (sl_conn_queue_ref), so they must stay unchanged
 *      while the connection holds an unsent reference to them. A batch's bytes change only after it left its
 *      partition's queue, and the only way out of a queue is producer_pool_put, which calls sl_conn_release
 *      first: the connection copies what it still references (or, out of memory, closes and drops it; the
 *      requests in flight then go back to QUEUED). Retries and requeues keep the batch in its queue and its bytes
 *      as they are (invariant 2); a lost connection drops its queue; sl_producer_free closes the connection
 *      before it reports or frees anything. In the common case the batch was answered, so its request was sent
 *      whole and there is nothing to copy; a copy happens when a batch fails while its request is still being
 *      written (fail_from on an earlier batch's refusal or expiry) or when a broker answers early.
 *   7. No pass of producer_io walks the partition array; it walks two lists of the partitions that have work:
 *      - the open list: exactly the partitions whose open batch holds records (open_ms >= 0) and that are not
 *        failing, oldest open batch first. A batch opens at a reading of the monotonic clock and joins at the
 *        tail, so the list is in open_ms order and sealing by linger stops at the first batch not yet due;
 *      - the busy list: exactly the partitions whose queue is not empty, so at most sealed_max of them. A
 *        partition whose batch a request takes moves to the tail: requests take partitions in turns, and one
 *        with a backlog cannot keep the others out of a request that the frame limit fills.
 *      A pass thus visits the open batches that are due and the busy partitions (at most sealed_max), whatever
 *      the topic's partition count (bench/results/scale.md: with a walk of every partition, 10,000 partitions
 *      made a keyed producer 160 times slower than one). walk_visits counts the visits for tests. */
#ifndef SL_CONSUMER_PRODUCER_IMPL_H
#define SL_CONSUMER_PRODUCER_IMPL_H

#include "consumer/client/client_impl.h"

/* Room a Produce request needs around its batches: correlation id, topic, acks, and per partition its number
 * and length prefixes. The frame limit must hold one full batch plus this and one REQUEST_BATCH_OVERHEAD_BYTES
 * (sl_producer_new checks it). */
#define REQUEST_OVERHEAD_BYTES       (SL_TOPIC_NAME_BYTES_MAX + 1024)
/* Per batch in a request: partition number, field tags and length prefixes. */
#define REQUEST_BATCH_OVERHEAD_BYTES 32

enum sealed_state { SEALED_QUEUED, SEALED_IN_FLIGHT, SEALED_ACKED, SEALED_FAILED };

struct sealed {
	struct sealed *next; /* in its partition's queue, or in the free pool */
	uint8_t *bytes;      /* batch_bytes_max bytes, allocated once */
	size_t len;
	void **opaques; /* batch_records_max entries; swapped with the partition's, never copied */
	uint32_t record_count;
	uint32_t partition;
	int32_t base_sequence;
	enum sealed_state state;
	bool ever_sent;
	bool duplicate;
	uint32_t attempts;
	int64_t created_ms;  /* first record sent: the delivery timeout counts from here */
	int64_t retry_at_ms; /* QUEUED: not before */
	uint64_t cid;        /* IN_FLIGHT: the request carrying it */
	int64_t base_offset; /* ACKED */
	int status;          /* FAILED: negative errno */
	char error[SL_ERROR_BYTES];
};

struct producer_part;

/* The two lists of invariant 7: a partition is linked into each through its own part_link. */
enum part_list_kind { PARTS_OPEN, PARTS_BUSY, PARTS_LIST_KINDS };

struct part_link {
	struct producer_part *prev, *next;
	bool linked;
};

struct part_list {
	struct producer_part *head, *tail;
	uint32_t count;
	enum part_list_kind kind;
};

struct producer_part {
	struct sl_batch_builder builder; /* buf NULL until the partition's first record */
	void **opaques;
	int64_t open_ms; /* first record of the open batch; -1 when it is empty */
	int32_t next_sequence;
	struct sealed *head, *tail;
	uint32_t backoff_ms;
	bool failing;                            /* invariant 4: a FAILED batch is waiting to be reported */
	char failure[SL_ERROR_BYTES];            /* why, for the records of the open batch canceled after it */
	struct part_link link[PARTS_LIST_KINDS]; /* invariant 7 */
};

struct request_slot {
	uint64_t cid; /* 0: free */
	int64_t sent_ms;
	uint32_t batch_count;
	struct sealed **batches; /* partition_count entries; NULL where a batch was detached by a failure */
};

struct sl_producer {
	struct sl_producer_options o;
	char topic[SL_TOPIC_NAME_BYTES_MAX + 1];
	struct sl_conn *conn;
	uint32_t partition_count;
	struct producer_part *parts;
	int64_t producer_id;
	int16_t producer_epoch;

	struct sealed *pool;   /* free sealed batches */
	uint32_t sealed_count; /* allocated, free or not */
	uint32_t sealed_max;

	struct request_slot requests[SL_PRODUCER_REQUESTS_IN_FLIGHT_MAX];
	uint32_t requests_in_flight;
	Synclog__ProducePartition *wire_parts; /* partition_count entries, reused by every request */
	Synclog__ProducePartition **wire_part_ptrs;

	uint64_t pending;
	uint32_t sends_unclocked; /* records appended since sl_producer_send last read the clock */
	int32_t sticky;           /* partition of keyless records, -1 before the next choice */
	uint32_t rr_next;         /* next partition for keyless records */
	struct part_list open;    /* invariant 7: open batches, oldest first */
	struct part_list busy;    /* invariant 7: partitions with sealed batches, in request turn order */
	uint64_t walk_visits;     /* partitions visited by the walks of producer_io, for tests (invariant 7) */
	uint64_t io_passes;       /* producer_io calls, for tests: walk_visits per pass */
	int64_t next_linger_ms;   /* earliest linger deadline of an open batch; INT64_MAX when none */
	int64_t reconnect_at_ms;
	int64_t throttle_until_ms; /* the broker's backfill quota: send no request before (monotonic ms) */
	uint32_t reconnect_backoff_ms;
	bool flushing;
	bool in_callback;
	char error[SL_ERROR_BYTES];
	struct sl_kafka_producer *kafka; /* the Kafka transport's producer (transport.h); NULL: this one */
};

/* Add pt at the tail of l, or take it out of l (nothing when it is not in l). O(1): the hot path opens batches. */
static inline void producer_list_append(struct part_list *l, struct producer_part *pt)
{
	struct part_link *k = &pt->link[l->kind];

	SL_ASSERT(!k->linked);
	k->prev = l->tail;
	k->next = NULL;
	k->linked = true;
	if (l->tail != NULL)
		l->tail->link[l->kind].next = pt;
	else
		l->head = pt;
	l->tail = pt;
	l->count++;
}

static inline void producer_list_remove(struct part_list *l, struct producer_part *pt)
{
	struct part_link *k = &pt->link[l->kind];

	if (!k->linked)
		return;
	if (k->prev != NULL)
		k->prev->link[l->kind].next = k->next;
	else
		l->head = k->next;
	if (k->next != NULL)
		k->next->link[l->kind].prev = k->prev;
	else
		l->tail = k->prev;
	k->prev = k->next = NULL;
	k->linked = false;
	SL_ASSERT(l->count > 0);
	l->count--;
}

static inline struct producer_part *producer_list_next(const struct part_list *l, const struct producer_part *pt)
{
	return pt->link[l->kind].next;
}

/* producer.c */
/* Close the open batch of pt. Returns 0 (also when it was empty), -EAGAIN when it cannot now (no free sealed
 * batch, or the partition is failing). */
int producer_seal(struct sl_producer *p, struct producer_part *pt, int64_t now_ms);
/* Seal every open batch whose linger passed (all of them while flushing), as far as the pool allows. */
void producer_seal_due(struct sl_producer *p, int64_t now_ms);
/* Report the records of the open batch of pt as failed with status and error; empties it. */
void producer_cancel_open(struct sl_producer *p, struct producer_part *pt, int status, const char *error);
void producer_report(struct sl_producer *p, void *opaque, const struct sl_delivery *d);
void producer_pool_put(struct sl_producer *p, struct sealed *s);

/* producer_io.c */
/* One pass of I/O: reconnect if due, expire, send what may be sent, wait up to timeout_ms for the socket or the
 * next deadline, handle the answers. Returns 0 or -EINTR. */
int producer_io(struct sl_producer *p, int timeout_ms);
/* Milliseconds until the next deadline (linger, retry, expiry, reconnect, request timeout); -1 when none. Adds the
 * partitions it visited to *visits unless visits is NULL. */
int producer_next_event_ms(const struct sl_producer *p, int64_t now_ms, uint64_t *visits);
/* Report the batches at the head of pt's queue that are ACKED or FAILED, in order. */
void producer_deliver(struct sl_producer *p, struct producer_part *pt);

#endif
