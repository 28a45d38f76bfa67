/* Buffers for large frames, kept for reuse. A frame of a few MiB (a Produce request with a batch for each of 16
 * partitions) is above glibc's mmap threshold: each fresh buffer is new mapped memory, and every one of its pages
 * faults and is cleared on first touch, then is unmapped when freed. With 16 partitions that was 12% of the
 * broker's time (exc_page_fault, clear_page_erms, unmap_page_range). Kept buffers have their pages already.
 *
 * Buffers come in power-of-two capacities from SL_FRAME_POOL_CLASS_MIN_BYTES, one LIFO list per capacity, and
 * the pool keeps at most SL_FRAME_POOL_BYTES_MAX of them; a buffer returned beyond that is freed. A frame thus
 * holds at most twice its length, which the per-connection in-flight bound (counted in frame lengths) allows
 * for. Each buffer starts with a header giving its class; callers see only the bytes after it. */
#include <stdlib.h>

#include "proto/base/assert.h"
#include "broker/frame_pool.h"

struct pool_header {
	struct pool_header *next;
	uint32_t class_index;
	max_align_t align[]; /* the caller's bytes start here, aligned for any use */
};

static uint32_t class_of(size_t bytes)
{
	uint32_t c = 0;
	while (((size_t)SL_FRAME_POOL_CLASS_MIN_BYTES << c) < bytes)
		c++;
	return c;
}

void *sl_frame_pool_get(struct sl_frame_pool *pool, size_t bytes)
{
	uint32_t c = class_of(bytes);
	struct pool_header *h = NULL;
	if (c < SL_FRAME_POOL_CLASSES && (h = pool->free[c]) != NULL) {
		pool->free[c] = h->next;
		pool->bytes -= (size_t)SL_FRAME_POOL_CLASS_MIN_BYTES << c;
		pool->reused_count++;
	} else {
		/* Classes past the last are not kept: allocate the exact size. */
		size_t cap = c < SL_FRAME_POOL_CLASSES ? (size_t)SL_FRAME_POOL_CLASS_MIN_BYTES << c : bytes;
		h = malloc(sizeof(*h) + cap);
		if (h == NULL)
			return NULL;
		pool->allocated_count++;
	}
	h->class_index = c;
	return h->align;
}

void sl_frame_pool_put(struct sl_frame_pool *pool, void *p)
{
	if (p == NULL)
		return;
	struct pool_header *h = (struct pool_header *)((char *)p - offsetof(struct pool_header, align));
	uint32_t c = h->class_index;
	size_t cap = (size_t)SL_FRAME_POOL_CLASS_MIN_BYTES << (c < SL_FRAME_POOL_CLASSES ? c : 0);
	if (c >= SL_FRAME_POOL_CLASSES || pool->bytes + cap > SL_FRAME_POOL_BYTES_MAX) {
		free(h);
		return;
	}
	h->next = pool->free[c];
	pool->free[c] = h;
	pool->bytes += cap;
}

void sl_frame_pool_free(struct sl_frame_pool *pool)
{
	for (uint32_t c = 0; c < SL_FRAME_POOL_CLASSES; c++) {
		while (pool->free[c] != NULL) {
			struct pool_header *h = pool->free[c];
			pool->free[c] = h->next;
			free(h);
		}
	}
	pool->bytes = 0;
}
