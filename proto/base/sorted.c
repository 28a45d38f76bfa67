/* Sorted arrays of small tables: search, insert, remove, copy (sorted.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/base/assert.h"
#include "proto/base/sorted.h"

/* The first capacity: a table of a few entries fits without a second allocation. */
#define CAPACITY_FIRST 16

uint32_t sl_sorted_search(const void *items, uint32_t count, size_t item_bytes, const void *key, int *found_out,
                          sl_sorted_compare_cb compare_cb)
{
	uint32_t lo = 0, hi = count;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = compare_cb((const char *)items + (size_t)mid * item_bytes, key);

		if (c == 0) {
			*found_out = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found_out = 0;
	return lo;
}

void *sl_sorted_open_slot(void *items, uint32_t *count, uint32_t *capacity, size_t item_bytes, uint32_t at)
{
	SL_ASSERT(at <= *count && *count <= *capacity);
	if (*count == *capacity) {
		uint32_t grown = *capacity ? *capacity * 2 : CAPACITY_FIRST;
		void *p = realloc(items, (size_t)grown * item_bytes);

		if (p == NULL)
			return NULL;
		items = p;
		*capacity = grown;
	}
	char *slot = (char *)items + (size_t)at * item_bytes;
	memmove(slot + item_bytes, slot, (size_t)(*count - at) * item_bytes);
	memset(slot, 0, item_bytes);
	(*count)++;
	return items;
}

int sl_sorted_remove(void *items, uint32_t *count, size_t item_bytes, const void *key, sl_sorted_compare_cb compare_cb)
{
	int found;
	uint32_t at = sl_sorted_search(items, *count, item_bytes, key, &found, compare_cb);

	if (!found)
		return -ENOENT;
	char *slot = (char *)items + (size_t)at * item_bytes;
	memmove(slot, slot + item_bytes, (size_t)(*count - at - 1) * item_bytes);
	(*count)--;
	return 0;
}

int sl_sorted_copy(const void *items, uint32_t count, size_t item_bytes, void **copy_out)
{
	*copy_out = NULL;
	if (count == 0)
		return 0;
	*copy_out = malloc((size_t)count * item_bytes);
	if (*copy_out == NULL)
		return -ENOMEM;
	memcpy(*copy_out, items, (size_t)count * item_bytes);
	return 0;
}
