/* sl_parallel_for runs fn once for every index, whatever the number of threads asked (none, one, more than the
 * indexes, more than the maximum), and returns only after every call returned. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "proto/base/parallel.h"

#define INDEX_COUNT 5000

struct counts {
	atomic_int hits[INDEX_COUNT];
	atomic_int calls;
};

static void hit(void *arg, size_t i)
{
	struct counts *c = arg;
	if (i % 997 == 0)
		usleep(1000); /* a slow call: the others go on meanwhile, and the caller still waits for it */
	atomic_fetch_add(&c->hits[i], 1);
	atomic_fetch_add(&c->calls, 1);
}

static void check_threads(uint32_t threads, size_t count)
{
	struct counts *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	sl_parallel_for(count, threads, hit, c);
	assert_int_equal(atomic_load(&c->calls), (int)count);
	for (size_t i = 0; i < count; i++)
		assert_int_equal(atomic_load(&c->hits[i]), 1);
	free(c);
}

static void test_every_index_runs_once_for_any_thread_count(void **state)
{
	(void)state;
	check_threads(0, INDEX_COUNT);
	check_threads(1, INDEX_COUNT);
	check_threads(8, INDEX_COUNT);
	check_threads(SL_PARALLEL_THREADS_MAX + 100, INDEX_COUNT);
	check_threads(8, 3); /* fewer indexes than threads */
	check_threads(8, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_every_index_runs_once_for_any_thread_count),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
