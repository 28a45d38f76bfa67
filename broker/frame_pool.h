/* Buffers of large frames kept for reuse, so that a producer of multi-MiB batches does not pay page faults and
 * page clearing for a fresh buffer per frame (12% of the broker with 16 partitions before the pool). One pool
 * per front end (broker/net/, broker/kafka/); which thread may call: the shard's loop thread. */
#ifndef SL_BROKER_FRAME_POOL_H
#define SL_BROKER_FRAME_POOL_H

#include <stddef.h>
#include <stdint.h>

/* Classes: 64 KiB, 128 KiB ... 16 MiB, the default frame limit; 64 MiB kept at most: the buffers of four
 * full-size frames, or of a few hundred 256 KiB batches. */
#define SL_FRAME_POOL_CLASS_MIN_BYTES (64u * 1024)
#define SL_FRAME_POOL_CLASSES         9
#define SL_FRAME_POOL_BYTES_MAX       (64u << 20)

struct sl_frame_pool {
	void *free[SL_FRAME_POOL_CLASSES];
	size_t bytes;
	uint64_t allocated_count;
	uint64_t reused_count;
};

/* A buffer of at least bytes, or NULL when out of memory. */
void *sl_frame_pool_get(struct sl_frame_pool *pool, size_t bytes);
/* Give a buffer from sl_frame_pool_get back (NULL is ignored). */
void sl_frame_pool_put(struct sl_frame_pool *pool, void *p);
void sl_frame_pool_free(struct sl_frame_pool *pool);

#endif
