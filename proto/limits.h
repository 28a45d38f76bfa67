/* Limits the broker and its clients must agree on, defined once so that neither side can change alone. */
#ifndef SL_PROTO_LIMITS_H
#define SL_PROTO_LIMITS_H

/* Produce requests one idempotent producer may have unanswered (Kafka's max.in.flight for idempotence, 5). */
#define SL_PRODUCER_REQUESTS_IN_FLIGHT_MAX 5
/* Batches the broker remembers per producer and partition to answer a retry with its original offsets: a retry
 * can reach back at most as far as the requests in flight, so keeping that many makes every retry findable. */
#define SL_PRODUCER_BATCHES_KEPT           5
_Static_assert(SL_PRODUCER_BATCHES_KEPT >= SL_PRODUCER_REQUESTS_IN_FLIGHT_MAX,
               "a retried batch must still be remembered by the broker");

/* Entries one repeated field of a request may have (partitions of a Fetch, a Produce, a ListOffsets, an
 * OffsetCommit topic): every partition of the largest topic (SL_TOPIC_PARTITIONS_MAX in broker/topics.h), so a
 * client can always name a whole topic in one request. */
#define SL_REQUEST_ENTRIES_MAX 10000
/* Messages, repeated entries and unknown fields in one frame: ten topics' worth of partitions. Bounds what
 * decoding one request may allocate to a few MiB whatever its bytes say. */
#define SL_FRAME_ELEMENTS_MAX  100000
_Static_assert(SL_FRAME_ELEMENTS_MAX >= SL_REQUEST_ENTRIES_MAX, "a frame holds at least one full repeated field");

/* The decimal text of a limit, for messages. */
#define SL_STR_(x) #x
#define SL_STR(x)  SL_STR_(x)

#endif
