/* Sorted arrays of small tables (the users, the ACLs): a binary search and the insert, remove and copy that keep
 * an array sorted, written once for every table. The caller keeps the array in its own typed struct (items,
 * count, capacity) and does the comparing; these helpers only move bytes.
 *
 * Invariants a caller keeps:
 *   1. items[0 .. count) are sorted by the caller's compare, without two equal items.
 *   2. count <= capacity; capacity is 0 exactly when items is NULL.
 *
 * Which thread may call: any; one thread per array at a time. */
#ifndef SL_BASE_SORTED_H
#define SL_BASE_SORTED_H

#include <stddef.h>
#include <stdint.h>

/* Compare item with key: below zero when item sorts first, zero when they are equal, above zero after. */
typedef int (*sl_sorted_compare_cb)(const void *item, const void *key);

/* The index of the item equal to key (*found_out 1), or of where it would be inserted (*found_out 0). */
uint32_t sl_sorted_search(const void *items, uint32_t count, size_t item_bytes, const void *key, int *found_out,
                          sl_sorted_compare_cb compare_cb);
/* Open a zeroed slot at index at (0 .. *count) of an array of *count items: grow its capacity when full (doubling,
 * from 16), move the items from at one place up and count the slot. Returns the array (moved when it grew), or NULL
 * when out of memory (the array and *count are then unchanged). The caller stores the array and fills the slot. */
void *sl_sorted_open_slot(void *items, uint32_t *count, uint32_t *capacity, size_t item_bytes, uint32_t at);
/* Remove the item equal to key: the items after it move one place down and *count drops by one. Returns 0, or
 * -ENOENT when no item is equal to key. */
int sl_sorted_remove(void *items, uint32_t *count, size_t item_bytes, const void *key, sl_sorted_compare_cb compare_cb);
/* A new array holding a copy of items[0 .. count), of capacity count, in *copy_out (NULL when count is 0).
 * Returns 0 or -ENOMEM. */
int sl_sorted_copy(const void *items, uint32_t count, size_t item_bytes, void **copy_out);

#endif
