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

#endif
