/* sl_parallel_for: a shared counter hands out the indexes; see parallel.h. */
#include <pthread.h>
#include <stdatomic.h>

#include "proto/base/parallel.h"

struct job {
	size_t count;
	atomic_size_t next;
	void (*fn)(void *arg, size_t i);
	void *arg;
};

static void *worker(void *p)
{
	struct job *j = p;
	for (size_t i; (i = atomic_fetch_add(&j->next, 1)) < j->count;)
		j->fn(j->arg, i);
	return NULL;
}

void sl_parallel_for(size_t count, uint32_t threads, void (*fn)(void *arg, size_t i), void *arg)
{
	struct job j = {.count = count, .fn = fn, .arg = arg};
	pthread_t tids[SL_PARALLEL_THREADS_MAX];
	uint32_t started = 0;
	atomic_init(&j.next, 0);
	if (threads > SL_PARALLEL_THREADS_MAX)
		threads = SL_PARALLEL_THREADS_MAX;
	/* This thread works too: threads - 1 more, and none for fewer indexes than that. */
	while (started + 1 < threads && started + 1 < count && pthread_create(&tids[started], NULL, worker, &j) == 0)
		started++;
	worker(&j);
	for (uint32_t t = 0; t < started; t++)
		pthread_join(tids[t], NULL);
}
