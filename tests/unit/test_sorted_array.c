/* Tests of the sorted-array helper (proto/base/sorted.c) under the users and ACL tables: inserts at the index the
 * search gives keep the array sorted across growth, a removal closes its slot, a missing key is -ENOENT, and a copy
 * is equal and separate. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>

#include "proto/base/sorted.h"

struct table {
	uint32_t *items;
	uint32_t count;
	uint32_t cap;
};

static int compare_u32(const void *item, const void *key)
{
	uint32_t a = *(const uint32_t *)item, b = *(const uint32_t *)key;

	return a < b ? -1 : a > b;
}

/* Insert key unless present; 1 when it was added. */
static int insert(struct table *t, uint32_t key)
{
	int found;
	uint32_t at = sl_sorted_search(t->items, t->count, sizeof(t->items[0]), &key, &found, compare_u32);
	uint32_t *items;

	if (found)
		return 0;
	items = sl_sorted_open_slot(t->items, &t->count, &t->cap, sizeof(t->items[0]), at);
	assert_non_null(items);
	t->items = items;
	assert_int_equal(t->items[at], 0); /* the slot comes zeroed */
	t->items[at] = key;
	return 1;
}

static void assert_sorted(const struct table *t)
{
	for (uint32_t i = 1; i < t->count; i++)
		assert_true(t->items[i - 1] < t->items[i]);
}

static void inserts_and_removals_keep_the_array_sorted(void **state)
{
	struct table t = {0};
	void *copy;

	(void)state;
	/* 100 keys in a scrambled order (37 is prime to 100), past two growths of the capacity (16, 32, 64, 128). */
	for (uint32_t i = 0; i < 100; i++)
		assert_int_equal(insert(&t, (i * 37) % 100 + 1), 1);
	assert_int_equal(insert(&t, 50), 0);
	assert_int_equal(t.count, 100);
	assert_int_equal(t.cap, 128);
	assert_sorted(&t);
	assert_int_equal(t.items[0], 1);
	assert_int_equal(t.items[99], 100);

	assert_int_equal(sl_sorted_copy(t.items, t.count, sizeof(t.items[0]), &copy), 0);
	assert_memory_equal(copy, t.items, t.count * sizeof(t.items[0]));
	assert_ptr_not_equal(copy, t.items);
	free(copy);

	for (uint32_t key = 2; key <= 100; key += 2)
		assert_int_equal(sl_sorted_remove(t.items, &t.count, sizeof(t.items[0]), &key, compare_u32), 0);
	uint32_t gone = 2, never = 1000;
	assert_int_equal(sl_sorted_remove(t.items, &t.count, sizeof(t.items[0]), &gone, compare_u32), -ENOENT);
	assert_int_equal(sl_sorted_remove(t.items, &t.count, sizeof(t.items[0]), &never, compare_u32), -ENOENT);
	assert_int_equal(t.count, 50);
	assert_sorted(&t);
	for (uint32_t i = 0; i < t.count; i++)
		assert_int_equal(t.items[i], 2 * i + 1);

	assert_int_equal(sl_sorted_copy(t.items, 0, sizeof(t.items[0]), &copy), 0);
	assert_null(copy);
	free(t.items);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(inserts_and_removals_keep_the_array_sorted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
