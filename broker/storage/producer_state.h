/* Idempotent producers, per partition: the last batches each producer id appended, so a retried batch is
 * answered with its original offsets instead of being appended twice, and a gap in sequence is refused.
 *
 * Sequences follow Kafka: each (producer id, partition) counts records from 0; a batch carries the sequence of
 * its first record. The broker keeps the last SL_PRODUCER_BATCHES_KEPT batches per producer, the number of
 * requests a client may have in flight, which bounds how far back a retry can reach. */
#ifndef SL_BROKER_PRODUCER_STATE_H
#define SL_BROKER_PRODUCER_STATE_H

#include <stdint.h>

#include "proto/limits.h" /* SL_PRODUCER_BATCHES_KEPT */

/* The snapshot file in each partition's folder (format at the top of producer_state.c). */
#define SL_PRODUCERS_SNAPSHOT_FILE "producers.snapshot"

/* Producer ids remembered per partition. Past it one is forgotten, chosen in this order: a producer with no batch
 * in flight before one with, one that appended a single batch before one that appended more (a client trying ids
 * once each cannot push out a producer that has been writing), then the least recently used. */
#define SL_PRODUCERS_PER_PARTITION_MAX 4096

struct sl_producer_batch {
	int32_t base_sequence;
	int32_t last_sequence;
	int64_t base_offset; /* -1 while its append is in flight */
	int64_t last_offset;
};

struct sl_producer_entry {
	int64_t producer_id;
	int16_t epoch;
	int64_t last_used_ms;
	uint32_t batch_count;
	uint32_t batch_head; /* ring of SL_PRODUCER_BATCHES_KEPT */
	struct sl_producer_batch batches[SL_PRODUCER_BATCHES_KEPT];
	int32_t next_sequence;   /* what the next new batch must start with */
	uint32_t appended_count; /* batches taken since it entered the table (saturates); for eviction */
};

struct sl_producer_state {
	struct sl_producer_entry *entries;
	uint32_t count;
	uint32_t cap;
};

enum sl_producer_verdict {
	SL_PRODUCER_APPEND = 0,   /* new batch, in sequence: append it */
	SL_PRODUCER_DUPLICATE,    /* a retry of a kept batch: *dup describes it (offsets -1 if still in flight) */
	SL_PRODUCER_OUT_OF_ORDER, /* a gap, or an old batch no longer kept */
	SL_PRODUCER_FENCED,       /* an older epoch than the one seen */
};

void sl_producer_state_init(struct sl_producer_state *s);
/* 1 when the table has producer_id (a batch from it takes no new place). */
int sl_producer_state_known(const struct sl_producer_state *s, int64_t producer_id);
void sl_producer_state_free(struct sl_producer_state *s);
/* Decide what to do with a batch from (producer_id, epoch) holding record_count records from base_sequence.
 * On SL_PRODUCER_APPEND the batch is recorded as in flight; the caller then reports the outcome with
 * sl_producer_state_done. Returns the verdict or -ENOMEM. */
int sl_producer_state_check(struct sl_producer_state *s, int64_t producer_id, int16_t epoch, int32_t base_sequence,
                            int32_t record_count, int64_t now_ms, struct sl_producer_batch *dup);
/* The append of that batch finished: status 0 with offsets, or a negative errno (then the batch is forgotten
 * and the producer's next expected sequence goes back to its base sequence). */
void sl_producer_state_done(struct sl_producer_state *s, int64_t producer_id, int32_t base_sequence, int status,
                            int64_t base_offset, int64_t last_offset);
/* Rebuild from a batch read back from the log (recovery): record it as appended. */
int sl_producer_state_replay(struct sl_producer_state *s, int64_t producer_id, int16_t epoch, int32_t base_sequence,
                             int32_t record_count, int64_t base_offset, int64_t last_offset, int64_t now_ms);

/* Persisting the state, so a retry after a broker restart is still recognised. The snapshot records the log
 * offset it is valid at; after a crash the batches from there to the log end are replayed
 * (sl_producer_state_replay). Written atomically (temp file, fsync, rename). Returns 0 or a negative errno;
 * load returns -ENOENT when there is no snapshot and -EBADMSG for an unreadable one. */
/* The snapshot's text (format at the top of producer_state.c) in a malloc'd buffer the caller frees. Returns 0 or
 * -ENOMEM. Cheap: the loop encodes, a worker writes (broker/offload.c). */
int sl_producer_state_encode(const struct sl_producer_state *s, int64_t log_offset, char **text_out, size_t *len_out);
int sl_producer_state_save(const struct sl_producer_state *s, const char *path, int64_t log_offset);
int sl_producer_state_load(struct sl_producer_state *s, const char *path, int64_t *log_offset_out);

#endif
