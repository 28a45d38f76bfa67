/* The response arena: the allocator protobuf-c unpacks responses with, so that reading a response allocates
 * nothing once the arena has grown to the largest response seen. See client_impl.h. */
#include <string.h>

#include "consumer/client/client_impl.h"

/* The first chunk: enough for every answer except large fetches, which grow the arena once. */
#define CHUNK_BYTES_MIN (64 * 1024)

static void *arena_alloc(void *data, size_t size)
{
	struct sl_arena *a = data;
	struct sl_arena_chunk *c = a->current;

	size = (size + 15) & ~(size_t)15;
	while (c != NULL && c->cap - c->used < size) {
		/* Later chunks were emptied by the last reset: move on to one with room. */
		c = c->next;
		if (c != NULL)
			c->used = 0;
	}
	if (c == NULL) {
		size_t cap = size > CHUNK_BYTES_MIN ? size : CHUNK_BYTES_MIN;

		if (a->current != NULL && a->current->cap * 2 > cap)
			cap = a->current->cap * 2;
		if (a->bytes_total + cap > a->bytes_max)
			return NULL;
		c = malloc(sizeof(*c) + cap);
		if (c == NULL)
			return NULL;
		c->cap = cap;
		c->used = 0;
		/* Append after current: the chunks before it are in use by this response. */
		if (a->current == NULL) {
			c->next = a->head;
			a->head = c;
		} else {
			c->next = a->current->next;
			a->current->next = c;
		}
		a->bytes_total += cap;
	}
	a->current = c;
	void *p = c->data + c->used;
	c->used += size;
	return p;
}

static void arena_free_one(void *data, void *p)
{
	/* Everything goes at the next reset. */
	(void)data;
	(void)p;
}

void sl_arena_init(struct sl_arena *a, size_t bytes_max)
{
	memset(a, 0, sizeof(*a));
	a->bytes_max = bytes_max;
	a->allocator.alloc = arena_alloc;
	a->allocator.free = arena_free_one;
	a->allocator.allocator_data = a;
}

void sl_arena_reset(struct sl_arena *a)
{
	a->current = a->head;
	if (a->head != NULL)
		a->head->used = 0;
}

void sl_arena_free(struct sl_arena *a)
{
	struct sl_arena_chunk *c = a->head;

	while (c != NULL) {
		struct sl_arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	sl_arena_init(a, a->bytes_max);
}
